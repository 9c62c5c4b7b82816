//! The GPU layer: device setup, buffers, cached pipelines, kernel launches, vector operations.
//! Nothing outside this module touches wgpu; nothing inside it knows about networks.

mod buffer;
mod context;
mod kernels;
mod launch;
mod layers;
pub mod shaders;
mod vector;

pub use buffer::GpuBuffer;
pub use context::{list_adapters, AdapterSummary, DeviceChoice, Gpu, NO_ADAPTER_HELP};
pub use kernels::{partial_slots, Act, Head, Layout, LossChunk, Product, Source};
pub use launch::Dispatch;
pub use layers::{AdamStep, Conv, LstmStep, Selection};
pub use shaders::Shader;
pub use vector::Rows;
