//! The path finder: FourierPathFinder (docs/algorithms.md §5) and its other curve families, on the
//! device. A path between a and b is w(t) = (1 - t) a + t b + sum_n b_n sin(n pi t), or, for the other
//! curve families of [`Curve`] (Bezier, polygonal chain), the straight line plus one bend term
//! phi(t) c. With the basis rows [a, b, b_1 .. b_NF] on the device,
//! all M path points are one product T [M x (NF+2)] * basis; their losses and gradients are one batched
//! evaluation; the chain rule to d/d b_n is S [NF x M] * G [M x N_prm]; the regulariser's gradient is
//! 2 lambda dS^T * D with D = dT * basis the segment vectors; the Adam step ([`crate::optim::adam`], the
//! update rule training uses) runs on the GPU. Only the M per-point losses come back each iteration.
//! Where the network's first layer is dense on the images and the basis rows are fewer than the
//! points, the evaluation takes that layer, forward and in the chain rule, from the K + 2 basis rows
//! instead of the M points ([`crate::model::Basis`], docs/algorithms.md §2.2).
//!
//! One finder can optimise P pairs together: every product above becomes one batched product over
//! the P pairs' basis blocks, and the evaluation holds P x M vectors, so each Adam iteration is still
//! one evaluation (of P x M points) and P x M losses come back. The pairs share nothing but the
//! dispatches; each keeps its own best iteration.
//!
//! An iteration of [`PathFinder::run_pairs`] is one submission and one read-back, whatever P is:
//! copying the improved pairs' coefficients aside (a flagged row copy), the previous iteration's Adam
//! step, the materialisation, the evaluation and the chain rule are recorded once and submitted
//! together with the read-back of the losses.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::ops::Range;

use crate::backend::{f32_bytes, Buffer, ChunkBudget, Coef, Command, Device, Footprint, Rows, Source};
use crate::data::DeviceImages;
use crate::model::{chunk_capacity_aimed, Basis, Evaluator, FirstLayer, Network, Plan, Want};
use crate::ops::{Layout, LbfgsScalars, Product, Reduced};
use crate::optim::{Adam, AdamSettings, AdamUpdate};

use super::convergence::ConvergenceRule;
use super::curve::{grid_matrices, Curve};
use super::outcome::Best;
pub use super::outcome::PathOutcome;

/// Path-finding settings (defaults: docs/algorithms.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathSettings {
    pub fourier: usize,
    pub points: usize,
    pub lambda: f64,
    pub lr: f64,
    pub iterations: usize,
}

impl PathSettings {
    /// The paper's settings (`docs/algorithms.md` §5): 10 Fourier terms, 51 points, λ 1e-4, Adam at
    /// lr 1e-3 for 100 iterations; the defaults of `losscape paths` and the `paper` preset.
    pub const PAPER: PathSettings = PathSettings { fourier: 10, points: 51, lambda: 1e-4, lr: 1e-3, iterations: 100 };

    /// Path pairs per set and landscape in the paper.
    pub const PAPER_PAIRS: usize = 300;
}

impl Default for PathSettings {
    fn default() -> Self {
        PathSettings::PAPER
    }
}

/// How a [`PathFinder`] evaluates, beyond its settings: for tests and benchmarks; the default is what
/// `losscape paths` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathOptions {
    /// At most this many images per chunk of the evaluation (default: sized to the device).
    pub chunk: Option<usize>,
    /// Take the first layer from the basis rows where it pays (docs/algorithms.md §2.2); false always
    /// evaluates every point's first layer plainly.
    pub basis_first_layer: bool,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions { chunk: None, basis_first_layer: true }
    }
}

/// The endpoints (a, b) of one pair, each N_prm values.
pub type Ends<'a> = (&'a [f32], &'a [f32]);

