//! Adam (`shaders/adam.wgsl`, `cpu/adam.rs`; Kingma & Ba 2015, PyTorch's form): one step's
//! hyper-parameters and the [`AdamSteps`] trait.

use anyhow::{bail, Result};

use super::backend::Memory;
use super::handles::DeviceBuffer;
/// Hyper-parameters of one Adam step (PyTorch semantics, no weight decay) at step number `t` (1-based).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub t: u32,
}

impl AdamStep {
    /// PyTorch's defaults (betas 0.9, 0.999, eps 1e-8) at learning rate `lr`, step `t` (from 1): what
    /// the path finder and the toy use (`docs/algorithms.md`).
    pub fn pytorch(lr: f64, t: u32) -> AdamStep {
        AdamStep { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, t }
    }

    /// lr / (1 - beta1^t) and sqrt(1 - beta2^t): the bias corrections folded as the kernels use them.
    pub fn corrections(&self) -> (f64, f64) {
        (self.lr / (1.0 - self.beta1.powi(self.t as i32)), (1.0 - self.beta2.powi(self.t as i32)).sqrt())
    }
}

/// The Adam update of a backend.
pub trait AdamSteps: Memory {
    /// Records one Adam step on `grad.len()` parameters of `param` from element `param.1`, with the
    /// moments `m` and `v`.
    ///
    /// Errors: a buffer is too short.
    fn adam(
        &self,
        s: AdamStep,
        grad: &Self::Buffer,
        param: (&Self::Buffer, usize),
        m: &Self::Buffer,
        v: &Self::Buffer,
    ) -> Result<Self::Command> {
        if param.1 + grad.len() > param.0.len() || m.len() < grad.len() || v.len() < grad.len() {
            bail!("Adam step over {} parameters past the end of a buffer", grad.len());
        }
        self.record_adam(s, grad, param, m, v)
    }

    /// [`AdamSteps::adam`] after its checks.
    fn record_adam(
        &self,
        s: AdamStep,
        grad: &Self::Buffer,
        param: (&Self::Buffer, usize),
        m: &Self::Buffer,
        v: &Self::Buffer,
    ) -> Result<Self::Command>;

    /// Makes a recorded [`AdamSteps::adam`] command take step `s` (learning rate, betas, epsilon and
    /// step number), so that one recording serves every step, creating nothing.
    ///
    /// Errors: `cmd` is not an Adam step.
    fn set_adam_step(&self, cmd: &mut Self::Command, s: AdamStep) -> Result<()>;
}
