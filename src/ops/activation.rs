//! Element-wise activations (`shaders/activation.wgsl`, `cpu/activation.rs`) and the [`Activations`]
//! trait a backend implements.

use anyhow::{bail, Result};

use super::backend::{Backend, Memory};
use super::handles::DeviceBuffer;
use super::op::{end, PlanOp, TensorId};
/// Activation functions the kernels implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Softplus,
    Relu,
    Sigmoid,
    Tanh,
}

/// The activations of a backend.
pub trait Activations: Memory {
    /// Records `out = act(z)` (forward) or `out *= act'(z)` (`backward`: `out` holds d loss / d act(z)
    /// and becomes d loss / d z) over the first `len` elements.
    ///
    /// Errors: `len` exceeds a buffer.
    fn activation(
        &self,
        act: Act,
        backward: bool,
        z: &Self::Buffer,
        out: &Self::Buffer,
        len: usize,
    ) -> Result<Self::Command> {
        if len > z.len() || len > out.len() {
            bail!("activation over {len} elements past the end of a buffer");
        }
        self.record_activation(act, backward, z, out, len)
    }

    /// [`Activations::activation`] after its checks.
    fn record_activation(
        &self,
        act: Act,
        backward: bool,
        z: &Self::Buffer,
        out: &Self::Buffer,
        len: usize,
    ) -> Result<Self::Command>;
}

/// Plan operation: `out` = act(`z`) over `len` elements.
#[derive(Clone, Debug, PartialEq)]
pub struct ActForward {
    pub act: Act,
    pub z: TensorId,
    pub out: TensorId,
    pub len: usize,
}

/// Plan operation: `grad` *= act'(`z`) over `len` elements.
#[derive(Clone, Debug, PartialEq)]
pub struct ActBackward {
    pub act: Act,
    pub z: TensorId,
    pub grad: TensorId,
    pub len: usize,
}

impl PlanOp for ActForward {
    fn kind(&self) -> &'static str {
        "activation"
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        vec![(self.z, end(self.len)), (self.out, end(self.len))]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.activation(self.act, false, t[self.z], t[self.out], self.len)
    }
}

impl PlanOp for ActBackward {
    fn kind(&self) -> &'static str {
        "activation-backward"
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        vec![(self.z, end(self.len)), (self.grad, end(self.len))]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.activation(self.act, true, t[self.z], t[self.grad], self.len)
    }
}
