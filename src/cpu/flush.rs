//! Flush-to-zero (FTZ) and denormals-are-zero (DAZ) for the threads that run CPU kernels, as GPUs do.
//!
//! Why: near an L-BFGS minimum the losses are ~1e-11 and the softmax tails, gradients and
//! Hessian-vector products are full of subnormal f32 values (below 1.18e-38), which x86 processors
//! compute in microcode assists, tens to hundreds of cycles each: measured, such work ran 3–5x slower
//! than the same shapes elsewhere (`docs/benchmarks.md`). With FTZ a result that would be subnormal
//! becomes 0; with DAZ a subnormal input is read as 0. WGSL allows the same (and GPUs do it), so the
//! two backends treat these values alike. Effect on results: values below 1.18e-38 in magnitude become
//! 0; f64 values below 2.2e-308 likewise, in the threads where the flags are set.
//!
//! Where: rayon's worker threads get the flags once, for the life of the process
//! ([`ensure_workers`], called by [`super::Cpu::new`]); the thread that submits work holds a
//! [`Flushed`] guard for the duration of each call, which restores its previous state, so that the
//! caller's own floating-point environment is left as it was.
//!
//! The flags live in MXCSR on x86-64 and FPCR (bit FZ) on aarch64; elsewhere this module does nothing
//! ([`supported`] says so). They are read and written with inline assembly (`stmxcsr`/`ldmxcsr`,
//! `mrs`/`msr`), which Rust documents as the sound way to change the floating-point environment.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod imp {
    /// MXCSR bit 15 (FZ) and bit 6 (DAZ).
    pub const FLAGS: u32 = (1 << 15) | (1 << 6);

    pub fn get() -> u32 {
        let mut c: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit control register into the valid location given.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut c, options(nostack, preserves_flags)) };
        c
    }

    pub fn set(c: u32) {
        // SAFETY: ldmxcsr loads from a valid location; the only bits changed are FZ and DAZ (or
        // restored to a value read before), neither of which can fault.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &c, options(nostack, readonly, preserves_flags)) };
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    /// FPCR bit 24 (FZ): subnormal inputs and results are flushed to zero.
    pub const FLAGS: u32 = 1 << 24;

    pub fn get() -> u32 {
        let c: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) c, options(nomem, nostack, preserves_flags)) };
        c as u32
    }

    pub fn set(c: u32) {
        // SAFETY: only the FZ bit differs from the value read before.
        unsafe { std::arch::asm!("msr fpcr, {}", in(reg) c as u64, options(nomem, nostack, preserves_flags)) };
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    pub const FLAGS: u32 = 0;
    pub fn get() -> u32 {
        0
    }
    pub fn set(_: u32) {}
}

/// The environment variable that turns the flush off (`LOSSCAPE_FLUSH=off`), to compare speed or
/// bits with a run that keeps subnormals; anything else, or unset, keeps it on.
pub const FLUSH_VAR: &str = "LOSSCAPE_FLUSH";

/// The flags this module sets: none when the architecture has no such control or `LOSSCAPE_FLUSH=off`
/// (read once per process).
fn flags() -> u32 {
    static FLAGS: OnceLock<u32> = OnceLock::new();
    *FLAGS.get_or_init(|| {
        let off = std::env::var(FLUSH_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"));
        if off {
            0
        } else {
            imp::FLAGS
        }
    })
}

/// Whether this processor architecture has flush-to-zero controls that this module sets (and they are
/// not turned off by `LOSSCAPE_FLUSH=off`).
pub fn supported() -> bool {
    flags() != 0
}

/// Whether the calling thread flushes subnormals to zero now.
pub fn enabled() -> bool {
    supported() && imp::get() & flags() == flags()
}

/// Sets FTZ/DAZ on every thread of rayon's global pool, once per process.
pub fn ensure_workers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let flags = flags();
        if flags != 0 {
            rayon::broadcast(|_| imp::set(imp::get() | flags));
        }
    });
}

/// FTZ/DAZ on the calling thread while it lives; the previous state is restored on drop.
pub struct Flushed {
    before: u32,
}

impl Flushed {
    /// Turns the flags on for the calling thread (and makes sure the worker threads have them).
    pub fn new() -> Flushed {
        ensure_workers();
        let before = imp::get();
        if flags() != 0 {
            imp::set(before | flags());
        }
        Flushed { before }
    }
}

impl Default for Flushed {
    fn default() -> Self {
        Flushed::new()
    }
}

impl Drop for Flushed {
    fn drop(&mut self) {
        if flags() != 0 {
            imp::set(self.before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_flushes_and_restores() {
        if !supported() {
            return;
        }
        let tiny = std::hint::black_box(1e-39f32);
        assert!(!enabled());
        assert_eq!(std::hint::black_box(tiny) * 1.0, tiny, "subnormals survive without the flags");
        {
            let _f = Flushed::new();
            assert!(enabled());
            assert_eq!(std::hint::black_box(tiny) * std::hint::black_box(1.0f32), 0.0);
        }
        assert!(!enabled(), "the caller's state is restored");
        let on_workers: Vec<bool> = rayon::broadcast(|_| enabled());
        assert!(on_workers.iter().all(|&e| e), "every worker flushes: {on_workers:?}");
    }
}
