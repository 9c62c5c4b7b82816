//! The CPU reference against hand-computed cases and finite differences.
mod common;

use losscape::data::{Dataset, Split};
use losscape::model::reference::{cross_entropy, fcp};
use losscape::model::{init_vector, Arch};
use losscape::ops::Act;

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
    let w: Vec<f64> = init_vector(Arch::Fcp, 3).iter().map(|&x| x as f64 * 3.0).collect();
    let r = fcp(&w, act, data);
    let h = 1e-6;
    let max_g = r.grad.iter().fold(0f64, |m, g| m.max(g.abs()));
    // coordinates in every layer, including the largest-gradient one
    let argmax = r.grad.iter().enumerate().fold(0, |b, (i, g)| if g.abs() > r.grad[b].abs() { i } else { b });
    for &i in &[argmax, 0, 300, 12345, 39199, 39200, 40000, 41699, 41700, 42199] {
        let mut wp = w.clone();
        wp[i] += h;
        let mut wm = w.clone();
        wm[i] -= h;
        let fd = (fcp(&wp, act, data).loss - fcp(&wm, act, data).loss) / (2.0 * h);
        assert!((fd - r.grad[i]).abs() <= 1e-6 * max_g + 1e-9, "{act:?} coordinate {i}: fd {fd} vs {}", r.grad[i]);
    }
}

#[test]
fn fcp_reference_gradient_equals_central_finite_differences() {
    let data = common::mnist(Split::Train, 8);
    finite_difference_check(Act::Softplus, &data);
    finite_difference_check(Act::Relu, &data);
}

#[test]
fn mt19937_matches_the_published_check_values() {
    use losscape::model::Mt19937;
    let mut r = Mt19937::new(5489);
    let v: Vec<u32> = (0..10000).map(|_| r.next_u32()).collect();
    assert_eq!(v[9999], 4123659995);
    let mut r = Mt19937::new(1234);
    let first: Vec<u32> = (0..5).map(|_| r.next_u32()).collect();
    assert_eq!(first, [822569775, 2137449171, 2671936806, 3512589365, 1880026316]);
}

#[test]
fn lstm_permutation_equals_the_fixture() {
    use sha2::{Digest, Sha256};
    let text = include_str!("fixtures/lstm_permutation.txt");
    let expect: Vec<usize> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .map(|v| v.parse().unwrap())
        .collect();
    let perm = losscape::model::lstm_permutation();
    assert_eq!(perm.len(), 784);
    for (j, (a, b)) in perm.iter().zip(&expect).enumerate() {
        assert_eq!(a, b, "element {j}");
    }
    let bytes: Vec<u8> = perm.iter().flat_map(|&p| (p as i64).to_le_bytes()).collect();
    assert_eq!(
        format!("{:x}", Sha256::digest(&bytes)),
        "896d818f9cc067047b73b5f1f343e237e69f303a1b138f8cc15c064d7399b275"
    );
}

#[test]
fn lenet_shapes_follow_spec() {
    let data = common::mnist(Split::Test, 1);
    let w: Vec<f64> = init_vector(Arch::Lenet, 0).iter().map(|&x| x as f64).collect();
    let (logits, maps) =
        losscape::model::reference::lenet_forward(&w, Act::Softplus, &losscape::model::reference::pixels(&data, 0));
    let shapes: Vec<(usize, usize)> = maps.iter().map(|m| (m.c, m.hw)).collect();
    assert_eq!(shapes, [(6, 28), (6, 14), (16, 10), (16, 5)]);
    assert_eq!(maps[3].v.len(), 400, "16x5x5 before fc1");
    assert_eq!(logits.len(), 10);
}

#[test]
fn conv_and_pool_hand_computed() {
    use losscape::model::reference::{avg_pool, conv2d, Map};
    // 1 channel 3x3 input, 2x2 kernel of ones, no padding: sums of 2x2 windows, plus bias 1
    let x = Map { c: 1, hw: 3, v: (1..=9).map(|v| v as f64).collect() };
    let y = conv2d(&x, &[1.0; 4], &[1.0], 2, 0);
    assert_eq!(y.v, vec![13.0, 17.0, 25.0, 29.0]);
    // padding 1 with a 3x3 centre-only kernel is the identity
    let mut k = [0.0; 9];
    k[4] = 1.0;
    assert_eq!(conv2d(&x, &k, &[0.0], 3, 1).v, x.v);
    let p = avg_pool(&Map { c: 1, hw: 2, v: vec![1.0, 2.0, 3.0, 6.0] });
    assert_eq!(p.v, vec![3.0]);
}

fn reference_matches_finite_differences(arch: Arch, act: Act, n: usize, scale: f64) {
    use losscape::model::reference::{evaluate, numeric_grad};
    let data = common::mnist(Split::Train, n);
    let w: Vec<f64> = init_vector(arch, 5).iter().map(|&x| x as f64 * scale).collect();
    let r = evaluate(arch, &w, act, &data);
    let max_g = r.grad.iter().fold(0f64, |m, g| m.max(g.abs()));
    let argmax = r.grad.iter().enumerate().fold(0, |b, (i, g)| if g.abs() > r.grad[b].abs() { i } else { b });
    // the largest-gradient coordinate, the first and last of every tensor, and one inside
    let mut coords = vec![argmax];
    let mut off = 0;
    for t in arch.params() {
        coords.extend([off, off + t.len() / 2, off + t.len() - 1]);
        off += t.len();
    }
    let fd = numeric_grad(arch, &w, act, &data, &coords);
    for (&i, fd) in coords.iter().zip(fd) {
        assert!((fd - r.grad[i]).abs() <= 1e-6 * max_g + 1e-10, "{arch:?} coordinate {i}: fd {fd} vs {}", r.grad[i]);
    }
}

#[test]
fn lenet_reference_gradient_equals_central_finite_differences() {
    reference_matches_finite_differences(Arch::Lenet, Act::Softplus, 2, 3.0);
    reference_matches_finite_differences(Arch::Lenet, Act::Relu, 2, 3.0);
}

#[test]
fn lstm_reference_gradient_equals_central_finite_differences() {
    reference_matches_finite_differences(Arch::Lstm, Act::Softplus, 2, 4.0);
}

#[test]
fn autoencoder_reference_gradient_equals_central_finite_differences() {
    reference_matches_finite_differences(Arch::Autoencoder, Act::Softplus, 3, 3.0);
}
