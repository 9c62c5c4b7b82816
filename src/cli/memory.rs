//! The memory check of the commands whose memory grows with their options (`train`, `paths`,
//! `surface`, `hessian`): the run's estimated peak ([`Footprint`], computed by the algorithms from the
//! buffers they will allocate) against the budget of `--memory-limit`, before anything is written, so
//! that a run too large for the machine is refused naming the option that sizes it, instead of being
//! killed half-way (docs/io.md, "Memory").

use anyhow::{bail, Result};

use super::RunArgs;
use crate::backend::footprint::{self, size, Footprint, MemoryLimit};
use crate::backend::Device;

/// Resident memory of the process before it holds any data: the binary, its libraries and threads
/// (`losscape toy` peaks at 11 MiB on the CPU backend, docs/io.md).
const PROCESS_BYTES: u64 = 16 << 20;

/// Host memory a GPU driver takes besides the buffers (its own state, the shader compiler): about
/// 100 MiB with Mesa's lavapipe (docs/io.md, "Memory"); other drivers differ.
const DRIVER_BYTES: u64 = 96 << 20;

/// The variable read when `--memory-limit` is not given.
const VARIABLE: &str = "LOSSCAPE_MEMORY_LIMIT";

/// A `--memory-limit` value: `auto`, `none`, or a byte count as `--gpu-memory` takes it (40G, 512M).
pub fn parse_memory_limit(text: &str) -> std::result::Result<MemoryLimit, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(MemoryLimit::Auto),
        "none" => Ok(MemoryLimit::Unlimited),
        _ => super::parse_bytes(text).map(MemoryLimit::Bytes).map_err(|e| format!("{e}; or auto, or none")),
    }
}

/// `--memory-limit`, else `LOSSCAPE_MEMORY_LIMIT`, else auto.
///
/// Errors: the variable holds something else than a limit (named with the variable).
fn limit(given: Option<MemoryLimit>) -> Result<MemoryLimit> {
    if let Some(limit) = given {
        return Ok(limit);
    }
    match std::env::var(VARIABLE).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(MemoryLimit::Auto),
        Some(v) => parse_memory_limit(&v).map_err(|e| anyhow::anyhow!("{VARIABLE}={v}: {e}")),
    }
}

/// Refuses a run whose estimated peak memory, `need` plus the process itself (and a GPU's driver),
/// exceeds its budget on
/// `device` ([`footprint::check`]): the error names `sized_by` (the options that size the run, e.g.
/// `--points 10000`), the estimate, the budget and its source, and `fixes` (the options that shrink
/// it) besides `--memory-limit`. Without `--quiet`, a run that fits says its estimate on stderr.
pub fn check(
    command: &str,
    run: &RunArgs,
    device: &Device,
    need: Footprint,
    sized_by: &str,
    fixes: &str,
) -> Result<()> {
    let driver = if device.is_cpu() { 0 } else { DRIVER_BYTES };
    let need = need + Footprint::host(PROCESS_BYTES + driver);
    let limit = limit(run.memory_limit)?;
    if let Some(e) = footprint::check(device, need, limit) {
        bail!("{command}: {sized_by} needs {e}; {fixes}, or give --memory-limit BYTES (none skips this check)");
    }
    if !run.quiet {
        let gpu = match device.is_cpu() {
            true => String::new(),
            false => format!(", {} in device buffers", size(need.device)),
        };
        eprintln!("{command}: estimated peak memory {} on the host{gpu}", size(footprint::host_part(device, need)));
    }
    Ok(())
}
