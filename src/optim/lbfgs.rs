//! L-BFGS with the authors' conventions (docs/algorithms.md §2) for R runs at once. Every vector lives on the device
//! (R rows per buffer), and so do the scalars of the two-loop recursion (Nocedal & Wright, Numerical
//! Optimization, 2nd ed., Alg. 7.4): ρ_i, α_i, β_i and γ are computed by reduction kernels into a small
//! scalar buffer ([`crate::ops::LbfgsScalars`]) that the next axpy or scale reads, so no dot product crosses to the
//! host. The commands are recorded once; an iteration with E line-search evaluations is E + 2
//! submissions and E + 1 read-backs on a GPU (`docs/backends.md`): the evaluation at w together with
//! the whole recursion (losses and |d|² come back together), one per trial point (losses), and the move.
//! Where the objective offers a line ([`crate::optim::RecordedObjective::line`]: a first layer linear in
//! the weights), the trial points' first layer comes from two bases kept per iteration instead of a
//! product (docs/algorithms.md §2.1), in the same submissions.
//!
//! Conventions: ρ = 1/(s·y + ε) (ε = `ops::RHO_EPSILON`, 1e-6) with no curvature skip; H⁰ = γI with
//! γ = s·y/y·y of the newest pair; the whole history of a run is dropped (and d = g) when any stored pair
//! has cos(s, y) NaN or below `ops::MIN_CURVATURE_COSINE` (1e-4), or when d is not finite.
//!
//! Precision: vectors are f32. Dot products are f32 partial sums added in order in f64 (CPU) or with
//! compensated f32 sums (GPU); the scalars are double-f32 pairs (~48 bits) computed in f64 (CPU) or
//! double-f32 arithmetic (GPU, which has no f64), so the recursion keeps the precision of the former
//! host-scalar implementation, and a coefficient reaches its kernel rounded to f32 as before; only
//! cos(s, y), a threshold test, is f32 on a GPU. The line search runs on the host in f64.

use anyhow::{bail, Result};

use super::line_search::{LineSearch, LineSearchKind, Next};
use super::objective::BatchObjective;
use super::solver::Solver;
use crate::backend::{Buffer, Coef, Command, Device, Rows};
use crate::model::{Line, Want};
use crate::ops::{LbfgsScalars as L, Reduced};

/// L-BFGS settings (docs/algorithms.md §2; defaults: docs/decisions.md #12–#14).
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

/// The host half of the L-BFGS state, for checkpoints (the rest is in [`Lbfgs::buffers`], the scalar
/// buffer included).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsHost {
    /// Iterations done.
    pub iteration: usize,
    /// Per run: still moving.
    pub active: Vec<bool>,
}

/// The optimizer's own commands, recorded when it is built.
struct Commands {
    /// Per history slot i: y_i = g − g_prev, then s_i·y_i, y_i·y_i and s_i·s_i into pair i.
    pair: Vec<Vec<Command>>,
    /// d = g.
    to_dir: Command,
    /// Per slot, the first loop's step: α_i = ρ_i s_i·d, d −= α_i y_i.
    first: Vec<Vec<Command>>,
    /// d = γ d.
    gamma: Command,
    /// Per slot, the second loop's step: β = ρ_i y_i·d, d += (α_i − β) s_i.
    second: Vec<Vec<Command>>,
    /// The reset test on |d|², d = g where it fired, |d|² again.
    reset: Vec<Command>,
    /// Per slot: s_i = −c d (c from the step buffer), w += s_i, g_prev = g.
    moves: Vec<Vec<Command>>,
}

/// Commands that name the objective's buffers, recorded on the first iteration (and again only if the
/// objective's buffers change).
struct Bound {
    input: Buffer,
    grads: Buffer,
    /// input = w.
    to_input: Command,
    /// input −= c d (after `to_input`: a trial point).
    trial: Command,
    /// g = the objective's gradients.
    grad: Command,
    /// The objective's line capability, where it has one and [`Lbfgs::set_line`] left it on: the
    /// evaluation at w (keeping P_w), the basis P_d submitted with the recursion, each trial's loss-only
    /// evaluation.
    line: Option<Line>,
}

