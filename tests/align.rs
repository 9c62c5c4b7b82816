//! Weight matching: the aligned vector is the same function, a permuted copy is recovered exactly, and
//! on two trained FCP solutions alignment shortens the distance without raising the straight-line barrier.
mod common;

use common::{gpu, mnist, to_f64};
use losscape::backend::Rows;
use losscape::data::{Dataset, DeviceImages, Split};
use losscape::model::reference::evaluate;
use losscape::model::symmetry::inverse;
use losscape::model::{init_vector, weight_matching, Arch, Evaluator, MatchSettings, Network, Symmetry, Want};
use losscape::ops::Act;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn random_perms(sym: &Symmetry, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut perms = sym.identity();
    for p in &mut perms {
        p.shuffle(&mut rng);
    }
    perms
}

fn scaled(arch: Arch, seed: u64, k: f32) -> Vec<f32> {
    init_vector(arch, seed).iter().map(|x| x * k).collect()
}

/// Per-image losses of each vector (one evaluation per image), [vector][image].
fn per_image_losses(net: Network, vectors: &[&[f32]], data: &Dataset) -> Vec<Vec<f64>> {
    let images = DeviceImages::upload(&gpu(), data).unwrap();
    let flat: Vec<f32> = vectors.concat();
    let mut out = vec![Vec::new(); vectors.len()];
    for i in 0..data.len() {
        let eval = Evaluator::new(net, &images, i..i + 1, vectors.len()).unwrap();
        eval.set_weights(&flat).unwrap();
        eval.run(Want::Loss);
        for (v, r) in eval.results().unwrap().iter().enumerate() {
            out[v].push(r.loss);
        }
    }
    out
}

#[test]
fn aligned_vector_computes_the_same_function_for_every_network() {
    let data = mnist(Split::Test, 12);
    for arch in Arch::ALL {
        let net = Network { arch, act: Act::Softplus };
        let (a, b) = (scaled(arch, 11, 3.0), scaled(arch, 12, 3.0));
        let m = weight_matching(arch, &a, &b, MatchSettings::default()).unwrap();
        assert_ne!(m.aligned, b, "{arch:?}: matching two random vectors moved no unit");
        assert!(m.distance_after < m.distance_before, "{arch:?}: {m:?}");
        let sym = Symmetry::of(arch);
        assert_eq!(sym.apply(&b, &m.perms).unwrap(), m.aligned, "{arch:?}: aligned = B under the permutations");
        // per-image losses in f32 on the default backend
        let losses = per_image_losses(net, &[&b, &m.aligned], &data);
        for (i, (x, y)) in losses[0].iter().zip(&losses[1]).enumerate() {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{arch:?} image {i}: loss {x} vs aligned {y}");
        }
        // the f64 reference: equal loss, and the gradient is the original gradient permuted alike
        let few = data.clone().truncated(3);
        let (rb, ra) = (
            evaluate(arch, &to_f64(&b), Act::Softplus, &few),
            evaluate(arch, &to_f64(&m.aligned), Act::Softplus, &few),
        );
        assert!((rb.loss - ra.loss).abs() <= 1e-12 * rb.loss.abs().max(1.0), "{arch:?}: {} vs {}", rb.loss, ra.loss);
        let moved = sym.apply(&rb.grad, &m.perms).unwrap();
        let scale = moved.iter().fold(0f64, |s, g| s.max(g.abs()));
        let worst = moved.iter().zip(&ra.grad).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(worst <= 1e-10 * scale, "{arch:?}: gradients differ by {worst} (scale {scale})");
    }
}

#[test]
fn a_permuted_copy_is_recovered_exactly_for_every_network() {
    for arch in Arch::ALL {
        let sym = Symmetry::of(arch);
        let a = scaled(arch, 21, 1.0);
        let q = random_perms(&sym, 5);
        let b = sym.apply(&a, &q).unwrap();
        assert!(b != a);
        let m = weight_matching(arch, &a, &b, MatchSettings::default()).unwrap();
        for (g, (p, q)) in m.perms.iter().zip(&q).enumerate() {
            assert_eq!(p, &inverse(q), "{arch:?}: group {}", sym.groups[g].name);
        }
        assert_eq!(m.aligned, a, "{arch:?}: the aligned copy is A bit for bit");
        assert_eq!(m.distance_after, 0.0);
        assert!(m.distance_before > 0.0);
    }
}

#[test]
fn bad_inputs_are_refused() {
    let a = init_vector(Arch::Fcp, 1);
    let e = weight_matching(Arch::Fcp, &a, &a[1..], MatchSettings::default()).unwrap_err();
    assert!(e.to_string().contains("parameters"), "{e}");
    let e = weight_matching(Arch::Lstm, &a, &a, MatchSettings::default()).unwrap_err();
    assert!(e.to_string().contains("LSTM"), "{e}");
    let mut b = a.clone();
    b[7] = f32::NAN;
    let e = weight_matching(Arch::Fcp, &a, &b, MatchSettings::default()).unwrap_err();
    assert!(e.to_string().contains("B holds a non-finite value at index 7"), "{e}");
}

