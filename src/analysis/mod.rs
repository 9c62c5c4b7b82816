//! Statistics of solution sets, in f64: weight mean and spread (Table S1), L2 distances to a
//! common origin (Fig. 5, S3), RBF kernel PCA (Fig. 6, S4), and path-height summaries.

pub mod stats;

use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;

/// Mean and standard deviation of all the numbers of a set's vectors, concatenated (Table S1).
pub fn weight_stats(vectors: &[&[f32]]) -> (f64, f64) {
    let count: usize = vectors.iter().map(|v| v.len()).sum();
    let mean = vectors.iter().flat_map(|v| v.iter()).map(|&x| x as f64).sum::<f64>() / count as f64;
    let var = vectors.iter().flat_map(|v| v.iter()).map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / count as f64;
    (mean, var.sqrt())
}

fn centroid(vectors: &[&[f32]]) -> Vec<f64> {
    let n = vectors[0].len();
    let mut c = vec![0.0; n];
    for v in vectors {
        for (a, &x) in c.iter_mut().zip(v.iter()) {
            *a += x as f64;
        }
    }
    c.iter_mut().for_each(|a| *a /= vectors.len() as f64);
    c
}

fn distance(v: &[f32], c: &[f64]) -> f64 {
    v.iter().zip(c).map(|(&x, y)| (x as f64 - y).powi(2)).sum::<f64>().sqrt()
}

/// L2 distances of two sets' vectors to the common origin (the midpoint of the two centroids), and
/// the distance of either centroid to it (half the centroid distance).
#[derive(Clone, Debug, Serialize)]
pub struct Distances {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub centroid: f64,
}

pub fn distances_to_common_origin(a: &[&[f32]], b: &[&[f32]]) -> Distances {
    let (ca, cb) = (centroid(a), centroid(b));
    let origin: Vec<f64> = ca.iter().zip(&cb).map(|(x, y)| 0.5 * (x + y)).collect();
    let half = ca.iter().zip(&origin).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    Distances {
        a: a.iter().map(|v| distance(v, &origin)).collect(),
        b: b.iter().map(|v| distance(v, &origin)).collect(),
        centroid: half,
    }
}

/// The distance between the centroids of two sets over their within-set spread, the root-mean-square
/// distance of every vector to its own set's centroid: how far apart the sets sit compared with how
/// widely each scatters (a multivariate standardised mean difference with an isotropic spread). NaN
/// when every vector equals its centroid.
pub fn centroid_ratio(a: &[&[f32]], b: &[&[f32]]) -> f64 {
    let (ca, cb) = (centroid(a), centroid(b));
    let between = ca.iter().zip(&cb).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let within: f64 =
        a.iter().map(|v| distance(v, &ca).powi(2)).chain(b.iter().map(|v| distance(v, &cb).powi(2))).sum();
    let rms = (within / (a.len() + b.len()) as f64).sqrt();
    if rms > 0.0 {
        between / rms
    } else {
        f64::NAN
    }
}

/// The top components of an RBF kernel PCA.
#[derive(Clone, Debug, Serialize)]
pub struct KernelPca {
    /// Eigenvalues of the centred kernel, largest first.
    pub eigenvalues: Vec<f64>,
    /// Projections of every input point on the components: points x components.
    pub projections: Vec<Vec<f64>>,
}

/// RBF kernel PCA with K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2)), 2 sigma^2 = `two_sigma_sq` (N_prm in
/// the paper), centred kernel, `components` components; projections sqrt(lambda) alpha with each
/// eigenvector's largest-magnitude entry positive (sklearn's convention), all in f64.
///
/// Degenerate sets (identical vectors, coinciding sets) have zero eigenvalues: an eigenvalue within
/// rounding of zero (below 1e-12 times the point count, the kernel's entries being at most 1) counts
/// as zero, and its component projects every point to 0, so the result is always finite.
pub fn kernel_pca(points: &[&[f32]], two_sigma_sq: f64, components: usize) -> KernelPca {
    let n = points.len();
    if n == 0 {
        return KernelPca { eigenvalues: Vec::new(), projections: Vec::new() };
    }
    let zero = 1e-12 * n as f64;
    let mut k = DMatrix::<f64>::zeros(n, n);
    for i in 0..n {
        for j in i..n {
            let d2: f64 = points[i].iter().zip(points[j].iter()).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
            let v = (-d2 / two_sigma_sq).exp();
            k[(i, j)] = v;
            k[(j, i)] = v;
        }
    }
    let row_means: Vec<f64> = (0..n).map(|i| k.row(i).sum() / n as f64).collect();
    let all_mean = row_means.iter().sum::<f64>() / n as f64;
    let kc = DMatrix::from_fn(n, n, |i, j| k[(i, j)] - row_means[i] - row_means[j] + all_mean);
    let eig = SymmetricEigen::new(kc);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut eigenvalues = Vec::new();
    let mut projections = vec![Vec::new(); n];
    for &c in order.iter().take(components) {
        let lambda = eig.eigenvalues[c];
        let lambda = if lambda.is_finite() && lambda > zero { lambda } else { 0.0 };
        let mut alpha: Vec<f64> = eig.eigenvectors.column(c).iter().copied().collect();
        let big = alpha.iter().cloned().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        if big < 0.0 {
            alpha.iter_mut().for_each(|v| *v = -*v);
        }
        eigenvalues.push(lambda);
        for (p, a) in projections.iter_mut().zip(&alpha) {
            let v = lambda.sqrt() * a;
            p.push(if lambda > 0.0 && v.is_finite() { v } else { 0.0 });
        }
    }
    KernelPca { eigenvalues, projections }
}

/// Summary of a list of path heights, barriers or distances (non-finite values left out).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn spread(values: &[f64]) -> Spread {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let count = v.len();
    if count == 0 {
        return Spread { count, mean: f64::NAN, median: f64::NAN, min: f64::NAN, max: f64::NAN };
    }
    let median = if count % 2 == 1 { v[count / 2] } else { 0.5 * (v[count / 2 - 1] + v[count / 2]) };
    Spread { count, mean: v.iter().sum::<f64>() / count as f64, median, min: v[0], max: v[count - 1] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centroid_ratio_by_hand() {
        // centroids (1, 0) and (1, 2): distance 2; every vector lies 1 from its centroid
        let a: [&[f32]; 2] = [&[0.0, 0.0], &[2.0, 0.0]];
        let b: [&[f32]; 2] = [&[0.0, 2.0], &[2.0, 2.0]];
        assert!((centroid_ratio(&a, &b) - 2.0).abs() < 1e-12);
        assert!(centroid_ratio(&a[..1], &a[..1]).is_nan());
    }
}
