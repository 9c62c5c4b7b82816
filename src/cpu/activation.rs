//! Element-wise activations on the CPU (`shaders/activation.wgsl`): the same formulas and f32
//! numerics, run 8 or 16 lanes at a time at the SIMD level the backend was opened with.

use anyhow::Result;
use rayon::prelude::*;

use super::math::{sigmoid, softplus, tanh};
use super::simd::{dispatch, Simd};
use super::{Cpu, CpuBuffer, CpuCommand, GRAIN};
use crate::ops::{Act, Activations};

impl Activations for Cpu {
    fn record_activation(
        &self,
        act: Act,
        backward: bool,
        z: &CpuBuffer,
        out: &CpuBuffer,
        len: usize,
    ) -> Result<CpuCommand> {
        let (z, out) = (z.clone(), out.clone());
        let op = format!("activation {act:?}{} of {len}", if backward { " backward" } else { "" });
        Ok(CpuCommand::checked(&op, &[&out], &[&z])?.run(move |cpu, l| {
            if backward {
                activation_backward(cpu.kernels, act, z.view(l), out.view_mut(l), len)
            } else {
                activation_forward(cpu.kernels, act, z.view(l), out.view_mut(l), len)
            }
        }))
    }
}

#[inline(always)]
fn act(a: Act, x: f32) -> f32 {
    match a {
        Act::Softplus => softplus(x),
        Act::Relu => x.max(0.0),
        Act::Sigmoid => sigmoid(x),
        Act::Tanh => tanh(x),
    }
}

#[inline(always)]
fn act_grad(a: Act, x: f32) -> f32 {
    match a {
        // PyTorch's threshold: the derivative is 1 above 20
        Act::Softplus => {
            if x > 20.0 {
                1.0
            } else {
                sigmoid(x)
            }
        }
        Act::Relu => f32::from(u8::from(x > 0.0)),
        Act::Sigmoid => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
        Act::Tanh => {
            let t = tanh(x);
            1.0 - t * t
        }
    }
}

/// Elements [`map_pieces`] computes side by side: 2 AVX-512 or 4 AVX2 vectors.
///
/// Why: each element is one long dependent chain (an exp, a division, a log's polynomial), and a
/// loop of one vector at a time keeps the out-of-order core waiting on it; with independent chains
/// interleaved it overlaps them. LeNet's softplus over 221,184 values took 220 µs in an SGD step, 120
/// µs in 32-element pieces (2 threads, AVX-512; docs/benchmarks.md).
const INTERLEAVE: usize = 32;

/// `out[i] = $e` for every element, with `$z` bound to `z[i]` and `$g` to `out[i]`, written out where
/// it is used, [`INTERLEAVE`] elements side by side, then the ragged tail.
///
/// A macro, not a function taking a closure: the closure would be a function of its own, and so would
/// a generic helper such as `std::array::from_fn`; LLVM may compile either out of line, without the
/// target features of [`activation_map`]'s per-level builds, where each `mul_add` of [`super::math`]
/// is then a call to a software fused multiply-add. A change elsewhere in the crate once tipped that
/// decision and made softplus 10 times slower (docs/benchmarks.md). Indexed loops over fixed-size
/// pieces keep everything inside the per-level function.
macro_rules! map_pieces {
    ($z:expr, $out:expr, |$zv:ident, $gv:ident| $e:expr) => {{
        let (z, out): (&[f32], &mut [f32]) = ($z, $out);
        let n = z.len().min(out.len());
        let whole = n - n % INTERLEAVE;
        let mut i = 0;
        while i < whole {
            let o: &mut [f32; INTERLEAVE] = (&mut out[i..i + INTERLEAVE]).try_into().expect("a whole piece");
            let zs: &[f32; INTERLEAVE] = (&z[i..i + INTERLEAVE]).try_into().expect("a whole piece");
            for j in 0..INTERLEAVE {
                let ($zv, $gv) = (zs[j], o[j]);
                o[j] = $e;
            }
            i += INTERLEAVE;
        }
        for k in whole..n {
            let ($zv, $gv) = (z[k], out[k]);
            out[k] = $e;
        }
    }};
}

/// One activation's forward (`backward` false: out = act(z)) or backward (grad *= act'(z)) map, with
/// the activation fixed so that the loop has no branch on it.
#[inline(always)]
fn activation_map_plain(a: Act, backward: bool, z: &[f32], out: &mut [f32]) {
    macro_rules! go {
        ($act:expr) => {
            if backward {
                map_pieces!(z, out, |z, g| g * act_grad($act, z))
            } else {
                map_pieces!(z, out, |z, _g| act($act, z))
            }
        };
    }
    match a {
        Act::Softplus => go!(Act::Softplus),
        Act::Relu => go!(Act::Relu),
        Act::Sigmoid => go!(Act::Sigmoid),
        Act::Tanh => go!(Act::Tanh),
    }
}

dispatch!(fn activation_map(a: Act, backward: bool, z: &[f32], out: &mut [f32]) => activation_map_plain);

/// out = act(z) over the first `len` elements.
pub fn activation_forward(simd: Simd, a: Act, z: &[f32], out: &mut [f32], len: usize) {
    out[..len]
        .par_chunks_mut(GRAIN)
        .zip(z[..len].par_chunks(GRAIN))
        .for_each(|(o, z)| activation_map(simd, a, false, z, o));
}

/// grad *= act'(z) over the first `len` elements.
pub fn activation_backward(simd: Simd, a: Act, z: &[f32], grad: &mut [f32], len: usize) {
    grad[..len]
        .par_chunks_mut(GRAIN)
        .zip(z[..len].par_chunks(GRAIN))
        .for_each(|(g, z)| activation_map(simd, a, true, z, g));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level computes, element by element, the bits of the scalar formulas: in whole
    /// [`INTERLEAVE`] pieces, in the ragged tail, and across the parallel pieces; nothing past `len`
    /// is written.
    #[test]
    fn maps_give_the_scalar_bits_at_every_level_and_stop_at_len() {
        let len = 3 * GRAIN + 5 * INTERLEAVE + 13;
        let z: Vec<f32> = (0..len + 7).map(|i| ((i * 7919) % 4001) as f32 / 100.0 - 20.0).collect();
        let g: Vec<f32> = (0..len + 7).map(|i| ((i * 104_729) % 1000) as f32 / 500.0 - 1.0).collect();
        let levels = Simd::ALL.into_iter().filter(|s| s.available());
        for (simd, a) in levels.flat_map(|s| [Act::Softplus, Act::Relu, Act::Sigmoid, Act::Tanh].map(|a| (s, a))) {
            let mut out = vec![f32::NAN; len + 7];
            activation_forward(simd, a, &z, &mut out, len);
            let mut grad = g.clone();
            activation_backward(simd, a, &z, &mut grad, len);
            for i in 0..len {
                assert_eq!(out[i].to_bits(), act(a, z[i]).to_bits(), "{simd:?} {a:?} forward at {i}");
                let want = g[i] * act_grad(a, z[i]);
                assert_eq!(grad[i].to_bits(), want.to_bits(), "{simd:?} {a:?} backward at {i}");
            }
            assert!(out[len..].iter().all(|x| x.is_nan()), "{simd:?} {a:?}: forward wrote past len");
            assert_eq!(&grad[len..], &g[len..], "{simd:?} {a:?}: backward wrote past len");
        }
    }
}
