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
        Ok(CpuCommand::checked("activation", &[&out], &[&z])?.run(move |cpu, l| {
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

/// `out[i] = f(z[i], out[i])`; inlined into [`activation_map`]'s per-level builds, where the functions
/// of [`super::math`] then run 8 or 16 lanes at a time.
#[inline(always)]
fn map_plain(z: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Copy) {
    out.iter_mut().zip(z).for_each(|(o, &z)| *o = f(z, *o));
}

/// One activation's forward (`backward` false: out = act(z)) or backward (grad *= act'(z)) map, with
/// the activation fixed so that the loop has no branch on it.
#[inline(always)]
fn activation_map_plain(a: Act, backward: bool, z: &[f32], out: &mut [f32]) {
    macro_rules! go {
        ($act:expr) => {
            if backward {
                map_plain(z, out, |z, g| g * act_grad($act, z))
            } else {
                map_plain(z, out, |z, _| act($act, z))
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