/// A path finder for one network, landscape and curve family, optimising P pairs together; reusable
/// across pairs.
///
/// Pair p's basis rows [a_p, b_p, c_p1 .. c_pK] are block p of one buffer (P x (K+2) x N_prm), so each
/// step of the algorithm is one batched product over the P blocks with the grid matrices shared, and
/// the evaluator sees P x M vectors (pair-major). The coefficient gradient has the same block layout
/// with the endpoint rows left at zero, so that one Adam step over all blocks moves the coefficients
/// and leaves the endpoints exactly where they are (a zero gradient gives a zero Adam update).
pub struct PathFinder {
    device: Device,
    settings: PathSettings,
    curve: Curve,
    /// Free vectors: N_F for the Fourier family, 1 (the bend) otherwise.
    terms: usize,
    n_prm: usize,
    /// Pairs optimised together, P.
    pairs: usize,
    eval: Evaluator,
    /// The points' first layer from the basis rows, where it pays ([`Evaluator::basis`]).
    first_layer: Option<Basis>,
    basis: Buffer,
    grad_coef: Buffer,
    /// Adam's moments over the basis blocks.
    adam: Adam,
    /// The best iteration's basis blocks so far (P x (K+2) x N_prm, the basis's layout).
    best: Buffer,
    /// Per pair, 1 when its basis is to be copied into `best` by the next `keep` (P).
    improved: Buffer,
    /// Per segment, |w(t_{m+1}) - w(t_m)|^2 as a double-f32 (P x (M-1) x 2).
    squared_lengths: Buffer,
    materialise: Command,
    /// The chain rule: the loss part S · G (over the columns the basis gradient leaves, if any), then
    /// the regulariser part.
    chain_rule: Vec<Command>,
    segments: Command,
    /// The segments' squared lengths into `squared_lengths` (recorded reductions).
    lengths: Command,
    /// basis -> best for the pairs flagged in `improved`, and best -> basis for every pair.
    keep: Command,
    restore: Command,
    /// The Adam step on the free vectors, recorded once; each step rewrites its step number.
    update: std::sync::Mutex<AdamUpdate>,
}

impl PathFinder {
    /// A Fourier path finder (the paper's) for one pair at a time.
    ///
    /// # Errors
    /// See [`PathFinder::batched`].
    pub fn new(net: Network, images: &DeviceImages, range: Range<usize>, settings: PathSettings) -> Result<PathFinder> {
        PathFinder::with_curve(net, images, range, settings, Curve::Fourier)
    }

    /// A path finder for `curve`, one pair at a time (see [`PathFinder::batched`]).
    ///
    /// # Errors
    /// See [`PathFinder::batched`].
    pub fn with_curve(
        net: Network,
        images: &DeviceImages,
        range: Range<usize>,
        settings: PathSettings,
        curve: Curve,
    ) -> Result<PathFinder> {
        PathFinder::batched(net, images, range, settings, curve, 1)
    }

    /// A path finder for `curve` optimising `pairs` pairs together: w(t_m) at the fixed grid
    /// t_m = m/(M-1), the objective sum_m L(w(t_m)) + lambda sum_m |w(t_{m+1}) - w(t_m)|^2 per pair, Adam
    /// on the free vectors (for Bezier and polychain, `settings.fourier` is ignored: one bend). The
    /// pairs do not interact: each pair's path is the one a one-pair finder finds, up to the f32
    /// rounding of a differently chunked evaluation.
    ///
    /// # Errors
    /// Fewer than 3 points, no Fourier term, no iteration or no pair; the evaluator's errors (range,
    /// memory: it holds `pairs` x M vectors).
    pub fn batched(
        net: Network,
        images: &DeviceImages,
        range: Range<usize>,
        settings: PathSettings,
        curve: Curve,
        pairs: usize,
    ) -> Result<PathFinder> {
        PathFinder::configured(net, images, range, (settings, curve, pairs), PathOptions::default())
    }

