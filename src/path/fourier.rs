//! FourierPathFinder (docs/algorithms.md §5) on the GPU. A path between a and b is
//! w(t) = (1 - t) a + t b + sum_n b_n sin(n pi t), or, for the other curve families of [`Curve`] (Bezier,
//! polygonal chain), the straight line plus one bend term phi(t) c. With the basis rows
//! [a, b, b_1 .. b_NF] on the GPU,
//! all M path points are one product T [M x (NF+2)] * basis; their losses and gradients are one batched
//! evaluation; the chain rule to d/d b_n is S [NF x M] * G [M x N_prm]; the regulariser's gradient is
//! 2 lambda dS^T * D with D = dT * basis the segment vectors; the Adam step runs on the GPU. Only the M
//! per-point losses come back each iteration.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::ops::Range;

use crate::backend::{Buffer, Command, Device, Rows, Source};
use crate::data::DeviceImages;
use crate::model::{Evaluator, Network, Want};
use crate::ops::{AdamStep, Layout, Product};

use super::curve::Curve;

/// Path-finding settings (defaults: docs/algorithms.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathSettings {
    pub fourier: usize,
    pub points: usize,
    pub lambda: f64,
    pub lr: f64,
    pub iterations: usize,
}

impl Default for PathSettings {
    fn default() -> Self {
        PathSettings { fourier: 10, points: 51, lambda: 1e-4, lr: 1e-3, iterations: 100 }
    }
}

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
    /// The best coefficients b_1..b_NF (NF x N_prm), when asked for.
    #[serde(skip)]
    pub coefficients: Option<Vec<f32>>,
}

/// Point parameters t_m = m / (M - 1), endpoints included.
pub fn point_times(points: usize) -> Vec<f64> {
    (0..points).map(|m| m as f64 / (points - 1) as f64).collect()
}

/// sin(n pi t), exactly 0 at both endpoints so that they never move.
pub fn sine(n: usize, t: f64) -> f64 {
    Curve::Fourier.bump(n, t)
}