/// R L-BFGS runs over vectors of length n.
pub struct Lbfgs {
    device: Device,
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
    /// R x [`L::width`] scalars of the recursion.
    scalars: Buffer,
    width: usize,
    /// Per-row step coefficients (distance / |d|) of the next trial point or move, written by the host.
    steps: Buffer,
    commands: Commands,
    bound: Option<Bound>,
    /// Whether trial points go through the objective's line capability when it has one.
    use_line: bool,
    /// Iterations done.
    pub iteration: usize,
    /// Per run: false once its loss became non-finite; it no longer moves.
    pub active: Vec<bool>,
}

impl Lbfgs {
    /// R runs starting from `start` (R x n, row-major). Allocates every buffer and records every
    /// command of the iteration; errors when the device refuses a buffer.
    pub fn new(device: &Device, settings: LbfgsSettings, runs: usize, n: usize, start: &[f32]) -> Result<Lbfgs> {
        if settings.history == 0 {
            bail!("the L-BFGS history must hold at least one pair");
        }
        let buf = |name: &str| device.zeros(runs * n, name);
        let width = L::width(settings.history);
        let (w, g, g_prev, dir) =
            (device.upload(start, "lbfgs w")?, buf("lbfgs g")?, buf("lbfgs g_prev")?, buf("lbfgs direction")?);
        let s: Vec<Buffer> = (0..settings.history).map(|_| buf("lbfgs s")).collect::<Result<_>>()?;
        let y: Vec<Buffer> = (0..settings.history).map(|_| buf("lbfgs y")).collect::<Result<_>>()?;
        let scalars = device.zeros(runs * width, "lbfgs scalars")?;
        let steps = device.zeros(runs, "lbfgs steps")?;
        let all = |b| Rows::new(b, runs, n);
        let at = |index| Coef::at(&scalars, index, width);
        let reduce = |x, y, op| device.reduce(all(x), all(y), &scalars, width, op);
        let commands = Commands {
            pair: (0..settings.history)
                .map(|i| {
                    Ok(vec![
                        device.copy_rows(all(&g), all(&y[i]), None)?,
                        device.axpy_at(Coef::constant(-1.0), all(&g_prev), all(&y[i]))?,
                        reduce(&s[i], &y[i], Reduced::Store(L::SY))?,
                        reduce(&y[i], &y[i], Reduced::Store(L::YY))?,
                        reduce(&s[i], &s[i], Reduced::Pair(i))?,
                    ])
                })
                .collect::<Result<_>>()?,
            to_dir: device.copy_rows(all(&g), all(&dir), None)?,
            first: (0..settings.history)
                .map(|i| {
                    Ok(vec![
                        reduce(&s[i], &dir, Reduced::Alpha(i))?,
                        device.axpy_at(at(L::alpha(i)).times(-1.0), all(&y[i]), all(&dir))?,
                    ])
                })
                .collect::<Result<_>>()?,
            gamma: device.scale_at(at(L::GAMMA), all(&dir))?,
            second: (0..settings.history)
                .map(|i| {
                    Ok(vec![
                        reduce(&y[i], &dir, Reduced::Beta(i))?,
                        device.axpy_at(at(L::COEF), all(&s[i]), all(&dir))?,
                    ])
                })
                .collect::<Result<_>>()?,
            reset: vec![
                reduce(&dir, &dir, Reduced::Reset)?,
                device.copy_rows(all(&g), all(&dir), Some(at(L::RESET)))?,
                reduce(&dir, &dir, Reduced::Store(L::RR))?,
            ],
            moves: (0..settings.history)
                .map(|i| {
                    Ok(vec![
                        device.copy_rows(all(&dir), all(&s[i]), None)?,
                        device.scale_at(Coef::at(&steps, 0, 1).times(-1.0), all(&s[i]))?,
                        device.axpy_at(Coef::constant(1.0), all(&s[i]), all(&w))?,
                        device.copy_rows(all(&g), all(&g_prev), None)?,
                    ])
                })
                .collect::<Result<_>>()?,
        };
        Ok(Lbfgs {
            device: device.clone(),
            settings,
            rows: runs,
            n,
            w,
            g,
            g_prev,
            dir,
            s,
            y,
            scalars,
            width,
            steps,
            commands,
            bound: None,
            use_line: true,
            iteration: 0,
            active: vec![true; runs],
        })
    }

