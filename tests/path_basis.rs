//! Path points' first layer from the basis rows (`model::Basis`, docs/algorithms.md §2.2): the path
//! losses and the coefficient gradient through the basis against the points' own first layer, in one
//! and several pairs and chunks; the networks and point counts that take the plain path; Adam
//! iterations with and without it. On the device the suite chooses (`LOSSCAPE_BACKEND`: the CPU backend
//! in the default pass, wgpu in the vulkan pass).

mod common;

use common::{gpu, mnist};
use losscape::data::{DeviceImages, Split};
use losscape::model::{Arch, FirstLayer, Network};
use losscape::ops::Act;
use losscape::path::{Curve, PathFinder, PathOptions, PathSettings};

const IMAGES: usize = 150;

/// Deterministic values of size about `scale` (phase `seed`).
fn wave(n: usize, scale: f32, seed: f32) -> Vec<f32> {
    (0..n).map(|i| scale * ((i as f32 * 0.37 + seed).sin() + 0.5 * (i as f32 * 0.011).cos())).collect()
}

fn finder(arch: Arch, s: PathSettings, curve: Curve, pairs: usize, options: PathOptions) -> PathFinder {
    let images = DeviceImages::upload(&gpu(), &mnist(Split::Train, IMAGES)).unwrap();
    let net = Network { arch, act: Act::Softplus };
    PathFinder::configured(net, &images, 0..IMAGES, (s, curve, pairs), options).unwrap()
}

