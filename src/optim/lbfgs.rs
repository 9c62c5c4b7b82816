//! L-BFGS with the authors' conventions (SPEC §5.3) for R runs at once. Every vector lives on the GPU
//! (R rows per buffer); the two-loop recursion uses per-row dot products (R scalars read back) and
//! per-row axpy; the line-search trial points of all runs are evaluated in one batched call.

use anyhow::Result;

use super::line_search::{LineSearch, LineSearchKind, Next};
use super::objective::BatchObjective;
use crate::backend::{Buffer, Device, Rows};
use crate::model::Want;

/// L-BFGS settings (SPEC §5.1).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsSettings {
    pub history: usize,
    pub line_search: LineSearchKind,
    /// Counted evaluations per line search.
    pub budget: usize,
}

impl Default for LbfgsSettings {
    fn default() -> Self {
        LbfgsSettings { history: 10, line_search: LineSearchKind::Reference, budget: 6 }
    }
}

/// What one iteration did for one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// Loss at the iterate before the step.
    pub loss_before: f64,
    /// Loss at the new iterate (the line search's value): the iteration's training loss.
    pub loss: f64,
    /// Euclidean length of the step.
    pub step: f64,
    /// The history was reset this iteration.
    pub reset: bool,
    /// Loss evaluations the line search used (uncounted tie evaluations included).
    pub evaluations: usize,
}

/// A cached (s, y) pair of one run.
#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    rho: f64,
    sy: f64,
    yy: f64,
    cos: f64,
}

/// The host half of the L-BFGS state, for checkpoints (floats as bits: NaN survives JSON).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsHost {
    pub iteration: usize,
    pub valid_from: Vec<usize>,
    pub active: Vec<bool>,
    /// pairs[slot][run] = [rho, sy, yy, cos] as f64 bits
    pub pairs: Vec<Vec<[u64; 4]>>,
}

/// R L-BFGS runs over vectors of length n.
pub struct Lbfgs {
    gpu: Device,
    settings: LbfgsSettings,
    rows: usize,
    n: usize,
    /// Current iterates (R x n).
    pub w: Buffer,
    g: Buffer,
    g_prev: Buffer,
    dir: Buffer,
    s: Vec<Buffer>,
    y: Vec<Buffer>,
    /// pairs[slot][run]
    pairs: Vec<Vec<Pair>>,
    /// Iterations done.
    pub iteration: usize,
    /// Per run: the first pair index (= iteration that produced it) still in the history.
    valid_from: Vec<usize>,
    /// Per run: false once its loss became non-finite; it no longer moves.
    pub active: Vec<bool>,
}

fn rows(buf: &Buffer, r: usize, n: usize) -> Rows<'_> {
    Rows::new(buf, r, n)
}

impl Lbfgs {
    /// R runs starting from `start` (R x n, row-major).
    pub fn new(gpu: &Device, settings: LbfgsSettings, runs: usize, n: usize, start: &[f32]) -> Result<Lbfgs> {
        let buf = |name: &str| gpu.zeros(runs * n, name);
        let w = gpu.upload(start, "lbfgs w")?;
        Ok(Lbfgs {
            gpu: gpu.clone(),
            settings,
            rows: runs,
            n,
            w,
            g: buf("lbfgs g")?,
            g_prev: buf("lbfgs g_prev")?,
            dir: buf("lbfgs direction")?,
            s: (0..settings.history).map(|_| buf("lbfgs s")).collect::<Result<_>>()?,
            y: (0..settings.history).map(|_| buf("lbfgs y")).collect::<Result<_>>()?,
            pairs: vec![vec![Pair::default(); runs]; settings.history],
            iteration: 0,
            valid_from: vec![0; runs],
            active: vec![true; runs],
        })
    }

