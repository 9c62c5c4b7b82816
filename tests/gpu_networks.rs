//! GPU loss and gradient of every network against the f64 CPU reference.
mod common;

use common::{gpu, max_rel_diff, mnist, to_f64};
use losscape::data::{Dataset, DeviceImages, Split};
use losscape::model::reference::{evaluate, fcp};
use losscape::model::{init_vector, Arch, Evaluator, Network, Want};
use losscape::ops::Act;

const N: usize = 42200;

fn arch_vectors(arch: Arch, seeds: std::ops::Range<u64>, scale: f32) -> Vec<f32> {
    seeds.flat_map(|s| init_vector(arch, s)).map(|x| x * scale).collect()
}

fn vectors(seeds: std::ops::Range<u64>, scale: f32) -> Vec<f32> {
    arch_vectors(Arch::Fcp, seeds, scale)
}

type Run = (Vec<losscape::model::Eval>, Vec<f32>);

fn run(arch: Arch, act: Act, data: &Dataset, flat: &[f32], chunk: Option<usize>, want: Want) -> Run {
    let images = DeviceImages::upload(&gpu(), data).unwrap();
    let b = flat.len() / arch.n_params();
    let eval = Evaluator::with_chunk(Network { arch, act }, &images, 0..data.len(), b, chunk).unwrap();
    eval.set_weights(flat).unwrap();
    eval.run(want);
    let grads = if want == Want::LossAndGrad { eval.gradients().unwrap() } else { Vec::new() };
    (eval.results().unwrap(), grads)
}

fn gpu_eval(act: Act, data: &Dataset, flat: &[f32], chunk: Option<usize>) -> Run {
    run(Arch::Fcp, act, data, flat, chunk, Want::LossAndGrad)
}

fn compare_with_reference(act: Act, data: &Dataset, flat: &[f32], chunk: Option<usize>) {
    compare_arch(Arch::Fcp, act, data, flat, chunk)
}

fn compare_arch(arch: Arch, act: Act, data: &Dataset, flat: &[f32], chunk: Option<usize>) {
    let n = arch.n_params();
    let (results, grads) = run(arch, act, data, flat, chunk, Want::LossAndGrad);
    for (b, r) in results.iter().enumerate() {
        let reference = evaluate(arch, &to_f64(&flat[b * n..(b + 1) * n]), act, data);
        let rel = (r.loss - reference.loss).abs() / reference.loss;
        assert!(rel <= 1e-5, "{arch:?} {act:?} vector {b}: loss {} vs {} (rel {rel:e})", r.loss, reference.loss);
        assert_eq!(r.accuracy, reference.accuracy, "{arch:?} {act:?} vector {b}: accuracy");
        let g = max_rel_diff(&grads[b * n..(b + 1) * n], &reference.grad);
        assert!(g <= 1e-4, "{arch:?} {act:?} vector {b}: gradient error {g:e} of its largest magnitude");
    }
}

#[test]
fn three_vectors_on_512_test_images_match_the_reference() {
    let data = mnist(Split::Test, 512);
    // scale 4 makes the layers non-trivial (losses well away from ln 10)
    compare_with_reference(Act::Softplus, &data, &vectors(0..3, 4.0), None);
}

#[test]
fn relu_variant_matches_the_reference() {
    let data = mnist(Split::Test, 256);
    compare_with_reference(Act::Relu, &data, &vectors(5..7, 4.0), None);
}

#[test]
fn chunked_evaluation_accumulates_like_one_chunk() {
    // 300 images in chunks of 64: five chunks, the last partial
    let data = mnist(Split::Train, 300);
    compare_with_reference(Act::Softplus, &data, &vectors(10..12, 4.0), Some(64));
}

#[test]
fn tiny_losses_are_resolved() {
    // Relabel images with the network's own predictions and sharpen the last layer until the f64 mean
    // per-image loss is ~1e-9: the GPU must agree within 1%.
    let mut data = mnist(Split::Test, 128);
    let mut w = init_vector(Arch::Fcp, 21).iter().map(|x| x * 4.0).collect::<Vec<f32>>();
    let probe = |w: &[f32], data: &Dataset| fcp(&to_f64(w), Act::Softplus, data);
    // predictions: the argmax of the logits = the label minimising the per-image loss
    for i in 0..data.len() {
        let single = Dataset { pixels: data.image(i).to_vec(), labels: vec![0], ..data.clone().truncated(0) };
        data.labels[i] = (0..10u8)
            .min_by(|&a, &b| {
                let la = probe(&w, &Dataset { labels: vec![a], ..single.clone() }).loss;
                let lb = probe(&w, &Dataset { labels: vec![b], ..single.clone() }).loss;
                la.total_cmp(&lb)
            })
            .unwrap();
    }
    let mut reference = probe(&w, &data).loss;
    while reference > 3e-9 {
        for x in &mut w[41700..] {
            *x *= 1.25;
        }
        reference = probe(&w, &data).loss;
    }
    assert!(reference > 1e-11, "overshot: {reference}");
    let (results, _) = gpu_eval(Act::Softplus, &data, &w, None);
    let rel = (results[0].loss - reference).abs() / reference;
    assert!(rel < 0.01, "GPU {} vs f64 {reference} (rel {rel})", results[0].loss);
}

