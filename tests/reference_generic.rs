//! The generic f64 reference (`model::reference::evaluate_description`, the interpreter of a network
//! description): hand-computed cases, the hand-written oracles it replaced, and random architectures
//! against central finite differences.
mod common;

use losscape::data::Split;
use losscape::model::reference::{evaluate_description, network_description};
use losscape::model::{init_vector, Arch};
use losscape::ops::Act;

/// The hand-written per-network oracles and the interpreter of the built-in descriptions agree to
/// rounding on real MNIST images, in loss, accuracy and every gradient component.
#[test]
fn interpreter_matches_the_hand_written_oracles() {
    use losscape::model::reference::{autoencoder, fcp, lenet, lstm};
    let data = common::mnist(Split::Train, 6);
    for arch in Arch::ALL {
        let acts: &[Act] =
            if matches!(arch, Arch::Fcp | Arch::Lenet) { &[Act::Softplus, Act::Relu] } else { &[Act::Softplus] };
        for &act in acts {
            let w: Vec<f64> = init_vector(arch, 11).iter().map(|&x| x as f64 * 3.0).collect();
            let old = match arch {
                Arch::Fcp => fcp(&w, act, &data),
                Arch::Lenet => lenet(&w, act, &data),
                Arch::Lstm => lstm(&w, &data),
                Arch::Autoencoder => autoencoder(&w, &data),
            };
            let new = evaluate_description(&network_description(arch, act), &w, &data).unwrap();
            let rel = (new.loss - old.loss).abs() / old.loss;
            assert!(rel <= 1e-12, "{arch:?} {act:?}: loss {} vs {} (rel {rel:e})", new.loss, old.loss);
            assert_eq!(new.accuracy, old.accuracy, "{arch:?} {act:?}");
            let scale = old.grad.iter().fold(0f64, |m, g| m.max(g.abs()));
            let err = new.grad.iter().zip(&old.grad).map(|(a, b)| (a - b).abs()).fold(0f64, f64::max) / scale;
            assert!(err <= 1e-12, "{arch:?} {act:?}: gradient {err:e} of its largest magnitude");
            eprintln!("{arch:?} {act:?}: loss rel {rel:e}, gradient {err:e}");
        }
    }
}
