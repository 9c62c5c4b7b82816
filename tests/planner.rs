//! `losscape plan` and the device-sized chunks it shares with the evaluators: chunk sizes and dispatch
//! counts on the named profiles (no device needed), budgets respected, sizes parsed.

mod common;

use losscape::backend::profiles::{adapter_budget, known_device, mig_memory, profile, AdapterLimits, PROFILES};
use losscape::backend::ChunkBudget;
use losscape::cli::parse_bytes;
use losscape::data::{DeviceImages, Split};
use losscape::model::{
    chunk_capacity, dispatch_goal, plan_evaluation, width, Arch, Evaluator, Network, Plan, CACHE_FLOOR_IMAGES,
    MAX_CHUNK_IMAGES,
};
use losscape::ops::Act;
use losscape::path::batching::{pairs_per_batch, MAX_PAIRS_PER_BATCH};
use losscape::pipeline::Preset;
use losscape::planner::{estimate_study, rates_from_bench};

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
            ChunkBudget { tensor_bytes: 64 << 20, total_bytes: 1 << 40, cache_bytes: 0 },
            ChunkBudget { tensor_bytes: 1 << 40, total_bytes: 256 << 20, cache_bytes: 0 },
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

/// The CPU backend's chunks aim at its cache budget: on 60,000 images, the largest multiple of 64
/// images whose scratch tensors fit `cache_bytes` (LeNet, the LSTM and the autoencoder at B = 1, the
/// FCP at B = 51), never fewer than the floor (the other three at B = 51), and never more than the
/// other two limits allow (the FCP at B = 1 takes the largest chunk). Without an aim (a GPU's budget)
/// the chunk is what the two limits give.
#[test]
fn cpu_chunks_aim_at_the_cache_budget_and_stop_at_a_floor() {
    let cpu = common::cpu().chunk_budget();
    assert!(cpu.cache_bytes > 0, "{cpu:?}");
    let scratch = |net, chunk, batch| Plan::new(net, 0..chunk, chunk, batch, chunk, 0).unwrap().scratch_bytes();
    let (mut aimed, mut floored) = (0, 0);
    for arch in Arch::ALL {
        let net = Network { arch, act: Act::Softplus };
        for batch in [1, 51] {
            let chunk = chunk_capacity(net, cpu, batch, 60_000);
            let unaimed = chunk_capacity(net, ChunkBudget { cache_bytes: 0, ..cpu }, batch, 60_000);
            let what = format!("{arch:?} B = {batch}: chunk {chunk}, {unaimed} without the aim");
            assert!(chunk.is_multiple_of(64) && chunk <= unaimed, "{what}");
            let fits = scratch(net, chunk, batch) <= cpu.cache_bytes;
            if chunk == unaimed {
                // the other limits were the tighter ones
                assert!(fits || chunk <= CACHE_FLOOR_IMAGES, "{what}: past the aim");
            } else if fits {
                aimed += 1;
                assert!(chunk >= CACHE_FLOOR_IMAGES, "{what}: below the floor");
                assert!(scratch(net, chunk + 64, batch) > cpu.cache_bytes, "{what}: 64 more images fit the aim");
            } else {
                floored += 1;
                assert_eq!(chunk, CACHE_FLOOR_IMAGES, "{what}: past the aim above the floor");
            }
        }
    }
    assert!(aimed >= 2 && floored >= 2, "{aimed} chunks at the aim, {floored} at the floor");
    // a GPU budget has no aim: its chunks are unchanged by this rule
    assert_eq!(h100().cache_bytes, 0);
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
    assert_eq!(known_device("NVIDIA H200").map(|p| p.name), Some("h200"));
    assert!(profile("h300").is_err());
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
    // all but the one evaluation of each training's starting vectors doubles
    let (fwd, _) = losscape::model::Plan::flops_per_image_vector(Arch::Fcp).unwrap();
    let starts = 2.0 * quick.runs as f64 * fwd * quick.train_images.unwrap() as f64;
    assert!(((doubled.flops - starts) / (base.flops - starts) - 2.0).abs() < 1e-12);
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

/// An NVIDIA adapter as wgpu's Vulkan backend describes it: the 2 GiB − 1 binding clamp, and a
/// largest buffer of 2^52 (wgpu's cap for NVIDIA: it says nothing of the memory).
fn nvidia(name: &str) -> AdapterLimits<'_> {
    AdapterLimits { name, software: false, max_binding_bytes: (1 << 31) - 1, max_buffer_bytes: 1 << 52 }
}

