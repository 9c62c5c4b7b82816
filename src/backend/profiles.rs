//! Published limits of GPUs the program is planned for (`losscape plan --profile`), the chunk
//! budgets of the backends ([`ChunkBudget`]), and the memory budget of an adapter
//! ([`adapter_budget`]): `--gpu-memory`, else a table of known GPUs by name ([`KNOWN_GPUS`]; wgpu
//! does not report device memory), else the adapter's own limits, else a fallback it states. Sources
//! are given per profile and per table row; `docs/backends.md` lists them.

use anyhow::{bail, Result};
use serde::Serialize;

/// What [`adapter_budget`] looks at (the GPU layer describes its adapters with it).
pub use crate::gpu::AdapterLimits;

/// Bytes a scratch tensor may take on the CPU backend (host memory is plentiful, and large chunks keep
/// the matrix products efficient), all of an evaluator's together, and what a chunk's tensors aim at
/// so that they stay in the caches (see [`ChunkBudget::cache_bytes`]).
pub(super) const CPU_BUDGET: ChunkBudget =
    ChunkBudget { tensor_bytes: 512 << 20, total_bytes: 8 << 30, cache_bytes: 32 << 20 };
/// Bytes a scratch tensor may take on a software rasteriser: lavapipe runs the test suite's GPU pass,
/// whose speed was measured with chunks of this size.
pub const SOFTWARE_TENSOR_BYTES: u64 = 32 << 20;
/// Scratch memory an evaluator may take on an unknown GPU when `--gpu-memory` is not given: safe on
/// any card with 4 GB. A GPU named in [`KNOWN_GPUS`] gets a share of its memory instead
/// ([`adapter_budget`]).
pub const DEFAULT_GPU_MEMORY: u64 = 2 << 30;
/// The same for a software rasteriser, whose "GPU memory" is host memory shared with the test suite.
pub const SOFTWARE_GPU_MEMORY: u64 = 256 << 20;

/// How much memory one evaluator's scratch tensors may take: the image chunk is the largest whose
/// tensors fit both limits, and the cache aim where there is one (`model::chunk_capacity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChunkBudget {
    /// Bytes one scratch tensor may take: a GPU's storage-binding limit (or less).
    pub tensor_bytes: u64,
    /// Bytes all scratch tensors of an evaluator may take together.
    pub total_bytes: u64,
    /// Bytes of scratch tensors a chunk aims at, 0 for none: on the CPU backend a chunk whose tensors
    /// stay in the processor's caches between operations runs faster than one that streams them from
    /// memory, down to a floor of images below which per-chunk costs take over
    /// (`model::chunk_capacity`). A constant, not the cache size of the machine at hand, so that the
    /// chunks (and with them the bits of every sum) are the same on every machine.
    pub cache_bytes: u64,
}

/// A GPU's limits as far as the planner needs them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// The name `--profile` takes.
    pub name: &'static str,
    /// The device, in words.
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
pub const PROFILES: [Profile; 7] = [
    Profile {
        name: "h200",
        title: "NVIDIA H200 SXM 141 GB (Vulkan)",
        max_binding_bytes: VULKAN_NVIDIA_BINDING,
        memory_bytes: 141_000_000_000,
        names: &["H200"],
        fp32_tflops: 67.0,
        software: false,
        source: "NVIDIA H200 Tensor Core GPU datasheet (141 GB HBM3e, FP32 67 TFLOPS, SXM); binding: wgpu-hal Vulkan clamp",
    },
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
        let tensor_bytes =
            if self.software { self.max_binding_bytes.min(SOFTWARE_TENSOR_BYTES) } else { self.max_binding_bytes };
        ChunkBudget { tensor_bytes, total_bytes: memory.unwrap_or(self.default_memory()), cache_bytes: 0 }
    }

    /// Scratch bytes by default: a [`MEMORY_SHARE`]th of the device's memory.
    pub fn default_memory(&self) -> u64 {
        self.memory_bytes / MEMORY_SHARE
    }
}

/// The profile whose names an adapter's name contains, if any (the planner's view of a known adapter;
/// its memory comes from [`known_gpu`]).
pub fn known_device(adapter_name: &str) -> Option<&'static Profile> {
    let name = adapter_name.to_lowercase();
    PROFILES.iter().find(|p| p.names.iter().any(|n| name.contains(&n.to_lowercase())))
}

