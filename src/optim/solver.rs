//! One interface over the optimizers that train R runs together (the solver of the argmin split):
//! each is built with its settings and the problem it minimises, and `train` (the executor) drives any
//! [`Solver`] step by step and checkpoints it through [`Solver::buffers`] and [`Solver::state`]
//! without knowing which it is.

use anyhow::Result;

use crate::backend::Buffer;

/// An optimizer advancing R runs over vectors of length n, one step at a time (an SGD epoch, an
/// L-BFGS iteration), on the problem it was built for: L-BFGS on a full-batch objective
/// ([`super::LbfgsSolver`]), the mini-batch optimizers on the training images they draw their
/// mini-batches from ([`super::MiniBatch`]).
pub trait Solver {
    /// The R x n iterates, on the device.
    fn weights(&self) -> &Buffer;
    /// One step. Returns the R training losses at the new iterates when the step computed them (L-BFGS:
    /// its line search's), else `None` (the caller evaluates them; the mini-batch optimizers read
    /// nothing back).
    fn step(&mut self) -> Result<Option<Vec<f64>>>;
    /// Stops the runs whose flag is false (a non-finite loss); they no longer move.
    fn set_active(&mut self, active: &[bool]) -> Result<()>;
    /// The device buffers of the state, by name, each once (the iterates first).
    fn buffers(&self) -> Vec<(String, &Buffer)>;
    /// The host half of the state, serialisable (floats as bits where they must survive JSON).
    fn state(&self) -> Result<serde_json::Value>;
    /// Restores the host half (the buffers are written by the caller through [`Solver::buffers`]);
    /// errors when `state` is not this solver's.
    fn restore(&mut self, state: serde_json::Value) -> Result<()>;
}
