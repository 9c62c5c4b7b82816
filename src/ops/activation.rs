//! Element-wise activations (`shaders/activation.wgsl`, `cpu/activation.rs`) and the [`Activations`]
//! trait a backend implements.

use anyhow::{bail, Result};

use super::backend::Memory;
use super::handles::DeviceBuffer;
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