#[test]
fn known_adapter_nvidia_h200_gets_a_quarter_of_141_gb_and_the_h100_chunks() {
    let b = adapter_budget(nvidia("NVIDIA H200"), None);
    assert_eq!(b.budget.total_bytes, 141_000_000_000 / 4);
    assert_eq!(b.budget.tensor_bytes, (1 << 31) - 1);
    assert!(b.recognised && b.note.is_none() && b.source.contains("H200"), "{b:?}");
    // the case: at the 2 GiB fallback LeNet ran in 448-image chunks; now as planned on the h100
    let lenet = plan_evaluation(Arch::Lenet, 51, 60_000, b.budget, true).unwrap();
    assert_eq!(lenet.chunk_images, 2176);
    assert_eq!(lenet, plan_evaluation(Arch::Lenet, 51, 60_000, profile("h200").unwrap().budget(None), true).unwrap());
}

#[test]
fn known_adapter_nvidia_a100_sxm4_40gb_gets_40_gb_not_80() {
    let b = adapter_budget(nvidia("NVIDIA A100-SXM4-40GB"), None);
    assert_eq!(b.budget.total_bytes, 10_000_000_000);
    assert!(b.source.contains("A100 40 GB"), "{b:?}");
    // without the size in its name an A100 is taken to be the smaller one
    assert_eq!(adapter_budget(nvidia("NVIDIA A100-PCIE"), None).budget.total_bytes, 10_000_000_000);
    // a MIG slice by its own memory
    assert_eq!(mig_memory("NVIDIA A100-SXM4-40GB MIG 1g.5gb"), Some(5_000_000_000));
    let slice = adapter_budget(nvidia("NVIDIA A100-SXM4-40GB MIG 1g.5gb"), None);
    assert_eq!(slice.budget.total_bytes, 1_250_000_000, "{slice:?}");
}

#[test]
fn known_adapter_nvidia_a100_80gb_pcie_gets_80_gb() {
    let b = adapter_budget(nvidia("NVIDIA A100 80GB PCIe"), None);
    assert_eq!(b.budget.total_bytes, 20_000_000_000);
    assert!(b.source.contains("A100 80 GB"), "{b:?}");
    for (name, gb) in [("NVIDIA L40S", 48), ("NVIDIA GeForce RTX 3090", 24), ("NVIDIA H100 80GB HBM3", 80)] {
        assert_eq!(adapter_budget(nvidia(name), None).budget.total_bytes, gb * 250_000_000, "{name}");
    }
}

#[test]
fn known_adapter_unknown_name_states_its_fallback_and_gpu_memory_wins() {
    let b = adapter_budget(nvidia("Imaginary GPU 9000"), None);
    assert_eq!(b.budget.total_bytes, 2 << 30);
    assert!(!b.recognised, "{b:?}");
    let note = b.note.clone().unwrap();
    assert!(note.contains("Imaginary GPU 9000") && note.contains("2.0 GiB") && note.contains("--gpu-memory"), "{note}");
    // --gpu-memory wins over everything, the table included
    for name in ["Imaginary GPU 9000", "NVIDIA H200"] {
        let b = adapter_budget(nvidia(name), Some(40 << 30));
        assert_eq!((b.budget.total_bytes, b.source.as_str(), b.note), (40 << 30, "--gpu-memory", None));
    }
    // an unknown adapter that reports a real largest buffer (a Metal GPU, a driver with maintenance4)
    let big = AdapterLimits { max_buffer_bytes: 48 << 30, ..nvidia("Imaginary GPU 9000") };
    let b = adapter_budget(big, None);
    assert_eq!(b.budget.total_bytes, 12 << 30);
    assert!(b.recognised && b.source.contains("largest buffer"), "{b:?}");
    // Apple: at least the smallest configuration, more when the adapter's largest buffer says so
    let mac =
        AdapterLimits { name: "Apple M2 Max", software: false, max_binding_bytes: 1 << 30, max_buffer_bytes: 1 << 30 };
    assert_eq!(adapter_budget(mac, None).budget.total_bytes, 2_000_000_000);
    let mac = AdapterLimits { max_buffer_bytes: 64 << 30, ..mac };
    assert_eq!(adapter_budget(mac, None).budget.total_bytes, 16 << 30);
    // a software rasteriser keeps its small budget whatever its name
    let soft = AdapterLimits {
        name: "llvmpipe (LLVM 15)",
        software: true,
        max_binding_bytes: 128 << 20,
        max_buffer_bytes: (1 << 31) - 1,
    };
    assert_eq!(
        adapter_budget(soft, None).budget,
        ChunkBudget { tensor_bytes: 32 << 20, total_bytes: 256 << 20, cache_bytes: 0 }
    );
}

