//! What the optimizers minimise: R loss functions of R points, evaluated together.

use anyhow::Result;

use crate::backend::{Buffer, Command};
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
    /// The recorded commands of one evaluation at the current input and the device buffer holding its
    /// results, for an optimizer that submits them together with its own commands and reads the
    /// results back with its own scalars (one submission, one read-back). `None` (the default): the
    /// objective runs on the host, and the optimizer calls [`BatchObjective::evaluate`].
    fn recorded(&self, _want: Want) -> Option<(Vec<&Command>, &Buffer)> {
        None
    }
    /// The R losses from the whole contents of the results buffer of [`BatchObjective::recorded`].
    fn losses(&self, _results: &[f32]) -> Vec<f64> {
        unreachable!("an objective that records its evaluation decodes its results")
    }
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
        Ok(self.eval.evaluate(want)?.iter().map(|r| r.loss).collect())
    }
    fn recorded(&self, want: Want) -> Option<(Vec<&Command>, &Buffer)> {
        Some((self.eval.ordered(want), self.eval.partials()))
    }
    fn losses(&self, results: &[f32]) -> Vec<f64> {
        self.eval.evals(results).iter().map(|r| r.loss).collect()
    }
}
