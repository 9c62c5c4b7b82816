//! When a path has converged (docs/algorithms.md §5, "Convergence"), and the compact trace of its
//! optimisation that every record keeps.
//!
//! The path finder's objective is deterministic (full-batch losses), and the best path is the
//! evaluated path with the lowest cumulative loss S_k = Σ_m L(w_k(t_m)). The rule reads the path's
//! mean loss S_k / M. Let B_k = min_{1 ≤ i ≤ k} S_i / M be the best mean loss of the optimised paths
//! after iteration k — the straight line, iteration 0, left out — and w(k) = max(10, ⌈k/10⌉) the
//! window. The path has **converged at iteration k** when k > w(k) and
//!
//! ```text
//! B_{k − w(k)} − B_k ≤ rtol · |B_k| + atol,   rtol = 1e-3, atol = 1e-5:
//! ```
//!
//! the best cumulative loss improved by less than 0.1 % over the last max(10, 10 %) iterations, or
//! its mean over the points by less than 1e-5. The straight line is left out because Adam's first
//! steps can overshoot far above it (FCP at lr 5e-3: S_1 ten times S_0) and take more than a window to
//! come back: with it, the best would stay at iteration 0 for that whole window and the still-falling
//! path would pass as a plateau (issue 25's regime map found 4 of 144 pairs stopped so at iteration
//! 10, barriers 0.7–1.4). The best path reported can still be the straight line. The window grows with k so that a slow, steady descent
//! is not mistaken for a plateau after a long run, and it depends on k, not on the iteration budget,
//! so the iteration at which a pair stops does not depend on `--max-iterations` (once the budget is
//! large enough to reach it). The absolute part is for paths between minima of near-zero loss
//! (L-BFGS reaches 1e-11 on small training sets): their loss keeps falling towards zero by a steady
//! fraction per window, so a relative rule alone never calls them converged, while a mean loss that
//! changes by less than 1e-5 is far below anything the claims compare (SGD minima sit at 1e-3 and
//! above). A path also **converges by its height** when its best path's height has stayed at the
//! larger endpoint loss — the least height any path between the two can have — over the whole window
//! ([`ConvergenceRule::pinned`]): the height is final even while the interior still falls. Measured on
//! FCP (docs/algorithms.md §5): such a path at lr 5e-3 still lost about 10 % of its
//! cumulative loss per window after 600 iterations, at a height of 7e-5.

use serde::{Deserialize, Serialize};

/// The convergence rule of a path (module docs): a relative and an absolute tolerance on the
/// improvement of the best mean loss over a window of the last max(`min_window`, ⌈`window_percent` % of
/// k⌉) iterations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceRule {
    /// Largest relative improvement of the best mean loss over the window that counts as none.
    pub rtol: f64,
    /// Largest absolute improvement of the best mean loss (per path point) that counts as none.
    pub atol: f64,
    /// The shortest window, in iterations.
    pub min_window: usize,
    /// The window as a percentage of the iteration number k (rounded up).
    pub window_percent: usize,
}

impl ConvergenceRule {
    /// The rule every sweep uses: rtol 1e-3 and atol 1e-5 over max(10, ⌈k/10⌉) iterations.
    pub const DEFAULT: ConvergenceRule = ConvergenceRule { rtol: 1e-3, atol: 1e-5, min_window: 10, window_percent: 10 };

    /// The window w(k) at iteration k: max(`min_window`, ⌈k · `window_percent` / 100⌉).
    pub fn window(&self, k: usize) -> usize {
        self.min_window.max((k * self.window_percent).div_ceil(100))
    }

    /// Whether a path whose mean losses (cumulative loss / M) at iterations 0..=k are `mean_losses`
    /// has converged at its last iteration k (false for an empty trace and while k ≤ w(k)). Non-finite
    /// values are ignored by the running minimum (the path finder refuses them before).
    pub fn converged(&self, mean_losses: &[f64]) -> bool {
        let mut best = Vec::with_capacity(mean_losses.len());
        for &s in mean_losses.iter().skip(1) {
            best.push(best.last().map_or(s, |&b: &f64| b.min(s)));
        }
        self.converged_best(&best, 1)
    }