    fn all<'a>(&self, buf: &'a Buffer) -> Rows<'a> {
        rows(buf, self.rows, self.n)
    }

    /// Writes w - coef_r * dir (per row) into the objective's input.
    fn trial(&self, obj: &dyn BatchObjective, coef: &[f32]) -> Result<()> {
        self.gpu.copy(&self.w, 0, obj.input(), 0, self.rows * self.n)?;
        let neg: Vec<f32> = coef.iter().map(|c| -c).collect();
        self.gpu.axpy(&neg, self.all(&self.dir), rows(obj.input(), self.rows, self.n))
    }

    /// Pair indices j (iteration that produced them) still usable by run r at this iteration.
    fn valid(&self, r: usize, j: usize) -> bool {
        self.active[r] && j >= self.valid_from[r] && j + self.settings.history >= self.iteration
    }

    /// One iteration for every active run.
    pub fn step(&mut self, obj: &mut dyn BatchObjective) -> Result<Vec<StepReport>> {
        let (rn, n, k, m) = (self.rows, self.n, self.iteration, self.settings.history);
        // 1. loss and gradient at w
        self.gpu.copy(&self.w, 0, obj.input(), 0, rn * n)?;
        let f0 = obj.evaluate(Want::LossAndGrad)?;
        for (r, f) in f0.iter().enumerate() {
            if !f.is_finite() {
                self.active[r] = false;
            }
        }
        self.gpu.copy(obj.grads(), 0, &self.g, 0, rn * n)?;
        // 2. store the pair of the previous step: s already in its slot, y = g - g_prev
        if k > 0 {
            let slot = (k - 1) % m;
            self.gpu.copy(&self.g, 0, &self.y[slot], 0, rn * n)?;
            self.gpu.axpy(&vec![-1.0; rn], self.all(&self.g_prev), self.all(&self.y[slot]))?;
            let sy = self.gpu.dot(self.all(&self.s[slot]), self.all(&self.y[slot]))?;
            let yy = self.gpu.dot(self.all(&self.y[slot]), self.all(&self.y[slot]))?;
            let ss = self.gpu.dot(self.all(&self.s[slot]), self.all(&self.s[slot]))?;
            for r in 0..rn {
                let norm = (yy[r] * ss[r]).sqrt();
                let cos = if norm > 0.0 { sy[r] / norm } else { f64::NAN };
                self.pairs[slot][r] = Pair { rho: 1.0 / (sy[r] + 1e-6), sy: sy[r], yy: yy[r], cos };
            }
        }
        // 3-4. two-loop recursion, newest to oldest then back
        self.gpu.copy(&self.g, 0, &self.dir, 0, rn * n)?;
        let history: Vec<usize> = (k.saturating_sub(m)..k).collect();
        let mut alpha = vec![vec![0.0f64; rn]; history.len()];
        for (h, &j) in history.iter().enumerate().rev() {
            let slot = j % m;
            let sq = self.gpu.dot(self.all(&self.s[slot]), self.all(&self.dir))?;
            for r in 0..rn {
                if self.valid(r, j) {
                    alpha[h][r] = self.pairs[slot][r].rho * sq[r];
                }
            }
            let coef: Vec<f32> = alpha[h].iter().map(|a| -*a as f32).collect();
            self.gpu.axpy(&coef, self.all(&self.y[slot]), self.all(&self.dir))?;
        }
        let gamma: Vec<f32> = (0..rn)
            .map(|r| match history.iter().rev().find(|&&j| self.valid(r, j)) {
                Some(&j) => (self.pairs[j % m][r].sy / self.pairs[j % m][r].yy) as f32,
                None => 1.0,
            })
            .collect();
        self.gpu.scale(&gamma, self.all(&self.dir))?;
        for (h, &j) in history.iter().enumerate() {
            let slot = j % m;
            let yr = self.gpu.dot(self.all(&self.y[slot]), self.all(&self.dir))?;
            let coef: Vec<f32> = (0..rn)
                .map(|r| if self.valid(r, j) { (alpha[h][r] - self.pairs[slot][r].rho * yr[r]) as f32 } else { 0.0 })
                .collect();
            self.gpu.axpy(&coef, self.all(&self.s[slot]), self.all(&self.dir))?;
        }
        // 5. reset rule: NaN direction or any stored pair at an angle of ~90 degrees or more
        let rr = self.gpu.dot(self.all(&self.dir), self.all(&self.dir))?;
        let mut reset = vec![false; rn];
        for r in 0..rn {
            let bad_pair = history.iter().any(|&j| {
                self.valid(r, j) && {
                    let cos = self.pairs[j % m][r].cos;
                    cos.is_nan() || cos < 1e-4
                }
            });
            if self.active[r] && (!rr[r].is_finite() || bad_pair) {
                reset[r] = true;
                self.valid_from[r] = k; // the next pair (made at iteration k + 1) starts the history
                self.gpu.copy(&self.g, r * n, &self.dir, r * n, n)?;
            }
        }
        let rr = self.gpu.dot(self.all(&self.dir), self.all(&self.dir))?;
        let r_norm: Vec<f64> = rr.iter().map(|v| v.sqrt()).collect();
        // 6. line searches of all runs, trial points evaluated together
        let mut searches: Vec<Option<LineSearch>> = (0..rn)
            .map(|r| {
                (self.active[r] && r_norm[r] > 0.0)
                    .then(|| LineSearch::new(self.settings.line_search, f0[r], r_norm[r], self.settings.budget))
            })
            .collect();
        let mut next: Vec<Next> = searches
            .iter_mut()
            .map(|s| s.as_mut().map_or(Next::Done { step: 0.0, loss: None }, |s| s.start()))
            .collect();
        let mut evaluations = vec![0usize; rn];
        while next.iter().any(|x| matches!(x, Next::Evaluate(_))) {
            let coef: Vec<f32> = (0..rn)
                .map(|r| match next[r] {
                    Next::Evaluate(u) | Next::Done { step: u, .. } if r_norm[r] > 0.0 => (u / r_norm[r]) as f32,
                    _ => 0.0,
                })
                .collect();
            self.trial(obj, &coef)?;
            let losses = obj.evaluate(Want::Loss)?;
            for r in 0..rn {
                if let (Next::Evaluate(_), Some(search)) = (next[r], searches[r].as_mut()) {
                    evaluations[r] += 1;
                    next[r] = search.feed(losses[r]);
                }
            }
        }
        // the reference's tie cases end without the loss at the step: one more evaluation
        let mut loss: Vec<f64> =
            next.iter().map(|x| if let Next::Done { loss: Some(l), .. } = x { *l } else { f64::NAN }).collect();
        let steps: Vec<f64> = next.iter().map(|x| if let Next::Done { step, .. } = x { *step } else { 0.0 }).collect();
        let coef: Vec<f32> =
            (0..rn).map(|r| if r_norm[r] > 0.0 { (steps[r] / r_norm[r]) as f32 } else { 0.0 }).collect();
        let untied: Vec<usize> = (0..rn).filter(|&r| searches[r].is_some() && loss[r].is_nan()).collect();
        if !untied.is_empty() {
            self.trial(obj, &coef)?;
            let losses = obj.evaluate(Want::Loss)?;
            for r in untied {
                loss[r] = losses[r];
                evaluations[r] += 1;
            }
        }
        // 7. move: w <- w - u d, s = -u d, g_prev = g
        let slot = k % m;
        self.gpu.copy(&self.dir, 0, &self.s[slot], 0, rn * n)?;
        let neg: Vec<f32> = coef.iter().map(|c| -c).collect();
        self.gpu.scale(&neg, self.all(&self.s[slot]))?;
        self.gpu.axpy(&vec![1.0; rn], self.all(&self.s[slot]), self.all(&self.w))?;
        self.gpu.copy(&self.g, 0, &self.g_prev, 0, rn * n)?;
        self.iteration += 1;
        Ok((0..rn)
            .map(|r| StepReport {
                loss_before: f0[r],
                loss: if searches[r].is_some() { loss[r] } else { f0[r] },
                step: steps[r],
                reset: reset[r],
                evaluations: evaluations[r],
            })
            .collect())
    }
}

