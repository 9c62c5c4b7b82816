//! `losscape plan` and the device-sized chunks it shares with the evaluators: chunk sizes and dispatch
//! counts on the named profiles (no device needed), budgets respected, sizes parsed.

mod common;

use losscape::backend::profiles::{known_device, profile, PROFILES};
use losscape::backend::ChunkBudget;
use losscape::cli::parse_bytes;
use losscape::data::{DeviceImages, Split};
use losscape::model::{chunk_capacity, width, Arch, Evaluator, Network, Plan, MAX_CHUNK_IMAGES};
use losscape::ops::Act;
use losscape::pipeline::Preset;
use losscape::planner::{estimate_study, plan_evaluation, rates_from_bench};

fn h100() -> ChunkBudget {
    profile("h100").unwrap().budget(None)
}

#[test]
fn the_h100_profile_meets_the_dispatch_goals_at_b_51_on_60000_images() {
    // LeNet: the 2 GiB binding limit over 51 vectors x the widest tensor (6 x 28 x 28 floats) per image
    let lenet = plan_evaluation(Arch::Lenet, 51, 60_000, h100(), true).unwrap();
    assert_eq!(lenet.chunk_images, ((((1u64 << 31) - 1) / (51 * width(Arch::Lenet) as u64 * 4)) / 64 * 64) as usize);
    assert_eq!(lenet.chunk_images, 2176);
    assert!(lenet.dispatches_per_evaluation <= 2000, "{lenet:?}");
    let lstm = plan_evaluation(Arch::Lstm, 51, 60_000, h100(), true).unwrap();
    assert_eq!(lstm.chunk_images, 1920);
    assert!(lstm.dispatches_per_evaluation <= 6000, "{lstm:?}");
    // one pass and one read-back per evaluation, whatever the chunking
    for e in [&lenet, &lstm] {
        assert_eq!((e.submissions_per_evaluation, e.readbacks_per_evaluation), (1, 1));
    }
    // the small networks fit the largest chunk
    assert_eq!(plan_evaluation(Arch::Fcp, 51, 60_000, h100(), true).unwrap().chunk_images, MAX_CHUNK_IMAGES);
}

#[test]
fn webgpu_default_limits_give_small_chunks_and_many_dispatches() {
    let p = profile("webgpu-default").unwrap();
    let lenet = plan_evaluation(Arch::Lenet, 51, 60_000, p.budget(None), true).unwrap();
    // 128 MiB / (51 x 4704 x 4 bytes) = 139.9 -> 128 images
    assert_eq!(lenet.chunk_images, 128);
    assert!(lenet.dispatches_per_evaluation > 10_000, "{lenet:?}");
}

#[test]
fn chunks_respect_both_limits_of_the_budget() {
    for arch in Arch::ALL {
        let net = Network { arch, act: Act::Softplus };
        for budget in [
            ChunkBudget { tensor_bytes: 64 << 20, total_bytes: 1 << 40 },
            ChunkBudget { tensor_bytes: 1 << 40, total_bytes: 256 << 20 },
            h100(),
        ] {
            let chunk = chunk_capacity(net, budget, 51, 60_000);
            assert!(chunk >= 64 && chunk.is_multiple_of(64) && chunk <= MAX_CHUNK_IMAGES, "{arch:?} {chunk}");
            let plan = Plan::new(net, 0..chunk, chunk, 51, chunk, 0).unwrap();
            let largest = plan.tensors[3..].iter().map(|t| t.len as u64 * 4).max().unwrap();
            if chunk > 64 {
                assert!(largest <= budget.tensor_bytes, "{arch:?} {budget:?}: a {largest}-byte tensor");
                assert!(plan.scratch_bytes() <= budget.total_bytes, "{arch:?} {budget:?}: {}", plan.scratch_bytes());
            }
        }
    }
}

#[test]
fn the_evaluator_chunks_as_the_planner_says() {
    let device = common::gpu();
    let images = DeviceImages::upload(&device, &common::mnist(Split::Train, 3000)).unwrap();
    for arch in [Arch::Lenet, Arch::Lstm] {
        let ev = Evaluator::new(Network { arch, act: Act::Softplus }, &images, 0..3000, 51).unwrap();
        let planned = plan_evaluation(arch, 51, 3000, device.chunk_budget(), true).unwrap();
        assert_eq!(ev.plan().chunks.len(), planned.chunks, "{arch:?}");
        assert_eq!(ev.plan().chunks[0].images, planned.chunk_images, "{arch:?}");
    }
}