/// Straight-line losses between a and b at `points` evenly spaced t.
fn straight_line(net: Network, a: &[f32], b: &[f32], data: &Dataset, points: usize) -> Vec<f64> {
    let images = DeviceImages::upload(&gpu(), data).unwrap();
    let line: Vec<f32> = (0..points)
        .flat_map(|m| {
            let t = m as f32 / (points - 1) as f32;
            a.iter().zip(b).map(move |(x, y)| (1.0 - t) * x + t * y)
        })
        .collect();
    let eval = Evaluator::new(net, &images, 0..data.len(), points).unwrap();
    eval.set_weights(&line).unwrap();
    eval.run(Want::Loss);
    eval.results().unwrap().iter().map(|r| r.loss).collect()
}

fn barrier(losses: &[f64]) -> f64 {
    let top = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    top - 0.5 * (losses[0] + losses[losses.len() - 1])
}

#[test]
fn on_two_trained_fcp_solutions_alignment_shortens_the_distance_and_keeps_the_barrier() {
    let data = mnist(Split::Train, 256);
    let net = Network { arch: Arch::Fcp, act: Act::Softplus };
    let n = Arch::Fcp.n_params();
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    let eval = Evaluator::new(net, &images, 0..data.len(), 2).unwrap();
    eval.set_weights(&[init_vector(Arch::Fcp, 41), init_vector(Arch::Fcp, 42)].concat()).unwrap();
    for _ in 0..150 {
        eval.run(Want::LossAndGrad);
        gpu().axpy(&[-0.5, -0.5], Rows::new(&eval.grads, 2, n), Rows::new(&eval.weights, 2, n)).unwrap();
    }
    let w = gpu().read(&eval.weights, 0, 2 * n).unwrap();
    let (a, b) = (&w[..n], &w[n..]);
    eval.run(Want::Loss);
    let trained = eval.results().unwrap();
    assert!(trained.iter().all(|r| r.loss < 0.5), "the pair is trained: {trained:?}");
    let m = weight_matching(Arch::Fcp, a, b, MatchSettings::default()).unwrap();
    assert!(m.distance_after < 0.95 * m.distance_before, "{} -> {}", m.distance_before, m.distance_after);
    let before = barrier(&straight_line(net, a, b, &data, 11));
    let after = barrier(&straight_line(net, a, &m.aligned, &data, 11));
    eprintln!(
        "distance {:.4} -> {:.4}, straight-line barrier {before:.4} -> {after:.4}, {} sweeps",
        m.distance_before, m.distance_after, m.sweeps
    );
    assert!(after <= before, "barrier rose from {before} to {after}");
}

fn losscape(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

#[test]
fn the_align_command_writes_every_vector_of_b_aligned_in_the_format_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let arch = Arch::Lenet;
    let sym = Symmetry::of(arch);
    let a = scaled(arch, 3, 1.0);
    let copies = [sym.apply(&a, &random_perms(&sym, 1)).unwrap(), sym.apply(&a, &random_perms(&sym, 2)).unwrap()];
    losscape::io::write_weights(dir.path().join("a.npy").as_path(), &losscape::io::WeightStack::new(arch, a.clone()))
        .unwrap();
    let stack = losscape::io::WeightStack::new(arch, copies.concat());
    losscape::io::write_weights(dir.path().join("b.safetensors").as_path(), &stack).unwrap();
    let o = losscape(&[
        "align",
        "--model",
        "lenet",
        "--a",
        &d("a.npy"),
        "--b",
        &d("b.safetensors"),
        "--out",
        &d("c.npy"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["distance_after"] == 0.0 && l["distance_before"].as_f64().unwrap() > 0.0));
    let out = losscape::io::read_weights(dir.path().join("c.npy").as_path(), arch).unwrap();
    assert_eq!(out.flat, [a.clone(), a].concat(), "both copies come back as A");
    // a reference file of several vectors needs --a-index; a wrong model or index is refused
    let o =
        losscape(&["align", "--model", "lenet", "--a", &d("b.safetensors"), "--b", &d("a.npy"), "--out", &d("x.npy")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--a-index"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = losscape(&[
        "align",
        "--model",
        "lenet",
        "--a",
        &d("b.safetensors"),
        "--a-index",
        "2",
        "--b",
        &d("a.npy"),
        "--out",
        &d("x.npy"),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no vector 2"), "{}", String::from_utf8_lossy(&o.stderr));
    let o =
        losscape(&["align", "--model", "fcp", "--a", &d("a.npy"), "--b", &d("b.safetensors"), "--out", &d("x.npy")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.path().join("x.npy").exists());
}
