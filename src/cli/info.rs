use anyhow::Result;
use clap::Args;

use super::{DataArgs, DeviceArgs};
use crate::backend::profiles::{adapter_budget, MemoryBudget};
use crate::backend::{choose_backend, BackendKind, ChunkBudget, DeviceChoice};
use crate::cpu::Cpu;
use crate::data::{load_split, Dataset, Split};
use crate::gpu::{self, list_adapters};
use crate::model::{check_input, chunk_capacity, Arch, Network, INPUT_SHAPE};
use crate::ops::Act;

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
    #[command(flatten)]
    data: DataArgs,
}

/// The GPU backends to list: those named by `--backend`, else all.
fn listing(choice: &DeviceChoice) -> Option<gpu::DeviceChoice> {
    let named = choice.backend.as_deref().map(str::trim).filter(|b| !matches!(*b, "cpu" | "auto"));
    Some(gpu::DeviceChoice { backend: Some(named.unwrap_or("primary").to_string()), ..Default::default() })
}

/// The batch and image count at which `info` reports each network's chunk: a path iteration of 51
/// points on the full training set.
pub const CHUNK_BATCH: usize = 51;
/// See [`CHUNK_BATCH`].
pub const CHUNK_IMAGES: usize = 60_000;

/// Each network's image chunk at [`CHUNK_BATCH`] vectors on [`CHUNK_IMAGES`] images within `budget`.
fn chunks(budget: ChunkBudget) -> Vec<(Arch, usize)> {
    Arch::ALL
        .iter()
        .map(|&arch| (arch, chunk_capacity(Network { arch, act: Act::Softplus }, budget, CHUNK_BATCH, CHUNK_IMAGES)))
        .collect()
}

pub fn run(args: InfoArgs) -> Result<()> {
    let choice = args.device.choice();
    let adapters = match listing(&choice) {
        Some(c) => list_adapters(&c).unwrap_or_default(),
        None => Vec::new(),
    };
    let subgroups = gpu::Subgroups::from_env()?;
    let cpu = Cpu::from_env()?;
    let budgets: Vec<MemoryBudget> =
        adapters.iter().map(|a| adapter_budget(a.budget_limits(), args.device.gpu_memory)).collect();
    let diagnosis = match (adapters.is_empty(), listing(&choice)) {
        (true, Some(c)) => gpu::diagnose::diagnose(&c),
        _ => Vec::new(),
    };
    let chosen = match choose_backend(&choice)? {
        BackendKind::Cpu => "cpu".to_string(),
        BackendKind::Wgpu(c) => format!("gpu ({})", c.backend.unwrap_or_default()),
    };
    let data = crate::data::locate(args.data.data.as_deref());
    let splits: Vec<(Split, Result<Dataset>)> = match &data {
        Ok(d) => [Split::Train, Split::Test].into_iter().map(|s| (s, load_split(&d.dir, s))).collect(),
        Err(_) => Vec::new(),
    };
    if args.json {
        let data = match &data {
            Ok(d) => {
                let mut record = serde_json::json!({"dir": d.dir, "source": d.source});
                for (split, loaded) in &splits {
                    record[split.name()] = split_json(loaded);
                }
                record
            }
            Err(e) => serde_json::json!({"error": format!("{e:#}")}),
        };
        let record = serde_json::json!({
            "data": data,
            "cpu": {
                "threads": cpu.threads,
                "simd": cpu.simd,
                "kernels": cpu.kernels.name(),
                "flush_to_zero": losscape_flush(),
            },
            "adapters": adapters.iter().zip(&budgets).map(|(a, b)| {
                let mut object = serde_json::to_value(a).expect("an adapter summary serialises");
                object["budget"] = serde_json::to_value(b).expect("a budget serialises");
                object["chunk_images"] = chunks(b.budget).iter().map(|(arch, c)| (arch.id().to_string(), (*c).into())).collect::<serde_json::Map<_, _>>().into();
                object["chunk_images"]["batch"] = CHUNK_BATCH.into();
                object["chunk_images"]["images"] = CHUNK_IMAGES.into();
                object
            }).collect::<Vec<_>>(),
            "no_adapter_diagnosis": diagnosis,
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
    match &data {
        Ok(d) => {
            outln!("[data] {} ({})", d.dir.display(), d.source.describe())?;
            for (split, loaded) in &splits {
                match loaded {
                    Ok(set) => outln!(
                        "    {}: {} images of {} (CxHxW), {} classes, from {}; {}",
                        split.name(),
                        set.len(),
                        set.shape,
                        set.classes,
                        set.source.display(),
                        fits(set)
                    )?,
                    Err(e) => outln!("    {}: {e:#}", split.name())?,
                }
            }
        }
        Err(e) => outln!("[data] {e:#}")?,
    }
    if adapters.is_empty() {
        outln!("no GPU adapter (the CPU backend needs none). Why, for a GPU:")?;
        for f in &diagnosis {
            outln!("    {} {}: {}", if f.ok { "ok " } else { "NO " }, f.check, f.detail)?;
        }
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
        let b = &budgets[i];
        outln!("    memory budget: {b}")?;
        let list: Vec<String> = chunks(b.budget).iter().map(|(arch, c)| format!("{} {c}", arch.id())).collect();
        outln!("    image chunks at B = {CHUNK_BATCH} on {CHUNK_IMAGES} images: {}", list.join(", "))?;
        if let Some(note) = &b.note {
            outln!("    note: {note}")?;
        }
    }
    outln!("the chosen backend: {chosen}")?;
    Ok(())
}

/// A split for `info --json`: its file, image count, shape `[C, H, W]`, classes, per-class counts and
/// the networks that take it; or the error that reading it gave.
fn split_json(loaded: &Result<Dataset>) -> serde_json::Value {
    match loaded {
        Ok(set) => serde_json::json!({
            "file": set.source,
            "images": set.len(),
            "shape": set.shape,
            "classes": set.classes,
            "class_counts": set.class_counts(),
            "networks": Arch::ALL.iter().filter(|&&a| check_input(a, set).is_ok()).map(|a| a.id()).collect::<Vec<_>>(),
        }),
        Err(e) => serde_json::json!({"error": format!("{e:#}")}),
    }
}

/// Which of the paper's networks take a split, in words.
fn fits(set: &Dataset) -> String {
    let taking: Vec<&str> = Arch::ALL.iter().filter(|&&a| check_input(a, set).is_ok()).map(|a| a.id()).collect();
    match taking.len() {
        0 => format!("no network takes it (the paper's take {INPUT_SHAPE} images)"),
        n if n == Arch::ALL.len() => "every network takes it".to_string(),
        _ => format!("taken by {} (the classifiers have 10 outputs)", taking.join(", ")),
    }
}

/// Whether the CPU backend's threads flush subnormals to zero here.
fn losscape_flush() -> bool {
    crate::cpu::flush::supported()
}
