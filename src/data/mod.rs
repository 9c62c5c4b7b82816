//! Data: datasets with their image shape and class count, read by content from IDX files (MNIST,
//! Fashion-MNIST, KMNIST, EMNIST), CIFAR-10's binary batches or NumPy `.npz` archives; where they are
//! found; their upload to a compute device.

pub mod cifar;
mod dataset;
pub mod idx;
pub mod layout;
pub mod locate;
pub mod mnist;
pub mod npy;
pub mod npz;
mod upload;

pub use dataset::{fingerprint, Dataset, ImageShape, Split};
pub use layout::{load_split, split_files, Format, SplitFiles};
pub use locate::{locate, DataDir, DataSource};
pub use mnist::bundled_dir;
pub use upload::DeviceImages;
