#![allow(dead_code)]
//! Every network evaluated on a device and checked against the f64 reference: the cases, the
//! vectors, the run in both image-selection modes and the tolerances (used by `backends.rs` and
//! `simd.rs`).

use crate::common::{max_rel_diff, to_f64};
use losscape::backend::Device;
use losscape::data::{Dataset, DeviceImages};
use losscape::model::reference::Reference;
use losscape::model::{init_vector, Arch, Eval, Evaluator, Network, Want};
use losscape::ops::Act;

/// Vectors per evaluation.
pub const B: usize = 3;

/// Seeds whose ReLU pre-activations stay clear of the kink at 0 by more than f32 rounding on these
/// images (a pre-activation within ~1e-7 of 0 flips its derivative between f32 and f64).
pub fn vectors(arch: Arch) -> Vec<f32> {
    (0..B as u64).flat_map(|s| init_vector(arch, s)).map(|x| x * 3.0).collect()
}

/// Losses and gradients of B vectors: on a shared range in chunks of 64, or (per_vector > 0) each on its
/// own images.
pub fn run(device: &Device, net: Network, data: &Dataset, flat: &[f32], per_vector: usize) -> (Vec<Eval>, Vec<f32>) {
    let images = DeviceImages::upload(device, data).unwrap();
    let eval = if per_vector > 0 {
        Evaluator::per_vector(net, &images, per_vector, B).unwrap()
    } else {
        Evaluator::with_chunk(net, &images, 0..data.len(), B, Some(64)).unwrap()
    };
    eval.set_weights(flat).unwrap();
    eval.run(Want::LossAndGrad);
    (eval.results().unwrap(), eval.gradients().unwrap())
}

/// Images first..first + len.
pub fn slice(data: &Dataset, first: usize, len: usize) -> Dataset {
    let px = data.shape.pixels();
    Dataset {
        pixels: data.pixels[first * px..(first + len) * px].to_vec(),
        labels: data.labels[first..first + len].to_vec(),
        shape: data.shape,
        classes: data.classes,
        source: data.source.clone(),
        labels_source: data.labels_source.clone(),
    }
}

/// Loss within 1e-5 relative, the same accuracy, gradient within 1e-4 of its largest magnitude.
pub fn check(what: &str, got: (&Eval, &[f32]), want: &Reference) {
    let rel = (got.0.loss - want.loss).abs() / want.loss;
    assert!(rel <= 1e-5, "{what}: loss {} vs {} (rel {rel:e})", got.0.loss, want.loss);
    assert_eq!(got.0.accuracy, want.accuracy, "{what}: accuracy");
    let g = max_rel_diff(got.1, &want.grad);
    assert!(g <= 1e-4, "{what}: gradient error {g:e} of its largest magnitude");
}

/// A device's results taken as the reference for another's.
pub fn as_reference(got: (&Eval, &[f32])) -> Reference {
    Reference { loss: got.0.loss, accuracy: got.0.accuracy, grad: to_f64(got.1) }
}

/// Every network, in both activations where the network has a choice.
pub fn cases() -> Vec<Network> {
    let mut out = Vec::new();
    for arch in Arch::ALL {
        let acts: &[Act] =
            if matches!(arch, Arch::Fcp | Arch::Lenet) { &[Act::Softplus, Act::Relu] } else { &[Act::Softplus] };
        out.extend(acts.iter().map(|&act| Network { arch, act }));
    }
    out
}

/// The images vector `b` sees in a selection mode.
pub fn own_images(data: &Dataset, b: usize, per_vector: usize) -> Dataset {
    if per_vector > 0 {
        slice(data, b * per_vector, per_vector)
    } else {
        data.clone()
    }
}