#[test]
fn a_vector_alone_and_inside_a_batch_of_51_gives_the_same_loss() {
    let data = mnist(Split::Test, 256);
    let flat = vectors(100..151, 4.0);
    let (batched, batched_grads) = gpu_eval(Act::Softplus, &data, &flat, None);
    for b in [0, 25, 50] {
        let (alone, alone_grads) = gpu_eval(Act::Softplus, &data, &flat[b * N..(b + 1) * N], None);
        let rel = (alone[0].loss - batched[b].loss).abs() / alone[0].loss;
        assert!(rel <= 1e-6, "vector {b}: alone {} vs batched {}", alone[0].loss, batched[b].loss);
        let g = max_rel_diff(&batched_grads[b * N..(b + 1) * N], &to_f64(&alone_grads));
        assert!(g <= 1e-6, "vector {b}: gradient differs by {g:e}");
    }
}

#[test]
fn loss_only_runs_give_the_loss_of_gradient_runs() {
    let data = mnist(Split::Test, 200);
    let flat = vectors(0..2, 4.0);
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    let eval = Evaluator::new(Network { arch: Arch::Fcp, act: Act::Softplus }, &images, 0..200, 2).unwrap();
    eval.set_weights(&flat).unwrap();
    eval.run(Want::Loss);
    let loss_only = eval.results().unwrap();
    eval.run(Want::LossAndGrad);
    assert_eq!(loss_only, eval.results().unwrap());
}

#[test]
fn lenet_matches_the_reference_in_both_activations_and_across_chunks() {
    let data = mnist(Split::Test, 96);
    compare_arch(Arch::Lenet, Act::Softplus, &data, &arch_vectors(Arch::Lenet, 0..3, 3.0), None);
    compare_arch(Arch::Lenet, Act::Relu, &data, &arch_vectors(Arch::Lenet, 3..5, 3.0), Some(40));
}

#[test]
fn lstm_matches_the_reference_across_chunks() {
    let data = mnist(Split::Test, 48);
    compare_arch(Arch::Lstm, Act::Softplus, &data, &arch_vectors(Arch::Lstm, 0..3, 4.0), None);
    compare_arch(Arch::Lstm, Act::Softplus, &data, &arch_vectors(Arch::Lstm, 3..4, 4.0), Some(20));
}

#[test]
fn autoencoder_matches_the_reference_across_chunks() {
    let data = mnist(Split::Test, 128);
    compare_arch(Arch::Autoencoder, Act::Softplus, &data, &arch_vectors(Arch::Autoencoder, 0..3, 3.0), None);
    compare_arch(Arch::Autoencoder, Act::Softplus, &data, &arch_vectors(Arch::Autoencoder, 3..4, 3.0), Some(50));
}

#[test]
fn every_network_gives_the_same_losses_alone_and_in_a_batch_of_51() {
    for (arch, images) in [(Arch::Lenet, 24), (Arch::Lstm, 24), (Arch::Autoencoder, 64)] {
        let data = mnist(Split::Test, images);
        let n = arch.n_params();
        let flat = arch_vectors(arch, 200..251, 3.0);
        let (batched, _) = run(arch, Act::Softplus, &data, &flat, None, Want::Loss);
        assert_eq!(batched.len(), 51);
        for b in [0, 33, 50] {
            let (alone, _) = run(arch, Act::Softplus, &data, &flat[b * n..(b + 1) * n], None, Want::Loss);
            let rel = (alone[0].loss - batched[b].loss).abs() / alone[0].loss;
            assert!(rel <= 1e-6, "{arch:?} vector {b}: alone {} vs batched {}", alone[0].loss, batched[b].loss);
            assert_eq!(alone[0].accuracy, batched[b].accuracy);
        }
    }
}

#[test]
fn each_vector_on_its_own_images_equals_separate_evaluations() {
    let per = 16;
    let data = mnist(Split::Train, 3 * per);
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    for arch in Arch::ALL {
        let net = Network { arch, act: Act::Softplus };
        let n = arch.n_params();
        let flat = arch_vectors(arch, 40..43, 3.0);
        let eval = Evaluator::per_vector(net, &images, per, 3).unwrap();
        eval.set_weights(&flat).unwrap();
        eval.run(Want::LossAndGrad);
        let (results, grads) = (eval.results().unwrap(), eval.gradients().unwrap());
        for b in 0..3 {
            let alone = Evaluator::new(net, &images, b * per..(b + 1) * per, 1).unwrap();
            alone.set_weights(&flat[b * n..(b + 1) * n]).unwrap();
            alone.run(Want::LossAndGrad);
            let r = alone.results().unwrap()[0];
            assert!(
                (r.loss - results[b].loss).abs() <= 1e-6 * r.loss,
                "{arch:?} vector {b}: {} vs {}",
                results[b].loss,
                r.loss
            );
            assert_eq!(r.accuracy, results[b].accuracy);
            let g = max_rel_diff(&grads[b * n..(b + 1) * n], &to_f64(&alone.gradients().unwrap()));
            assert!(g <= 1e-5, "{arch:?} vector {b}: gradients differ by {g:e}");
        }
    }
}
