//! What the optimizers minimise (the problem of the argmin split): R loss functions of R points,
//! evaluated together. An objective either runs its evaluation itself ([`BatchObjective::evaluate`])
//! or also offers it as recorded device commands ([`RecordedObjective`]) that an optimizer submits
//! together with its own.

use anyhow::Result;

use crate::backend::{Buffer, Coef, Command};
use crate::model::{Evaluator, Line, Want};

/// R independent objectives over vectors of length `dim`, evaluated in one batched call.
pub trait BatchObjective {
    /// R, the number of points evaluated together.
    fn rows(&self) -> usize;
    /// The length of each point.
    fn dim(&self) -> usize;
    /// The R x dim buffer the next evaluation reads.
    fn input(&self) -> &Buffer;
    /// The R x dim gradients written by an evaluation with `Want::LossAndGrad`.
    fn grads(&self) -> &Buffer;
    /// Evaluates at the current input; returns the R losses.
    fn evaluate(&mut self, want: Want) -> Result<Vec<f64>>;
    /// The same evaluation as recorded device commands, when the objective has them; `None` (the
    /// default): the objective runs on the host, and an optimizer calls [`BatchObjective::evaluate`].
    fn recorded(&self) -> Option<&dyn RecordedObjective> {
        None
    }
}

/// An objective whose evaluation is a list of recorded device commands writing a results buffer, for
/// an optimizer that submits them together with its own commands and reads the results back with its
/// own scalars (one submission, one read-back).
pub trait RecordedObjective {
    /// The commands of one evaluation at the current input.
    fn commands(&self, want: Want) -> Vec<&Command>;
    /// The device buffer the commands leave their results in.
    fn results(&self) -> &Buffer;
    /// The R losses from the whole contents of [`RecordedObjective::results`].
    fn losses(&self, results: &[f32]) -> Vec<f64>;
    /// The "line" capability: commands for a line search along `direction` (d, R x dim) through the
    /// current input w, cheaper than [`RecordedObjective::commands`]: the loss-and-gradient evaluation
    /// at w ([`RecordedObjective::line_commands`], which also keeps what the trials reuse), then
    /// [`Line::basis`] once d is final, then per trial point w + a_r d, with a_r from `coef` and the
    /// point written to [`BatchObjective::input`] first, a loss evaluation (`line_commands` with
    /// `Loss`); where the objective has them ([`Evaluator::line`]). `None` (the default): the caller
    /// evaluates with `commands`.
    ///
    /// # Errors
    /// A direction that does not match the objective's shape; device errors.
    fn line(&self, _direction: &Buffer, _coef: Coef) -> Result<Option<Line>> {
        Ok(None)
    }
    /// The commands of one evaluation through a `line` this objective made: `LossAndGrad` at the
    /// point w, `Loss` at a trial point (see [`RecordedObjective::line`]). The default, for objectives
    /// that make no line: [`RecordedObjective::commands`].
    fn line_commands<'a>(&'a self, _line: &'a Line, want: Want) -> Vec<&'a Command> {
        self.commands(want)
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
        self.eval.n_params()
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
    fn recorded(&self) -> Option<&dyn RecordedObjective> {
        Some(self)
    }
}

impl RecordedObjective for NetworkObjective<'_> {
    fn commands(&self, want: Want) -> Vec<&Command> {
        self.eval.ordered(want)
    }
    fn line_commands<'a>(&'a self, line: &'a Line, want: Want) -> Vec<&'a Command> {
        self.eval.line_commands(line, want)
    }
    fn results(&self) -> &Buffer {
        self.eval.partials()
    }
    fn losses(&self, results: &[f32]) -> Vec<f64> {
        self.eval.evals(results).iter().map(|r| r.loss).collect()
    }
    fn line(&self, direction: &Buffer, coef: Coef) -> Result<Option<Line>> {
        self.eval.line(direction, coef)
    }
}