/// Issue 26: on the h100 budget 16 pairs per batch (B = 816) cut LSTM chunks to 64 images (~112,000
/// dispatches per evaluation) and LeNet's to ~15,000; P now stops where the dispatch goal would break.
#[test]
fn pairs_per_batch_keep_the_dispatch_goals_on_the_h100_and_h200_profiles() {
    for name in ["h100", "h200"] {
        let budget = profile(name).unwrap().budget(None);
        let expected =
            [(Arch::Fcp, 16, 104), (Arch::Lenet, 2, 1848), (Arch::Lstm, 1, 3840), (Arch::Autoencoder, 16, 1314)];
        for (arch, p, dispatches) in expected {
            assert_eq!(pairs_per_batch(arch, budget, 51, 60_000), p, "{name} {arch:?}");
            let e = plan_evaluation(arch, p * 51, 60_000, budget, true).unwrap();
            assert_eq!(e.dispatches_per_evaluation, dispatches, "{name} {arch:?}: {e:?}");
            assert!(e.dispatches_per_evaluation <= dispatch_goal(arch));
            // one pair more would break the goal (or P is already the largest)
            if p < MAX_PAIRS_PER_BATCH {
                let more = plan_evaluation(arch, (p + 1) * 51, 60_000, budget, true).unwrap();
                assert!(more.dispatches_per_evaluation > dispatch_goal(arch), "{name} {arch:?}: {more:?}");
            }
        }
        // what 16 pairs did to the LSTM and LeNet before
        let lstm = plan_evaluation(Arch::Lstm, 816, 60_000, budget, true).unwrap();
        assert_eq!(lstm.chunk_images, 64);
        assert!(lstm.dispatches_per_evaluation > 100_000, "{lstm:?}");
        // on few images every chunk is large and batching is free again
        assert_eq!(pairs_per_batch(Arch::Lstm, budget, 51, 1_000), 16, "{name}");
    }
    // a budget too small for the goal at one pair still runs, one pair at a time
    let tiny = profile("webgpu-default").unwrap().budget(None);
    assert_eq!(pairs_per_batch(Arch::Lenet, tiny, 51, 60_000), 1);
}

#[test]
fn plan_preset_paper_on_h100_reports_the_pairs_per_batch_and_batch_it_assumes() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(["plan", "--preset", "paper", "--profile", "h100", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let paths = v["paths"].as_array().unwrap();
    let get = |m: &str| paths.iter().find(|p| p["model"] == m).unwrap_or_else(|| panic!("{m}: {v}"));
    for (m, p, b, chunk) in [("lenet", 2, 102, 1088), ("lstm", 1, 51, 1920), ("fcp", 16, 816, 8192)] {
        let e = get(m);
        assert_eq!((e["pairs_per_batch"].as_u64(), e["batch"].as_u64()), (Some(p), Some(b)), "{e}");
        assert_eq!(e["chunk_images"].as_u64(), Some(chunk), "{e}");
    }
    // the path evaluations are planned at that B
    assert!(v["evaluations"].as_array().unwrap().iter().any(|e| e["model"] == "lenet" && e["batch"] == 102), "{v}");
}
