//! The output layer and its loss head as one operation (`ops::OutputLayer`, `cpu/output_layer.rs`):
//! where it applies, and that the evaluator through it gives the losses and gradients of the plan's
//! four operations recorded one by one, in one and several chunks, for B = 1 and several vectors,
//! shared and per-vector images, the reconstruction and the cross-entropy heads. On the device the
//! suite chooses (`LOSSCAPE_BACKEND`: the CPU backend in the default pass, wgpu in the vulkan pass,
//! where the fused operation launches the same kernels and the results are the same bits).

mod common;

use common::{cpu, gpu, mnist};
use losscape::data::{DeviceImages, Split};
use losscape::model::description::Description;
use losscape::model::{init_vector, Arch, Evaluator, Network, Want};
use losscape::ops::{Act, OutputLayer};

/// A classifier whose last layer is wider than its input (8 → 10) and has no bias: the
/// cross-entropy head through the fused operation.
const WIDENING: &str = r#"
format = 1
[input]
features = 784
[[layers]]
kind = "dense"
out = 8
bias = false
[[layers]]
kind = "tanh"
[[layers]]
kind = "dense"
out = 10
bias = false
[head]
kind = "cross_entropy"
classes = 10
"#;

fn net(arch: Arch) -> Network {
    Network { arch, act: Act::Softplus }
}

/// Deterministic weights: the network's initialisation, vector b from seed 7 + b.
fn weights(arch: Arch, batch: usize) -> Vec<f32> {
    (0..batch as u64).flat_map(|b| init_vector(arch, 7 + b)).collect()
}

/// What one evaluator gives on one set of weights.
struct Results {
    /// Losses and accuracies of a `LossAndGrad` run.
    full: Vec<(f64, Option<f64>)>,
    grads: Vec<f32>,
    /// Losses of a `Loss` run.
    loss_only: Vec<f64>,
}

fn run(eval: &Evaluator, w: &[f32]) -> Results {
    eval.set_weights(w).unwrap();
    let full = eval.evaluate(Want::LossAndGrad).unwrap();
    let grads = eval.gradients().unwrap();
    let loss_only = eval.evaluate(Want::Loss).unwrap();
    Results {
        full: full.iter().map(|e| (e.loss, e.accuracy)).collect(),
        grads,
        loss_only: loss_only.iter().map(|e| e.loss).collect(),
    }
}

/// The fused evaluator against the same plan recorded one operation at a time: the same losses, bit
/// for bit (the same products of k terms make the outputs, the same head adds them per slot), and
/// accuracies; the gradients to 1e-5 of their largest (on a GPU, the same bits); a loss-only run the
/// same bits as the loss-and-gradient run.
fn matches_the_unfused(eval: Evaluator, images: &DeviceImages, w: &[f32], what: &str) {
    assert!(eval.plan().chunks.iter().all(|c| OutputLayer::find(c).is_some()), "{what}: the output layer is fused");
    let plain = eval.unfused(images).unwrap();
    let (fused, plain) = (run(&eval, w), run(&plain, w));
    let exact = !eval.device().is_cpu();
    for (v, ((f, p), only)) in fused.full.iter().zip(&plain.full).zip(&fused.loss_only).enumerate() {
        assert!(p.0.is_finite() && f.0.to_bits() == p.0.to_bits(), "{what}, vector {v}: {f:?} vs {p:?}");
        assert_eq!(f.1, p.1, "{what}, vector {v}: accuracy");
        assert_eq!(only.to_bits(), f.0.to_bits(), "{what}, vector {v}: the loss-only run");
    }
    assert_eq!(fused.loss_only.len(), plain.loss_only.len());
    let n = eval.n_params();
    for (v, (f, p)) in fused.grads.chunks(n).zip(plain.grads.chunks(n)).enumerate() {
        let max = p.iter().fold(0f32, |m, g| m.max(g.abs()));
        let worst = f.iter().zip(p).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max > 0.0 && worst <= 1e-5 * max, "{what}, vector {v}: gradient off by {worst} of {max}");
        assert!(!exact || worst == 0.0, "{what}, vector {v}: a GPU runs the same kernels");
    }
}

#[test]
fn the_autoencoder_through_the_fused_output_layer_matches_its_four_operations() {
    // 600 images: three slots of the head, the last of 88 (a partial block of 24); chunks of 100 add
    // the later chunks' weight gradients to the first's
    let images = DeviceImages::upload(&gpu(), &mnist(Split::Train, 600)).unwrap();
    let ae = net(Arch::Autoencoder);
    for (batch, chunk) in [(1, None), (3, None), (3, Some(100)), (2, Some(300))] {
        let eval = Evaluator::with_chunk(ae, &images, 0..600, batch, chunk).unwrap();
        let what = format!("autoencoder, B = {batch}, chunks of {chunk:?}");
        matches_the_unfused(eval, &images, &weights(Arch::Autoencoder, batch), &what);
    }
    // a range that does not start at image 0
    let eval = Evaluator::with_chunk(ae, &images, 150..450, 2, Some(128)).unwrap();
    matches_the_unfused(eval, &images, &weights(Arch::Autoencoder, 2), "autoencoder, images 150..450");
}

