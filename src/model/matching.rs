//! Weight matching (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin", Algorithm 1): permute the hidden
//! units of B so that it lies as close as possible to A, i.e. maximise sum_tensors <A, P(B)> (equivalently
//! minimise |A - P(B)|, since permutations keep norms), one unit group at a time.
//!
//! For a group g, with every other permutation fixed at its current value, the terms of the objective
//! that depend on P_g form a linear assignment problem: `C[i][j]` = sum over the tensors and axes that g
//! permutes of <A[.., i, ..], B'[.., j, ..]>, where B' is B under the current permutations. It is solved
//! exactly by the Kuhn-Munkres (Hungarian) algorithm of the `pathfinding` crate. Groups are visited in
//! a seeded random order, sweep after sweep, until a sweep changes nothing. Unlike the reference
//! implementation, a group's new permutation is kept only when the full objective strictly increases:
//! for the LSTM's W_hh, permuted by the same group on both axes, the assignment problem is only a
//! linearisation, and the check makes the objective monotone, so the aligned distance is never above
//! the unaligned one and the iteration always ends.

use anyhow::{bail, Result};
use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::symmetry::{PermutedTensor, Symmetry};
use super::Arch;

/// Settings of weight matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MatchSettings {
    /// Upper bound on sweeps over all groups (each sweep solves one assignment per group).
    pub max_sweeps: usize,
    /// Seed of the order in which each sweep visits the groups.
    pub seed: u64,
}

impl Default for MatchSettings {
    fn default() -> Self {
        MatchSettings { max_sweeps: 100, seed: 0 }
    }
}

/// The result of aligning B onto A.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Matching {
    /// One permutation per unit group (`Symmetry::groups` order): unit i of the aligned vector is unit
    /// `perms[g][i]` of B.
    pub perms: Vec<Vec<usize>>,
    /// B with its units permuted: the same function as B.
    #[serde(skip)]
    pub aligned: Vec<f32>,
    /// |A - B| (L2, computed in f64).
    pub distance_before: f64,
    /// |A - aligned|.
    pub distance_after: f64,
    /// Sweeps run (the last one changed nothing, unless `max_sweeps` was reached).
    pub sweeps: usize,
}

/// Euclidean distance in f64 (over the common length; callers check that the lengths agree).
pub fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>().sqrt()
}

fn inner(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Adds to `c` (size x size) the similarities of tensor `t` along `axis`: C[i][j] += sum over the
/// other coordinates of A[.., i, ..] * B[.., j, ..].
fn add_similarity(c: &mut [f64], t: &PermutedTensor, axis: usize, a: &[f32], b: &[f32]) {
    let size = t.axes[axis].0;
    let pre: usize = t.axes[..axis].iter().map(|x| x.0).product();
    let post: usize = t.axes[axis + 1..].iter().map(|x| x.0).product();
    let (a, b) = (&a[t.offset..t.offset + t.len()], &b[t.offset..t.offset + t.len()]);
    for p in 0..pre {
        let block = p * size * post;
        for i in 0..size {
            let ai = &a[block + i * post..block + (i + 1) * post];
            for j in 0..size {
                let bj = &b[block + j * post..block + (j + 1) * post];
                c[i * size + j] += inner(ai, bj);
            }
        }
    }
}

/// The maximum-weight perfect matching of the square matrix `c` (row-major, n x n): `result[i]` is the
/// column of row i. `kuhn_munkres` needs an exactly ordered weight type (it compares slacks with zero),
/// so the f64 similarities are rounded to i64 after scaling the largest to 2^40: 40 bits of relative
/// resolution, and sums of n <= 2^20 such terms stay far from i64 overflow.
fn assignment(c: &[f64], n: usize) -> Vec<usize> {
    let max = c.iter().fold(0f64, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        return (0..n).collect();
    }
    let scale = (1u64 << 40) as f64 / max;
    let weights = c.iter().map(|v| (v * scale).round() as i64).collect();
    let m = Matrix::from_vec(n, n, weights).expect("an n x n matrix has n * n values");
    kuhn_munkres(&m).1
}

/// Aligns `b` onto `a` by weight matching.
///
/// # Errors
/// Either vector is not of `arch`'s length, or holds a non-finite value.
pub fn weight_matching(arch: Arch, a: &[f32], b: &[f32], settings: MatchSettings) -> Result<Matching> {
    let n = arch.n_params();
    if a.len() != n || b.len() != n {
        bail!("a {} vector has {n} parameters; A has {}, B {}", arch.title(), a.len(), b.len());
    }
    if let Some(i) = a.iter().chain(b).position(|v| !v.is_finite()) {
        bail!("{} holds a non-finite value at index {}", if i < n { "A" } else { "B" }, i % n);
    }
    let sym = Symmetry::of(arch);
    let mut perms = sym.identity();
    let mut current = b.to_vec();
    let mut objective = inner(a, &current);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut order: Vec<usize> = (0..sym.groups.len()).collect();
    let mut sweeps = 0;
    while sweeps < settings.max_sweeps {
        sweeps += 1;
        order.shuffle(&mut rng);
        let mut changed = false;
        for &g in &order {
            let size = sym.groups[g].size;
            let mut c = vec![0.0; size * size];
            for t in &sym.tensors {
                for (axis, _) in t.axes.iter().enumerate().filter(|(_, x)| x.1 == Some(g)) {
                    add_similarity(&mut c, t, axis, a, &current);
                }
            }
            // q matches A's unit i with unit q[i] of the current B'
            let q = assignment(&c, size);
            if q.iter().enumerate().all(|(i, &j)| i == j) {
                continue;
            }
            let mut candidate = perms.clone();
            candidate[g] = q.iter().map(|&j| perms[g][j]).collect();
            let moved = sym.apply(b, &candidate)?;
            let value = inner(a, &moved);
            if value > objective {
                (perms, current, objective, changed) = (candidate, moved, value, true);
            }
        }
        if !changed {
            break;
        }
    }
    Ok(Matching {
        distance_before: distance(a, b),
        distance_after: distance(a, &current),
        aligned: current,
        perms,
        sweeps,
    })
}
