//! The CPU backend's element-wise kernels at every SIMD level this processor has, each forced as
//! `LOSSCAPE_SIMD` would: against the f64 reference on every network in both image-selection modes, the
//! same bits at every level (so that a run's bytes do not depend on the level), and subnormals flushed
//! to zero in the threads that run the kernels.

mod common;
#[path = "common/networks.rs"]
mod networks;

use std::sync::Arc;

use common::{mnist, to_f64};
use losscape::backend::{Device, Rows};
use losscape::cpu::{flush, Cpu, Simd};
use losscape::data::Split;
use losscape::model::reference::evaluate;
use losscape::ops::plan::{ActBackward, EXTERNAL};
use losscape::ops::{Act, AdamStep};
use networks::{cases, check, own_images, run, vectors, B};

/// The levels this processor can run (the portable one always; AVX2 and AVX-512 where present).
fn levels() -> Vec<Simd> {
    let levels: Vec<Simd> = Simd::ALL.into_iter().filter(|s| s.available()).collect();
    eprintln!("SIMD levels tested here: {:?}", levels.iter().map(|s| s.name()).collect::<Vec<_>>());
    levels
}

fn device(simd: Simd) -> Device {
    let cpu = Cpu::with_simd(simd);
    assert_eq!(cpu.kernels, simd, "an available level is taken as asked");
    Device::Cpu(Arc::new(cpu))
}

#[test]
fn every_simd_level_equals_the_reference_and_gives_the_same_bits() {
    // 100 images: two chunks of 64 when shared, 24 per vector otherwise
    let per = 24;
    let data = mnist(Split::Train, 100);
    let levels = levels();
    assert!(levels.contains(&Simd::Portable));
    for net in cases() {
        let n = net.arch.n_params();
        let flat = vectors(net.arch);
        for per_vector in [0, per] {
            let want: Vec<_> = (0..B)
                .map(|b| {
                    evaluate(net.arch, &to_f64(&flat[b * n..(b + 1) * n]), net.act, &own_images(&data, b, per_vector))
                })
                .collect();
            let mut first = None;
            for &simd in &levels {
                let got = run(&device(simd), net, &data, &flat, per_vector);
                let what =
                    |b| format!("{:?} {:?} per_vector {per_vector} vector {b} at {}", net.arch, net.act, simd.name());
                for (b, want) in want.iter().enumerate() {
                    check(&what(b), (&got.0[b], &got.1[b * n..(b + 1) * n]), want);
                }
                match &first {
                    None => first = Some(got),
                    Some(f) => assert!(*f == got, "{}: results differ from the widest level's", what(0)),
                }
            }
        }
    }
}

#[test]
fn dot_products_and_adam_steps_give_the_same_bits_at_every_level() {
    let len = 100_003; // several parallel pieces and a ragged tail
    let x: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5).collect();
    let g: Vec<f32> = (0..len).map(|i| ((i * 104_729) % 1000) as f32 / 1009.0 - 0.49).collect();
    let mut first: Option<(Vec<f64>, Vec<f32>)> = None;
    for simd in levels() {
        let d = device(simd);
        let (xb, gb) = (d.upload(&x, "x").unwrap(), d.upload(&g, "g").unwrap());
        let dot = d.dot(Rows::new(&xb, 1, len), Rows::new(&gb, 1, len)).unwrap();
        let (m, v) = (d.zeros(len, "m").unwrap(), d.zeros(len, "v").unwrap());
        let mut step = d.adam(AdamStep::pytorch(1e-3, 1), &gb, (&xb, 0), &m, &v).unwrap();
        for t in 1..=3 {
            d.set_adam_step(&mut step, AdamStep::pytorch(1e-3, t)).unwrap();
            d.submit(&[&step]);
        }
        let got = (dot, d.read::<f32>(&xb, 0, len).unwrap());
        let exact: f64 = x.iter().zip(&g).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!(
            (got.0[0] - exact).abs() <= 1e-6 * exact.abs().max(1.0),
            "{}: dot {} vs {exact}",
            simd.name(),
            got.0[0]
        );
        match &first {
            None => first = Some(got),
            Some(f) => assert!(*f == got, "{}: dot or Adam differs from the widest level's", simd.name()),
        }
    }
}

