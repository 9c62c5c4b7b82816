//! A run's estimated peak memory ([`Footprint`]: host bytes, and device-buffer bytes), the budget it
//! must fit ([`MemoryLimit`]: `--memory-limit BYTES|auto|none`), and the check of one against the other
//! ([`check`]) that the commands make before they write anything.
//!
//! The device's buffers live in host memory on the CPU backend and on a software rasteriser, so
//! there both parts count against the host budget; on a GPU the device part counts against the
//! device's memory where it is known (a MIG slice, a GPU in [`super::profiles::KNOWN_GPUS`]) and is not
//! checked where it is not (wgpu does not report device memory).

use std::ops::{Add, AddAssign};

use super::host_memory::{self, HostMemory};
use super::Device;

/// Estimated peak memory of a run, in bytes: what it holds on the host (its data, sets, host-side
/// vectors, the process itself) and in device buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes held in host memory.
    pub host: u64,
    /// Bytes of device buffers (host memory too on the CPU backend and a software rasteriser).
    pub device: u64,
}

impl Footprint {
    /// `bytes` of host memory.
    pub fn host(bytes: u64) -> Footprint {
        Footprint { host: bytes, device: 0 }
    }

    /// `bytes` of device buffers.
    pub fn device(bytes: u64) -> Footprint {
        Footprint { host: 0, device: bytes }
    }

    /// Both parts together: what the host holds when the device's buffers are host memory.
    pub fn total(&self) -> u64 {
        self.host.saturating_add(self.device)
    }
}

impl Add for Footprint {
    type Output = Footprint;
    fn add(self, o: Footprint) -> Footprint {
        Footprint { host: self.host.saturating_add(o.host), device: self.device.saturating_add(o.device) }
    }
}

impl AddAssign for Footprint {
    fn add_assign(&mut self, o: Footprint) {
        *self = *self + o;
    }
}

impl std::iter::Sum for Footprint {
    fn sum<I: Iterator<Item = Footprint>>(iter: I) -> Footprint {
        iter.fold(Footprint::default(), Add::add)
    }
}

/// Bytes of `count` 32-bit values (f32 weights, u32 labels): the unit of every buffer.
pub fn f32_bytes(count: usize) -> u64 {
    (count as u64).saturating_mul(4)
}

/// The host-memory budget a run must fit (`--memory-limit`, `LOSSCAPE_MEMORY_LIMIT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryLimit {
    /// What the machine (and the process's control group) has available ([`host_memory::available`]).
    #[default]
    Auto,
    /// No check: run whatever the estimate.
    Unlimited,
    /// At most this many bytes.
    Bytes(u64),
}

/// A budget a footprint exceeded: which memory, the estimate and the budget (bytes), and where the
/// budget comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// "host" or "GPU".
    pub memory: &'static str,
    /// The run's estimated peak, in bytes.
    pub estimate: u64,
    /// The budget, in bytes.
    pub budget: u64,
    /// Where the budget comes from (`--memory-limit`, `MemAvailable in /proc/meminfo`, a cgroup file).
    pub source: String,
}

impl std::fmt::Display for Exceeded {
    /// `an estimated 6.20 GiB of host memory, more than the 2.00 GiB available (source)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an estimated {} of {} memory, more than the {} available ({})",
            size(self.estimate),
            self.memory,
            size(self.budget),
            self.source
        )
    }
}

/// A byte count for people: `512 MiB`, `6.20 GiB`.
pub fn size(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    } else {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}

/// The host budget `limit` gives: `--memory-limit`'s bytes, or what is available now; `None` without
/// a check (`none`, or a system that does not say).
pub fn host_budget(limit: MemoryLimit) -> Option<HostMemory> {
    match limit {
        MemoryLimit::Auto => host_memory::available(),
        MemoryLimit::Unlimited => None,
        MemoryLimit::Bytes(bytes) => Some(HostMemory { bytes, source: "--memory-limit".into() }),
    }
}

/// The device memory a GPU's buffers must fit, when known: `None` on the CPU backend and on a software
/// rasteriser (their buffers are host memory) and on a GPU whose memory is not known.
fn device_budget(device: &Device) -> Option<HostMemory> {
    let Device::Wgpu(gpu) = device else { return None };
    let limits = gpu.budget_limits();
    if limits.software {
        return None;
    }
    if let Some(bytes) = super::profiles::mig_memory(limits.name) {
        return Some(HostMemory { bytes, source: "the MIG slice's memory".into() });
    }
    let known = super::profiles::known_gpu(limits.name).filter(|g| !g.at_least)?;
    Some(HostMemory { bytes: known.memory_bytes, source: format!("{}'s memory", known.title) })
}

/// Whether the device's buffers are host memory (the CPU backend, a software rasteriser).
fn buffers_in_host_memory(device: &Device) -> bool {
    match device {
        Device::Cpu(_) => true,
        Device::Wgpu(gpu) => gpu.budget_limits().software,
    }
}

/// The host memory `need` takes on `device`: its host part, and its device part too where the device's
/// buffers are host memory.
pub fn host_part(device: &Device, need: Footprint) -> u64 {
    if buffers_in_host_memory(device) {
        need.total()
    } else {
        need.host
    }
}

/// Checks `need` against the budgets of `limit` on `device`: the host part (with the device part where
/// the buffers are host memory) against the host budget, the device part of a GPU against its memory;
/// the first budget exceeded, or `None` when the run fits (or `limit` is [`MemoryLimit::Unlimited`]).
pub fn check(device: &Device, need: Footprint, limit: MemoryLimit) -> Option<Exceeded> {
    if limit == MemoryLimit::Unlimited {
        return None;
    }
    let exceeded = |memory, estimate: u64, budget: HostMemory| {
        (estimate > budget.bytes).then_some(Exceeded { memory, estimate, budget: budget.bytes, source: budget.source })
    };
    host_budget(limit)
        .and_then(|b| exceeded("host", host_part(device, need), b))
        .or_else(|| device_budget(device).and_then(|b| exceeded("GPU", need.device, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_cpu_backend_both_parts_count_against_the_limit() {
        let cpu = Device::cpu();
        let need = Footprint::host(600 << 20) + Footprint::device(600 << 20);
        let e = check(&cpu, need, MemoryLimit::Bytes(1 << 30)).unwrap();
        assert_eq!((e.memory, e.estimate, e.budget), ("host", 1200 << 20, 1 << 30));
        assert_eq!(
            e.to_string(),
            "an estimated 1.17 GiB of host memory, more than the 1.00 GiB available (--memory-limit)"
        );
        assert_eq!(check(&cpu, need, MemoryLimit::Bytes(2 << 30)), None);
        assert_eq!(check(&cpu, need, MemoryLimit::Unlimited), None);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(1), "1 MiB");
        assert_eq!(size(512 << 20), "512 MiB");
        assert_eq!(size(6_657_000_000), "6.20 GiB");
    }
}