    /// [`PathFinder::batched`] with `options`: the evaluation's chunk, and whether the points' first
    /// layer may come from the basis rows ([`PathFinder::first_layer`] says which one runs).
    ///
    /// # Errors
    /// As [`PathFinder::batched`].
    pub fn configured(
        net: Network,
        images: &DeviceImages,
        range: Range<usize>,
        (settings, curve, pairs): (PathSettings, Curve, usize),
        options: PathOptions,
    ) -> Result<PathFinder> {
        let PathSettings { points: m, lambda, .. } = settings;
        let nf = curve.terms(settings.fourier);
        if m < 3 || nf < 1 || settings.iterations < 1 || pairs < 1 {
            bail!("a path needs at least 3 points, 1 Fourier term and 1 iteration, and a batch at least 1 pair");
        }
        let device = images.device.clone();
        let n_prm = net.arch.n_params();
        // the cache aim sized for one pair, so that any --pairs-per-batch gives the same chunk
        let aimed = || chunk_capacity_aimed(net, images.device.chunk_budget(), (m, pairs * m), range.len());
        let chunk = options.chunk.unwrap_or_else(aimed);
        let eval = Evaluator::with_chunk(net, images, range, pairs * m, Some(chunk))?;
        let f2 = nf + 2;
        let [t_mat, dt_mat, s_mat, ds_mat] = grid_matrices(curve, nf, m, lambda);
        let t_buf = device.upload(&t_mat, "path T")?;
        let dt_buf = device.upload(&dt_mat, "path dT")?;
        let s_buf = device.upload(&s_mat, "path S")?;
        let ds_buf = device.upload(&ds_mat, "path dS")?;
        // d W_m / d basis row j: zero for the endpoints' rows (their gradient stays zero), S for the rest
        let s_rows: Vec<f32> = vec![0.0; 2 * m].into_iter().chain(s_mat.iter().copied()).collect();
        let s_rows = device.upload(&s_rows, "path S by basis row")?;
        let block = f2 * n_prm;
        let basis = device.zeros(pairs * block, "path basis")?;
        let grad_coef = device.zeros(pairs * block, "path coefficient gradient")?;
        let adam = Adam::new(&device, AdamSettings { lr: settings.lr }, pairs * block)?;
        let best = device.zeros(pairs * block, "best coefficients")?;
        let diffs = device.zeros(pairs * (m - 1) * n_prm, "path segments")?;
        let improved = device.zeros(pairs, "improved pairs")?;
        let squared_lengths = device.zeros(pairs * (m - 1) * 2, "segment lengths")?;
        // the grid matrices are shared by the P pairs (batch stride 0); each pair has its own blocks
        let shared = |cols| Layout::row_major(0, cols, 0);
        let per_pair = |off, rows| Layout::row_major(off, n_prm, rows * n_prm);
        let prod = |m, k, accumulate| Product { m, n: n_prm, k, batches: pairs, accumulate };
        let materialise = device.matmul(
            prod(m, f2, false),
            (Source::F32(&t_buf), shared(f2)),
            (Source::F32(&basis), per_pair(0, f2)),
            (&eval.weights, per_pair(0, m)),
        )?;
        let segments = device.matmul(
            prod(m - 1, f2, false),
            (Source::F32(&dt_buf), shared(f2)),
            (Source::F32(&basis), per_pair(0, f2)),
            (&diffs, per_pair(0, m - 1)),
        )?;
        let first_layer = match options.basis_first_layer {
            true => eval.basis(&basis, &t_buf, Some((&s_rows, &grad_coef)), (pairs, f2))?,
            false => None,
        };
        // run as [loss part, segments, regulariser part], into the coefficient rows of each block; the
        // loss part leaves the first layer's columns where the basis gradient writes them
        let coef_rows = per_pair(2 * n_prm, f2);
        let columns = |cols: &Range<usize>| {
            let at = |off, rows| Layout { off: off + cols.start, batch: rows * n_prm, row: n_prm, col: 1, group: None };
            device.matmul(
                Product { m: nf, n: cols.len(), k: m, batches: pairs, accumulate: false },
                (Source::F32(&s_buf), shared(m)),
                (Source::F32(&eval.grads), at(0, m)),
                (&grad_coef, at(2 * n_prm, f2)),
            )
        };
        let first = first_layer.as_ref().and_then(Basis::columns).unwrap_or(n_prm..n_prm);
        let loss_columns = [0..first.start, first.end..n_prm];
        let mut chain_rule = loss_columns.iter().filter(|c| !c.is_empty()).map(columns).collect::<Result<Vec<_>>>()?;
        chain_rule.push(device.matmul(
            prod(nf, m - 1, true),
            (Source::F32(&ds_buf), shared(m - 1)),
            (Source::F32(&diffs), per_pair(0, m - 1)),
            (&grad_coef, coef_rows),
        )?);
        let update = adam.record(&grad_coef, &basis)?;
        let segment_rows = Rows::new(&diffs, pairs * (m - 1), n_prm);
        let lengths = device.reduce(segment_rows, segment_rows, &squared_lengths, 2, Reduced::Store(0))?;
        let (blocks, best_blocks) = (Rows::new(&basis, pairs, block), Rows::new(&best, pairs, block));
        let keep = device.copy_rows(blocks, best_blocks, Some(Coef::at(&improved, 0, 1)))?;
        let restore = device.copy_rows(best_blocks, blocks, None)?;
        Ok(PathFinder {
            update: std::sync::Mutex::new(update),
            device,
            settings,
            curve,
            terms: nf,
            n_prm,
            pairs,
            eval,
            first_layer,
            basis,
            grad_coef,
            adam,
            best,
            improved,
            squared_lengths,
            materialise,
            chain_rule,
            segments,
            lengths,
            keep,
            restore,
        })
    }