impl Lbfgs {
    /// The GPU buffers a checkpoint must keep, by name.
    pub fn buffers(&self) -> Vec<(String, &Buffer)> {
        let mut out = vec![("lbfgs.w".to_string(), &self.w), ("lbfgs.g_prev".to_string(), &self.g_prev)];
        for (j, (s, y)) in self.s.iter().zip(&self.y).enumerate() {
            out.push((format!("lbfgs.s{j}"), s));
            out.push((format!("lbfgs.y{j}"), y));
        }
        out
    }

    pub fn host(&self) -> LbfgsHost {
        LbfgsHost {
            iteration: self.iteration,
            valid_from: self.valid_from.clone(),
            active: self.active.clone(),
            pairs: self
                .pairs
                .iter()
                .map(|slot| slot.iter().map(|p| [p.rho, p.sy, p.yy, p.cos].map(f64::to_bits)).collect())
                .collect(),
        }
    }

    /// Restores the host state (the buffers are written by the caller through [`Lbfgs::buffers`]).
    pub fn restore_host(&mut self, h: LbfgsHost) {
        self.iteration = h.iteration;
        self.valid_from = h.valid_from;
        self.active = h.active;
        self.pairs = h
            .pairs
            .iter()
            .map(|slot| {
                slot.iter()
                    .map(|b| Pair {
                        rho: f64::from_bits(b[0]),
                        sy: f64::from_bits(b[1]),
                        yy: f64::from_bits(b[2]),
                        cos: f64::from_bits(b[3]),
                    })
                    .collect()
            })
            .collect();
    }
}