    /// Whether the line search evaluates its trial points through the objective's line capability
    /// ([`crate::optim::RecordedObjective::line`]; on by default): the same losses up to f32 rounding,
    /// with fewer products (docs/algorithms.md). Off: every trial is a plain loss evaluation.
    pub fn set_line(&mut self, on: bool) {
        if on != self.use_line {
            self.use_line = on;
            self.bound = None;
        }
    }

    /// Records the commands that name the objective's buffers, unless they already name these.
    fn bind(&mut self, obj: &dyn BatchObjective) -> Result<()> {
        if (obj.rows(), obj.dim()) != (self.rows, self.n) {
            bail!("an objective of {} x {} for L-BFGS over {} x {}", obj.rows(), obj.dim(), self.rows, self.n);
        }
        if self.bound.as_ref().is_some_and(|b| b.input.same(obj.input()) && b.grads.same(obj.grads())) {
            return Ok(());
        }
        let (d, all) = (&self.device, |b| Rows::new(b, self.rows, self.n));
        let minus_c = Coef::at(&self.steps, 0, 1).times(-1.0);
        let line = match obj.recorded() {
            Some(recorded) if self.use_line => recorded.line(&self.dir, minus_c)?,
            _ => None,
        };
        self.bound = Some(Bound {
            to_input: d.copy_rows(all(&self.w), all(obj.input()), None)?,
            trial: d.axpy_at(minus_c, all(&self.dir), all(obj.input()))?,
            grad: d.copy_rows(all(obj.grads()), all(&self.g), None)?,
            input: obj.input().clone(),
            grads: obj.grads().clone(),
            line,
        });
        Ok(())
    }

    /// Submits `before`, one evaluation of `obj` and `after`; returns the losses and, when `scalars`,
    /// the scalar buffer read back with them (a recorded objective: one submission, one read-back).
    /// Through the line where there is one: a loss-and-gradient evaluation is the one at w (input = w),
    /// a loss-only evaluation a trial point's (input = w − c d).
    fn evaluate(
        &self,
        obj: &mut dyn BatchObjective,
        before: &[&Command],
        want: Want,
        after: &[&Command],
        scalars: bool,
    ) -> Result<(Vec<f64>, Vec<f32>)> {
        let sc = (&self.scalars, 0, if scalars { self.scalars.len() } else { 0 });
        if let Some(recorded) = obj.recorded() {
            let commands = match self.bound.as_ref().and_then(|b| b.line.as_ref()) {
                Some(line) => recorded.line_commands(line, want),
                None => recorded.commands(want),
            };
            let results = recorded.results();
            let list: Vec<&Command> = before.iter().copied().chain(commands).chain(after.iter().copied()).collect();
            let mut values = self.device.submit_read(&list, &[(results, 0, results.len()), sc])?;
            let sc = values.pop().unwrap_or_default();
            return Ok((recorded.losses(&values[0]), sc));
        }
        self.device.submit(before);
        let losses = obj.evaluate(want)?;
        self.device.submit(after);
        Ok((losses, self.device.read(sc.0, sc.1, sc.2)?))
    }

    /// The losses at w − c_r d for the per-row coefficients `coef`.
    fn trial(&self, obj: &mut dyn BatchObjective, coef: &[f32]) -> Result<Vec<f64>> {
        self.device.write(&self.steps, 0, coef)?;
        let bound = self.bound.as_ref().expect("bound before the first evaluation");
        Ok(self.evaluate(obj, &[&bound.to_input, &bound.trial], Want::Loss, &[], false)?.0)
    }

