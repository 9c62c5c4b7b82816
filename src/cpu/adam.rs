//! Adam on the CPU (`shaders/adam.wgsl`; Kingma & Ba 2015, PyTorch's form without weight decay).
//! A recorded step keeps its hyper-parameters in a shared cell, so that `set_adam_step` moves one
//! recording to the next step.

use anyhow::{bail, Result};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

use super::simd::{dispatch, Simd};
use super::{Cpu, CpuBuffer, CpuCommand, GRAIN};
use crate::ops::{AdamStep, AdamSteps};

impl AdamSteps for Cpu {
    fn record_adam(
        &self,
        s: AdamStep,
        grad: &CpuBuffer,
        param: (&CpuBuffer, usize),
        m: &CpuBuffer,
        v: &CpuBuffer,
    ) -> Result<CpuCommand> {
        let (grad, (param, off), m, v) = (grad.clone(), (param.0.clone(), param.1), m.clone(), v.clone());
        let step = Arc::new(Mutex::new(s));
        let current = Arc::clone(&step);
        let mut cmd = CpuCommand::checked("Adam", &[&param, &m, &v], &[&grad])?.run(move |cpu, l| {
            let s = *current.lock().unwrap_or_else(|e| e.into_inner());
            let g = grad.view(l);
            let p = &mut param.view_mut(l)[off..off + g.len()];
            adam(cpu.kernels, &s, g, p, m.view_mut(l), v.view_mut(l))
        });
        cmd.adam = Some(step);
        Ok(cmd)
    }

    fn set_adam_step(&self, cmd: &mut CpuCommand, s: AdamStep) -> Result<()> {
        match &cmd.adam {
            Some(step) => {
                *step.lock().unwrap_or_else(|e| e.into_inner()) = s;
                Ok(())
            }
            None => bail!("set_adam_step: the command is not an Adam step"),
        }
    }
}

/// One Adam step on `grad.len()` parameters (see adam.wgsl).
pub fn adam(simd: Simd, s: &AdamStep, grad: &[f32], param: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let (step_size, bc2_sqrt) = s.corrections();
    let (step_size, bc2_sqrt, b1, b2, eps) =
        (step_size as f32, bc2_sqrt as f32, s.beta1 as f32, s.beta2 as f32, s.eps as f32);
    let n = grad.len();
    param[..n]
        .par_chunks_mut(GRAIN)
        .zip(m[..n].par_chunks_mut(GRAIN))
        .zip(v[..n].par_chunks_mut(GRAIN).zip(grad.par_chunks(GRAIN)))
        .for_each(|((p, m), (v, g))| adam_chunk(simd, [step_size, bc2_sqrt, b1, b2, eps], g, p, m, v));
}

dispatch!(fn adam_chunk(c: [f32; 5], g: &[f32], p: &mut [f32], m: &mut [f32], v: &mut [f32]) => adam_chunk_plain);

/// Adam on one chunk; `c` = [step size, sqrt(1 - beta2^t), beta1, beta2, eps].
#[inline(always)]
fn adam_chunk_plain(c: [f32; 5], g: &[f32], p: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let [step_size, bc2_sqrt, b1, b2, eps] = c;
    let n = g.len();
    let (p, m, v) = (&mut p[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let mi = b1 * m[i] + (1.0 - b1) * g[i];
        let vi = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
    }
}
