use anyhow::Result;
use clap::Args;

use super::DeviceArgs;
use crate::backend::{choose_backend, BackendKind, DeviceChoice};
use crate::cpu::Cpu;
use crate::gpu::{self, list_adapters};

/// List the native CPU backend and every GPU adapter (backend, driver, device type, optional features,
/// key limits), and say which one `--backend auto` would use.
#[derive(Args)]
#[command(after_help = "Example:\n  losscape info\n  losscape info --backend vulkan --json")]
pub struct InfoArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The GPU backends to list: those named by `--backend`, else all.
fn listing(choice: &DeviceChoice) -> Option<gpu::DeviceChoice> {
    let named = choice.backend.as_deref().map(str::trim).filter(|b| !matches!(*b, "cpu" | "auto"));
    Some(gpu::DeviceChoice { backend: Some(named.unwrap_or("primary").to_string()), ..Default::default() })
}

pub fn run(args: InfoArgs) -> Result<()> {
    let choice = args.device.choice();
    let adapters = match listing(&choice) {
        Some(c) => list_adapters(&c).unwrap_or_default(),
        None => Vec::new(),
    };
    let subgroups = gpu::Subgroups::from_env()?;
    let cpu = Cpu::from_env()?;
    let chosen = match choose_backend(&choice)? {
        BackendKind::Cpu => "cpu".to_string(),
        BackendKind::Wgpu(c) => format!("gpu ({})", c.backend.unwrap_or_default()),
    };
    if args.json {
        let record = serde_json::json!({
            "cpu": {
                "threads": cpu.threads,
                "simd": cpu.simd,
                "kernels": cpu.kernels.name(),
                "flush_to_zero": losscape_flush(),
            },
            "adapters": adapters,
            "chosen": chosen,
        });
        outln!("{}", serde_json::to_string_pretty(&record)?)?;
        return Ok(());
    }
    outln!(
        "[cpu] native CPU backend: {} threads, {} (gemm + rayon); element-wise kernels {} ({}={}); subnormals {}",
        cpu.threads,
        cpu.simd,
        cpu.kernels.name(),
        crate::cpu::simd::SIMD_VAR,
        std::env::var(crate::cpu::simd::SIMD_VAR).unwrap_or_else(|_| "auto".into()),
        if losscape_flush() {
            "flushed to zero"
        } else {
            "kept (LOSSCAPE_FLUSH=off, or no flush control on this architecture)"
        }
    )?;
    if adapters.is_empty() {
        outln!("no GPU adapter (the CPU backend needs none)")?;
    }
    for (i, a) in adapters.iter().enumerate() {
        outln!("[{i}] {}", a.name)?;
        outln!("    backend {}, type {}", a.backend, a.device_type)?;
        outln!("    driver {} {}", a.driver, a.driver_info)?;
        let features = if a.features.is_empty() { "none".to_string() } else { a.features.join(", ") };
        outln!("    optional features: {features}")?;
        let reductions = if subgroups.resolve_for(a) { "subgroups" } else { "workgroup tree" };
        outln!("    loss and dot/sum reductions: {reductions} (LOSSCAPE_SUBGROUPS={})", subgroups.name())?;
        outln!(
            "    limits: storage binding {} MiB, buffer {} MiB, workgroup memory {} KiB, {} invocations/workgroup, {} workgroups/dimension",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroup_storage_size >> 10,
            a.max_compute_invocations_per_workgroup,
            a.max_compute_workgroups_per_dimension
        )?;
    }
    outln!("the chosen backend: {chosen}")?;
    Ok(())
}

/// Whether the CPU backend's threads flush subnormals to zero here.
fn losscape_flush() -> bool {
    crate::cpu::flush::supported()
}
