//! Hessian spectra of many solutions at once: the top eigenvalues by Lanczos iteration and the trace by
//! Hutchinson's estimator, both driven by Hessian-vector products (HVPs) that are evaluated for every
//! vector of a set in one batched gradient call.
//!
//! HVPs are central differences of batched f32 gradients (Pearlmutter's exact forward-over-reverse
//! product would need new kernels on every backend):
//! H v ~ |v| (g(w + h u) - g(w - h u)) / (2 h), u = v / |v|,
//! with the 2 S points w_s +- h u_s of S vectors in one call. The truncation error is
//! h^2 |d^3 L[u, u, .]| / 6 and the rounding error about eps_g / h, where eps_g is the f32 error of a
//! gradient (about 1e-7 relative, times the gradient's size and the images summed); [`DEFAULT_STEP`]
//! keeps the first small where Lanczos looks (the sharpest directions) while the second, random from
//! component to component, largely cancels in the Rayleigh quotients that eigenvalues and traces are, and the tests bound the resulting error against the f64
//! reference model. See `docs/probes.md`.

use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::backend::{f32_bytes, ChunkBudget, Footprint};
use crate::data::DeviceImages;
use crate::io::float::JsonF64;
use crate::io::WeightStack;
use crate::model::{Evaluator, Network, Want};

/// Finite-difference step h along a unit direction (weight-space distance). Chosen by measuring the
/// HVP error against the f64 reference and the convergence of Lanczos eigenvalues as h shrinks: a
/// trained LSTM has directions in which the loss bends sharply within 1e-2, which a step of 1e-2
/// turns into an eigenvalue 1000 times too large (see `tests/hessian.rs` and `docs/probes.md`).
pub const DEFAULT_STEP: f64 = 3e-4;

/// A batched gradient: the gradients of the mean loss at `batch()` points in one call.
pub trait Gradients {
    /// Length of one point (N_prm).
    fn dim(&self) -> usize;
    /// Points per call.
    fn batch(&self) -> usize;
    /// Writes the gradient at each point of `points` (batch x dim, row-major) to `grads` (same shape).
    ///
    /// Errors: wrong lengths, or the evaluation fails.
    fn gradients(&mut self, points: &[f32], grads: &mut [f32]) -> Result<()>;
}

impl Gradients for Evaluator {
    fn dim(&self) -> usize {
        self.n_params()
    }
    fn batch(&self) -> usize {
        Evaluator::batch(self)
    }
    fn gradients(&mut self, points: &[f32], grads: &mut [f32]) -> Result<()> {
        if grads.len() != self.grads.len() {
            bail!("expected room for {} gradient values, got {}", self.grads.len(), grads.len());
        }
        self.set_weights(points)?;
        let read =
            self.device().submit_read(&self.ordered(Want::LossAndGrad), &[(&self.grads, 0, self.grads.len())])?;
        grads.copy_from_slice(&read[0]);
        Ok(())
    }
}

/// Hessian-vector products at S centres by central differences of one batched gradient call of 2 S
/// points (2 s = w_s + h u_s, 2 s + 1 = w_s - h u_s). Host buffers are allocated once.
pub struct HessianProbe<G: Gradients> {
    grads: G,
    centres: Vec<f32>,
    /// Stream of each centre's random numbers (its index in the set), so results do not depend on how
    /// a set is split into batches.
    streams: Vec<u64>,
    step: f64,
    points: Vec<f32>,
    out: Vec<f32>,
    norms: Vec<f64>,
    calls: usize,
}

