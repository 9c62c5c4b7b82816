//! Which instruction set the CPU backend's own element-wise kernels (activations, loss heads, LSTM
//! cells) are compiled for, chosen at run time: AVX-512, AVX2+FMA or the portable build (which is
//! NEON on aarch64, where NEON is part of the baseline). The same Rust source is compiled once per
//! level (`dispatch!`); the kernels never reassociate a sum, so every level computes the same bits,
//! only at another speed (tested in `tests/simd.rs`).
//!
//! `LOSSCAPE_SIMD=auto|avx512|avx2|portable` forces a level (`auto`, the default, takes the widest this
//! processor has), so that each is tested and benchmarked on any machine. The `gemm` crate's matrix
//! products choose their own kernels and are not affected (a build without the `gemm-avx512`
//! feature keeps them at AVX2+FMA; see Cargo.toml).

use anyhow::{bail, Result};

/// A SIMD level of the element-wise kernels. Every value is safe to use on any processor: a level the
/// processor lacks runs the widest one it has below it (see [`Simd::effective`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Simd {
    /// AVX-512 (F, VL, DQ, BW) with FMA: 16 f32 lanes.
    Avx512,
    /// AVX2 with FMA: 8 f32 lanes.
    Avx2,
    /// What the compiler's baseline target allows (SSE2 on x86-64, NEON on aarch64).
    Portable,
}

/// The environment variable that forces a level.
pub const SIMD_VAR: &str = "LOSSCAPE_SIMD";

impl Simd {
    /// Every level, widest first.
    pub const ALL: [Simd; 3] = [Simd::Avx512, Simd::Avx2, Simd::Portable];

    /// The name used by `LOSSCAPE_SIMD`, `info` and benchmark records.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Avx512 => "avx512",
            Simd::Avx2 => "avx2",
            Simd::Portable => "portable",
        }
    }

    /// Whether this processor can run the level.
    pub fn available(self) -> bool {
        match self {
            Simd::Avx512 => has_avx512(),
            Simd::Avx2 => has_avx2(),
            Simd::Portable => true,
        }
    }

    /// The widest level this processor has.
    pub fn detect() -> Simd {
        Simd::ALL.into_iter().find(|s| s.available()).unwrap_or(Simd::Portable)
    }

    /// The level that actually runs: this one if the processor has it, else the widest below it.
    pub fn effective(self) -> Simd {
        Simd::ALL.into_iter().skip_while(|&s| s != self).find(|s| s.available()).unwrap_or(Simd::Portable)
    }

    /// Parses `auto` or a level's name.
    ///
    /// Errors: an unknown name, or a level this processor lacks (naming what it has).
    pub fn parse(text: &str) -> Result<Simd> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() || text == "auto" {
            return Ok(Simd::detect());
        }
        let Some(simd) = Simd::ALL.into_iter().find(|s| s.name() == text) else {
            bail!("unknown SIMD level '{text}': use auto, avx512, avx2 or portable");
        };
        if !simd.available() {
            bail!(
                "this processor has no {} (its widest is {}): use {} or narrower",
                simd.name(),
                Simd::detect().name(),
                Simd::detect().name()
            );
        }
        Ok(simd)
    }

    /// The level `LOSSCAPE_SIMD` asks for (`auto` when unset).
    ///
    /// Errors: as [`Simd::parse`], naming the variable.
    pub fn from_env() -> Result<Simd> {
        match std::env::var(SIMD_VAR) {
            Ok(v) => Simd::parse(&v).map_err(|e| anyhow::anyhow!("{SIMD_VAR}={v}: {e}")),
            Err(_) => Ok(Simd::detect()),
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    has_avx2()
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx512bw")
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn has_avx512() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn has_avx2() -> bool {
    false
}

/// Defines `$vis fn $name(simd: Simd, args…)` that runs the `#[inline(always)]` function `$plain(args…)`
/// compiled for the level `simd` names (its [`Simd::effective`] level): the bodies are the same source,
/// so the auto-vectoriser widens them to 16 or 8 lanes.
///
/// Only what is inlined into the per-level function gets its target features: `$plain` and everything
/// it calls must be `#[inline(always)]` functions, macros or loops. A closure handed to a generic
/// helper (`std::array::from_fn`, an iterator's `fold`) is a function of its own, which LLVM may
/// compile out of line at the x86-64 baseline, where each `mul_add` is a library call: the results keep
/// their bits, only the speed falls (softplus once ran 10 times slower after an unrelated edit).
/// `scripts/check-simd-inlining` lists what a release build's per-level functions call out of line.
macro_rules! dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $plain:ident) => {
        $(#[$meta])*
        $vis fn $name(simd: $crate::cpu::Simd, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $plain($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $plain($($arg),*)
                }
                match simd.effective() {
                    // SAFETY: `effective` returns a level only when the processor has its features.
                    $crate::cpu::Simd::Avx512 => unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::cpu::Simd::Avx2 => unsafe { avx2($($arg),*) },
                    $crate::cpu::Simd::Portable => $plain($($arg),*),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = simd;
                $plain($($arg),*)
            }
        }
    };
}
pub(crate) use dispatch;

/// `sum8!(a, b, |x, y| term)`: the sum of `term` over the pairs `(a[i], b[i])` (equal lengths; a
/// one-slice sum passes its slice twice and ignores the second value), in eight lanes: lane l adds the
/// terms i = l, l + 8, … of the whole groups of eight, in order; then the lanes are added 0 to 7 and
/// the tail (the last `len % 8` terms, added in order) is added to that.
///
/// The lanes are independent chains, so the loop vectorises where a plain f32 sum is one serial chain,
/// and they keep the rounding error of long sums small. The order is written out here and nothing
/// reassociates it, so every SIMD level (and every caller) gets the same bits for the same terms.
/// A macro of plain indexed loops rather than a function taking a closure, so that nothing of it can
/// be compiled out of line, outside the SIMD level of its caller (see [`dispatch!`]).
macro_rules! sum8 {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $term:expr) => {{
        let (a, b): (&[f32], &[f32]) = ($a, $b);
        assert_eq!(a.len(), b.len(), "sum8: slices of different lengths");
        let whole = a.len() / 8 * 8;
        let mut lanes = [0f32; 8];
        let mut i = 0;
        while i < whole {
            let (xs, ys) = (&a[i..i + 8], &b[i..i + 8]);
            for l in 0..8 {
                let ($x, $y) = (xs[l], ys[l]);
                lanes[l] += $term;
            }
            i += 8;
        }
        // -0.0 is the identity of f32 addition (what `Iterator::sum` starts from), sign of zero included
        let mut tail = -0.0f32;
        for i in whole..a.len() {
            let ($x, $y) = (a[i], b[i]);
            tail += $term;
        }
        let mut total = -0.0f32;
        for lane in lanes {
            total += lane;
        }
        total + tail
    }};
}
pub(crate) use sum8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_fall_back() {
        assert_eq!(Simd::parse("portable").unwrap(), Simd::Portable);
        assert_eq!(Simd::parse("AUTO").unwrap(), Simd::detect());
        assert!(Simd::parse("sse9").unwrap_err().to_string().contains("avx512, avx2 or portable"));
        for s in Simd::ALL {
            assert!(s.effective().available());
            assert_eq!(Simd::parse(s.name()).is_ok(), s.available(), "{s:?}");
        }
        assert_eq!(Simd::Portable.effective(), Simd::Portable);
    }
}
