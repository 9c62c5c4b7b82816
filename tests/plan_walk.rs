//! Issue 26, item 4: data-centre sizes tested where no such GPU is. Every operation of every network's
//! plan at the `h100`/`h200` budgets is walked without a device (grids within the per-dimension limit,
//! every element inside its tensor), and a lavapipe evaluation whose element-wise grids need the second
//! dimension is held to the CPU backend.

mod common;

use losscape::backend::profiles::profile;
use losscape::data::{DeviceImages, Split};
use losscape::gpu::grids::{element_groups, op_groups};
use losscape::model::walk::{check, walk_op};
use losscape::model::{chunk_capacity, init_vector, Arch, Evaluator, Network, Plan, Want};
use losscape::ops::Act;

/// wgpu's default `max_compute_workgroups_per_dimension` (and what NVIDIA's Vulkan driver reports for
/// y and z; x is larger there, but wgpu takes one figure for all three).
const MAX_GROUPS: u32 = 65_535;

#[test]
fn every_op_of_every_plan_fits_the_grid_limit_and_its_tensors_at_h100_and_h200_sizes() {
    let mut walked = 0;
    for name in ["h100", "h200"] {
        let budget = profile(name).unwrap().budget(None);
        for arch in Arch::ALL {
            let net = Network { arch, act: Act::Softplus };
            for batch in [1, 51, 153, 816] {
                let chunk = chunk_capacity(net, budget, batch, 60_000);
                let plan = Plan::new(net, 0..60_000, 60_000, batch, chunk, 0).unwrap();
                let n = check(&plan, MAX_GROUPS).unwrap_or_else(|e| panic!("{name} {arch:?} B={batch}: {e:#}"));
                assert_eq!(n, plan.dispatches(true), "{name} {arch:?} B={batch}: every launch walked");
                walked += n;
            }
        }
    }
    assert!(walked > 100_000, "{walked} launches");
}

#[test]
fn the_walk_refuses_a_grid_past_the_limit_and_an_element_past_a_tensor() {
    // the LeNet convolution at B = 816 in 64-image chunks: 816 x 64 x 6 x 28 x 28 outputs need a
    // second grid row at 65,535 workgroups per row, and more rows than a limit of 100 allows
    let net = Network { arch: Arch::Lenet, act: Act::Softplus };
    let plan = Plan::new(net, 0..64, 64, 816, 64, 0).unwrap();
    let conv = plan.chunks[0].forward.iter().flat_map(|op| walk_op(op, MAX_GROUPS)).find(|w| w.kind == "conv").unwrap();
    assert!(conv.groups[1] > 1, "{conv:?}");
    let e = check(&plan, 100).unwrap_err().to_string();
    assert!(e.contains("grid") && e.contains("limit 100"), "{e}");
    // a tensor one element short
    let mut short = Plan::new(net, 0..64, 64, 2, 64, 0).unwrap();
    let last = short.tensors.len() - 1;
    short.tensors[last].len -= 1;
    let e = check(&short, MAX_GROUPS).unwrap_err().to_string();
    assert!(e.contains("reaches element") && e.contains(&short.tensors[last].name), "{e}");
    // the grid: rows of at most `max` workgroups, as many as needed
    assert_eq!(element_groups(65_535 * 256, MAX_GROUPS).0, [65_535, 1, 1]);
    assert_eq!(element_groups(65_535 * 256 + 1, MAX_GROUPS).0, [65_535, 2, 1]);
}

/// LeNet at B = 8 in one 512-image chunk: the first convolution's 8 x 512 x 6 x 28 x 28 outputs (and
/// its activation and input gradient) take 75,264 workgroups, two grid rows. lavapipe (which keeps
/// every grid of the suite's usual sizes one row high) evaluates it, and the CPU backend agrees.
#[test]
fn a_two_row_element_wise_grid_on_lavapipe_equals_the_cpu_backend() {
    let gpu = common::gpu();
    if gpu.is_cpu() {
        eprintln!("skipped: runs on the wgpu backend (LOSSCAPE_BACKEND=vulkan)");
        return;
    }
    let net = Network { arch: Arch::Lenet, act: Act::Softplus };
    let (batch, images) = (8, 512);
    let data = common::mnist(Split::Train, images);
    let flat: Vec<f32> = (0..batch as u64).flat_map(|s| init_vector(net.arch, 40 + s)).collect();
    let run = |device: &losscape::backend::Device| {
        let up = DeviceImages::upload(device, &data).unwrap();
        let ev = Evaluator::with_chunk(net, &up, 0..images, batch, Some(images)).unwrap();
        assert_eq!(ev.plan().chunks.len(), 1);
        let two_rows = ev.plan().ops(true).flat_map(|op| op_groups(op, MAX_GROUPS)).filter(|g| g[1] > 1).count();
        assert!(two_rows >= 2, "{two_rows} operations with a second grid row");
        ev.set_weights(&flat).unwrap();
        let evals = ev.evaluate(Want::LossAndGrad).unwrap();
        (evals.iter().map(|e| e.loss).collect::<Vec<f64>>(), ev.gradients().unwrap())
    };
    let (gpu_loss, gpu_grad) = run(&gpu);
    let (cpu_loss, cpu_grad) = run(&common::cpu());
    for (b, (g, c)) in gpu_loss.iter().zip(&cpu_loss).enumerate() {
        assert!(((g - c) / c).abs() < 1e-5, "vector {b}: loss {g} on lavapipe, {c} on the CPU");
    }
    let n = net.arch.n_params();
    for b in 0..batch {
        let (g, c) = (&gpu_grad[b * n..(b + 1) * n], &cpu_grad[b * n..(b + 1) * n]);
        let scale = c.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = g.iter().zip(c).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= 1e-4 * scale, "vector {b}: gradients differ by {worst} (largest {scale})");
    }
}

/// The walk's reach is exact, not merely within bounds: on a plan of whole chunks, every tensor an
/// operation uses is reached to its last element by some operation (a formula that undercounts, and so
/// would pass the bounds check vacuously, shows here).
#[test]
fn the_walk_reaches_every_tensor_to_its_last_element() {
    for arch in Arch::ALL {
        let net = Network { arch, act: Act::Softplus };
        let plan = Plan::new(net, 0..512, 512, 3, 256, 0).unwrap();
        let mut reach = vec![0u64; plan.tensors.len()];
        for walked in plan.ops(true).flat_map(|op| walk_op(op, MAX_GROUPS)) {
            for (t, end) in walked.ends {
                reach[t] = reach[t].max(end);
            }
        }
        for (t, tensor) in plan.tensors.iter().enumerate() {
            // untouched: the rank-1 bias helper of networks without such biases, and the labels of the
            // autoencoder (its targets are the images)
            if reach[t] == 0 {
                let unused = tensor.name == "ones" || tensor.name == "labels" && arch == Arch::Autoencoder;
                assert!(unused, "{arch:?}: no operation touches tensor '{}'", tensor.name);
            } else {
                assert_eq!(reach[t], tensor.len as u64, "{arch:?}: tensor '{}'", tensor.name);
            }
        }
    }
}
