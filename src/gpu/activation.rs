//! Launches of the element-wise activations (`shaders/activation.wgsl`).

use anyhow::Result;

use super::launch::u;
use super::params::params;
use super::{Dispatch, Gpu, GpuBuffer, Shader};
use crate::ops::{Act, Activations};

/// The activation's code in the shader (its `ACT` override constant).
fn code(act: Act) -> f64 {
    match act {
        Act::Softplus => 0.0,
        Act::Relu => 1.0,
        Act::Sigmoid => 2.0,
        Act::Tanh => 3.0,
    }
}

params!(
    Shader::Activation,
    "Params",
    struct ElementParams {
        len: u32,
        row: u32,
        _pad: [u32; 2],
    }
);

impl Activations for Gpu {
    fn record_activation(
        &self,
        act: Act,
        backward: bool,
        z: &GpuBuffer,
        out: &GpuBuffer,
        len: usize,
    ) -> Result<Vec<Dispatch>> {
        let (groups, row) = self.grid(len);
        let params = ElementParams { len: u(len), row, _pad: [0; 2] };
        let entry = if backward { "backward" } else { "forward" };
        Ok(vec![self.dispatch(
            Shader::Activation,
            entry,
            &[("ACT", code(act))],
            &params,
            &[(1, z), (2, out)],
            groups,
        )?])
    }
}