#[test]
fn subnormals_are_flushed_to_zero_in_the_kernel_threads_at_every_level() {
    if !flush::supported() {
        eprintln!("no flush-to-zero control on this architecture: nothing to test");
        return;
    }
    let len = 70_000; // more than one parallel piece, so that rayon's workers run it
    let tiny = 1e-40f32;
    assert!(tiny > 0.0 && !tiny.is_normal(), "1e-40 is subnormal in f32");
    for simd in levels() {
        let d = device(simd);
        // the ReLU backward pass: grad * 1 where z > 0, a subnormal result when grad is 1e-40
        let z = d.upload(&vec![1.0f32; len], "z").unwrap();
        let grad = d.upload(&vec![tiny; len], "grad").unwrap();
        let op = ActBackward { act: Act::Relu, z: EXTERNAL, grad: EXTERNAL + 1, len };
        let mut tensors = vec![z.clone(); EXTERNAL]; // the fixed tensors, untouched by an activation
        tensors.extend([z.clone(), grad.clone()]);
        let cmd = d.record(&op, &tensors).unwrap();
        d.submit(&[&cmd]);
        let out = d.read::<f32>(&grad, 0, len).unwrap();
        assert!(out.iter().all(|&v| v == 0.0), "{}: subnormal gradients survived: {:?}", simd.name(), &out[..4]);
        // a dot product of normal numbers whose products are subnormal: 1e-20 * 1e-20 = 1e-40
        let a = d.upload(&vec![1e-20f32; len], "a").unwrap();
        let dot = d.dot(Rows::new(&a, 1, len), Rows::new(&a, 1, len)).unwrap();
        assert_eq!(dot[0], 0.0, "{}: subnormal products summed to {:e}", simd.name(), dot[0]);
        // and the caller's own environment is left as it was
        assert!(!flush::enabled(), "{}: the submitting thread's flags were not restored", simd.name());
        assert_eq!(std::hint::black_box(tiny) * std::hint::black_box(1.0f32), tiny);
    }
}

/// `info` and `bench` records name the instruction set of `gemm`'s products: AVX-512 exactly where the
/// processor has it and the build keeps the `gemm-avx512` feature (a `--no-default-features` build runs
/// them at AVX2+FMA at most, as an AVX2 machine would).
#[cfg(target_arch = "x86_64")]
#[test]
fn the_gemm_level_follows_the_processor_and_the_build_feature() {
    let level = losscape::cpu::simd_level();
    let avx512 = std::is_x86_feature_detected!("avx512f") && cfg!(feature = "gemm-avx512");
    assert_eq!(level == "avx512f", avx512, "gemm level {level}");
    let cpu = Cpu::with_simd(Simd::Portable);
    assert_eq!(cpu.simd, level, "the backend reports the same level");
}

/// Every per-level build of the element-wise kernels (`cpu::simd::dispatch!`) keeps its work inside:
/// a closure or generic helper left out of line runs without the level's target features, at a tenth
/// of the speed and with the same bits, so no other test would notice. Checked here on this suite's
/// own build (opt-level 1) with `scripts/check-simd-inlining`, which catches the iterator adapters
/// and closures such a build leaves out of line. A release build decides again (the closure that made
/// a release build's softplus 10 times slower was inlined at opt-level 1), so the script is also run
/// on the release binary before any measurement (docs/benchmarks.md).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn per_level_kernels_call_nothing_out_of_line() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-simd-inlining");
    let o = std::process::Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_losscape"))
        .output()
        .expect("bash runs");
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{}\n{out}{err}", script.display());
    assert!(out.contains("keeps its work inside"), "{out}");
    let count: usize =
        out.rsplit('(').next().and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(count >= 20, "only {count} per-level functions found: {out}");
}
