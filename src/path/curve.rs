//! Curve families between two solutions a and b. Every family is written as the straight line plus
//! bumps that vanish at both ends,
//!
//!   w(t) = (1 - t) a + t b + sum_k phi_k(t) c_k,   phi_k(0) = phi_k(1) = 0 exactly,
//!
//! so one path finder (linear in the free vectors c_k) serves all of them:
//! - Fourier (Yu & Morozov, Eq. 4): phi_k(t) = sin(k pi t), k = 1..N_F.
//! - Quadratic Bezier with one bend theta (Garipov et al. 2018, Eq. 3):
//!   w(t) = (1-t)^2 a + 2t(1-t) theta + t^2 b. With theta = (a+b)/2 + c this is the straight line plus
//!   phi(t) = 2t(1-t) times c.
//! - Polygonal chain with one bend theta at t = 1/2 (Garipov et al. 2018, Eq. 2): a -> theta -> b,
//!   each segment at constant speed. With theta = (a+b)/2 + c, phi(t) = 2 min(t, 1-t) (a hat).
//!
//! Starting from c = 0 every family starts as the straight line (Garipov's linear initialisation of
//! the bend, theta = (a+b)/2).

use serde::{Deserialize, Serialize};

/// A curve family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Curve {
    /// Straight line plus N_F sine terms (the paper's path).
    #[default]
    Fourier,
    /// Quadratic Bezier curve with one bend (Garipov et al. 2018).
    Bezier,
    /// Polygonal chain with one bend at t = 1/2 (Garipov et al. 2018).
    Polychain,
}

impl Curve {
    /// The command-line and JSON name.
    pub fn id(self) -> &'static str {
        match self {
            Curve::Fourier => "fourier",
            Curve::Bezier => "bezier",
            Curve::Polychain => "polychain",
        }
    }

    /// Number of free vectors c_k: `fourier` for the Fourier family, one bend otherwise.
    pub fn terms(self, fourier: usize) -> usize {
        match self {
            Curve::Fourier => fourier,
            Curve::Bezier | Curve::Polychain => 1,
        }
    }

    /// phi_k(t) for k >= 1, exactly 0 at t = 0 and t = 1 so that the endpoints never move.
    pub fn bump(self, k: usize, t: f64) -> f64 {
        if t == 0.0 || t == 1.0 {
            return 0.0;
        }
        match self {
            Curve::Fourier => (k as f64 * std::f64::consts::PI * t).sin(),
            Curve::Bezier => 2.0 * t * (1.0 - t),
            Curve::Polychain => 2.0 * t.min(1.0 - t),
        }
    }

    /// The weights of (a, b, c_1..c_K) in w(t), K = `terms`.
    pub fn basis_weights(self, t: f64, terms: usize) -> Vec<f64> {
        let mut row = vec![1.0 - t, t];
        row.extend((1..=terms).map(|k| self.bump(k, t)));
        row
    }

    /// The bend theta = (a + b)/2 + c of a Bezier or polychain curve (for saving it as Garipov's
    /// parameter); for the Fourier family, `c` itself.
    pub fn bend(self, a: &[f32], b: &[f32], c: &[f32]) -> Vec<f32> {
        match self {
            Curve::Fourier => c.to_vec(),
            Curve::Bezier | Curve::Polychain => {
                a.iter().zip(b).zip(c).map(|((&x, &y), &z)| 0.5 * (x + y) + z).collect()
            }
        }
    }
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

/// The grid matrices of a curve family: T [M x (K+2)] (w(t_m) = T row m * basis), dT [(M-1) x (K+2)]
/// (segment m = dT row m * basis), S [K x M] (d w(t_m) / d c_k) and dS [K x (M-1)] scaled by
/// 2 lambda (the regulariser's share of the chain rule), K = `terms`.
pub(super) fn grid_matrices(curve: Curve, terms: usize, points: usize, lambda: f64) -> [Vec<f32>; 4] {
    let (m, f2) = (points, terms + 2);
    let times = point_times(m);
    let t_mat: Vec<f64> = times.iter().flat_map(|&t| curve.basis_weights(t, terms)).collect();
    let dt_mat: Vec<f64> = (0..m - 1)
        .flat_map(|i| (0..f2).map(move |k| (i, k)))
        .map(|(i, k)| t_mat[(i + 1) * f2 + k] - t_mat[i * f2 + k])
        .collect();
    let s_mat: Vec<f64> = (1..=terms).flat_map(|n| times.iter().map(move |&t| curve.bump(n, t))).collect();
    let ds_mat: Vec<f64> = (1..=terms)
        .flat_map(|n| (0..m - 1).map(move |i| (n, i)))
        .map(|(n, i)| 2.0 * lambda * (curve.bump(n, times[i + 1]) - curve.bump(n, times[i])))
        .collect();
    [f32s(t_mat), f32s(dt_mat), f32s(s_mat), f32s(ds_mat)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Garipov's forms, evaluated directly.
    fn garipov(curve: Curve, a: f64, theta: f64, b: f64, t: f64) -> f64 {
        match curve {
            Curve::Bezier => (1.0 - t).powi(2) * a + 2.0 * t * (1.0 - t) * theta + t * t * b,
            Curve::Polychain if t <= 0.5 => a + 2.0 * t * (theta - a),
            Curve::Polychain => theta + (2.0 * t - 1.0) * (b - theta),
            Curve::Fourier => unreachable!(),
        }
    }

    #[test]
    fn bend_form_equals_garipovs_curves_and_ends_are_exact() {
        let (a, b, c) = (0.3, -1.7, 0.9);
        for curve in [Curve::Bezier, Curve::Polychain] {
            for m in 0..=20 {
                let t = m as f64 / 20.0;
                let w = curve.basis_weights(t, 1);
                let ours = w[0] * a + w[1] * b + w[2] * c;
                let theirs = garipov(curve, a, 0.5 * (a + b) + c, b, t);
                assert!((ours - theirs).abs() < 1e-12, "{curve:?} t={t}: {ours} vs {theirs}");
            }
            assert_eq!(curve.basis_weights(0.0, 1), vec![1.0, 0.0, 0.0]);
            assert_eq!(curve.basis_weights(1.0, 1), vec![0.0, 1.0, 0.0]);
            assert_eq!(curve.terms(10), 1);
        }
        assert_eq!(Curve::Fourier.terms(10), 10);
        assert_eq!(Curve::Polychain.bend(&[1.0], &[3.0], &[0.5]), vec![2.5]);
    }
}