impl<G: Gradients> HessianProbe<G> {
    /// Probes at the rows of `centres` (S x dim), with random streams `streams` (one per centre) and
    /// finite-difference step `step`.
    ///
    /// Errors: `grads` does not take 2 S points of the centres' length; `step` not finite and > 0.
    pub fn new(grads: G, centres: &[f32], streams: &[u64], step: f64) -> Result<HessianProbe<G>> {
        let n = grads.dim();
        let s = streams.len();
        if centres.len() != s * n || grads.batch() != 2 * s || s == 0 {
            bail!(
                "{} centres of {n} values need a gradient batch of {}; got {} values and a batch of {}",
                s,
                2 * s,
                centres.len(),
                grads.batch()
            );
        }
        if !(step.is_finite() && step > 0.0) {
            bail!("the finite-difference step must be a positive number, got {step}");
        }
        Ok(HessianProbe {
            grads,
            centres: centres.to_vec(),
            streams: streams.to_vec(),
            step,
            points: vec![0.0; 2 * s * n],
            out: vec![0.0; 2 * s * n],
            norms: vec![0.0; s],
            calls: 0,
        })
    }

    /// Number of centres S.
    pub fn vectors(&self) -> usize {
        self.streams.len()
    }

    /// Length of a weight vector.
    pub fn dim(&self) -> usize {
        self.grads.dim()
    }

    /// Batched gradient calls made so far (each computes 2 S gradients).
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// `hv` (S x dim) = H_s v_s for every centre s, in one batched gradient call. A zero v_s gives 0.
    ///
    /// Errors: wrong lengths, a non-finite `v`, or the gradient call fails.
    pub fn hvp(&mut self, v: &[f64], hv: &mut [f64]) -> Result<()> {
        let n = self.dim();
        let s = self.vectors();
        if v.len() != s * n || hv.len() != s * n {
            bail!("expected {} x {n} values, got {} and {}", s, v.len(), hv.len());
        }
        let h = self.step;
        for k in 0..s {
            let vk = &v[k * n..(k + 1) * n];
            let norm = vk.iter().map(|x| x * x).sum::<f64>().sqrt();
            if !norm.is_finite() {
                bail!("a Hessian-vector product of a non-finite vector");
            }
            self.norms[k] = norm;
            let c = &self.centres[k * n..(k + 1) * n];
            let scale = if norm > 0.0 { h / norm } else { 0.0 };
            let (plus, minus) = self.points[2 * k * n..(2 * k + 2) * n].split_at_mut(n);
            for i in 0..n {
                let d = vk[i] * scale;
                plus[i] = (c[i] as f64 + d) as f32;
                minus[i] = (c[i] as f64 - d) as f32;
            }
        }
        self.grads.gradients(&self.points, &mut self.out)?;
        self.calls += 1;
        for k in 0..s {
            let (gp, gm) = self.out[2 * k * n..(2 * k + 2) * n].split_at(n);
            let f = self.norms[k] / (2.0 * h);
            for i in 0..n {
                hv[k * n + i] = (gp[i] as f64 - gm[i] as f64) * f;
            }
        }
        Ok(())
    }

    fn rng(&self, k: usize, purpose: u64, seed: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(2 * self.streams[k] + purpose);
        rng
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn dot32(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, &y)| x * y as f64).sum()
}

/// Removes from `w` its components along the (orthonormal) `basis` vectors, twice (classical
/// Gram-Schmidt with reorthogonalisation).
fn orthogonalise(w: &mut [f64], basis: &[&[f32]]) {
    for _ in 0..2 {
        for b in basis {
            let c = dot32(w, b);
            w.iter_mut().zip(b.iter()).for_each(|(x, &y)| *x -= c * y as f64);
        }
    }
}

