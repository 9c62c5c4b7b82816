//! Lines and planes in weight space for loss surfaces: through named solutions (the plane of Garipov et
//! al. 2018, in the raw affine coordinates or their orthonormal axes), or along random directions around
//! one solution with the filter-wise normalisation of Li et al. 2018.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::TensorSpec;

/// What a random direction does on one-dimensional tensors (biases), as in Li et al.'s
/// `normalize_directions_for_weights` (`tomgoldstein/loss-landscape`, `net_plotter.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Biases {
    /// The direction's bias entries are the solution's biases (their default).
    #[default]
    Copy,
    /// The direction's bias entries are 0, so biases stay fixed (their `--xignore biasbn`).
    Ignore,
}

/// How the axes of a surface are chosen; recorded in the run's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DirectionSpec {
    /// w = a + x (b - a) + y (c - a) through set vectors a, b[, c].
    Through { vectors: Vec<usize> },
    /// Gram-Schmidt axes of the same line or plane, in units of Euclidean distance, origin at a.
    Orthonormal { vectors: Vec<usize> },
    /// w = o + x d_1 + y d_2 with `count` filter-normalised Gaussian directions drawn with `seed`.
    Random { vector: usize, count: usize, seed: u64, biases: Biases },
}

/// A named vector's place on the surface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub label: String,
    pub x: f64,
    pub y: f64,
}

