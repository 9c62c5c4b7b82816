use anyhow::{bail, Result};
use clap::Args;

use super::DeviceArgs;
use crate::gpu::{list_adapters, NO_ADAPTER_HELP};

/// List every GPU adapter: backend, driver, device type, optional features, key limits.
#[derive(Args)]
#[command(after_help = "Example:\n  losscape info\n  losscape info --backend vulkan --json")]
pub struct InfoArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let adapters = list_adapters(&args.device.choice())?;
    if adapters.is_empty() {
        bail!(NO_ADAPTER_HELP);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    for (i, a) in adapters.iter().enumerate() {
        println!("[{i}] {}", a.name);
        println!("    backend {}, type {}", a.backend, a.device_type);
        println!("    driver {} {}", a.driver, a.driver_info);
        let features = if a.features.is_empty() { "none".to_string() } else { a.features.join(", ") };
        println!("    optional features: {features}");
        println!(
            "    limits: storage binding {} MiB, buffer {} MiB, workgroup memory {} KiB, {} invocations/workgroup, {} workgroups/dimension",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroup_storage_size >> 10,
            a.max_compute_invocations_per_workgroup,
            a.max_compute_workgroups_per_dimension
        );
    }
    Ok(())
}
