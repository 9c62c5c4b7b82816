//! Throughput of the batched loss-and-gradient primitive, against a ceiling: a large plain matrix
//! product through the same tiled kernel on the same adapter.

use anyhow::Result;
use serde::Serialize;

use crate::analysis::stats::median;
use crate::backend::{AdapterSummary, Counts, Device, OpTime, Source};
use crate::data::DeviceImages;
use crate::model::{init_vector, Arch, Evaluator, Network, Want};
use crate::ops::{Layout, Product};
use crate::path::{PathFinder, PathSettings};

#[derive(Serialize, Debug)]
pub struct Case {
    pub model: &'static str,
    pub batch: usize,
    pub images: usize,
    pub seconds_per_call: f64,
    /// Seconds of a loss-only call (what an L-BFGS line search runs), median of the same repeats.
    pub loss_only_seconds_per_call: f64,
    pub evaluations_per_second: f64,
    pub gflops: f64,
    pub fraction_of_ceiling: f64,
    /// Images per chunk of the evaluation (the device's budget decides it).
    pub chunk_images: usize,
    /// What one call asked of a GPU (dispatches, submissions, read-backs, creations); absent on the CPU.
    pub counts_per_call: Option<Counts>,
    /// With `bench --profile` on the CPU backend: where one call's time goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

/// One loss-and-gradient call's time per operation, from `repeats` calls timed apart from the others.
#[derive(Serialize, Debug)]
pub struct Profile {
    /// Mean wall-clock seconds of the profiled calls (the operations' times and the host's work between them).
    pub seconds_per_call: f64,
    /// Per operation and shape, the longest first: calls, seconds and FLOPs per call.
    pub ops: Vec<OpTime>,
}

#[derive(Serialize, Debug)]
pub struct Ceiling {
    pub size: usize,
    pub seconds: f64,
    pub gflops: f64,
}

#[derive(Serialize, Debug)]
pub struct Record {
    pub adapter: AdapterSummary,
    /// The evaluators' memory budget on this device and where it comes from.
    pub budget: crate::backend::profiles::MemoryBudget,
    pub commit: &'static str,
    pub timing: &'static str,
    pub flop_count: &'static str,
    pub repeats: usize,
    /// Whether the loss heads' and vector reductions used subgroup operations (`LOSSCAPE_SUBGROUPS`).
    pub subgroup_reductions: bool,
    pub ceiling: Ceiling,
    /// The FCP's batched first-layer product at the largest B timed.
    pub first_layer: Option<FirstLayer>,
    pub cases: Vec<Case>,
    pub paths: Vec<PathCase>,
    pub training: Vec<TrainCase>,
}

/// Times an S x S x S product through the tiled matmul kernel.
pub fn ceiling(device: &Device, size: usize, repeats: usize) -> Result<Ceiling> {
    let a: Vec<f32> = (0..size * size).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let a = device.upload(&a, "ceiling a")?;
    let c = device.zeros(size * size, "ceiling c")?;
    let m = Layout::row_major(0, size, 0);
    let d = device.matmul(
        Product { m: size, n: size, k: size, batches: 1, accumulate: false },
        (Source::F32(&a), m),
        (Source::F32(&a), m),
        (&c, m),
    )?;
    device.submit_timed(&[&d])?;
    let times = (0..repeats).map(|_| device.submit_timed(&[&d])).collect::<Result<Vec<_>>>()?;
    let seconds = median(&times);
    Ok(Ceiling { size, seconds, gflops: 2.0 * (size as f64).powi(3) / seconds * 1e-9 })
}

/// The FCP's first layer for `batch` vectors on all images, as its plan records it: one grouped
/// product X [N x 784] * [W_1 | ... | W_B]^T into [vector][image][unit].
#[derive(Serialize, Debug)]
pub struct FirstLayer {
    pub batch: usize,
    pub images: usize,
    pub seconds: f64,
    pub gflops: f64,
}

/// Times the FCP's batched first-layer product (the largest product of the study) on `images`.
pub fn first_layer(images: &DeviceImages, batch: usize, repeats: usize) -> Result<FirstLayer> {
    let device = &images.device;
    let (n, units, inputs, n_prm) = (images.count, 50, crate::model::INPUT_PIXELS, Arch::Fcp.n_params());
    let flat: Vec<f32> = (0..batch as u64).flat_map(|s| init_vector(Arch::Fcp, s)).collect();
    let w = device.upload(&flat, "first-layer weights")?;
    let z = device.zeros(batch * n * units, "first-layer output")?;
    let d = device.matmul(
        Product { m: n, n: units * batch, k: inputs, batches: 1, accumulate: false },
        (Source::Images(&images.pixels), Layout::row_major(0, inputs, 0)),
        (Source::F32(&w), Layout { off: 0, batch: 0, row: 1, col: inputs, group: Some((units, n_prm)) }),
        (&z, Layout { off: 0, batch: 0, row: units, col: 1, group: Some((units, n * units)) }),
    )?;
    device.submit_timed(&[&d])?;
    // the weights written again before each timed call, as in `case`
    let call = || device.write(&w, 0, &flat).and_then(|_| device.submit_timed(&[&d]));
    let seconds = median(&(0..repeats).map(|_| call()).collect::<Result<Vec<_>>>()?);
    let flops = 2.0 * (n * units * batch * inputs) as f64;
    Ok(FirstLayer { batch, images: n, seconds, gflops: flops / seconds * 1e-9 })
}

/// Times loss+gradient of `batch` vectors of `net` on all images of `data`; with `profile`, on the CPU
/// backend, also `repeats` more calls per operation ([`Case::profile`]).
pub fn case(
    net: Network,
    images: &DeviceImages,
    (batch, repeats): (usize, usize),
    ceiling: f64,
    profile: bool,
) -> Result<Case> {
    let eval = Evaluator::new(net, images, 0..images.count, batch)?;
    let flat: Vec<f32> = (0..batch as u64).flat_map(|s| init_vector(net.arch, s)).collect();
    eval.set_weights(&flat)?;
    eval.run_timed(Want::LossAndGrad)?; // warm-up
    eval.results()?;
    let before = images.device.counts();
    eval.run(Want::LossAndGrad);
    eval.results()?;
    let counts_per_call = images.device.counts().zip(before).map(|(after, before)| after - before);
    // The weights are written again before each timed call, outside its time, as a path or a
    // training run writes new ones before each evaluation: what a backend derives from them and keeps
    // while they are unchanged (the CPU's rearranged weights) is derived again inside every call.
    let call = |want| eval.set_weights(&flat).and_then(|_| eval.run_timed(want));
    let timed = |want| (0..repeats).map(|_| call(want)).collect::<Result<Vec<_>>>().map(|t| median(&t));
    let seconds = timed(Want::LossAndGrad)?;
    let loss_only_seconds_per_call = timed(Want::Loss)?;
    let profile = match profile && images.device.profile(true) {
        true => {
            let timed = (0..repeats).map(|_| call(Want::LossAndGrad)).collect::<Result<Vec<_>>>();
            let ops = images.device.take_profile().unwrap_or_default();
            images.device.profile(false);
            let seconds_per_call = timed?.iter().sum::<f64>() / repeats as f64;
            Some(Profile { seconds_per_call, ops: per_call(ops, repeats) })
        }
        false => None,
    };
    let evals = (batch * images.count) as f64;
    let gflops = evals * crate::model::Plan::flops_per_image_vector(net.arch)?.1 / seconds * 1e-9;
    Ok(Case {
        model: net.arch.id(),
        batch,
        images: images.count,
        seconds_per_call: seconds,
        loss_only_seconds_per_call,
        evaluations_per_second: evals / seconds,
        gflops,
        fraction_of_ceiling: gflops / ceiling,
        chunk_images: eval.plan().chunks[0].images,
        counts_per_call,
        profile,
    })
}

/// A profile of `calls` calls as the figures of one.
fn per_call(ops: Vec<OpTime>, calls: usize) -> Vec<OpTime> {
    let n = calls.max(1);
    let each = |o: OpTime| OpTime { calls: o.calls / n, seconds: o.seconds / n as f64, flops: o.flops / n as f64, ..o };
    ops.into_iter().map(each).collect()
}

/// Time of one path-finder iteration, against evaluating the same points one vector at a time.
#[derive(Serialize, Debug)]
pub struct PathCase {
    pub model: &'static str,
    pub points: usize,
    pub images: usize,
    /// One iteration: materialise the points, batched loss+gradient, chain rule, Adam step.
    pub seconds_per_iteration: f64,
    /// The same points' loss+gradient as `points` calls with B = 1.
    pub seconds_one_at_a_time: f64,
    pub speedup: f64,
    /// Images per chunk of the batched evaluation of the `points` points.
    pub chunk_images: usize,
    /// What the last timed iteration asked of a GPU; absent on the CPU.
    pub counts_per_iteration: Option<Counts>,
}

/// Times a path iteration with all `points` in one batched call, and the same points one by one.
pub fn path_case(net: Network, images: &DeviceImages, points: usize, repeats: usize) -> Result<PathCase> {
    let device = &images.device;
    let settings = PathSettings { points, ..PathSettings::default() };
    let finder = PathFinder::new(net, images, 0..images.count, settings)?;
    finder.start(&init_vector(net.arch, 0), &init_vector(net.arch, 1), None)?;
    let mut times = Vec::new();
    let mut counts_per_iteration = None;
    for k in 0..=repeats {
        let t = std::time::Instant::now();
        let before = device.counts();
        finder.evaluate(true)?;
        finder.adam_step(k as u32 + 1)?;
        device.wait()?;
        counts_per_iteration = device.counts().zip(before).map(|(after, before)| after - before);
        if k > 0 {
            times.push(t.elapsed().as_secs_f64()); // the first call warms up
        }
    }
    let batched = median(&times);
    let flat = finder.points()?;
    let single = Evaluator::new(net, images, 0..images.count, 1)?;
    let n = net.arch.n_params();
    single.set_weights(&flat[..n])?;
    single.run(Want::LossAndGrad);
    single.results()?;
    let t = std::time::Instant::now();
    for m in 0..points {
        single.set_weights(&flat[m * n..(m + 1) * n])?;
        single.run(Want::LossAndGrad);
        single.results()?;
    }
    let one_by_one = t.elapsed().as_secs_f64();
    Ok(PathCase {
        model: net.arch.id(),
        points,
        images: images.count,
        seconds_per_iteration: batched,
        seconds_one_at_a_time: one_by_one,
        speedup: one_by_one / batched,
        chunk_images: crate::model::chunk_capacity(net, device.chunk_budget(), points, images.count),
        counts_per_iteration,
    })
}

/// Training throughput for R runs.
#[derive(Serialize, Debug)]
pub struct TrainCase {
    pub model: &'static str,
    pub runs: usize,
    pub images: usize,
    /// The median of `--repeats` epochs.
    pub seconds_per_sgd_epoch: f64,
    /// The median of `--repeats` iterations.
    pub seconds_per_lbfgs_iteration: f64,
    /// The loss-only evaluations of the timed L-BFGS iteration's line search (besides its one loss and
    /// gradient): PyTorch's side of the comparison runs 6.
    pub lbfgs_line_search_evaluations: usize,
    /// Image-run gradient evaluations per second in SGD.
    pub sgd_images_per_second: f64,
}

/// Times training steps of `runs` runs: the medians of `repeats` SGD epochs and L-BFGS iterations
/// ([`crate::train::time_steps`]).
///
/// # Errors
/// The network does not plan; device errors.
pub fn train_case(net: Network, images: &DeviceImages, runs: usize, repeats: usize) -> Result<TrainCase> {
    let t = crate::train::time_steps(net, images, runs, repeats)?;
    Ok(TrainCase {
        model: net.arch.id(),
        runs,
        images: images.count,
        seconds_per_sgd_epoch: t.sgd_epoch,
        seconds_per_lbfgs_iteration: t.lbfgs_iteration,
        lbfgs_line_search_evaluations: t.lbfgs_line_search_evaluations,
        sgd_images_per_second: (runs * images.count) as f64 / t.sgd_epoch,
    })
}
