//! FourierPathFinder: gradients, endpoints, straight line, and height reduction on every network.
mod common;

use common::{gpu, mnist, to_f64};
use losscape::backend::Rows;
use losscape::data::{Dataset, DeviceImages, Split};
use losscape::model::reference::evaluate;
use losscape::model::{init_vector, Arch, Evaluator, Network, Want};
use losscape::ops::Act;
use losscape::path::curve::point_times;
use losscape::path::{Curve, PathFinder, PathSettings};

/// phi_k(t) of each family, written out from Garipov et al. (Bezier, polychain with theta = (a+b)/2 + c)
/// and the paper (Fourier).
fn bump(curve: Curve, k: usize, t: f64) -> f64 {
    match curve {
        _ if t == 0.0 || t == 1.0 => 0.0,
        Curve::Fourier => (k as f64 * std::f64::consts::PI * t).sin(),
        Curve::Bezier => 2.0 * t * (1.0 - t),
        Curve::Polychain if t <= 0.5 => 2.0 * t,
        Curve::Polychain => 2.0 - 2.0 * t,
    }
}

/// The path objective sum_m L(w(t_m)) + lambda sum_m |w(t_{m+1}) - w(t_m)|^2 in f64.
fn objective(curve: Curve, a: &[f64], b: &[f64], coef: &[f64], s: PathSettings, data: &Dataset) -> f64 {
    let (arch, n) = (Arch::Fcp, a.len());
    let terms = coef.len() / n;
    let points: Vec<Vec<f64>> = point_times(s.points)
        .iter()
        .map(|&t| {
            (0..n)
                .map(|j| {
                    (1.0 - t) * a[j]
                        + t * b[j]
                        + (0..terms).map(|k| coef[k * n + j] * bump(curve, k + 1, t)).sum::<f64>()
                })
                .collect()
        })
        .collect();
    let losses: f64 = points.iter().map(|w| evaluate(arch, w, Act::Softplus, data).loss).sum();
    let reg: f64 = points.windows(2).map(|p| p[0].iter().zip(&p[1]).map(|(x, y)| (y - x).powi(2)).sum::<f64>()).sum();
    losses + s.lambda * reg
}

#[test]
fn coefficient_gradient_equals_finite_differences_of_the_path_objective() {
    for curve in [Curve::Fourier, Curve::Bezier, Curve::Polychain] {
        gradient_matches_finite_differences(curve);
    }
}

fn gradient_matches_finite_differences(curve: Curve) {
    let arch = Arch::Fcp;
    let data = mnist(Split::Train, 12);
    let s = PathSettings { fourier: 2, points: 5, lambda: 0.3, lr: 1e-3, iterations: 1 };
    let a: Vec<f32> = init_vector(arch, 1).iter().map(|x| x * 3.0).collect();
    let b: Vec<f32> = init_vector(arch, 2).iter().map(|x| x * 3.0).collect();
    let coef: Vec<f32> = (0..curve.terms(s.fourier) as u64).flat_map(|k| init_vector(arch, 3 + k)).collect();
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    let net = Network { arch, act: Act::Softplus };
    let finder = PathFinder::with_curve(net, &images, 0..data.len(), s, curve).unwrap();
    finder.start(&a, &b, Some(&coef)).unwrap();
    finder.evaluate(true).unwrap();
    let grad = finder.coefficient_gradient().unwrap();
    let (a64, b64, c64) = (to_f64(&a), to_f64(&b), to_f64(&coef));
    let max_g = grad.iter().fold(0f32, |m, g| m.max(g.abs())) as f64;
    let argmax = grad.iter().enumerate().fold(0, |k, (i, g)| if g.abs() > grad[k].abs() { i } else { k });
    let n = arch.n_params();
    let coords = [argmax, 0, 1000, 39199, 39300, 41800, n - 1, n, n + 20000, n + 41000, 2 * n - 1];
    for &i in coords.iter().filter(|&&i| i < coef.len()) {
        let h = 1e-5;
        let (mut up, mut down) = (c64.clone(), c64.clone());
        up[i] += h;
        down[i] -= h;
        let fd =
            (objective(curve, &a64, &b64, &up, s, &data) - objective(curve, &a64, &b64, &down, s, &data)) / (2.0 * h);
        assert!(
            (fd - grad[i] as f64).abs() <= 2e-4 * max_g,
            "{curve:?} coefficient {i}: GPU {} vs finite differences {fd}",
            grad[i]
        );
    }
}

#[test]
fn endpoints_never_move_and_iteration_zero_is_the_straight_line() {
    for curve in [Curve::Fourier, Curve::Bezier, Curve::Polychain] {
        endpoints_and_straight_start(curve);
    }
}

