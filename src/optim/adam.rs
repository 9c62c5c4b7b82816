//! Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 1) with
//! PyTorch's semantics and defaults (betas 0.9 and 0.999, eps 1e-8, no weight decay): the one update
//! rule of mini-batch training ([`super::MiniBatch`]) and of the path finder (`path::finder`, on the
//! path coefficients), and, on the host in f64, of the toy. Step t (from 1) of one parameter p with
//! gradient g:
//!
//! ```text
//! m ← β1 m + (1 − β1) g        v ← β2 v + (1 − β2) g²
//! p ← p − lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
//! ```
//!
//! On the device the update is one recorded command per (gradient, parameter) buffer pair
//! ([`Adam::record`]); the bias corrections depend on t only, so each step rewrites the command's
//! step number ([`AdamUpdate::set_step`]) instead of recording anew.

use anyhow::Result;

use crate::backend::{Buffer, Command, Device};
use crate::ops::AdamStep;

/// The default learning rate (PyTorch's).
pub const DEFAULT_LR: f64 = 1e-3;

/// Adam's settings: the learning rate; betas and eps are PyTorch's ([`AdamStep::pytorch`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamSettings {
    /// Learning rate (> 0).
    pub lr: f64,
}

impl AdamSettings {
    /// The hyper-parameters of step `t` (from 1), bias corrections included, as the kernels take them.
    pub fn at(self, t: usize) -> AdamStep {
        AdamStep::pytorch(self.lr, t as u32)
    }
}

/// Adam's state over one device buffer of `len` parameters: the first and second moment estimates
/// m and v (zero at the start).
pub struct Adam {
    device: Device,
    settings: AdamSettings,
    m: Buffer,
    v: Buffer,
}

impl Adam {
    /// Zero moments for `len` parameters.
    ///
    /// # Errors
    /// The device refuses a buffer.
    pub fn new(device: &Device, settings: AdamSettings, len: usize) -> Result<Adam> {
        let (m, v) = (device.zeros(len, "adam m")?, device.zeros(len, "adam v")?);
        Ok(Adam { device: device.clone(), settings, m, v })
    }

    /// Records the update of `params` (from element 0) from `grads`, both of the moments' length,
    /// set to step 1.
    ///
    /// # Errors
    /// The buffers are shorter than the moments; device errors.
    pub fn record(&self, grads: &Buffer, params: &Buffer) -> Result<AdamUpdate> {
        let command = self.device.adam(self.settings.at(1), grads, (params, 0), &self.m, &self.v)?;
        Ok(AdamUpdate { device: self.device.clone(), settings: self.settings, command })
    }

    /// Zeroes the moments: the next update is a first step again.
    ///
    /// # Errors
    /// Device errors.
    pub fn clear(&self) -> Result<()> {
        let zeros = vec![0f32; self.m.len()];
        self.device.write(&self.m, 0, &zeros)?;
        self.device.write(&self.v, 0, &zeros)
    }

    /// The moments m and v, for checkpoints.
    pub fn moments(&self) -> [&Buffer; 2] {
        [&self.m, &self.v]
    }
}

/// One recorded Adam update (see [`Adam::record`]).
pub struct AdamUpdate {
    device: Device,
    settings: AdamSettings,
    command: Command,
}

impl AdamUpdate {
    /// Makes the update take step `t` (from 1): its bias corrections.
    ///
    /// # Errors
    /// Device errors.
    pub fn set_step(&mut self, t: usize) -> Result<()> {
        self.device.set_adam_step(&mut self.command, self.settings.at(t))
    }

    /// The command to submit.
    pub fn command(&self) -> &Command {
        &self.command
    }
}

/// Step `s` of one parameter `p` with gradient `g` and moments `m`, `v`, on the host in f64 (the
/// kernels' formula, with the bias corrections of [`AdamStep::corrections`]).
pub fn host_step(s: AdamStep, g: f64, p: &mut f64, m: &mut f64, v: &mut f64) {
    let (step_size, bc2_sqrt) = s.corrections();
    *m = s.beta1 * *m + (1.0 - s.beta1) * g;
    *v = s.beta2 * *v + (1.0 - s.beta2) * g.powi(2);
    *p -= step_size * *m / (v.sqrt() / bc2_sqrt + s.eps);
}
