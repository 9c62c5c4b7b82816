//! The GPU layer: device setup, buffers, cached pipelines, kernel launches, vector operations.
//! Nothing outside this module touches wgpu; nothing inside it knows about networks. Algorithms reach it
//! through [`crate::backend::Device`], which also offers the native CPU backend.

mod activation;
mod adam;
mod buffer;
mod context;
mod conv;
mod counters;
pub mod diagnose;
pub mod grids;
mod launch;
mod loss;
mod lstm;
mod matmul;
mod memory;
pub mod params;
mod pool;
mod select;
pub mod shaders;
mod vector;

pub use buffer::GpuBuffer;
pub use context::{list_adapters, AdapterLimits, AdapterSummary, DeviceChoice, Gpu, Subgroups, NO_ADAPTER_HELP};
pub use counters::Counts;
pub use launch::Dispatch;
pub use shaders::Shader;