fn endpoints_and_straight_start(curve: Curve) {
    let arch = Arch::Fcp;
    let data = mnist(Split::Train, 64);
    let s = PathSettings { fourier: 3, points: 7, lambda: 1e-4, lr: 0.05, iterations: 3 };
    let a: Vec<f32> = init_vector(arch, 7).iter().map(|x| x * 3.0).collect();
    let b: Vec<f32> = init_vector(arch, 8).iter().map(|x| x * 3.0).collect();
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    let net = Network { arch, act: Act::Softplus };
    let finder = PathFinder::with_curve(net, &images, 0..data.len(), s, curve).unwrap();
    let out = finder.run(&a, &b, true, |_, _| {}).unwrap();
    assert_eq!(out.coefficients.as_ref().unwrap().len(), curve.terms(s.fourier) * arch.n_params());
    // the straight line, evaluated as plain vectors
    let times = point_times(s.points);
    let line: Vec<f32> =
        times.iter().flat_map(|&t| a.iter().zip(&b).map(move |(x, y)| (1.0 - t as f32) * x + t as f32 * y)).collect();
    let eval = Evaluator::new(net, &images, 0..data.len(), s.points).unwrap();
    eval.set_weights(&line).unwrap();
    eval.run(Want::Loss);
    for (m, r) in eval.results().unwrap().iter().enumerate() {
        let rel = (r.loss - out.straight_losses[m]).abs() / r.loss;
        assert!(rel < 1e-5, "{curve:?} point {m}: eval {} vs path iteration 0 {}", r.loss, out.straight_losses[m]);
    }
    assert_eq!(out.losses[0], out.straight_losses[0]);
    assert_eq!(out.losses[s.points - 1], out.straight_losses[s.points - 1]);
    // whatever the coefficients, w(0) = a and w(1) = b bit for bit
    let coef: Vec<f32> = (0..curve.terms(s.fourier) as u64).flat_map(|k| init_vector(arch, 100 + k)).collect();
    assert!(finder.start(&a, &b, Some(&coef[1..])).is_err(), "coefficients of the wrong length");
    finder.start(&a, &b, Some(&coef)).unwrap();
    let points = finder.points().unwrap();
    let n = arch.n_params();
    assert_eq!(&points[..n], &a[..], "w(0) = a exactly");
    assert_eq!(&points[(s.points - 1) * n..], &b[..], "w(1) = b exactly");
    assert_ne!(&points[n..2 * n], &line[n..2 * n], "inner points follow the coefficients");
}

/// Two low-loss endpoints by full-batch gradient descent on the GPU, from two seeds.
fn trained_pair(net: Network, data: &Dataset, lr: f32, steps: usize) -> (Vec<f32>, Vec<f32>) {
    let arch = net.arch;
    let images = DeviceImages::upload(&gpu(), data).unwrap();
    let eval = Evaluator::new(net, &images, 0..data.len(), 2).unwrap();
    let init: Vec<f32> = [init_vector(arch, 31), init_vector(arch, 32)].concat();
    eval.set_weights(&init).unwrap();
    let n = arch.n_params();
    for _ in 0..steps {
        eval.run(Want::LossAndGrad);
        gpu().axpy(&[-lr, -lr], Rows::new(&eval.grads, 2, n), Rows::new(&eval.weights, 2, n)).unwrap();
    }
    let w: Vec<f32> = gpu().read(&eval.weights, 0, 2 * n).unwrap();
    (w[..n].to_vec(), w[n..].to_vec())
}

/// The same LeNet function with the 120 fc1 units in reverse order: equal loss, a different point.
fn lenet_with_units_reversed(w: &[f32]) -> Vec<f32> {
    let o = Arch::Lenet.offsets();
    let mut p = w.to_vec();
    for j in 0..120 {
        let r = 119 - j;
        p[o[4] + r * 400..o[4] + (r + 1) * 400].copy_from_slice(&w[o[4] + j * 400..o[4] + (j + 1) * 400]);
        p[o[5] + r] = w[o[5] + j];
        for i in 0..84 {
            p[o[6] + i * 120 + r] = w[o[6] + i * 120 + j];
        }
    }
    p
}

fn height_falls(net: Network, a: &[f32], b: &[f32], data: &Dataset, lr: f64) {
    let arch = net.arch;
    let images = DeviceImages::upload(&gpu(), data).unwrap();
    let s = PathSettings { fourier: 4, points: 11, lambda: 1e-4, lr, iterations: 4 };
    let finder = PathFinder::new(net, &images, 0..data.len(), s).unwrap();
    let out = finder.run(a, b, false, |_, _| {}).unwrap();
    let ends = out.straight_losses[0].max(out.straight_losses[s.points - 1]);
    assert!(
        out.straight_height > ends * 1.05,
        "{arch:?}: the straight line has no barrier ({:?})",
        out.straight_losses
    );
    assert!(
        out.height < out.straight_height,
        "{arch:?}: height {} not below the straight line's {}",
        out.height,
        out.straight_height
    );
    assert!(out.best_iteration > 0);
    eprintln!("{arch:?}: straight {} -> {} (iteration {})", out.straight_height, out.height, out.best_iteration);
}

#[test]
fn path_height_falls_below_the_straight_line_for_every_network() {
    let data = mnist(Split::Train, 48);
    for (arch, lr, steps) in [(Arch::Fcp, 0.5, 40), (Arch::Autoencoder, 20.0, 40)] {
        let net = Network { arch, act: Act::Softplus };
        let (a, b) = trained_pair(net, &data, lr, steps);
        height_falls(net, &a, &b, &data, 0.003);
    }
    // LeNet sits on a plateau for many plain gradient steps (softplus longer than ReLU), so the pair is
    // one briefly trained ReLU network and its copy with permuted hidden units: the same loss, with a
    // barrier between them.
    let net = Network { arch: Arch::Lenet, act: Act::Relu };
    let (_, b) = trained_pair(net, &data, 0.3, 50);
    height_falls(net, &b, &lenet_with_units_reversed(&b), &data, 0.003);
}

#[test]
fn lstm_path_between_the_authors_solutions_falls_below_the_straight_line() {
    let w = losscape::io::read_weights(&common::authors_lstm_rows01(), Arch::Lstm).unwrap();
    let data = mnist(Split::Train, 24);
    height_falls(Network { arch: Arch::Lstm, act: Act::Softplus }, w.vector(0), w.vector(1), &data, 0.003);
}