/// A GPU recognised by its adapter name, for its memory (which wgpu does not report).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KnownGpu {
    /// The device, in words.
    pub title: &'static str,
    /// Lower-case strings that all occur in the adapter's name (the first row that matches wins).
    pub all_of: &'static [&'static str],
    /// Device memory in bytes (for Apple: the smallest configuration; see `at_least`).
    pub memory_bytes: u64,
    /// The memory varies by machine (Apple's unified memory): the adapter's largest buffer, when
    /// larger, tells more.
    pub at_least: bool,
    /// Where the number comes from.
    pub source: &'static str,
}

const GB: u64 = 1_000_000_000;

/// Known GPUs, most specific first. Names as NVIDIA's Vulkan driver reports them ("NVIDIA H100 80GB
/// HBM3", "NVIDIA A100-SXM4-40GB", "NVIDIA A100 80GB PCIe", "NVIDIA GeForce RTX 4090") and Apple's Metal
/// ("Apple M2 Pro").
pub const KNOWN_GPUS: [KnownGpu; 11] = [
    KnownGpu {
        title: "NVIDIA H200 (141 GB)",
        all_of: &["h200"],
        memory_bytes: 141 * GB,
        at_least: false,
        source: "NVIDIA H200 datasheet: 141 GB HBM3e (SXM and NVL)",
    },
    KnownGpu {
        title: "NVIDIA H100 NVL (94 GB)",
        all_of: &["h100", "nvl"],
        memory_bytes: 94 * GB,
        at_least: false,
        source: "NVIDIA H100 datasheet: H100 NVL 94 GB",
    },
    KnownGpu {
        title: "NVIDIA H100 (80 GB)",
        all_of: &["h100"],
        memory_bytes: 80 * GB,
        at_least: false,
        source: "NVIDIA H100 datasheet: SXM5 and PCIe 80 GB",
    },
    KnownGpu {
        title: "NVIDIA A100 80 GB",
        all_of: &["a100", "80gb"],
        memory_bytes: 80 * GB,
        at_least: false,
        source: "NVIDIA A100 datasheet: 80 GB HBM2e",
    },
    KnownGpu {
        title: "NVIDIA A100 40 GB",
        all_of: &["a100", "40gb"],
        memory_bytes: 40 * GB,
        at_least: false,
        source: "NVIDIA A100 datasheet: 40 GB HBM2",
    },
    KnownGpu {
        title: "NVIDIA A100 (size not in the name: 40 GB assumed)",
        all_of: &["a100"],
        memory_bytes: 40 * GB,
        at_least: false,
        source: "NVIDIA A100 datasheet: the smaller of 40 and 80 GB",
    },
    KnownGpu {
        title: "NVIDIA L40S (48 GB)",
        all_of: &["l40s"],
        memory_bytes: 48 * GB,
        at_least: false,
        source: "NVIDIA L40S datasheet: 48 GB GDDR6",
    },
    KnownGpu {
        title: "NVIDIA L40 (48 GB)",
        all_of: &["l40"],
        memory_bytes: 48 * GB,
        at_least: false,
        source: "NVIDIA L40 datasheet: 48 GB GDDR6",
    },
    KnownGpu {
        title: "NVIDIA GeForce RTX 4090 (24 GB)",
        all_of: &["rtx 4090"],
        memory_bytes: 24 * GB,
        at_least: false,
        source: "NVIDIA RTX 4090 specifications: 24 GB GDDR6X",
    },
    KnownGpu {
        title: "NVIDIA GeForce RTX 3090 (24 GB)",
        all_of: &["rtx 3090"],
        memory_bytes: 24 * GB,
        at_least: false,
        source: "NVIDIA RTX 3090 and 3090 Ti specifications: 24 GB GDDR6X",
    },
    KnownGpu {
        title: "Apple M-series (unified memory, 8 GB or more)",
        all_of: &["apple m"],
        memory_bytes: 8 * GB,
        at_least: true,
        source: "Apple M1-M4: 8 GB in the smallest configuration; the Metal adapter's largest buffer tells more",
    },
];

/// The first row of [`KNOWN_GPUS`] whose strings all occur in `adapter_name` (case-insensitive).
pub fn known_gpu(adapter_name: &str) -> Option<&'static KnownGpu> {
    let name = adapter_name.to_lowercase();
    KNOWN_GPUS.iter().find(|g| g.all_of.iter().all(|s| name.contains(s)))
}