    /// The memory [`PathFinder::batched`] allocates for `pairs` pairs on `images` images within a device's
    /// chunk `budget`: the evaluator of P x M points with their gradients
    /// ([`crate::model::evaluator_bytes`]); per pair the basis block, its gradient, Adam's two moments and
    /// the best copy ((K + 2) x N_prm values each) and the M - 1 segment vectors; the grid matrices; the
    /// first-layer bases where the first layer comes from the basis rows ([`Basis::prefixes`]); and
    /// on the host the best coefficients read back for `--save-paths` (`keep`).
    ///
    /// # Errors
    /// The network does not plan.
    pub fn footprint(
        net: Network,
        settings: PathSettings,
        curve: Curve,
        pairs: usize,
        (images, budget): (usize, ChunkBudget),
        keep: bool,
    ) -> Result<Footprint> {
        let (m, n, nf) = (settings.points, net.arch.n_params(), curve.terms(settings.fourier));
        let eval = crate::model::evaluator_bytes(net, (m, pairs * m), images, budget, false)?;
        let blocks = f32_bytes(5 * pairs * (nf + 2) * n);
        let segments = f32_bytes(pairs * (m - 1) * (n + 2));
        let grid = f32_bytes((m + m - 1) * (nf + 2) + nf * (2 * m - 1));
        let kept = if keep { f32_bytes(pairs * (nf + 2) * n) } else { 0 };
        let chunk = chunk_capacity_aimed(net, budget, (m, pairs * m), images);
        let plan = Plan::new(net, 0..images, images, pairs * m, chunk, 0)?;
        let bases = Basis::prefixes(net, &plan, images, (pairs, nf + 2), budget).map_or(0, |p| f32_bytes(p.len()));
        Ok(Footprint::device(eval + blocks + segments + grid + bases) + Footprint::host(kept))
    }

    /// The curve family.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Which first layer the evaluations run: from the basis rows where that pays and fits (with its
    /// gradient from them too where the plans allow), else the points' own.
    pub fn first_layer(&self) -> FirstLayer {
        self.first_layer.as_ref().map_or(FirstLayer::Points, Basis::first_layer)
    }

