//! The GPU engine by counting (on any adapter, lavapipe on CI): one evaluation is one submission and
//! one read-back, and nothing is created once an evaluator has warmed up.
//!
//! Every test here runs on [`common::wgpu`] (the GPU backend, whatever `LOSSCAPE_BACKEND` says) or
//! the CPU backend: the default pass of `.ci/run` runs them on lavapipe, and the wgpu pass skips them
//! by a check of `LOSSCAPE_BACKEND` ([`common::skipped_in_the_wgpu_pass`]) instead of counting the
//! same work on the same adapter a second time.

mod common;

use common::{mnist, wgpu};
use losscape::backend::Counts;
use losscape::data::{DeviceImages, Split};
use losscape::model::{init_vector, Arch, Evaluator, Network, Want};
use losscape::ops::{Act, OutputLayer};

/// The counters are the device's, shared by every test of this file: one test counts at a time.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn counts(d: &losscape::backend::Device) -> Counts {
    d.counts().expect("a wgpu device counts its work")
}

#[test]
fn an_evaluation_is_one_submission_and_one_readback_and_creates_nothing_after_warm_up() {
    if common::skipped_in_the_wgpu_pass(
        "an_evaluation_is_one_submission_and_one_readback_and_creates_nothing_after_warm_up",
    ) {
        return;
    }
    let _alone = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let device = wgpu();
    // the counts depend on the number of chunks, not on their size: 40 images in chunks of 16 (was
    // 300 in chunks of 128, four times the time on lavapipe for the same counts)
    let images = DeviceImages::upload(&device, &mnist(Split::Train, 40)).unwrap();
    for arch in [Arch::Fcp, Arch::Lenet, Arch::Lstm, Arch::Autoencoder] {
        let net = Network { arch, act: Act::Softplus };
        // three chunks, the last partial (16, 16, 8), so the count covers chunk boundaries
        let ev = Evaluator::with_chunk(net, &images, 0..40, 2, Some(16)).unwrap();
        let w: Vec<f32> = (0..2).flat_map(|s| init_vector(arch, s)).collect();
        ev.set_weights(&w).unwrap();
        let first = ev.evaluate(Want::LossAndGrad).unwrap();
        let before = counts(&device);
        for _ in 0..10 {
            ev.set_weights(&w).unwrap();
            assert_eq!(ev.evaluate(Want::LossAndGrad).unwrap(), first, "{arch:?}: the same weights, the same losses");
        }
        let d = counts(&device) - before;
        // a dispatch per operation, and a product and a cell per step for the LSTM's sequence ops
        let per_eval = ev.plan().dispatches(true) as u64;
        assert_eq!(d.submissions, 10, "{arch:?}: the pass and the read-back copy in one submission: {d:?}");
        assert_eq!(d.readbacks, 10, "{arch:?}: {d:?}");
        assert_eq!(d.dispatches, 10 * per_eval, "{arch:?}: {d:?}");
        assert_eq!((d.buffers_created, d.bind_groups_created), (0, 0), "{arch:?}: created in the loop: {d:?}");
        // a command per operation, but one for the output layer, its head and their two gradient
        // products (the autoencoder's, `ops::OutputLayer`), which launch the same kernels as before
        let fused = ev.plan().chunks.iter().filter(|c| OutputLayer::find(c).is_some()).count();
        assert_eq!(fused, if arch == Arch::Autoencoder { 3 } else { 0 }, "{arch:?}");
        assert_eq!(
            ev.ordered(Want::LossAndGrad).len(),
            ev.plan().chunks.iter().map(|c| c.forward.len() + c.backward.len()).sum::<usize>() - 3 * fused
        );
        assert_eq!(ev.plan().chunks.len(), 3, "{arch:?}: three chunks");
    }
}

#[test]
fn the_cpu_backend_does_not_count() {
    assert!(common::cpu().counts().is_none());
}

#[test]
fn a_path_sweep_iteration_is_one_submission_and_one_readback() {
    use losscape::path::{Curve, PathFinder, PathSettings};
    if common::skipped_in_the_wgpu_pass("a_path_sweep_iteration_is_one_submission_and_one_readback") {
        return;
    }
    let _alone = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let device = wgpu();
    let images = DeviceImages::upload(&device, &mnist(Split::Train, 128)).unwrap();
    let net = Network { arch: Arch::Fcp, act: Act::Softplus };
    let iterations = 4;
    let settings = PathSettings { points: 5, fourier: 2, iterations, ..PathSettings::default() };
    let (a, b) = (init_vector(Arch::Fcp, 0), init_vector(Arch::Fcp, 1));
    let mut dispatches = Vec::new();
    for pairs in [1, 3] {
        let finder = PathFinder::batched(net, &images, 0..128, settings, Curve::Fourier, pairs).unwrap();
        let ends = vec![(&a[..], &b[..]); pairs];
        let warm = finder.run_pairs(&ends, false, |_, _, _| {}).unwrap();
        let before = counts(&device);
        let again = finder.run_pairs(&ends, false, |_, _, _| {}).unwrap();
        let d = counts(&device) - before;
        assert_eq!(again, warm, "{pairs} pair(s): a sweep repeats exactly");
        assert_eq!((d.buffers_created, d.bind_groups_created), (0, 0), "{pairs} pair(s): {d:?}");
        // each iteration, and the measurement of the best paths at the end
        assert_eq!(d.submissions, iterations as u64 + 1, "{pairs} pair(s): {d:?}");
        assert_eq!(d.readbacks, iterations as u64 + 1, "{pairs} pair(s): {d:?}");
        dispatches.push(d.dispatches);
    }
    assert_eq!(dispatches[0], dispatches[1], "P pairs take the dispatches of one");
}

#[test]
fn a_training_epoch_creates_nothing_and_reads_nothing_back() {
    use losscape::optim::{MiniBatch, MiniBatchSettings, Rule, Solver};
    if common::skipped_in_the_wgpu_pass("a_training_epoch_creates_nothing_and_reads_nothing_back") {
        return;
    }
    let _alone = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let device = wgpu();
    // 300 images in mini-batches of 64: 4 full and one partial per epoch
    let images = DeviceImages::upload(&device, &mnist(Split::Train, 300)).unwrap();
    let net = Network { arch: Arch::Fcp, act: Act::Softplus };
    let start: Vec<f32> = (0..2).flat_map(|s| init_vector(Arch::Fcp, s)).collect();
    // SGD: the 4 full steps in one submission; Adam: one each; then the partial step and its 2 copies
    for (rule, submissions) in [(Rule::Sgd, 4), (Rule::Adam, 7)] {
        let settings = MiniBatchSettings { rule, lr: 1e-3, batch: 64, seeds: vec![0, 1] };
        let mut solver = MiniBatch::new(&device, net, settings, &images, &start).unwrap();
        solver.step().unwrap();
        let before = counts(&device);
        solver.step().unwrap();
        let d = counts(&device) - before;
        assert_eq!((d.buffers_created, d.bind_groups_created), (0, 0), "{rule:?}: {d:?}");
        assert_eq!(d.readbacks, 0, "{rule:?}: {d:?}");
        assert_eq!(d.submissions, submissions, "{rule:?}: {d:?}");
    }
}