/// The top `k` eigenvalues (largest first) of every centre's Hessian, by `steps` Lanczos iterations with
/// full reorthogonalisation, all centres in lockstep (one batched HVP per iteration). Each centre starts
/// from a Gaussian vector drawn with `seed` and its stream; on breakdown (an invariant subspace found)
/// it restarts with a fresh vector orthogonal to the basis, so the spectrum of a Hessian whose size is at
/// most `steps` comes out whole. The basis is kept in f32 (steps x S x dim values).
/// Fewer than `k` Ritz values (a Hessian smaller than `k`) leave NaN in the missing places.
///
/// Errors: `k` is 0 or more than `steps`; an HVP fails.
pub fn lanczos<G: Gradients>(probe: &mut HessianProbe<G>, k: usize, steps: usize, seed: u64) -> Result<Vec<Vec<f64>>> {
    if k == 0 || k > steps {
        bail!("need 1 <= top ({k}) <= Lanczos steps ({steps})");
    }
    let (n, s) = (probe.dim(), probe.vectors());
    let steps = steps.min(n);
    let mut rngs: Vec<ChaCha8Rng> = (0..s).map(|j| probe.rng(j, 0, seed)).collect();
    let gauss = |rng: &mut ChaCha8Rng, out: &mut [f64]| {
        out.iter_mut().for_each(|x| *x = normal(rng));
    };
    let mut q = vec![0.0; s * n];
    let mut q_prev = vec![0.0; s * n];
    let mut w = vec![0.0; s * n];
    let mut basis: Vec<Vec<f32>> = Vec::with_capacity(steps);
    let mut alphas = vec![Vec::new(); s];
    let mut betas = vec![Vec::new(); s];
    let mut active = vec![true; s];
    for j in 0..s {
        let qj = &mut q[j * n..(j + 1) * n];
        gauss(&mut rngs[j], qj);
        let norm = dot(qj, qj).sqrt();
        qj.iter_mut().for_each(|x| *x /= norm);
    }
    for step in 0..steps {
        basis.push(q.iter().map(|&x| x as f32).collect());
        probe.hvp(&q, &mut w)?;
        for j in 0..s {
            if !active[j] {
                continue;
            }
            let r = j * n..(j + 1) * n;
            let (wj, qj, pj) = (&mut w[r.clone()], &q[r.clone()], &q_prev[r.clone()]);
            let alpha = dot(wj, qj);
            let beta_prev = betas[j].last().copied().unwrap_or(0.0);
            wj.iter_mut().zip(qj.iter().zip(pj)).for_each(|(x, (a, b))| *x -= alpha * a + beta_prev * b);
            let rows: Vec<&[f32]> = basis.iter().map(|b| &b[r.clone()]).collect();
            orthogonalise(wj, &rows);
            alphas[j].push(alpha);
            if !alpha.is_finite() {
                // the loss or gradient overflowed at this centre: its values are NaN
                active[j] = false;
                continue;
            }
            if step + 1 == steps {
                continue;
            }
            let mut beta = dot(wj, wj).sqrt();
            if beta.is_nan() || beta <= 1e-7 * alpha.abs().max(1e-30) {
                // an invariant subspace: restart orthogonally to it
                gauss(&mut rngs[j], wj);
                orthogonalise(wj, &rows);
                let norm = dot(wj, wj).sqrt();
                if norm.is_nan() || norm <= 1e-6 * (n as f64).sqrt() {
                    active[j] = false;
                    continue;
                }
                wj.iter_mut().for_each(|x| *x /= norm);
                beta = 0.0;
            } else {
                wj.iter_mut().for_each(|x| *x /= beta);
            }
            betas[j].push(beta);
        }
        if !active.iter().any(|&a| a) {
            break;
        }
        std::mem::swap(&mut q_prev, &mut q);
        std::mem::swap(&mut q, &mut w);
        // inactive centres keep their last direction (any unit vector serves; their results are ignored)
        for j in (0..s).filter(|&j| !active[j]) {
            q[j * n..(j + 1) * n].copy_from_slice(&q_prev[j * n..(j + 1) * n]);
        }
    }
    Ok((0..s).map(|j| ritz_values(&alphas[j], &betas[j], k)).collect())
}