/// The two finders of `arch`: through the basis and plain, on chunks of at most `chunk` images.
fn both(arch: Arch, s: PathSettings, pairs: usize, chunk: Option<usize>) -> [PathFinder; 2] {
    let through = finder(arch, s, Curve::Fourier, pairs, PathOptions { chunk, basis_first_layer: true });
    let plain = finder(arch, s, Curve::Fourier, pairs, PathOptions { chunk, basis_first_layer: false });
    assert_eq!(through.first_layer(), FirstLayer::BasisAndGradient, "{arch:?}: the first layer is dense on the images");
    assert_eq!(plain.first_layer(), FirstLayer::Points);
    [through, plain]
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

/// Bent paths (nonzero coefficients) of `pairs` pairs: per-point losses and the coefficient gradient
/// through the basis agree with the plain evaluation to f32 accuracy.
fn losses_and_gradient_match(arch: Arch, pairs: usize, chunk: Option<usize>) {
    let s = PathSettings { fourier: 3, points: 7, lambda: 1e-3, lr: 1e-3, iterations: 1 };
    let fs = both(arch, s, pairs, chunk);
    let n = arch.n_params();
    let ends: Vec<(Vec<f32>, Vec<f32>)> =
        (0..pairs).map(|p| (wave(n, 0.05, p as f32), wave(n, 0.05, 10.0 + p as f32))).collect();
    let ends: Vec<(&[f32], &[f32])> = ends.iter().map(|(a, b)| (&a[..], &b[..])).collect();
    let coef = wave(pairs * s.fourier * n, 0.02, 4.2);
    let [(l_b, g_b), (l_p, g_p)] = fs.map(|f| {
        f.start_pairs(&ends, Some(&coef)).unwrap();
        (f.evaluate(true).unwrap(), f.coefficient_gradient().unwrap())
    });
    assert_eq!(l_b.len(), pairs * s.points);
    for (m, (a, b)) in l_b.iter().zip(&l_p).enumerate() {
        assert!(b.is_finite() && rel(*a, *b) < 1e-5, "{arch:?} P {pairs} chunk {chunk:?} point {m}: {a} vs {b}");
    }
    let block = s.fourier * n;
    for (p, (gb, gp)) in g_b.chunks(block).zip(g_p.chunks(block)).enumerate() {
        let max = gp.iter().fold(0f32, |m, g| m.max(g.abs())) as f64;
        let worst = gb.iter().zip(gp).map(|(a, b)| (*a as f64 - *b as f64).abs()).fold(0.0, f64::max);
        assert!(max > 0.0 && worst <= 1e-5 * max, "{arch:?} P {pairs} chunk {chunk:?} pair {p}: {worst} of {max}");
    }
}

#[test]
fn fcp_path_through_the_basis_matches_the_points_in_one_and_several_pairs_and_chunks() {
    losses_and_gradient_match(Arch::Fcp, 1, None);
    losses_and_gradient_match(Arch::Fcp, 2, Some(64));
}

#[test]
fn autoencoder_path_through_the_basis_matches_the_points() {
    losses_and_gradient_match(Arch::Autoencoder, 2, None);
    losses_and_gradient_match(Arch::Autoencoder, 1, Some(64));
}

#[test]
fn a_compact_mlp_with_biases_takes_its_path_points_through_the_basis() {
    let arch = Arch::parse("mlp:784-64-10:tanh").unwrap();
    losses_and_gradient_match(arch, 1, Some(64));
    losses_and_gradient_match(arch, 2, None);
}

#[test]
fn lenet_and_too_few_points_take_the_points_first_layer_and_bends_take_the_basis() {
    let s = PathSettings { fourier: 3, points: 7, lambda: 1e-3, lr: 1e-3, iterations: 1 };
    let lenet = finder(Arch::Lenet, s, Curve::Fourier, 1, PathOptions::default());
    assert_eq!(lenet.first_layer(), FirstLayer::Points, "a convolution first");
    // 10 Fourier terms make 12 basis rows: more products of the images than 5 points take
    let few = PathSettings { fourier: 10, points: 5, ..s };
    assert_eq!(finder(Arch::Fcp, few, Curve::Fourier, 1, PathOptions::default()).first_layer(), FirstLayer::Points);
    assert_eq!(finder(Arch::Fcp, few, Curve::Fourier, 2, PathOptions::default()).first_layer(), FirstLayer::Points);
    // a Bezier path has 3 basis rows: 5 points pay
    assert_eq!(
        finder(Arch::Fcp, few, Curve::Bezier, 1, PathOptions::default()).first_layer(),
        FirstLayer::BasisAndGradient
    );
}

#[test]
fn adam_iterations_with_and_without_the_basis_agree() {
    let arch = Arch::Fcp;
    let s = PathSettings { fourier: 3, points: 7, lambda: 1e-4, lr: 0.02, iterations: 4 };
    let n = arch.n_params();
    let (a, b) = (wave(n, 0.08, 1.0), wave(n, 0.08, 7.0));
    let ends = [(&a[..], &b[..]), (&b[..], &a[..])];
    let [through, plain] = both(arch, s, 2, Some(64)).map(|f| {
        let mut sums = Vec::new();
        let out = f.run_pairs(&ends, true, |p, k, sum| sums.push((p, k, sum))).unwrap();
        (sums, out)
    });
    assert_eq!(through.0.len(), 2 * s.iterations);
    for (x, y) in through.0.iter().zip(&plain.0) {
        assert_eq!((x.0, x.1), (y.0, y.1));
        assert!(rel(x.2, y.2) < 1e-5, "pair {} iteration {}: {} vs {}", x.0, x.1, x.2, y.2);
    }
    assert!(through.0[7].2 < through.0[1].2, "Adam lowers the path's loss: {:?}", through.0);
    for (x, y) in through.1.iter().zip(&plain.1) {
        assert_eq!(x.best_iteration, y.best_iteration);
        let (cx, cy) = (x.coefficients.as_ref().unwrap(), y.coefficients.as_ref().unwrap());
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let diff: Vec<f32> = cx.iter().zip(cy).map(|(u, v)| u - v).collect();
        let max = cy.iter().fold(0f32, |m, c| m.max(c.abs()));
        let far = diff.iter().filter(|d| d.abs() > 1e-3 * max).count();
        let rel_norm = norm(&diff) / norm(cy);
        assert!(rel_norm <= 1e-4 && far * 1000 < diff.len(), "the best coefficients agree: {rel_norm}, {far} far");
    }
}