#[test]
fn known_gpus_are_recognised_by_name() {
    assert_eq!(known_device("NVIDIA H100 80GB HBM3").map(|p| p.name), Some("h100"));
    assert_eq!(known_device("NVIDIA GeForce RTX 4090").map(|p| p.name), Some("rtx4090"));
    assert_eq!(known_device("llvmpipe (LLVM 15.0.6, 256 bits)").map(|p| p.name), Some("lavapipe"));
    assert!(known_device("AMD Radeon RX 7900").is_none());
    assert!(profile("h200").is_err());
    assert!(PROFILES.iter().all(|p| !p.source.is_empty() && p.fp32_tflops > 0.0));
}

#[test]
fn sizes_parse_with_suffixes_and_refuse_nonsense() {
    assert_eq!(parse_bytes("40G"), Ok(40 << 30));
    assert_eq!(parse_bytes("512m"), Ok(512 << 20));
    assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
    assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
    for bad in ["", "G", "-1G", "10", "lots", "NaNG", "1e30T"] {
        assert!(parse_bytes(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_study_estimate_scales_with_the_work_and_reads_bench_records() {
    let quick = Preset::named("quick").unwrap();
    let one = |p: &Preset| estimate_study(p, &[Arch::Fcp], |_| 1e9, "test".into()).unwrap();
    let base = one(&quick);
    let mut more = quick.clone();
    more.path.iterations *= 2;
    more.iterations *= 2;
    more.epochs *= 2;
    let doubled = one(&more);
    assert!((doubled.flops / base.flops - 2.0).abs() < 1e-12);
    assert!((base.estimated_hours * 3600.0 * 1e9 - base.flops).abs() < 1e-6 * base.flops);
    // the shipped CPU record: every network, the B = 51 case
    let record: serde_json::Value =
        serde_json::from_str(include_str!("../docs/bench-cpu-2000.json")).expect("the shipped bench record");
    let rates = rates_from_bench(&record).unwrap();
    assert_eq!(rates.len(), 4);
    let fcp = rates.iter().find(|(a, _)| *a == Arch::Fcp).unwrap().1;
    assert!((fcp - 74.73366888092309).abs() < 1e-9, "{fcp}");
    assert!(rates_from_bench(&serde_json::json!({"cases": [{"model": "fcp"}]})).is_err());
}

/// The FLOPs `bench` and `plan` use, counted from the plans, equal a count by hand from the layer
/// sizes (multiply-add = 2; forward, weight gradients, and the data gradients the backward pass runs).
#[test]
fn flops_counted_from_the_plans_equal_a_count_by_hand() {
    let dense = |sizes: &[(usize, usize)]| sizes.iter().map(|(i, o)| 2 * i * o).sum::<usize>();
    let fcp = 2 * dense(&[(784, 50), (50, 50), (50, 10)]) + dense(&[(50, 10), (50, 50)]);
    let ae = 2 * dense(&[(784, 32), (32, 32), (32, 32), (32, 784)]) + dense(&[(32, 784), (32, 32), (32, 32)]);
    let (conv1, conv2, fc) = (2 * 28 * 28 * 6 * 25, 2 * 10 * 10 * 16 * 150, dense(&[(400, 120), (120, 84), (84, 10)]));
    // the dense biases are added (forward) and summed (backward) as rank-1 products: 2 x 2 FLOPs each
    let lenet = 2 * (conv1 + conv2 + fc) + conv2 + fc + 4 * (120 + 84 + 10);
    let (input, recurrent, head) = (28 * dense(&[(28, 192)]), 27 * dense(&[(48, 192)]), dense(&[(48, 10)]));
    // the gate biases as rank-1 products at each of the 28 steps, as LeNet's
    let lstm =
        (input + recurrent + head) + (input + 28 * dense(&[(48, 192)]) + head) + (recurrent + head) + 28 * 4 * 192;
    for (arch, by_hand) in [(Arch::Fcp, fcp), (Arch::Autoencoder, ae), (Arch::Lenet, lenet), (Arch::Lstm, lstm)] {
        let (_, grad) = losscape::model::Plan::flops_per_image_vector(arch).unwrap();
        assert_eq!(grad, by_hand as f64, "{arch:?}");
    }
}
