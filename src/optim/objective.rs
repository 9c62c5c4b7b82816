//! What the optimizers minimise: R loss functions of R points, evaluated together.

use anyhow::Result;

use crate::backend::Buffer;
use crate::model::{Evaluator, Want};

/// R independent objectives over vectors of length `dim`, evaluated in one batched call.
pub trait BatchObjective {
    fn rows(&self) -> usize;
    fn dim(&self) -> usize;
    /// The R x dim buffer the next evaluation reads.
    fn input(&self) -> &Buffer;
    /// The R x dim gradients written by an evaluation with `Want::LossAndGrad`.
    fn grads(&self) -> &Buffer;
    /// Evaluates at the current input; returns the R losses.
    fn evaluate(&mut self, want: Want) -> Result<Vec<f64>>;
}

/// A network's mean loss over a fixed set of images (full batch), for R weight vectors.
pub struct NetworkObjective<'a> {
    pub eval: &'a Evaluator,
}

impl BatchObjective for NetworkObjective<'_> {
    fn rows(&self) -> usize {
        self.eval.batch()
    }
    fn dim(&self) -> usize {
        self.eval.network().arch.n_params()
    }
    fn input(&self) -> &Buffer {
        &self.eval.weights
    }
    fn grads(&self) -> &Buffer {
        &self.eval.grads
    }
    fn evaluate(&mut self, want: Want) -> Result<Vec<f64>> {
        self.eval.run(want);
        Ok(self.eval.results()?.iter().map(|r| r.loss).collect())
    }
}
