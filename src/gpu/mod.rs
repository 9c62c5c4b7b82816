//! The GPU layer: device setup, buffers, cached pipelines, kernel launches, vector operations.
//! Nothing outside this module touches wgpu; nothing inside it knows about networks. Algorithms reach it
//! through [`crate::backend::Device`], which also offers the native CPU backend.

mod buffer;
mod context;
mod counters;
pub mod diagnose;
pub mod grids;
mod kernels;
mod launch;
mod layers;
pub mod params;
pub mod shaders;
mod vector;

pub use buffer::GpuBuffer;
pub use context::{list_adapters, AdapterLimits, AdapterSummary, DeviceChoice, Gpu, Subgroups, NO_ADAPTER_HELP};
pub use counters::Counts;
pub use kernels::Source;
pub use launch::Dispatch;
pub use shaders::Shader;
pub use vector::{Coef, Rows};
