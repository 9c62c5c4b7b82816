//! The native CPU backend and the wgpu backend (lavapipe on CI) against the f64 reference and each
//! other: every network, both activations where the network has a choice, both image-selection modes
//! (a shared image range in several chunks, and each vector on its own images); and the choice `auto`
//! makes.
mod common;

#[path = "common/networks.rs"]
mod networks;

use common::{cpu, mnist, to_f64, wgpu};
use losscape::backend::only_software;
use losscape::data::Split;
use losscape::gpu::AdapterSummary;
use losscape::model::reference::evaluate;
use losscape::model::{Arch, Network};
use losscape::ops::Act;
use networks::{as_reference, cases, check, own_images, run, vectors, B};

#[test]
fn both_backends_equal_the_reference_and_each_other_for_every_network_and_selection_mode() {
    let per = 24;
    let data = mnist(Split::Train, 150);
    let (cpu, wgpu) = (cpu(), wgpu());
    for net in cases() {
        let n = net.arch.n_params();
        let flat = vectors(net.arch);
        for per_vector in [0, per] {
            let mode = if per_vector > 0 { "own images" } else { "shared images" };
            let on_cpu = run(&cpu, net, &data, &flat, per_vector);
            let on_gpu = run(&wgpu, net, &data, &flat, per_vector);
            for b in 0..B {
                let own = own_images(&data, b, per_vector);
                let want = evaluate(net.arch, &to_f64(&flat[b * n..(b + 1) * n]), net.act, &own);
                let what = |backend| format!("{:?} {:?} {mode} vector {b} on {backend}", net.arch, net.act);
                check(&what("cpu"), (&on_cpu.0[b], &on_cpu.1[b * n..(b + 1) * n]), &want);
                check(&what("wgpu"), (&on_gpu.0[b], &on_gpu.1[b * n..(b + 1) * n]), &want);
                // and the two backends against each other, at the same tolerances
                let gpu_as_ref = as_reference((&on_gpu.0[b], &on_gpu.1[b * n..(b + 1) * n]));
                check(&what("cpu vs wgpu"), (&on_cpu.0[b], &on_cpu.1[b * n..(b + 1) * n]), &gpu_as_ref);
            }
        }
    }
}

fn adapter(name: &str, device_type: &str) -> AdapterSummary {
    AdapterSummary {
        name: name.into(),
        backend: "Vulkan".into(),
        device_type: device_type.into(),
        driver: String::new(),
        driver_info: String::new(),
        features: Vec::new(),
        max_storage_buffer_binding_size: 1 << 27,
        max_buffer_size: 1 << 28,
        max_compute_workgroup_storage_size: 1 << 14,
        max_compute_invocations_per_workgroup: 256,
        max_compute_workgroups_per_dimension: 65535,
    }
}

#[test]
fn auto_takes_the_cpu_backend_when_the_only_adapters_are_software_rasterisers() {
    let lavapipe = adapter("llvmpipe (LLVM 19.1.7, 256 bits)", "Cpu");
    let h100 = adapter("NVIDIA H100 80GB HBM3", "DiscreteGpu");
    let igpu = adapter("Apple M2", "IntegratedGpu");
    assert!(only_software(std::slice::from_ref(&lavapipe)));
    assert!(only_software(&[]), "no adapter at all: the CPU backend");
    assert!(!only_software(&[lavapipe.clone(), h100]));
    assert!(!only_software(&[igpu]));
    // and on this machine the suite's own devices are what they claim
    assert!(cpu().is_cpu() && !wgpu().is_cpu());
}

#[test]
fn the_cpu_backend_gives_the_same_bits_every_time() {
    // parallel reductions must not depend on how the threads happened to split the work
    let data = mnist(Split::Train, 200);
    for arch in Arch::ALL {
        let net = Network { arch, act: Act::Softplus };
        let flat = vectors(arch);
        let first = run(&cpu(), net, &data, &flat, 0);
        for _ in 0..2 {
            let again = run(&cpu(), net, &data, &flat, 0);
            assert!(first.0 == again.0 && first.1 == again.1, "{arch:?}: results differ between identical runs");
        }
    }
}