fn f32s(v: impl IntoIterator<Item = f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// A path finder for one network, landscape and curve family; reusable across pairs.
pub struct PathFinder {
    gpu: Device,
    settings: PathSettings,
    curve: Curve,
    /// Free vectors: N_F for the Fourier family, 1 (the bend) otherwise.
    terms: usize,
    n_prm: usize,
    eval: Evaluator,
    basis: Buffer,
    grad_coef: Buffer,
    adam_m: Buffer,
    adam_v: Buffer,
    best: Buffer,
    diffs: Buffer,
    materialise: Command,
    chain_rule: [Command; 2],
    segments: Command,
    /// The Adam step on the free vectors, recorded once; each step rewrites its step number.
    adam: std::sync::Mutex<Command>,
}

impl PathFinder {
    /// A Fourier path finder (the paper's).
    ///
    /// # Errors
    /// See [`PathFinder::with_curve`].
    pub fn new(net: Network, images: &DeviceImages, range: Range<usize>, settings: PathSettings) -> Result<PathFinder> {
        PathFinder::with_curve(net, images, range, settings, Curve::Fourier)
    }

    /// A path finder for `curve`: w(t_m) at the fixed grid t_m = m/(M-1), the objective
    /// sum_m L(w(t_m)) + lambda sum_m |w(t_{m+1}) - w(t_m)|^2, Adam on the free vectors (for Bezier and
    /// polychain, `settings.fourier` is ignored: one bend).
    ///
    /// # Errors
    /// Fewer than 3 points, no Fourier term or no iteration; the evaluator's errors (range, memory).
    pub fn with_curve(
        net: Network,
        images: &DeviceImages,
        range: Range<usize>,
        settings: PathSettings,
        curve: Curve,
    ) -> Result<PathFinder> {
        let PathSettings { points: m, lambda, .. } = settings;
        let nf = curve.terms(settings.fourier);
        if m < 3 || nf < 1 || settings.iterations < 1 {
            bail!("a path needs at least 3 points, 1 Fourier term and 1 iteration");
        }
        let gpu = images.device.clone();
        let n_prm = net.arch.n_params();
        let eval = Evaluator::new(net, images, range, m)?;
        let f2 = nf + 2;
        let times = point_times(m);
        let t_mat: Vec<f64> = times.iter().flat_map(|&t| curve.basis_weights(t, nf)).collect();
        let dt_mat: Vec<f64> = (0..m - 1)
            .flat_map(|i| (0..f2).map(move |k| (i, k)))
            .map(|(i, k)| t_mat[(i + 1) * f2 + k] - t_mat[i * f2 + k])
            .collect();
        // S [NF x M]: d w(t_m) / d b_n; dS [NF x (M-1)] scaled by 2 lambda for the regulariser
        let s_mat: Vec<f64> = (1..=nf).flat_map(|n| times.iter().map(move |&t| curve.bump(n, t))).collect();
        let ds_mat: Vec<f64> = (1..=nf)
            .flat_map(|n| (0..m - 1).map(move |i| (n, i)))
            .map(|(n, i)| 2.0 * lambda * (curve.bump(n, times[i + 1]) - curve.bump(n, times[i])))
            .collect();
        let t_buf = gpu.upload(&f32s(t_mat), "path T")?;
        let dt_buf = gpu.upload(&f32s(dt_mat), "path dT")?;
        let s_buf = gpu.upload(&f32s(s_mat), "path S")?;
        let ds_buf = gpu.upload(&f32s(ds_mat), "path dS")?;
        let basis = gpu.zeros(f2 * n_prm, "path basis")?;
        let grad_coef = gpu.zeros(nf * n_prm, "path coefficient gradient")?;
        let adam_m = gpu.zeros(nf * n_prm, "adam m")?;
        let adam_v = gpu.zeros(nf * n_prm, "adam v")?;
        let best = gpu.zeros(nf * n_prm, "best coefficients")?;
        let diffs = gpu.zeros((m - 1) * n_prm, "path segments")?;
        let rm = |cols| Layout::row_major(0, cols, 0);
        let prod = |m, n, k, accumulate| Product { m, n, k, batches: 1, accumulate };
        let materialise = gpu.matmul(
            prod(m, n_prm, f2, false),
            (Source::F32(&t_buf), rm(f2)),
            (Source::F32(&basis), rm(n_prm)),
            (&eval.weights, rm(n_prm)),
        )?;
        let segments = gpu.matmul(
            prod(m - 1, n_prm, f2, false),
            (Source::F32(&dt_buf), rm(f2)),
            (Source::F32(&basis), rm(n_prm)),
            (&diffs, rm(n_prm)),
        )?;
        // run as [loss part, segments, regulariser part]
        let chain_rule = [
            gpu.matmul(
                prod(nf, n_prm, m, false),
                (Source::F32(&s_buf), rm(m)),
                (Source::F32(&eval.grads), rm(n_prm)),
                (&grad_coef, rm(n_prm)),
            )?,
            gpu.matmul(
                prod(nf, n_prm, m - 1, true),
                (Source::F32(&ds_buf), rm(m - 1)),
                (Source::F32(&diffs), rm(n_prm)),
                (&grad_coef, rm(n_prm)),
            )?,
        ];
        let adam = gpu.adam(AdamStep::pytorch(settings.lr, 1), &grad_coef, (&basis, 2 * n_prm), &adam_m, &adam_v)?;
        Ok(PathFinder {
            adam: std::sync::Mutex::new(adam),
            gpu,
            settings,
            curve,
            terms: nf,
            n_prm,
            eval,
            basis,
            grad_coef,
            adam_m,
            adam_v,
            best,
            diffs,
            materialise,
            chain_rule,
            segments,
        })
    }

    /// The curve family.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Sets the endpoints and the coefficients (terms x N_prm; zero when None), and clears Adam.
    ///
    /// # Errors
    /// Endpoints or coefficients of the wrong length; device errors.
    pub fn start(&self, a: &[f32], b: &[f32], coefficients: Option<&[f32]>) -> Result<()> {
        let n = self.n_prm;
        if a.len() != n || b.len() != n {
            bail!("endpoints must have {n} parameters");
        }
        let zeros = vec![0f32; self.terms * n];
        if coefficients.is_some_and(|c| c.len() != zeros.len()) {
            bail!("a {} path has {} coefficient vector(s) of {n} parameters", self.curve.id(), self.terms);
        }
        self.gpu.write(&self.basis, 0, a)?;
        self.gpu.write(&self.basis, n, b)?;
        self.gpu.write(&self.basis, 2 * n, coefficients.unwrap_or(&zeros))?;
        self.gpu.write(&self.adam_m, 0, &zeros)?;
        self.gpu.write(&self.adam_v, 0, &zeros)?;
        Ok(())
    }

    /// Evaluates the current path: per-point losses, and (with `grad`) d objective / d b_n on the GPU.
    pub fn evaluate(&self, grad: bool) -> Result<Vec<f64>> {
        self.gpu.submit(&[&self.materialise]);
        if grad {
            self.eval.run(Want::LossAndGrad);
            self.gpu.submit(&[&self.chain_rule[0], &self.segments, &self.chain_rule[1]]);
        } else {
            self.eval.run(Want::Loss);
        }
        Ok(self.eval.results()?.iter().map(|r| r.loss).collect())
    }

    /// Per-point losses of the straight line from a to b (no optimisation).
    ///
    /// # Errors
    /// Endpoints of the wrong length; device errors.
    pub fn straight_losses(&self, a: &[f32], b: &[f32]) -> Result<Vec<f64>> {
        self.start(a, b, None)?;
        self.evaluate(false)
    }

    /// The current points' weights (M x N_prm), for checks.
    pub fn points(&self) -> Result<Vec<f32>> {
        self.gpu.submit(&[&self.materialise]);
        self.gpu.read(&self.eval.weights, 0, self.eval.weights.len())
    }

    /// d objective / d b_n of the last `evaluate(true)` (NF x N_prm), for checks.
    pub fn coefficient_gradient(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.grad_coef, 0, self.grad_coef.len())
    }

    /// One Adam step (number `t`, from 1) on the coefficients, from the last `evaluate(true)`.
    pub fn adam_step(&self, t: u32) -> Result<()> {
        let mut d = self.adam.lock().expect("the Adam command is not poisoned");
        self.gpu.set_adam_step(&mut d, AdamStep::pytorch(self.settings.lr, t))?;
        self.gpu.submit(&[&d]);
        Ok(())
    }

    /// Segment lengths |w(t_{m+1}) - w(t_m)| of the current path.
    fn segment_lengths(&self) -> Result<Vec<f64>> {
        self.gpu.submit(&[&self.segments]);
        let rows = Rows::new(&self.diffs, self.settings.points - 1, self.n_prm);
        Ok(self.gpu.dot(rows, rows)?.into_iter().map(f64::sqrt).collect())
    }

    /// Optimises the path from a to b; `progress(iteration, cumulative loss)` after each evaluation.
    pub fn run(&self, a: &[f32], b: &[f32], keep: bool, mut progress: impl FnMut(usize, f64)) -> Result<PathOutcome> {
        self.start(a, b, None)?;
        let n = self.n_prm;
        let coef_len = self.terms * n;
        let mut straight = Vec::new();
        let (mut best_losses, mut best_iteration, mut best_sum) = (Vec::new(), 0, f64::INFINITY);
        for k in 0..self.settings.iterations {
            let losses = self.evaluate(true)?;
            if let Some((m, _)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) {
                bail!("the loss at path point {m} became {} at iteration {k}; try a smaller --lr", losses[m]);
            }
            let sum: f64 = losses.iter().sum();
            progress(k, sum);
            if k == 0 {
                straight = losses.clone();
            }
            if sum < best_sum {
                best_sum = sum;
                best_iteration = k;
                best_losses = losses;
                self.gpu.copy(&self.basis, 2 * n, &self.best, 0, coef_len)?;
            }
            self.adam_step(k as u32 + 1)?;
        }
        // measure the best path
        self.gpu.copy(&self.best, 0, &self.basis, 2 * n, coef_len)?;
        let lengths = self.segment_lengths()?;
        let length: f64 = lengths.iter().sum();
        let weighted: f64 =
            lengths.iter().enumerate().map(|(m, s)| 0.5 * (best_losses[m] + best_losses[m + 1]) * s).sum::<f64>();
        let height = best_losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let ends = 0.5 * (best_losses[0] + best_losses[best_losses.len() - 1]);
        let coefficients = if keep { Some(self.gpu.read(&self.best, 0, coef_len)?) } else { None };
        Ok(PathOutcome {
            straight_height: straight.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            straight_losses: straight,
            best_iteration,
            height,
            barrier: height - ends,
            length,
            weighted_mean_loss: if length > 0.0 { weighted / length } else { ends },
            losses: best_losses,
            coefficients,
        })
    }
}