    /// The number of pairs P optimised together.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Values per pair block of the basis: (K + 2) x N_prm.
    fn block(&self) -> usize {
        (self.terms + 2) * self.n_prm
    }

    /// Sets one pair's endpoints and coefficients (terms x N_prm; zero when None), and clears Adam. A
    /// finder of one pair only; see [`PathFinder::start_pairs`].
    ///
    /// # Errors
    /// As [`PathFinder::start_pairs`].
    pub fn start(&self, a: &[f32], b: &[f32], coefficients: Option<&[f32]>) -> Result<()> {
        self.start_pairs(&[(a, b)], coefficients)
    }

    /// Sets the P pairs' endpoints and coefficients (P x terms x N_prm, pair-major; zero when None),
    /// and clears Adam.
    ///
    /// # Errors
    /// Not exactly P pairs; endpoints or coefficients of the wrong length; device errors.
    pub fn start_pairs(&self, ends: &[Ends], coefficients: Option<&[f32]>) -> Result<()> {
        let (n, p) = (self.n_prm, self.pairs);
        let coef_len = self.terms * n;
        if ends.len() != p {
            bail!("this path finder optimises {p} pair(s) together, not {}", ends.len());
        }
        if ends.iter().any(|(a, b)| a.len() != n || b.len() != n) {
            bail!("endpoints must have {n} parameters");
        }
        if coefficients.is_some_and(|c| c.len() != p * coef_len) {
            bail!("a {} path has {} coefficient vector(s) of {n} parameters", self.curve.id(), self.terms);
        }
        let zeros = vec![0f32; coef_len];
        for (i, (a, b)) in ends.iter().enumerate() {
            let off = i * self.block();
            let coef = coefficients.map_or(&zeros[..], |c| &c[i * coef_len..(i + 1) * coef_len]);
            self.device.write(&self.basis, off, a)?;
            self.device.write(&self.basis, off + n, b)?;
            self.device.write(&self.basis, off + 2 * n, coef)?;
        }
        self.adam.clear()
    }

    /// Evaluates the current paths: per-point losses (P x M, pair-major), and (with `grad`)
    /// d objective / d c_k on the GPU.
    ///
    /// # Errors
    /// Device errors.
    pub fn evaluate(&self, grad: bool) -> Result<Vec<f64>> {
        self.submit_evaluation(Vec::new(), grad)
    }

    /// `before`, then one evaluation of the current paths, in one submission with the losses' read-back.
    fn submit_evaluation(&self, before: Vec<&Command>, grad: bool) -> Result<Vec<f64>> {
        let mut list = before;
        list.push(&self.materialise);
        let want = if grad { Want::LossAndGrad } else { Want::Loss };
        match &self.first_layer {
            Some(basis) => list.extend(self.eval.basis_commands(basis, want)),
            None => list.extend(self.eval.ordered(want)),
        }
        if grad {
            let (regulariser, loss) = self.chain_rule.split_last().expect("the regulariser's part");
            list.extend(loss);
            list.extend([&self.segments, regulariser]);
        }
        let partials = self.eval.partials();
        let parts = self.device.submit_read(&list, &[(partials, 0, partials.len())])?;
        Ok(self.eval.evals(&parts[0]).iter().map(|r| r.loss).collect())
    }

    /// Per-point losses (M per pair) of the straight lines between the P pairs' endpoints (no
    /// optimisation).
    ///
    /// # Errors
    /// As [`PathFinder::start_pairs`].
    pub fn straight_losses(&self, ends: &[Ends]) -> Result<Vec<Vec<f64>>> {
        self.start_pairs(ends, None)?;
        Ok(self.evaluate(false)?.chunks(self.settings.points).map(<[f64]>::to_vec).collect())
    }

