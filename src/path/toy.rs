//! The 2-D toy landscape of Fig. 3 (docs/algorithms.md §7), in f64 on the CPU: two Gaussian wells
//! separated by two bumps, a straight path between the wells and Fourier paths optimised with Adam (the
//! update rule of [`crate::optim::adam`], on the host) for several lambda.

// Index loops mirror the gradient formulas.
#![allow(clippy::needless_range_loop)]

use serde::Serialize;

use super::curve::sine;
use crate::optim::adam::{host_step, AdamSettings};

/// f(x, y) of the paper's Fig. 3.
pub fn f(p: [f64; 2]) -> f64 {
    let [x, y] = p;
    -(-3.0 * ((x - 0.5).powi(2) + y * y)).exp() - (-3.0 * ((x + 0.5).powi(2) + (y + 0.5).powi(2))).exp()
        + (-15.0 * ((x + 0.2).powi(2) + (y + 0.4).powi(2))).exp()
        + (-15.0 * (x * x + (y - 0.3).powi(2))).exp()
        + 1.0190055296306975
}

/// The gradient of f.
pub fn grad_f(p: [f64; 2]) -> [f64; 2] {
    let [x, y] = p;
    let g = |a: f64, cx: f64, cy: f64, sign: f64| {
        let e = sign * (-a * ((x - cx).powi(2) + (y - cy).powi(2))).exp();
        [-2.0 * a * (x - cx) * e, -2.0 * a * (y - cy) * e]
    };
    let terms = [g(3.0, 0.5, 0.0, -1.0), g(3.0, -0.5, -0.5, -1.0), g(15.0, -0.2, -0.4, 1.0), g(15.0, 0.0, 0.3, 1.0)];
    terms.iter().fold([0.0, 0.0], |acc, t| [acc[0] + t[0], acc[1] + t[1]])
}

pub const START: [f64; 2] = [-0.62, -0.54];
pub const END: [f64; 2] = [0.49, -0.02];

/// Settings of the toy (docs/algorithms.md §7; why these: docs/decisions.md #9–#10).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ToySettings {
    pub points: usize,
    pub fourier: usize,
    pub lr: f64,
    pub iterations: usize,
}

impl Default for ToySettings {
    fn default() -> Self {
        ToySettings { points: 100, fourier: 10, lr: 0.01, iterations: 300 }
    }
}

/// A path through the toy landscape.
#[derive(Clone, Debug, Serialize)]
pub struct ToyPath {
    /// None for the straight line.
    pub lambda: Option<f64>,
    pub points: Vec<[f64; 2]>,
    pub values: Vec<f64>,
    pub height: f64,
}

fn path_points(coef: &[[f64; 2]], times: &[f64]) -> Vec<[f64; 2]> {
    times
        .iter()
        .map(|&t| {
            let mut p = [(1.0 - t) * START[0] + t * END[0], (1.0 - t) * START[1] + t * END[1]];
            for (n, c) in coef.iter().enumerate() {
                let s = sine(n + 1, t);
                p[0] += c[0] * s;
                p[1] += c[1] * s;
            }
            p
        })
        .collect()
}

fn finish(lambda: Option<f64>, points: Vec<[f64; 2]>) -> ToyPath {
    let values: Vec<f64> = points.iter().map(|&p| f(p)).collect();
    let height = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    ToyPath { lambda, points, values, height }
}

/// The straight line from START to END.
pub fn straight(s: ToySettings) -> ToyPath {
    finish(None, path_points(&[], &crate::path::curve::point_times(s.points)))
}

/// Minimises sum_m f(w_m)^2 + lambda sum_m |w_{m+1} - w_m|^2 over the Fourier coefficients with Adam
/// (PyTorch semantics), from zero coefficients; returns the final path.
pub fn optimise(lambda: f64, s: ToySettings) -> ToyPath {
    let times = crate::path::curve::point_times(s.points);
    let sines: Vec<Vec<f64>> = (1..=s.fourier).map(|n| times.iter().map(|&t| sine(n, t)).collect()).collect();
    let mut coef = vec![[0.0; 2]; s.fourier];
    let (mut m, mut v) = (vec![[0.0; 2]; s.fourier], vec![[0.0; 2]; s.fourier]);
    let adam = AdamSettings { lr: s.lr };
    for step in 1..=s.iterations {
        let w = path_points(&coef, &times);
        let mut grad = vec![[0.0; 2]; s.fourier];
        for (idx, &p) in w.iter().enumerate() {
            let (fv, gf) = (f(p), grad_f(p));
            for n in 0..s.fourier {
                for d in 0..2 {
                    grad[n][d] += 2.0 * fv * gf[d] * sines[n][idx];
                }
            }
        }
        for idx in 0..w.len() - 1 {
            for n in 0..s.fourier {
                let ds = sines[n][idx + 1] - sines[n][idx];
                for d in 0..2 {
                    grad[n][d] += 2.0 * lambda * (w[idx + 1][d] - w[idx][d]) * ds;
                }
            }
        }
        let at = adam.at(step);
        for n in 0..s.fourier {
            for d in 0..2 {
                host_step(at, grad[n][d], &mut coef[n][d], &mut m[n][d], &mut v[n][d]);
            }
        }
    }
    finish(Some(lambda), path_points(&coef, &times))
}

/// The straight line and the optimised paths for each lambda.
pub fn run(lambdas: &[f64], s: ToySettings) -> Vec<ToyPath> {
    std::iter::once(straight(s)).chain(lambdas.iter().map(|&l| optimise(l, s))).collect()
}