/// The largest `k` eigenvalues of the symmetric tridiagonal matrix with diagonal `alpha` and
/// off-diagonal `beta` (largest first; NaN where there are fewer than `k`, and all NaN when an entry is
/// not finite).
pub fn ritz_values(alpha: &[f64], beta: &[f64], k: usize) -> Vec<f64> {
    if alpha.iter().chain(beta).any(|v| !v.is_finite()) {
        return vec![f64::NAN; k];
    }
    let m = alpha.len();
    let mut t = DMatrix::<f64>::zeros(m, m);
    for i in 0..m {
        t[(i, i)] = alpha[i];
        if i + 1 < m {
            t[(i, i + 1)] = beta[i];
            t[(i + 1, i)] = beta[i];
        }
    }
    let mut ev: Vec<f64> = if m > 0 { t.symmetric_eigenvalues().iter().copied().collect() } else { Vec::new() };
    ev.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
    ev.resize(k, f64::NAN);
    ev.truncate(k);
    ev
}

/// Hutchinson's (1990) trace estimate of every centre's Hessian with `probes` Rademacher vectors z
/// (entries +-1 drawn with `seed` and the centre's stream): the mean of z^T H z, and its standard error
/// (sample standard deviation / sqrt(probes); 0 for a single probe). One batched HVP per probe.
///
/// Errors: `probes` is 0; an HVP fails.
pub fn hutchinson<G: Gradients>(probe: &mut HessianProbe<G>, probes: usize, seed: u64) -> Result<Vec<(f64, f64)>> {
    if probes == 0 {
        bail!("Hutchinson's estimator needs at least one probe");
    }
    let (n, s) = (probe.dim(), probe.vectors());
    let mut rngs: Vec<ChaCha8Rng> = (0..s).map(|j| probe.rng(j, 1, seed)).collect();
    let mut z = vec![0.0; s * n];
    let mut hz = vec![0.0; s * n];
    let mut samples = vec![Vec::with_capacity(probes); s];
    for _ in 0..probes {
        for (j, rng) in rngs.iter_mut().enumerate() {
            z[j * n..(j + 1) * n].iter_mut().for_each(|x| *x = if rng.random::<bool>() { 1.0 } else { -1.0 });
        }
        probe.hvp(&z, &mut hz)?;
        for (sj, (zj, hzj)) in samples.iter_mut().zip(z.chunks(n).zip(hz.chunks(n))) {
            sj.push(dot(zj, hzj));
        }
    }
    Ok(samples
        .iter()
        .map(|v| {
            let m = v.len() as f64;
            let mean = v.iter().sum::<f64>() / m;
            let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1.0) } else { 0.0 };
            (mean, (var / m).sqrt())
        })
        .collect())
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Settings of [`spectra`]: the options of `losscape hessian`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpectrumSettings {
    /// How many of the largest eigenvalues.
    pub top: usize,
    /// Lanczos iterations (capped at the number of weights), one batched HVP each.
    pub steps: usize,
    /// Rademacher probes of Hutchinson's trace estimator (0: no trace), one batched HVP each.
    pub probes: usize,
    /// Seed of the Lanczos start vectors and the probes.
    pub seed: u64,
    /// Finite-difference step of the HVPs.
    pub step: f64,
}

impl SpectrumSettings {
    /// Errors: more eigenvalues asked for than Lanczos steps.
    pub fn check(&self) -> Result<()> {
        if self.top > self.steps {
            bail!("--top {} needs at least as many --steps (got {})", self.top, self.steps);
        }
        Ok(())
    }
}

/// One vector's spectrum.
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum {
    /// The `top` largest eigenvalues, largest first (NaN where Lanczos could not find one).
    pub eigenvalues: Vec<f64>,
    /// Hutchinson's trace estimate and its standard error, when probes were asked for.
    pub trace: Option<(f64, f64)>,
}

/// What [`spectra`] reports as it goes.
pub trait SpectraProgress {
    /// Lanczos (`phase` "Lanczos") or Hutchinson starts on the group of vectors `rows`.
    fn phase(&mut self, phase: &str, rows: &[usize]);
    /// A phase finished after `calls` batched HVPs.
    fn calls(&mut self, calls: usize);
    /// A group is done (the place to save its results).
    ///
    /// Errors: whatever saving them returns; it stops the run.
    fn group(&mut self, rows: &[usize], results: &[Spectrum]) -> Result<()>;
}