/// A line (1 direction) or plane (2) in weight space: w(x, y) = sum_k c_k(x, y) basis_k, with
/// c = (1 - x - y, x, y) for an affine plane through named vectors and c = (1, x, y) for an origin plus
/// directions. The basis is held in f64 and each point rounded to f32 once, so a point whose
/// coefficients are 0 and 1 is bit-for-bit the vector it names.
#[derive(Clone, Debug)]
pub struct Plane {
    basis: Vec<Vec<f64>>,
    affine: bool,
    /// The named vectors and where they sit.
    pub marks: Vec<Mark>,
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Refuses vectors that span no line or plane: not 2 or 3 of them, of different lengths, two equal,
/// or three on one line (the part of c - a orthogonal to b - a below 1e-6 of |c - a|: f32 rounding, not
/// a direction, which the orthonormal axes would blow up to a unit length). `labels` name them.
fn check_vectors(vectors: &[&[f32]], labels: &[String]) -> Result<usize> {
    if !(2..=3).contains(&vectors.len()) {
        bail!("a line needs 2 vectors and a plane 3, got {}", vectors.len());
    }
    let n = vectors[0].len();
    if vectors.iter().any(|v| v.len() != n) {
        bail!("the vectors differ in length");
    }
    for i in 0..vectors.len() {
        for j in i + 1..vectors.len() {
            if vectors[i] == vectors[j] {
                bail!(
                    "vectors {} and {} are equal, so they span no direction; name two different vectors",
                    labels[i],
                    labels[j]
                );
            }
        }
    }
    if vectors.len() == 3 {
        let a = f64s(vectors[0]);
        let diff = |v: &[f32]| v.iter().zip(&a).map(|(&x, y)| x as f64 - y).collect::<Vec<f64>>();
        let (u, w) = (diff(vectors[1]), diff(vectors[2]));
        let (uu, ww, uw) = (dot(&u, &u), dot(&w, &w), dot(&u, &w));
        // |w|² sin² of the angle between u and w, relative to |w|²
        let off_line = (1.0 - uw * uw / (uu * ww)).max(0.0);
        if off_line.is_nan() || off_line.sqrt() < 1e-6 {
            bail!(
                "vectors {}, {} and {} lie on one line (to f32 rounding), so they span no plane; name a third vector \
                 off the line of the first two",
                labels[0],
                labels[1],
                labels[2]
            );
        }
    }
    Ok(n)
}

impl Plane {
    /// The line w = a + x (b - a) or plane w = a + x (b - a) + y (c - a) through `vectors` = [a, b] or
    /// [a, b, c], with marks `labels` at (0, 0), (1, 0) and (0, 1).
    ///
    /// Errors: not 2 or 3 vectors, different lengths, two equal vectors, or three on one line.
    pub fn through(vectors: &[&[f32]], labels: &[String]) -> Result<Plane> {
        check_vectors(vectors, labels)?;
        let at = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)];
        Ok(Plane {
            basis: vectors.iter().map(|v| f64s(v)).collect(),
            affine: true,
            marks: labels.iter().zip(at).map(|(l, (x, y))| Mark { label: l.clone(), x, y }).collect(),
        })
    }

    /// Garipov et al.'s axes of the same line or plane: origin a, u = (b - a) / |b - a| and, for a plane,
    /// v = the part of c - a orthogonal to u, normalised (Gram-Schmidt). Coordinates are Euclidean
    /// distances: b sits at (|b - a|, 0) and c at ((c - a).u, (c - a).v).
    ///
    /// Errors: as [`Plane::through`].
    pub fn orthonormal(vectors: &[&[f32]], labels: &[String]) -> Result<Plane> {
        check_vectors(vectors, labels)?;
        let a = f64s(vectors[0]);
        let diff = |v: &[f32]| v.iter().zip(&a).map(|(&x, y)| x as f64 - y).collect::<Vec<f64>>();
        let mut u = diff(vectors[1]);
        let c_minus_a = (vectors.len() == 3).then(|| diff(vectors[2]));
        let nu = dot(&u, &u).sqrt();
        u.iter_mut().for_each(|x| *x /= nu);
        let mut marks = vec![Mark { label: labels[0].clone(), x: 0.0, y: 0.0 }];
        marks.push(Mark { label: labels[1].clone(), x: nu, y: 0.0 });
        let mut basis = vec![a, u];
        if let Some(mut v) = c_minus_a {
            let along = dot(&v, &basis[1]);
            v.iter_mut().zip(&basis[1]).for_each(|(x, u)| *x -= along * u);
            let nv = dot(&v, &v).sqrt();
            if nv.is_nan() || nv <= 1e-9 * nu {
                bail!("the three vectors lie on one line, so they span no plane");
            }
            v.iter_mut().for_each(|x| *x /= nv);
            marks.push(Mark { label: labels[2].clone(), x: along, y: nv });
            basis.push(v);
        }
        Ok(Plane { basis, affine: false, marks })
    }

    /// `count` (1 or 2) random directions around `origin`, as Li et al. 2018 draw them: each entry
    /// N(0, 1) (ChaCha8 with `seed`, stream k for direction k), then [`filter_normalise`]d against
    /// `origin` with the tensor layout `specs`. The origin is marked `label` at (0, 0).
    ///
    /// Errors: `count` not 1 or 2; `origin` not as long as `specs` say.
    pub fn random(
        specs: &[TensorSpec],
        origin: &[f32],
        count: usize,
        seed: u64,
        biases: Biases,
        label: &str,
    ) -> Result<Plane> {
        if !(1..=2).contains(&count) {
            bail!("--random takes 1 (a line) or 2 (a plane) directions, got {count}");
        }
        let mut basis = vec![f64s(origin)];
        for k in 0..count {
            let mut d = gaussian(origin.len(), seed, k as u64);
            filter_normalise(specs, origin, &mut d, biases)?;
            basis.push(d);
        }
        Ok(Plane { basis, affine: false, marks: vec![Mark { label: label.to_string(), x: 0.0, y: 0.0 }] })
    }

    /// 1 for a line, 2 for a plane.
    pub fn dims(&self) -> usize {
        self.basis.len() - 1
    }

    /// Length of a weight vector.
    pub fn len(&self) -> usize {
        self.basis[0].len()
    }

    /// Never true for a plane built by the constructors (they need non-empty vectors to differ).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Direction `k` (0-based) as w(x, y) moves along it: b - a (affine) or the stored direction.
    pub fn direction(&self, k: usize) -> Vec<f64> {
        if self.affine {
            self.basis[k + 1].iter().zip(&self.basis[0]).map(|(b, a)| b - a).collect()
        } else {
            self.basis[k + 1].clone()
        }
    }

    /// Writes w(x, y) into `out` (length [`Plane::len`]); `y` is ignored on a line. Computed in f64,
    /// rounded once to f32.
    pub fn point(&self, x: f64, y: f64, out: &mut [f32]) {
        let (c0, y) = match (self.affine, self.dims()) {
            (true, 1) => (1.0 - x, 0.0),
            (true, _) => (1.0 - x - y, y),
            (false, 1) => (1.0, 0.0),
            (false, _) => (1.0, y),
        };
        let b = &self.basis;
        match self.dims() {
            1 => out.iter_mut().enumerate().for_each(|(i, o)| *o = (c0 * b[0][i] + x * b[1][i]) as f32),
            _ => out.iter_mut().enumerate().for_each(|(i, o)| *o = (c0 * b[0][i] + x * b[1][i] + y * b[2][i]) as f32),
        }
    }
}

