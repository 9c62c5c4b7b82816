//! The CPU reference against hand-computed cases and finite differences.
mod common;

use losscape::data::{Dataset, Split};
use losscape::gpu::Act;
use losscape::model::reference::{cross_entropy, fcp};
use losscape::model::{init_vector, Arch};

#[test]
fn cross_entropy_hand_computed_cases() {
    // two equal logits: ln 2, gradient (1/2 - 1, 1/2)
    let (l, g) = cross_entropy(&[0.0, 0.0], 0);
    assert!((l - 2f64.ln()).abs() < 1e-15);
    assert!((g[0] + 0.5).abs() < 1e-15 && (g[1] - 0.5).abs() < 1e-15);
    // label not the largest: log(e^1 + e^3) - 1
    let (l, _) = cross_entropy(&[1.0, 3.0], 0);
    assert!((l - ((1f64.exp() + 3f64.exp()).ln() - 1.0)).abs() < 1e-14);
    // tiny loss: margin 25 -> log1p(e^-25) = e^-25 to full precision, no cancellation
    let (l, g) = cross_entropy(&[25.0, 0.0, 0.0], 0);
    let e = (-25f64).exp();
    assert!((l - (2.0 * e).ln_1p()).abs() < 1e-25 && l > 2.7e-11, "{l}");
    assert!((g[0] + 2.0 * e / (1.0 + 2.0 * e)).abs() < 1e-25);
}

#[test]
fn fcp_with_zero_weights_matches_hand_computation() {
    // All logits 0: loss ln 10, accuracy = share of label 0 (argmax picks class 0).
    // dL/dW3[o][i] = mean_n (0.1 - [y_n = o]) * softplus(0); W1, W2 get zero gradient (W3 = 0).
    let data = common::mnist(Split::Test, 20);
    let w = vec![0.0; Arch::Fcp.n_params()];
    let r = fcp(&w, Act::Softplus, &data);
    assert!((r.loss - 10f64.ln()).abs() < 1e-12);
    let zeros = data.labels.iter().filter(|&&l| l == 0).count() as f64;
    assert!((r.accuracy.unwrap() - zeros / 20.0).abs() < 1e-12);
    let ln2 = 2f64.ln();
    for o in 0..10 {
        let share = data.labels.iter().filter(|&&l| l as usize == o).count() as f64 / 20.0;
        for i in [0, 17, 49] {
            let g = r.grad[42200 - 500 + o * 50 + i];
            assert!((g - (0.1 - share) * ln2).abs() < 1e-12, "o={o} i={i}");
        }
    }
    assert!(r.grad[..41700].iter().all(|&g| g == 0.0));
}

fn finite_difference_check(act: Act, data: &Dataset) {
    let w: Vec<f64> = init_vector(Arch::Fcp, 3)
        .iter()
        .map(|&x| x as f64 * 3.0)
        .collect();
    let r = fcp(&w, act, data);
    let h = 1e-6;
    let max_g = r.grad.iter().fold(0f64, |m, g| m.max(g.abs()));
    // coordinates in every layer, including the largest-gradient one
    let argmax = r
        .grad
        .iter()
        .enumerate()
        .fold(0, |b, (i, g)| if g.abs() > r.grad[b].abs() { i } else { b });
    for &i in &[
        argmax, 0, 300, 12345, 39199, 39200, 40000, 41699, 41700, 42199,
    ] {
        let mut wp = w.clone();
        wp[i] += h;
        let mut wm = w.clone();
        wm[i] -= h;
        let fd = (fcp(&wp, act, data).loss - fcp(&wm, act, data).loss) / (2.0 * h);
        assert!(
            (fd - r.grad[i]).abs() <= 1e-6 * max_g + 1e-9,
            "{act:?} coordinate {i}: fd {fd} vs {}",
            r.grad[i]
        );
    }
}

#[test]
fn fcp_reference_gradient_equals_central_finite_differences() {
    let data = common::mnist(Split::Train, 8);
    finite_difference_check(Act::Softplus, &data);
    finite_difference_check(Act::Relu, &data);
}
