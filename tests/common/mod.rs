#![allow(dead_code)]
//! Shared fixtures for the integration tests.

use std::sync::OnceLock;

use losscape::backend::{Device, DeviceChoice, Subgroups};
use losscape::data::{bundled_dir, load_split, Dataset, Split};

/// The device the suite runs on: `LOSSCAPE_BACKEND` (cpu, vulkan, ...), else auto (the CPU backend on
/// a machine whose only adapter is a software rasteriser). One per test binary.
pub fn gpu() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE.get_or_init(|| Device::open(&DeviceChoice::default()).expect("a compute device")).clone()
}

/// The native CPU backend.
pub fn cpu() -> Device {
    Device::cpu()
}

/// The wgpu backend on whatever adapter is present (lavapipe on CI).
pub fn wgpu() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            Device::open(&DeviceChoice { backend: Some("vulkan,metal,dx12".into()), ..Default::default() })
                .expect("a GPU adapter (install mesa-vulkan-drivers)")
        })
        .clone()
}

/// The wgpu backend like [`wgpu`], with the workgroup sums' subgroup variant chosen explicitly
/// (`LOSSCAPE_SUBGROUPS` does not apply). One device per choice and test binary.
pub fn wgpu_subgroups(subgroups: Subgroups) -> Device {
    static AUTO: OnceLock<Device> = OnceLock::new();
    static ON: OnceLock<Device> = OnceLock::new();
    static OFF: OnceLock<Device> = OnceLock::new();
    let cell = match subgroups {
        Subgroups::Auto => &AUTO,
        Subgroups::On => &ON,
        Subgroups::Off => &OFF,
    };
    cell.get_or_init(|| {
        let choice = DeviceChoice {
            backend: Some("vulkan,metal,dx12".into()),
            subgroups: Some(subgroups),
            ..Default::default()
        };
        Device::open(&choice).expect("a GPU adapter (install mesa-vulkan-drivers)")
    })
    .clone()
}

/// The first `n` images of a bundled split.
pub fn mnist(split: Split, n: usize) -> Dataset {
    static TEST: OnceLock<Dataset> = OnceLock::new();
    static TRAIN: OnceLock<Dataset> = OnceLock::new();
    let cell = if split == Split::Test { &TEST } else { &TRAIN };
    cell.get_or_init(|| load_split(&bundled_dir(), split).expect("bundled MNIST")).clone().truncated(n)
}

/// Largest |a - b| relative to the largest |b|.
pub fn max_rel_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(&x, y)| (x as f64 - y).abs()).fold(0.0, f64::max) / scale
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The first two rows of the paper authors' LSTM solution set, shipped with the tests
/// (`tests/data/README.md`).
pub fn authors_lstm_rows01() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_authors_rows01.npy")
}

/// True in the suite's wgpu pass (`LOSSCAPE_BACKEND` names a GPU backend: `.ci/run`'s second pass,
/// `LOSSCAPE_BACKEND=vulkan cargo test`), after saying on stderr that `test` is skipped there.
///
/// For tests pinned to explicit devices ([`wgpu`], [`wgpu_subgroups`], [`cpu`]) and nothing that
/// `LOSSCAPE_BACKEND` chooses ([`gpu`], a child `losscape`): the variable does not reach them, so the
/// wgpu pass would compute exactly what the default pass of the same `cargo test && LOSSCAPE_BACKEND=vulkan
/// cargo test` computed, on the same adapter. They return early there instead (a check of the
/// variable, not a `--skip` name), and run in full in the default pass.
pub fn skipped_in_the_wgpu_pass(test: &str) -> bool {
    let pass = std::env::var("LOSSCAPE_BACKEND").map(|b| b.trim().to_lowercase()).unwrap_or_default();
    let skip = !matches!(pass.as_str(), "" | "cpu" | "auto");
    if skip {
        eprintln!("skipped: {test} runs on explicit devices, as in the default pass (LOSSCAPE_BACKEND={pass})");
    }
    skip
}
