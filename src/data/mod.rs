//! Data: the MNIST IDX reader and its upload to the GPU as packed bytes.

pub mod idx;
pub mod mnist;
mod upload;

pub use mnist::{bundled_dir, load_split, Dataset, Split, PIXELS};
pub use upload::GpuImages;
