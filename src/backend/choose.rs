//! Which backend runs the work: `--backend cpu|vulkan|metal|dx12|auto`, else `LOSSCAPE_BACKEND`, else
//! wgpu's `WGPU_BACKEND` (a GPU backend), else `auto`. `auto` takes a real GPU when one is present and
//! the native CPU backend when the only adapters are software rasterisers (lavapipe/llvmpipe, WARP,
//! SwiftShader: wgpu reports them as device type `Cpu`) or when there is no adapter at all.

use anyhow::{bail, Result};

use crate::cpu::Cpu;
use crate::gpu::{self, list_adapters, AdapterSummary};

/// What the user asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct DeviceChoice {
    /// `cpu`, `auto`, or GPU backends by name (`vulkan`, `metal`, `dx12`, comma separated).
    pub backend: Option<String>,
    /// Adapter index (as `losscape info` lists them) or a case-insensitive part of its name (GPU only).
    pub adapter: Option<String>,
    /// `--gpu-memory`: bytes an evaluator's scratch tensors may take on a GPU.
    pub gpu_memory: Option<u64>,
    /// Subgroup reductions on a GPU; `None` = `LOSSCAPE_SUBGROUPS`, else auto ([`gpu::Subgroups`]).
    pub subgroups: Option<gpu::Subgroups>,
}

/// The backend a choice resolves to.
#[derive(Clone, Debug)]
pub enum BackendKind {
    Cpu,
    Wgpu(gpu::DeviceChoice),
}

/// The requested backend text: option, then `LOSSCAPE_BACKEND`, then `WGPU_BACKEND`, then `auto`.
fn requested(choice: &DeviceChoice) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    choice
        .backend
        .clone()
        .or_else(|| env("LOSSCAPE_BACKEND"))
        .or_else(|| env("WGPU_BACKEND"))
        .unwrap_or_else(|| "auto".to_string())
        .trim()
        .to_ascii_lowercase()
}

/// True when none of the adapters is a real GPU (all are software rasterisers, or there are none).
pub fn only_software(adapters: &[AdapterSummary]) -> bool {
    adapters.iter().all(|a| a.device_type == "Cpu")
}

/// Resolves a choice to a backend, probing the GPU adapters only for `auto`.
pub fn choose_backend(choice: &DeviceChoice) -> Result<BackendKind> {
    let wanted = requested(choice);
    let wgpu_choice = |backend: Option<String>| gpu::DeviceChoice {
        backend,
        adapter: choice.adapter.clone(),
        memory: choice.gpu_memory,
        subgroups: choice.subgroups,
    };
    match wanted.as_str() {
        "cpu" => {
            if choice.adapter.is_some() {
                bail!(
                    "--adapter picks a GPU adapter; the CPU backend has none (drop --adapter or choose a GPU backend)"
                );
            }
            Ok(BackendKind::Cpu)
        }
        "auto" => {
            if choice.adapter.is_some() {
                return Ok(BackendKind::Wgpu(wgpu_choice(Some("primary".into()))));
            }
            let adapters = list_adapters(&wgpu_choice(Some("primary".into()))).unwrap_or_default();
            Ok(if only_software(&adapters) {
                BackendKind::Cpu
            } else {
                BackendKind::Wgpu(wgpu_choice(Some("primary".into())))
            })
        }
        _ => Ok(BackendKind::Wgpu(wgpu_choice(Some(wanted)))),
    }
}

/// The CPU backend described like an adapter.
pub(super) fn cpu_summary(cpu: &Cpu) -> AdapterSummary {
    AdapterSummary {
        name: format!(
            "CPU ({} thread{}, {}, kernels {})",
            cpu.threads,
            if cpu.threads == 1 { "" } else { "s" },
            cpu.simd,
            cpu.kernels.name()
        ),
        backend: "Cpu".into(),
        device_type: "Cpu".into(),
        driver: "losscape native".into(),
        driver_info: "gemm + rayon".into(),
        features: Vec::new(),
        max_storage_buffer_binding_size: u64::MAX,
        max_buffer_size: u64::MAX,
        max_compute_workgroup_storage_size: 0,
        max_compute_invocations_per_workgroup: 0,
        max_compute_workgroups_per_dimension: 0,
    }
}