/// The memory of a MIG slice named in the adapter's name ("... MIG 3g.40gb": 40 GB), if any.
pub fn mig_memory(adapter_name: &str) -> Option<u64> {
    let name = adapter_name.to_lowercase();
    let rest = &name[name.find("mig ")? + 4..];
    let profile = rest.split_whitespace().next()?;
    let gb = profile.split('.').nth(1)?.strip_suffix("gb")?;
    gb.parse::<u64>().ok().filter(|&g| g > 0).map(|g| g * GB)
}

/// The memory budget an adapter gets, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryBudget {
    /// The chunk budget itself.
    #[serde(flatten)]
    pub budget: ChunkBudget,
    /// Where `total_bytes` comes from, in words.
    pub source: String,
    /// False when the adapter was not recognised and took the fallback (`note` says how to change it).
    pub recognised: bool,
    /// For an unrecognised adapter: which budget it got and how to give another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl std::fmt::Display for MemoryBudget {
    /// `scratch S MiB (source), tensors T MiB`, as `info` and `bench` print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.budget;
        write!(f, "scratch {} MiB ({}), tensors {} MiB", b.total_bytes >> 20, self.source, b.tensor_bytes >> 20)
    }
}

/// wgpu's own caps on `max_buffer_size` (`wgpu-hal` 30: 2^31 − 1 on Linux for non-NVIDIA Vulkan,
/// 2^52 elsewhere; `u64::MAX` when the driver reports nothing): values that say nothing of the memory.
fn reported_buffer(max_buffer_bytes: u64) -> Option<u64> {
    (![(1u64 << 31) - 1, 1u64 << 52, u64::MAX].contains(&max_buffer_bytes)).then_some(max_buffer_bytes)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The memory budget of an adapter: the tensor limit is its storage-binding limit (32 MiB at most on a
/// software rasteriser); the scratch total is, in order, `gpu_memory` (`--gpu-memory`); 256 MiB on a
/// software rasteriser; a [`MEMORY_SHARE`]th of a MIG slice's or a [`KNOWN_GPUS`] row's memory (for
/// Apple, or the adapter's largest buffer when larger); a [`MEMORY_SHARE`]th of the adapter's largest
/// buffer (`max_buffer_size`, when the driver reports one and it beats the fallback); else the 2 GiB
/// fallback, with a note saying so and how to change it.
pub fn adapter_budget(a: AdapterLimits, gpu_memory: Option<u64>) -> MemoryBudget {
    let tensor_bytes = if a.software { a.max_binding_bytes.min(SOFTWARE_TENSOR_BYTES) } else { a.max_binding_bytes };
    let make = |total_bytes: u64, source: String, recognised: bool, note: Option<String>| MemoryBudget {
        budget: ChunkBudget { tensor_bytes, total_bytes, cache_bytes: 0 },
        source,
        recognised,
        note,
    };
    let buffer = reported_buffer(a.max_buffer_bytes);
    if let Some(bytes) = gpu_memory {
        return make(bytes, "--gpu-memory".into(), true, None);
    }
    if a.software {
        return make(SOFTWARE_GPU_MEMORY, "software rasteriser: host memory shared with other work".into(), true, None);
    }
    if let Some(memory) = mig_memory(a.name) {
        return make(memory / MEMORY_SHARE, format!("a quarter of the MIG slice's {}", gib(memory)), true, None);
    }
    if let Some(g) = known_gpu(a.name) {
        let memory = match buffer {
            Some(b) if g.at_least && b > g.memory_bytes => b,
            _ => g.memory_bytes,
        };
        return make(
            memory / MEMORY_SHARE,
            format!("a quarter of a known GPU's memory: {} ({})", g.title, gib(memory)),
            true,
            None,
        );
    }
    if let Some(b) = buffer.filter(|&b| b / MEMORY_SHARE > DEFAULT_GPU_MEMORY) {
        return make(
            b / MEMORY_SHARE,
            format!("a quarter of the adapter's largest buffer ({}; device memory is at least that)", gib(b)),
            true,
            None,
        );
    }
    make(
        DEFAULT_GPU_MEMORY,
        "fallback for an unrecognised adapter (safe on any card with 4 GB)".into(),
        false,
        Some(format!(
            "adapter '{}' is not in the table of known GPUs and reports no memory size: its evaluations take the \
             {} fallback for scratch tensors; give more with --gpu-memory (e.g. --gpu-memory 20G, a quarter of \
             an 80 GB card) for larger image chunks and fewer dispatches",
            a.name,
            gib(DEFAULT_GPU_MEMORY)
        )),
    )
}
