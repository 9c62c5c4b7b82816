//! Data: the MNIST IDX reader and its upload to a compute device.

pub mod idx;
pub mod locate;
pub mod mnist;
pub mod npy;
mod upload;

pub use locate::{locate, DataDir, DataSource};
pub use mnist::{bundled_dir, fingerprint, load_split, Dataset, Split, PIXELS};
pub use upload::DeviceImages;