/// `n` standard normal values (Box-Muller on ChaCha8 uniforms), reproducible from `seed` and `stream`.
pub fn gaussian(n: usize, seed: u64, stream: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push(r * t.cos());
        out.push(r * t.sin());
    }
    out.truncate(n);
    out
}

/// Filter-wise normalisation (Li et al. 2018, Sec. 4): for every tensor of two or more dimensions, each
/// filter (slice along the first dimension: an output unit's row of a dense layer, an output channel of
/// a convolution, a gate unit's row of an LSTM matrix) of `direction` is rescaled to the norm of the
/// same filter of `weights`, d_f <- d_f |w_f| / (|d_f| + 1e-10) as their code does. One-dimensional
/// tensors (biases) get the weights' values (`Biases::Copy`) or 0 (`Biases::Ignore`).
///
/// Errors: `weights` or `direction` not as long as the tensors of `specs`.
pub fn filter_normalise(specs: &[TensorSpec], weights: &[f32], direction: &mut [f64], biases: Biases) -> Result<()> {
    let total: usize = specs.iter().map(TensorSpec::len).sum();
    if weights.len() != total || direction.len() != total {
        bail!(
            "the tensors hold {total} values, but the weights have {} and the direction {}",
            weights.len(),
            direction.len()
        );
    }
    let mut off = 0;
    for t in specs {
        let (w, d) = (&weights[off..off + t.len()], &mut direction[off..off + t.len()]);
        off += t.len();
        if t.shape.len() <= 1 {
            match biases {
                Biases::Copy => d.iter_mut().zip(w).for_each(|(d, &w)| *d = w as f64),
                Biases::Ignore => d.fill(0.0),
            }
            continue;
        }
        let per = t.len() / t.shape[0].max(1);
        if per == 0 {
            continue;
        }
        for (df, wf) in d.chunks_mut(per).zip(w.chunks(per)) {
            let nw = wf.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let nd = df.iter().map(|x| x * x).sum::<f64>().sqrt();
            let s = nw / (nd + 1e-10);
            df.iter_mut().for_each(|x| *x *= s);
        }
    }
    Ok(())
}

/// The Euclidean norm of every filter of `v` in the order [`filter_normalise`] visits them (slices
/// along the first dimension of each tensor of two or more dimensions; one-dimensional tensors count as
/// one filter each). For checks and reports.
///
/// Errors: `v` not as long as the tensors of `specs`.
pub fn filter_norms(specs: &[TensorSpec], v: &[f64]) -> Result<Vec<f64>> {
    let total: usize = specs.iter().map(TensorSpec::len).sum();
    if v.len() != total {
        bail!("the tensors hold {total} values, the vector {}", v.len());
    }
    let mut out = Vec::new();
    let mut off = 0;
    for t in specs {
        let x = &v[off..off + t.len()];
        off += t.len();
        let per = if t.shape.len() <= 1 { t.len() } else { t.len() / t.shape[0].max(1) };
        out.extend(x.chunks(per.max(1)).map(|f| f.iter().map(|a| a * a).sum::<f64>().sqrt()));
    }
    Ok(out)
}