/// The top eigenvalues and trace of the Hessian of the mean loss at each of `rows` of `stack`,
/// `batch` vectors (2 x `batch` gradients) per call; returns the spectra (in the order of `rows`) and the
/// number of batched HVP calls. Random numbers are per vector, so the results do not depend on `batch`.
///
/// Errors: `top` > `steps`; device errors; a gradient evaluation that fails.
pub fn spectra(
    net: Network,
    images: &DeviceImages,
    stack: &WeightStack,
    rows: &[usize],
    settings: &SpectrumSettings,
    batch: usize,
    progress: &mut dyn SpectraProgress,
) -> Result<(Vec<Spectrum>, usize)> {
    settings.check()?;
    let mut out = Vec::with_capacity(rows.len());
    let mut calls = 0;
    for g in rows.chunks(batch.max(1)) {
        let eval = Evaluator::new(net, images, 0..images.count, 2 * g.len())?;
        let centres: Vec<f32> = g.iter().flat_map(|&r| stack.vector(r).iter().copied()).collect();
        let streams: Vec<u64> = g.iter().map(|&r| r as u64).collect();
        let mut probe = HessianProbe::new(eval, &centres, &streams, settings.step)?;
        progress.phase("Lanczos", g);
        let top = lanczos(&mut probe, settings.top, settings.steps, settings.seed)?;
        progress.calls(probe.calls());
        let before = probe.calls();
        let traces: Vec<Option<(f64, f64)>> = if settings.probes > 0 {
            progress.phase("Hutchinson", g);
            hutchinson(&mut probe, settings.probes, settings.seed)?.into_iter().map(Some).collect()
        } else {
            vec![None; g.len()]
        };
        progress.calls(probe.calls() - before);
        calls += probe.calls();
        let group: Vec<Spectrum> =
            top.into_iter().zip(traces).map(|(eigenvalues, trace)| Spectrum { eigenvalues, trace }).collect();
        progress.group(g, &group)?;
        out.extend(group);
    }
    Ok((out, calls))
}

/// The memory [`spectra`] takes for groups of `group` vectors of `net` on `images` images within a
/// device's chunk `budget`: the evaluator of 2 x `group` points with their gradients
/// ([`crate::model::evaluator_bytes`]), and on the host, per vector, the probe's centre, its two
/// points, their gradients and the gradients' read-back (f32), the Lanczos basis (one f32 vector per
/// step) and Lanczos's three f64 work vectors (Hutchinson's two come after them and take less).
///
/// # Errors
/// The network does not plan.
pub fn spectra_footprint(
    net: Network,
    group: usize,
    settings: &SpectrumSettings,
    (images, budget): (usize, ChunkBudget),
) -> Result<Footprint> {
    let n = net.arch.n_params();
    let eval = crate::model::evaluator_bytes(net, (2 * group, 2 * group), images, budget, false)?;
    let f32_vectors = 1 + 2 + 2 + 2 + settings.steps.min(n);
    let host = f32_bytes(group * n * (f32_vectors + 2 * 3));
    Ok(Footprint::device(eval) + Footprint::host(host))
}

/// One vector's spectrum as a line of `DIR/vectors.jsonl`, so that a run can resume where it stopped.
/// Non-finite values are written as the strings `"NaN"`, `"inf"`, `"-inf"` ([`JsonF64`]) and so read
/// back as they were; `null`, which earlier versions wrote for them, reads as NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpectrumRecord {
    pub vector: usize,
    pub eigenvalues: Vec<JsonF64>,
    /// Trace and its standard error.
    pub trace: Option<(JsonF64, JsonF64)>,
}

impl SpectrumRecord {
    /// The record of vector `vector`'s spectrum `s`.
    pub fn new(vector: usize, s: &Spectrum) -> SpectrumRecord {
        SpectrumRecord {
            vector,
            eigenvalues: s.eigenvalues.iter().map(|&v| JsonF64(v)).collect(),
            trace: s.trace.map(|(m, se)| (JsonF64(m), JsonF64(se))),
        }
    }

