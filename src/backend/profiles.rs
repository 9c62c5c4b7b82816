//! Published limits of GPUs the program is planned for (`losscape plan --profile`), and the memory
//! budget of a known GPU, which wgpu does not report. Sources are given per profile; `docs/backends.md`
//! lists them.

use anyhow::{bail, Result};
use serde::Serialize;

use super::ChunkBudget;

/// A GPU's limits as far as the planner needs them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Profile {
    pub name: &'static str,
    pub title: &'static str,
    /// The storage-binding limit wgpu reports, in bytes (the largest tensor a kernel may bind).
    pub max_binding_bytes: u64,
    /// Device memory, in bytes (for a software rasteriser: what the test machine gives it).
    pub memory_bytes: u64,
    /// Strings whose presence in an adapter's name identifies this device (case-insensitive).
    pub names: &'static [&'static str],
    /// Nominal fp32 peak, in TFLOP/s (non-tensor-core).
    pub fp32_tflops: f64,
    /// A software rasteriser (host memory, CPU cores).
    pub software: bool,
    /// Where the numbers come from.
    pub source: &'static str,
}

/// wgpu's Vulkan backend reports min(maxStorageBufferRange, 2^31 − 1) (`wgpu-hal` 30,
/// `auxil::MAX_I32_BINDING_SIZE`); NVIDIA's drivers report maxStorageBufferRange = 2^32 − 1
/// (vulkan.gpuinfo.org), so every NVIDIA GPU binds 2 GiB − 1.
const VULKAN_NVIDIA_BINDING: u64 = (1 << 31) - 1;

/// The named profiles of `losscape plan --profile`.
pub const PROFILES: [Profile; 6] = [
    Profile {
        name: "h100",
        title: "NVIDIA H100 SXM5 80 GB (Vulkan)",
        max_binding_bytes: VULKAN_NVIDIA_BINDING,
        memory_bytes: 80 << 30,
        names: &["H100"],
        fp32_tflops: 67.0,
        software: false,
        source: "NVIDIA H100 Tensor Core GPU datasheet (FP32 67 TFLOPS, SXM5); binding: wgpu-hal Vulkan clamp",
    },
    Profile {
        name: "a100",
        title: "NVIDIA A100 SXM4 80 GB (Vulkan)",
        max_binding_bytes: VULKAN_NVIDIA_BINDING,
        memory_bytes: 80 << 30,
        names: &["A100"],
        fp32_tflops: 19.5,
        software: false,
        source: "NVIDIA A100 Tensor Core GPU datasheet (FP32 19.5 TFLOPS); binding: wgpu-hal Vulkan clamp",
    },
    Profile {
        name: "rtx4090",
        title: "NVIDIA GeForce RTX 4090 24 GB (Vulkan)",
        max_binding_bytes: VULKAN_NVIDIA_BINDING,
        memory_bytes: 24 << 30,
        names: &["RTX 4090"],
        fp32_tflops: 82.6,
        software: false,
        source: "NVIDIA Ada Lovelace architecture whitepaper (RTX 4090: 82.6 TFLOPS FP32); binding: wgpu-hal Vulkan clamp",
    },
    Profile {
        name: "apple-m2",
        title: "Apple M2, 10-core GPU, 8 GB (Metal)",
        max_binding_bytes: 1 << 30,
        memory_bytes: 8 << 30,
        names: &["Apple M2"],
        fp32_tflops: 3.6,
        software: false,
        source: "Apple M2 announcement (10-core GPU, 3.6 TFLOPS); wgpu's Metal backend binds up to MTLDevice.maxBufferLength, \
                 which depends on the Mac's memory: 1 GiB is assumed (run `losscape plan` on the Mac for its own limit)",
    },
    Profile {
        name: "webgpu-default",
        title: "WebGPU default limits",
        max_binding_bytes: 128 << 20,
        memory_bytes: 8 << 30,
        names: &[],
        fp32_tflops: 1.0,
        software: false,
        source: "W3C WebGPU specification, default limits (maxStorageBufferBindingSize 128 MiB); \
                 the 1 TFLOPS peak is a nominal figure, not a measurement",
    },
    Profile {
        name: "lavapipe",
        title: "Mesa lavapipe (software Vulkan) on 2 cores",
        max_binding_bytes: 128 << 20,
        memory_bytes: 1 << 30,
        names: &["llvmpipe"],
        fp32_tflops: 0.0013,
        software: true,
        source: "`losscape info` with Mesa 25.0.7 (maxStorageBufferRange 128 MiB); throughput measured in docs/benchmarks.md",
    },
];

/// A named profile, or an error listing them.
pub fn profile(name: &str) -> Result<Profile> {
    match PROFILES.iter().find(|p| p.name == name) {
        Some(p) => Ok(*p),
        None => {
            let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
            bail!(
                "unknown profile '{name}': choose {} (or leave --profile out for this machine's adapter)",
                names.join(", ")
            )
        }
    }
}

/// The share of a known GPU's memory that evaluators' scratch tensors take by default: the rest holds
/// the images, the optimizers' vectors and other processes' work.
pub const MEMORY_SHARE: u64 = 4;

impl Profile {
    /// The chunk budget on this profile, with `memory` bytes for the scratch tensors (default: a
    /// [`MEMORY_SHARE`]th of the device's memory).
    pub fn budget(&self, memory: Option<u64>) -> ChunkBudget {
        let tensor_bytes = if self.software {
            self.max_binding_bytes.min(super::SOFTWARE_TENSOR_BYTES)
        } else {
            self.max_binding_bytes
        };
        ChunkBudget { tensor_bytes, total_bytes: memory.unwrap_or(self.default_memory()) }
    }

    /// Scratch bytes by default: a [`MEMORY_SHARE`]th of the device's memory.
    pub fn default_memory(&self) -> u64 {
        self.memory_bytes / MEMORY_SHARE
    }
}

/// The profile whose names an adapter's name contains, if any: it tells a known GPU's memory, which
/// wgpu does not report.
pub fn known_device(adapter_name: &str) -> Option<&'static Profile> {
    let name = adapter_name.to_lowercase();
    PROFILES.iter().find(|p| p.names.iter().any(|n| name.contains(&n.to_lowercase())))
}