    /// Whether a path has converged at iteration k by its height: the best path's height has equalled
    /// the larger endpoint loss — the least height any path between the two can have, since both
    /// endpoints are points of every path — at every new best since iteration `pinned_since`, and that
    /// over the whole window (`pinned_since` ≤ k − w(k)). The interior of such a path can still be
    /// falling (SGD endpoints are noisy points beside lower ground), but its height will not change.
    pub fn pinned(&self, pinned_since: Option<usize>, k: usize) -> bool {
        let w = self.window(k);
        pinned_since.is_some_and(|s| k >= w && s <= k - w)
    }

    /// The first iteration at which `mean_losses` (iterations 0, 1, …) has converged, if any: where a
    /// sweep with `--until-converged` stops.
    pub fn first_converged(&self, mean_losses: &[f64]) -> Option<usize> {
        (0..mean_losses.len()).find(|&k| self.converged(&mean_losses[..=k]))
    }

    /// As [`ConvergenceRule::converged`], given the running minima of the cumulative loss of a path of
    /// `points` points over the optimised iterations (B_1..=B_k times M, so `best[i]` is B_{i+1}); O(1).
    pub(crate) fn converged_best(&self, best: &[f64], points: usize) -> bool {
        let k = best.len();
        let w = self.window(k);
        if k <= w {
            return false;
        }
        let m = points as f64;
        let (then, now) = (best[k - w - 1] / m, best[k - 1] / m);
        then - now <= self.rtol * now.abs() + self.atol
    }
}

impl Default for ConvergenceRule {
    fn default() -> Self {
        ConvergenceRule::DEFAULT
    }
}

/// Whether iteration `k` is kept in a [`Trace`]: every iteration up to 20, then a geometric grid
/// a_{j+1} = a_j + max(1, ⌊a_j / 10⌋) (steps of about 10 %: 20, 22, 24, …, 46, 50, 55, 60, …), so a
/// trace of K iterations has about 20 + 24 log10(K / 20) entries and every pair of every sweep is traced
/// at the same iterations.
pub fn traced(k: usize) -> bool {
    let mut a = 0;
    while a < k {
        a += (a / 10).max(1);
    }
    a == k
}

/// The optimisation of one path, compactly: at the iterations [`traced`] selects, and at the last
/// iteration evaluated, the cumulative loss Σ_m L(w_k(t_m)) and the height max_m L(w_k(t_m)) of the
/// path evaluated at that iteration (not of the best path so far).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Iteration numbers, increasing (0 = the straight line).
    pub iteration: Vec<usize>,
    /// Cumulative loss at each of them (sum over the M points of the mean loss).
    pub cumulative: Vec<f64>,
    /// Height (largest per-point loss) at each of them.
    pub height: Vec<f64>,
}

impl Trace {
    /// Appends iteration `k` (its per-point losses) when [`traced`] keeps it or `last` says it is the
    /// last one evaluated; an iteration already there is not added twice.
    pub fn record(&mut self, k: usize, losses: &[f64], last: bool) {
        if !(traced(k) || last) || self.iteration.last().is_some_and(|&i| i >= k) {
            return;
        }
        self.iteration.push(k);
        self.cumulative.push(losses.iter().sum());
        self.height.push(losses.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    }

    /// The height at iteration `k` for a path whose trace this is: the value at the last traced
    /// iteration ≤ k, or `after` (the record's final height) past the last one; None before the first
    /// or for an empty trace.
    pub fn height_at(&self, k: usize, after: f64) -> Option<f64> {
        let last = *self.iteration.last()?;
        if k > last {
            return Some(after);
        }
        let i = self.iteration.partition_point(|&i| i <= k).checked_sub(1)?;
        Some(self.height[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_grid_is_dense_then_geometric() {
        let grid: Vec<usize> = (0..70).filter(|&k| traced(k)).collect();
        let want: Vec<usize> = (0..=20).chain([22, 24, 26, 28, 30, 33, 36, 39, 42, 46, 50, 55, 60, 66]).collect();
        assert_eq!(grid, want);
        assert!((0..1000).filter(|&k| traced(k)).count() < 70);
    }

    #[test]
    fn the_window_is_ten_iterations_or_a_tenth() {
        let r = ConvergenceRule::DEFAULT;
        assert_eq!([r.window(0), r.window(100), r.window(101), r.window(1000)], [10, 10, 11, 100]);
    }
}
