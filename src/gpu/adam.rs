//! Launches of Adam (`shaders/adam.wgsl`; Kingma & Ba 2015, PyTorch's form).

use anyhow::{bail, Result};

use super::launch::u;
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{AdamStep, AdamSteps};

params!(
    Shader::Adam,
    "AdamParams",
    struct AdamParams {
        len: u32,
        row: u32,
        p_off: u32,
        _p0: u32,
        step_size: f32,
        bc2_sqrt: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        _pad: [u32; 3],
    }
);

/// The step-dependent fields of [`AdamParams`], in their order from `step_size`.
fn step_fields(s: &AdamStep) -> [f32; 5] {
    let (step_size, bc2_sqrt) = s.corrections();
    [step_size as f32, bc2_sqrt as f32, s.beta1 as f32, s.beta2 as f32, s.eps as f32]
}

impl AdamSteps for Gpu {
    fn record_adam(
        &self,
        s: AdamStep,
        grad: &GpuBuffer,
        param: (&GpuBuffer, usize),
        m: &GpuBuffer,
        v: &GpuBuffer,
    ) -> Result<Vec<Dispatch>> {
        let ((param, p_off), len) = (param, grad.len);
        let (grid, row) = self.grid(len);
        let [step_size, bc2_sqrt, beta1, beta2, eps] = step_fields(&s);
        let params = AdamParams {
            len: u(len),
            row,
            p_off: u(p_off),
            _p0: 0,
            step_size,
            bc2_sqrt,
            beta1,
            beta2,
            eps,
            _pad: [0; 3],
        };
        Ok(vec![self.dispatch(Shader::Adam, "step", &[], &params, &[(1, grad), (2, param), (3, m), (4, v)], grid)?])
    }

    /// Rewrites the step's hyper-parameters (bias corrections, betas, epsilon) in the dispatch's
    /// uniform, creating nothing.
    fn set_adam_step(&self, cmd: &mut Vec<Dispatch>, s: AdamStep) -> Result<()> {
        let [d] = cmd.as_slice() else {
            bail!("set_adam_step: the command is not an Adam step");
        };
        if d.entry != "step" || d.shader != Shader::Adam {
            bail!("set_adam_step: the command is not an Adam step");
        }
        let offset = std::mem::offset_of!(AdamParams, step_size) as u64;
        self.queue.write_buffer(&d.uniform, offset, bytemuck::cast_slice(&step_fields(&s)));
        Ok(())
    }
}