    /// The current points' weights (P x M x N_prm, pair-major), for checks.
    ///
    /// # Errors
    /// Device errors.
    pub fn points(&self) -> Result<Vec<f32>> {
        self.device.submit(&[&self.materialise]);
        self.device.read(&self.eval.weights, 0, self.eval.weights.len())
    }

    /// d objective / d c_k of the last `evaluate(true)` (P x terms x N_prm, pair-major), for checks.
    ///
    /// # Errors
    /// Device errors.
    pub fn coefficient_gradient(&self) -> Result<Vec<f32>> {
        let all: Vec<f32> = self.device.read(&self.grad_coef, 0, self.grad_coef.len())?;
        Ok(all.chunks(self.block()).flat_map(|b| b[2 * self.n_prm..].iter().copied()).collect())
    }

    /// One Adam step (number `t`, from 1) on the coefficients, from the last `evaluate(true)`.
    ///
    /// # Errors
    /// Device errors.
    pub fn adam_step(&self, t: u32) -> Result<()> {
        let update = self.adam_at(t)?;
        self.device.submit(&[update.command()]);
        Ok(())
    }

    /// The recorded Adam step, set to take step `t` (from 1).
    fn adam_at(&self, t: u32) -> Result<std::sync::MutexGuard<'_, AdamUpdate>> {
        let mut update = self.update.lock().expect("the Adam command is not poisoned");
        update.set_step(t as usize)?;
        Ok(update)
    }

    /// Flags the pairs whose current basis `keep` copies into `best`.
    fn flag_improved(&self, improved: &[bool]) -> Result<()> {
        let flags: Vec<f32> = improved.iter().map(|&i| if i { 1.0 } else { 0.0 }).collect();
        self.device.write(&self.improved, 0, &flags)
    }

    /// Iteration `k` of [`PathFinder::run_pairs`]: keeps the pairs that improved at iteration k - 1
    /// (`improved`), takes Adam step k (from 1) when k > 0, and evaluates; one submission.
    fn iteration(&self, k: usize, improved: &[bool]) -> Result<Vec<f64>> {
        if k == 0 {
            return self.evaluate(true);
        }
        self.flag_improved(improved)?;
        let update = self.adam_at(k as u32)?;
        self.submit_evaluation(vec![&self.keep, update.command()], true)
    }

    /// Keeps the pairs that improved at the last iteration, restores every pair's best basis and
    /// returns the segment lengths |w(t_{m+1}) - w(t_m)| of the best paths (P x (M-1), pair-major);
    /// one submission.
    fn finish(&self, improved: &[bool]) -> Result<Vec<f64>> {
        self.flag_improved(improved)?;
        let list = [&self.keep, &self.restore, &self.segments, &self.lengths];
        let squared = self.device.submit_read(&list, &[(&self.squared_lengths, 0, self.squared_lengths.len())])?;
        Ok(squared[0].chunks(2).map(|s| LbfgsScalars::get(s, 0).sqrt()).collect())
    }

    /// Optimises the path from a to b (a finder of one pair); `progress(iteration, cumulative loss)`
    /// after each evaluation.
    ///
    /// # Errors
    /// As [`PathFinder::run_pairs`].
    pub fn run(&self, a: &[f32], b: &[f32], keep: bool, mut progress: impl FnMut(usize, f64)) -> Result<PathOutcome> {
        let mut out = self.run_pairs(&[(a, b)], keep, |_, k, sum| progress(k, sum))?;
        Ok(out.remove(0))
    }

    /// Optimises the P pairs' paths together for the full budget of `settings.iterations`; see
    /// [`PathFinder::run_pairs_until`].
    ///
    /// # Errors
    /// As [`PathFinder::run_pairs_until`].
    pub fn run_pairs(
        &self,
        ends: &[Ends],
        keep: bool,
        progress: impl FnMut(usize, usize, f64),
    ) -> Result<Vec<PathOutcome>> {
        self.run_pairs_until(ends, keep, false, progress)
    }

    /// Optimises the P pairs' paths together, one outcome per pair in the order of `ends`; each pair
    /// keeps its own best iteration, trace and convergence ([`ConvergenceRule::DEFAULT`]). With
    /// `until_converged`, a pair stops at the first iteration at which it has converged (at most
    /// `settings.iterations` evaluations): its best path is frozen there while the other pairs of the
    /// batch go on (its block is still evaluated, since the batch's evaluation has a fixed size, but
    /// nothing of it is kept), and the batch ends when every pair has stopped — so each outcome equals
    /// a one-pair run's. `progress(pair, iteration, cumulative loss)` after each evaluation of a pair
    /// that has not stopped; with `keep`, each outcome holds its best coefficients.
    ///
    /// # Errors
    /// As [`PathFinder::start_pairs`]; a loss of a running pair that becomes non-finite (naming the
    /// pair when P > 1); device errors.
    pub fn run_pairs_until(
        &self,
        ends: &[Ends],
        keep: bool,
        until_converged: bool,
        mut progress: impl FnMut(usize, usize, f64),
    ) -> Result<Vec<PathOutcome>> {
        self.start_pairs(ends, None)?;
        let (m, budget) = (self.settings.points, self.settings.iterations);
        let rule = ConvergenceRule::DEFAULT;
        let mut best: Vec<Best> = (0..self.pairs).map(|_| Best::default()).collect();
        let mut improved = vec![false; self.pairs];
        let mut running = vec![true; self.pairs];
        for k in 0..budget {
            if !running.contains(&true) {
                break;
            }
            // the Adam step after the last evaluation is not taken: the best basis replaces it
            let losses = self.iteration(k, &improved)?;
            for (p, (l, track)) in losses.chunks(m).zip(&mut best).enumerate() {
                if !running[p] {
                    improved[p] = false; // frozen: its best basis stays as it was when it stopped
                    continue;
                }
                self.check_finite(p, k, l)?;
                progress(p, k, l.iter().sum());
                improved[p] = track.update(k, l, k + 1 == budget);
                if until_converged && track.converged(&rule) {
                    running[p] = false;
                    track.close_trace(l);
                }
            }
        }
        let lengths = self.finish(&improved)?;
        let coefficients = self.best_coefficients(keep)?;
        Ok(best
            .into_iter()
            .zip(lengths.chunks(m - 1))
            .zip(coefficients)
            .map(|((track, len), coef)| track.outcome(len, coef))
            .collect())
    }

    /// Each pair's best coefficients (terms x N_prm) when `keep`, else None for each.
    fn best_coefficients(&self, keep: bool) -> Result<Vec<Option<Vec<f32>>>> {
        if !keep {
            return Ok(vec![None; self.pairs]);
        }
        let all: Vec<f32> = self.device.read(&self.best, 0, self.best.len())?;
        Ok(all.chunks(self.block()).map(|c| Some(c[2 * self.n_prm..].to_vec())).collect())
    }

    /// Refuses a non-finite loss at iteration `k` of pair `p`.
    fn check_finite(&self, p: usize, k: usize, losses: &[f64]) -> Result<()> {
        let Some((m, l)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) else {
            return Ok(());
        };
        let which = if self.pairs > 1 { format!("path {p} of the batch: ") } else { String::new() };
        if m == 0 || m + 1 == losses.len() {
            // the endpoints never move: no optimizer setting helps
            let end = if m == 0 { "first" } else { "second" };
            bail!(
                "{which}the loss at the path's {end} endpoint is {l}: that vector's weights overflow the network; \
                 `losscape eval --weights SET` shows each vector's loss; leave that vector out of the pairs"
            )
        }
        if k == 0 {
            bail!("{which}the loss at path point {m} of the starting path (before any step) is {l}: the network overflows between the endpoints")
        }
        bail!("{which}the loss at path point {m} became {l} at iteration {k}; try a smaller --lr")
    }
}