    /// Why this record cannot have been written by a run with `settings` on a set of `vectors` vectors:
    /// it names a vector the set does not hold, holds other than `settings.top` eigenvalues, or a trace
    /// where `settings.probes` is 0 (none where it is not); None when it can have been.
    pub fn mismatch(&self, settings: &SpectrumSettings, vectors: usize) -> Option<String> {
        let v = self.vector;
        if v >= vectors {
            return Some(format!("names vector {v}, but the set holds {vectors} vectors"));
        }
        if self.eigenvalues.len() != settings.top {
            let n = self.eigenvalues.len();
            return Some(format!("holds {n} eigenvalue(s) for vector {v}, but the run's --top is {}", settings.top));
        }
        match (self.trace.is_some(), settings.probes) {
            (true, 0) => Some(format!("holds a trace for vector {v}, but the run's --probes is 0")),
            (false, p) if p > 0 => Some(format!("holds no trace for vector {v}, but the run's --probes is {p}")),
            _ => None,
        }
    }

    /// The spectrum recorded.
    pub fn spectrum(&self) -> Spectrum {
        Spectrum {
            eigenvalues: self.eigenvalues.iter().map(|v| v.0).collect(),
            trace: self.trace.map(|(m, se)| (m.0, se.0)),
        }
    }
}

/// The CSV text of `losscape hessian`: header `vector,lambda_1,…,lambda_k,trace`, one line per vector
/// (an empty trace when it was not estimated; NaN for eigenvalues that could not be computed).
pub fn spectra_csv(rows: &[usize], spectra: &[Spectrum]) -> String {
    let k = spectra.first().map_or(0, |s| s.eigenvalues.len());
    let mut s = String::from("vector");
    (1..=k).for_each(|i| s.push_str(&format!(",lambda_{i}")));
    s.push_str(",trace\n");
    for (r, sp) in rows.iter().zip(spectra) {
        s.push_str(&r.to_string());
        sp.eigenvalues.iter().for_each(|v| s.push_str(&format!(",{v}")));
        s.push_str(&format!(",{}\n", sp.trace.map_or(String::new(), |t| t.0.to_string())));
    }
    s
}

/// How the HVPs are computed, in words, for JSON records.
pub const HVP_METHOD: &str =
    "central differences of batched f32 gradients: |v| (g(w + h v/|v|) - g(w - h v/|v|)) / (2 h)";

/// The `results` array of a JSON record: per vector its eigenvalues, trace and the trace's standard
/// error (null when the trace was not estimated; non-finite values as `"NaN"`, `"inf"`, `"-inf"`).
pub fn spectra_json(rows: &[usize], spectra: &[Spectrum]) -> serde_json::Value {
    rows.iter()
        .zip(spectra)
        .map(|(r, s)| {
            serde_json::json!({
                "vector": r,
                "eigenvalues": s.eigenvalues.iter().map(|&v| JsonF64(v)).collect::<Vec<_>>(),
                "trace": s.trace.map(|t| JsonF64(t.0)),
                "trace_standard_error": s.trace.map(|t| JsonF64(t.1)),
            })
        })
        .collect()
}

/// Reads a file written by [`spectra_csv`]: per vector, λ_1 and the trace (NaN where empty).
///
/// Errors: the file cannot be read, or is not in that format.
pub fn read_spectra_csv(path: &std::path::Path) -> Result<Vec<(f64, f64)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let bad =
        || anyhow::anyhow!("{}: not a hessian.csv (vector,lambda_1,...,trace); delete it and rerun", path.display());
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or_else(bad)?.split(',').collect();
    if header.len() < 3 || header[0] != "vector" || header[1] != "lambda_1" || header.last() != Some(&"trace") {
        return Err(bad());
    }
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != header.len() {
                return Err(bad());
            }
            let num = |s: &str| if s.is_empty() { Ok(f64::NAN) } else { s.parse::<f64>().map_err(|_| bad()) };
            Ok((num(f[1])?, num(f[f.len() - 1])?))
        })
        .collect()
}
