//! What a path finder's run gives for one pair ([`PathOutcome`]), and how it is kept while the run
//! goes on: the best path so far (the iteration with the lowest cumulative loss), the running minima
//! the convergence rule reads, and the compact trace a record keeps.

use serde::{Deserialize, Serialize};

use super::convergence::{ConvergenceRule, Trace};

/// What one optimised path reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathOutcome {
    /// Per-point losses of the straight line (iteration 0).
    pub straight_losses: Vec<f64>,
    /// Per-point losses of the best path (lowest cumulative loss over the evaluated iterations).
    pub losses: Vec<f64>,
    /// Iteration whose path was best (0 = the straight line).
    pub best_iteration: usize,
    /// Max of the best path's per-point losses (Eq. 5).
    pub height: f64,
    /// Height minus the mean of the two endpoint losses.
    pub barrier: f64,
    pub straight_height: f64,
    /// Sum of the segment lengths |w(t_{m+1}) - w(t_m)| of the best path.
    pub length: f64,
    /// Trapezoid mean of the loss along the best path, weighted by arc length.
    pub weighted_mean_loss: f64,
    /// Iterations evaluated (0 = the straight line, so the last one is `iterations - 1`): the budget,
    /// or fewer when the pair stopped at convergence. None in records written before issue 25.
    #[serde(default)]
    pub iterations: Option<usize>,
    /// Whether the path had converged at its last iteration by [`ConvergenceRule::DEFAULT`] (on the
    /// cumulative loss, or on the height: [`ConvergenceRule::pinned`])
    /// (`docs/algorithms.md` §5). None (unknown) in records written before issue 25; the claims table
    /// counts those as not converged.
    #[serde(default)]
    pub converged: Option<bool>,
    /// The cumulative loss and height over the iterations, compactly ([`Trace`]); None in records
    /// written before issue 25.
    #[serde(default)]
    pub trace: Option<Trace>,
    /// The best coefficients b_1..b_NF (NF x N_prm), when asked for.
    #[serde(skip)]
    pub coefficients: Option<Vec<f32>>,
}

/// One pair's best iteration so far (lowest cumulative loss), its running minima and its trace.
#[derive(Default)]
pub(super) struct Best {
    straight: Vec<f64>,
    losses: Vec<f64>,
    iteration: usize,
    sum: Option<f64>,
    /// The best cumulative loss after each iteration 0..=k.
    running: Vec<f64>,
    /// The best cumulative loss of the optimised paths (the straight line left out) after each
    /// iteration 1..=k: what the convergence rule reads ([`ConvergenceRule::converged_best`]).
    optimised: Vec<f64>,
    /// The iteration since which every new best path's height has equalled the larger endpoint loss.
    pinned_since: Option<usize>,
    trace: Trace,
}

impl Best {
    /// Records iteration `k`'s losses (`last`: the last this pair evaluates); true when they are the
    /// best so far.
    pub(super) fn update(&mut self, k: usize, losses: &[f64], last: bool) -> bool {
        let sum: f64 = losses.iter().sum();
        if k == 0 {
            self.straight = losses.to_vec();
        }
        self.trace.record(k, losses, last);
        let better = !self.sum.is_some_and(|s| sum >= s);
        if better {
            (self.sum, self.iteration, self.losses) = (Some(sum), k, losses.to_vec());
            let height = losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let ends = losses[0].max(losses[losses.len() - 1]);
            self.pinned_since = if height <= ends { self.pinned_since.or(Some(k)) } else { None };
        }
        self.running.push(self.sum.expect("set at iteration 0"));
        if k > 0 {
            let best = self.optimised.last().map_or(sum, |&b| b.min(sum));
            self.optimised.push(best);
        }
        better
    }

    /// Whether the path has converged at its last iteration by `rule`.
    pub(super) fn converged(&self, rule: &ConvergenceRule) -> bool {
        let k = self.running.len().saturating_sub(1);
        rule.converged_best(&self.optimised, self.straight.len()) || rule.pinned(self.pinned_since, k)
    }

    /// Adds the last evaluated iteration to the trace when the grid skipped it (`losses` are its).
    pub(super) fn close_trace(&mut self, losses: &[f64]) {
        if let Some(k) = self.running.len().checked_sub(1) {
            self.trace.record(k, losses, true);
        }
    }

    /// The outcome of the best path, given its segment lengths.
    pub(super) fn outcome(self, lengths: &[f64], coefficients: Option<Vec<f32>>) -> PathOutcome {
        let max = |v: &[f64]| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let l = &self.losses;
        let length: f64 = lengths.iter().sum();
        let weighted: f64 = lengths.iter().enumerate().map(|(m, s)| 0.5 * (l[m] + l[m + 1]) * s).sum::<f64>();
        let height = max(l);
        let ends = 0.5 * (l[0] + l[l.len() - 1]);
        let converged = self.converged(&ConvergenceRule::DEFAULT);
        PathOutcome {
            iterations: Some(self.running.len()),
            converged: Some(converged),
            trace: Some(self.trace),
            straight_height: max(&self.straight),
            straight_losses: self.straight,
            best_iteration: self.iteration,
            height,
            barrier: height - ends,
            length,
            weighted_mean_loss: if length > 0.0 { weighted / length } else { ends },
            losses: self.losses,
            coefficients,
        }
    }
}