#[test]
fn per_vector_images_through_the_fused_output_layer_match_its_four_operations() {
    // each of 3 vectors on its own 70 images (mini-batches of independent runs)
    let images = DeviceImages::upload(&gpu(), &mnist(Split::Train, 210)).unwrap();
    let eval = Evaluator::per_vector(net(Arch::Autoencoder), &images, 70, 3).unwrap();
    matches_the_unfused(eval, &images, &weights(Arch::Autoencoder, 3), "autoencoder, per-vector images");
}

#[test]
fn a_widening_classifier_takes_the_cross_entropy_head_through_the_fused_output_layer() {
    let desc = Description::parse(WIDENING).unwrap();
    let images = DeviceImages::upload(&gpu(), &mnist(Split::Train, 300)).unwrap();
    let n = desc.derive().unwrap().n_params();
    let w: Vec<f32> = (0..2 * n).map(|i| 0.3 * ((i as f32) * 0.61).sin()).collect();
    for chunk in [None, Some(64)] {
        let eval = Evaluator::for_description(&desc, &images, 0..300, 2, chunk).unwrap();
        matches_the_unfused(eval, &images, &w, &format!("8 -> 10 classifier, chunks of {chunk:?}"));
    }
}

#[test]
fn narrowing_output_layers_and_biases_keep_their_four_operations() {
    let images = DeviceImages::upload(&gpu(), &mnist(Split::Train, 100)).unwrap();
    for arch in [Arch::Fcp, Arch::Lenet, Arch::Lstm] {
        let eval = Evaluator::new(net(arch), &images, 0..100, 2).unwrap();
        assert!(eval.plan().chunks.iter().all(|c| OutputLayer::find(c).is_none()), "{arch:?}: 10 outputs");
    }
    let biased = WIDENING.replace("out = 10\nbias = false", "out = 10");
    let desc = Description::parse(&biased).unwrap();
    let eval = Evaluator::for_description(&desc, &images, 0..100, 2, None).unwrap();
    assert!(eval.plan().chunks.iter().all(|c| OutputLayer::find(c).is_none()), "a bias on the output layer");
    let eval = Evaluator::new(net(Arch::Autoencoder), &images, 0..100, 2).unwrap();
    assert!(eval.plan().chunks.iter().all(|c| OutputLayer::find(c).is_some()), "the autoencoder's 32 -> 784");
}

/// The CPU backend keeps weights rearranged for its products (`cpu/derived.rs`: each vector's W^T for
/// the fused output layer, all vectors' first-layer weights side by side for the wide product on
/// the 256-image chunk) until the weights are written again. One evaluator given new weights, and
/// then the old ones again, gives the bits of a fresh evaluator on each: nothing derived from
/// earlier weights is read.
#[test]
fn an_evaluator_given_new_weights_reads_nothing_kept_from_the_old() {
    let images = DeviceImages::upload(&gpu(), &mnist(Split::Train, 300)).unwrap();
    for arch in [Arch::Autoencoder, Arch::Fcp] {
        let (first, second) = (weights(arch, 3), (0..3).flat_map(|b| init_vector(arch, 40 + b)).collect::<Vec<_>>());
        let eval = Evaluator::new(net(arch), &images, 0..300, 3).unwrap();
        for (step, w) in [&first, &second, &first].into_iter().enumerate() {
            let (kept, fresh) = (run(&eval, w), run(&Evaluator::new(net(arch), &images, 0..300, 3).unwrap(), w));
            let what = format!("{arch:?}, weights {step}");
            let bits = |r: &Results| {
                r.full.iter().map(|e| e.0.to_bits()).chain(r.loss_only.iter().map(|l| l.to_bits())).collect::<Vec<_>>()
            };
            assert_eq!(bits(&kept), bits(&fresh), "{what}: losses");
            assert!(kept.grads.iter().zip(&fresh.grads).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}: gradients");
        }
    }
}

/// Past what the CPU backend keeps (`cpu/derived.rs`, 8 M floats: the autoencoder's W^T of 340
/// vectors is 8.5 M floats, and so are its first-layer weights side by side), the kernels read the
/// weights as the vectors hold them: every vector's losses and gradient have the bits of an
/// evaluator of three of them, whose rearranged copies are kept. On the CPU backend in both passes (a
/// GPU keeps nothing).
#[test]
fn vectors_past_what_the_cpu_backend_keeps_give_the_bits_of_a_small_batch() {
    let (arch, big, images) = (Arch::Autoencoder, 340, 128);
    let data = DeviceImages::upload(&cpu(), &mnist(Split::Train, images)).unwrap();
    let eval = Evaluator::with_chunk(net(arch), &data, 0..images, big, Some(images)).unwrap();
    let n = eval.n_params();
    assert!(big * n > 1 << 23, "the copies must be past the cap");
    let w = weights(arch, big);
    let all = run(&eval, &w);
    for first in [0, 170, big - 3] {
        let small = Evaluator::with_chunk(net(arch), &data, 0..images, 3, Some(images)).unwrap();
        let part = run(&small, &w[first * n..(first + 3) * n]);
        for v in 0..3 {
            let (a, p) = (first + v, v);
            assert_eq!(all.full[a].0.to_bits(), part.full[p].0.to_bits(), "vector {a}: loss");
            assert_eq!(all.loss_only[a].to_bits(), part.loss_only[p].to_bits(), "vector {a}: loss only");
            let (ga, gp) = (&all.grads[a * n..(a + 1) * n], &part.grads[p * n..(p + 1) * n]);
            assert!(ga.iter().zip(gp).all(|(x, y)| x.to_bits() == y.to_bits()), "vector {a}: gradient");
        }
    }
}