    /// One iteration for every active run.
    pub fn step(&mut self, obj: &mut dyn BatchObjective) -> Result<Vec<StepReport>> {
        let (rn, k, m, width) = (self.rows, self.iteration, self.settings.history, self.width);
        self.bind(obj)?;
        // 1-5. loss and gradient at w; the pair of the previous step (s already in its slot,
        // y = g − g_prev); the two-loop recursion, newest pair to oldest and back; the reset rule
        let (f0, sc) = {
            let (c, bound) = (&self.commands, self.bound.as_ref().expect("bound above"));
            let history = k.saturating_sub(m)..k;
            let mut after: Vec<&Command> = vec![&bound.grad];
            if k > 0 {
                after.extend(&c.pair[(k - 1) % m]);
            }
            after.push(&c.to_dir);
            after.extend(history.clone().rev().flat_map(|j| &c.first[j % m]));
            if k > 0 {
                after.push(&c.gamma);
            }
            after.extend(history.flat_map(|j| &c.second[j % m]));
            after.extend(&c.reset);
            // the line's basis P_d needs d final: after the reset rule
            after.extend(bound.line.iter().flat_map(Line::basis));
            self.evaluate(obj, &[&bound.to_input], Want::LossAndGrad, &after, true)?
        };
        for (r, f) in f0.iter().enumerate() {
            if !f.is_finite() {
                self.active[r] = false;
            }
        }
        let reset: Vec<bool> = (0..rn).map(|r| self.active[r] && sc[r * width + L::RESET] != 0.0).collect();
        let r_norm: Vec<f64> = (0..rn).map(|r| L::get(&sc[r * width..], L::RR).sqrt()).collect();
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
            let losses = self.trial(obj, &coef)?;
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
            let losses = self.trial(obj, &coef)?;
            for r in untied {
                loss[r] = losses[r];
                evaluations[r] += 1;
            }
        }
        // 7. move: s = −c d, w += s, g_prev = g
        self.device.write(&self.steps, 0, &coef)?;
        self.device.submit(&self.commands.moves[k % m].iter().collect::<Vec<_>>());
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

    /// The device buffers a checkpoint must keep, by name (the iterates `lbfgs.w` first).
    pub fn buffers(&self) -> Vec<(String, &Buffer)> {
        let mut out = vec![("lbfgs.w".to_string(), &self.w), ("lbfgs.g_prev".to_string(), &self.g_prev)];
        for (j, (s, y)) in self.s.iter().zip(&self.y).enumerate() {
            out.push((format!("lbfgs.s{j}"), s));
            out.push((format!("lbfgs.y{j}"), y));
        }
        out.push(("lbfgs.scalars".to_string(), &self.scalars));
        out
    }

    /// The host state for a checkpoint.
    pub fn host(&self) -> LbfgsHost {
        LbfgsHost { iteration: self.iteration, active: self.active.clone() }
    }

    /// Restores the host state (the buffers are written by the caller through [`Lbfgs::buffers`]).
    pub fn restore_host(&mut self, h: LbfgsHost) {
        self.iteration = h.iteration;
        self.active = h.active;
    }
}

/// L-BFGS bound to the objective it minimises: the [`Solver`] `train` drives (each step is one
/// [`Lbfgs::step`] on `objective`, returning its line searches' losses).
pub struct LbfgsSolver<O> {
    pub lbfgs: Lbfgs,
    pub objective: O,
}

impl<O: BatchObjective> Solver for LbfgsSolver<O> {
    fn weights(&self) -> &Buffer {
        &self.lbfgs.w
    }

    fn step(&mut self) -> Result<Option<Vec<f64>>> {
        Ok(Some(self.lbfgs.step(&mut self.objective)?.iter().map(|r| r.loss).collect()))
    }

    fn set_active(&mut self, active: &[bool]) -> Result<()> {
        self.lbfgs.active.iter_mut().zip(active).for_each(|(a, &b)| *a &= b);
        Ok(())
    }

    fn buffers(&self) -> Vec<(String, &Buffer)> {
        self.lbfgs.buffers()
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(self.lbfgs.host())?)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.lbfgs.restore_host(serde_json::from_value(state)?);
        Ok(())
    }
}
