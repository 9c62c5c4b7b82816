//! Every op family alone, on both backends, against a plain f64 version (as candle's per-op tests do),
//! one test per family and per `shaders/<family>.wgsl`: products, activations, convolution, pooling,
//! the LSTM cell, loss heads, vector ops, Adam, image selection and gathering. Sizes are odd: 1, 7,
//! 33, 257 and counts that are no multiple of a workgroup (256 threads) or a product tile (64). Whole
//! networks are compared in `tests/backends.rs` and `tests/gpu_networks.rs`; the CPU kernels' bits at
//! every SIMD level in `tests/simd.rs`.
//!
//! The CPU half always runs. The wgpu half runs where the suite's device is a GPU (the wgpu pass,
//! `LOSSCAPE_BACKEND=vulkan`, lavapipe on CI) and says on stderr that it is skipped otherwise, as
//! `tests/plan_walk.rs` does; in the wgpu pass a missing adapter fails, as everywhere in that pass.
//! (The names say `cpu_and_wgpu`, not `both_backends`: `.ci/run` skips those in the wgpu pass.)
//!
//! Tolerances. Inputs are f32 values (or bytes); the f64 version computes exactly from them, so a
//! difference is the kernel's own f32 rounding. A sum of n products in f32, in any order, with or
//! without fma, is within γ_n = n·u / (1 − n·u) (u = 2⁻²⁴) of the exact sum *relative to the sum of
//! the absolute terms* (Higham, Accuracy and Stability of Numerical Algorithms, §3.1): [`gamma`] of
//! the terms plus a few roundings, times that magnitude, is the tolerance of every product,
//! convolution, pooling window and reduction. Transcendental functions on a GPU are only as accurate
//! as WGSL promises (`exp` within 3 + 2|x| ULP, `tanh` an absolute error near 1 ULP of 1), so the
//! element-wise families (activations, loss heads, the LSTM cell, Adam) use [`REL`] of the quantity
//! plus [`ABS`] of its natural scale; each family says what that scale is. A wrong index or formula
//! is off by O(1) of the scale, far above either.

#[path = "../common/mod.rs"]
mod common;

mod activations;
mod adam;
mod conv;
mod images;
mod loss;
mod lstm;
mod pool;
mod products;
mod vector;

use common::to_f64;
use losscape::backend::{Buffer, Command, Device};
use losscape::data::{Dataset, DeviceImages, ImageShape};
use losscape::ops::plan::{Op, TensorId, EXTERNAL};

/// Unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Relative tolerance of the element-wise families: 3x the 53 ULP (3.2e-6) WGSL allows `exp` at
/// |x| = 25, the largest argument the tests give it (the largest error seen on lavapipe is a fifth
/// of the tolerance).
const REL: f64 = 1e-5;

/// Absolute tolerance of the element-wise families, relative to the natural scale of the quantity
/// (1 for an activation, the incoming gradient for a backward op): covers `tanh` and `1 - s` near 0,
/// where a GPU's error is absolute.
const ABS: f64 = 1e-6;

/// γ_n: the bound on the relative error of a sum of n terms in f32, relative to the sum of |terms|.
fn gamma(n: usize) -> f64 {
    n as f64 * U / (1.0 - n as f64 * U)
}

/// The backends an op runs on: the CPU backend, and the wgpu backend in the wgpu pass.
fn backends() -> Vec<(&'static str, Device)> {
    let mut list = vec![("cpu", common::cpu())];
    let device = common::gpu();
    if device.is_cpu() {
        eprintln!("skipped on wgpu: the GPU half runs in the wgpu pass (LOSSCAPE_BACKEND=vulkan)");
    } else {
        list.push(("wgpu", device));
    }
    list
}

/// `n` values in [lo, hi), a hash of the index and the seed (no generator state to share).
fn values(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let mut h = i.wrapping_mul(0x9e37_79b9) ^ seed.wrapping_mul(0x85eb_ca6b).wrapping_add(0x27d4_eb2f);
            h = (h ^ (h >> 15)).wrapping_mul(0x2c1b_3c6d);
            h = (h ^ (h >> 12)).wrapping_mul(0x297a_2d39);
            h ^= h >> 15;
            lo + (hi - lo) * ((h >> 8) as f32 / (1u32 << 24) as f32)
        })
        .collect()
}

/// `n` bytes from the same hash.
fn bytes(n: usize, seed: u32) -> Vec<u8> {
    values(n, seed, 0.0, 256.0).iter().map(|&v| v as u8).collect()
}

/// Bytes as `count` images of `pixels` each (with labels below `classes`) on a device: packed on a
/// GPU, f32 in [0, 1] on the CPU ([`DeviceImages`]).
fn images(device: &Device, count: usize, pixels: usize, classes: u8, seed: u32) -> (Dataset, DeviceImages) {
    let labels = bytes(count, seed + 1).iter().map(|b| b % classes).collect();
    let shape = ImageShape::new(1, 1, pixels);
    let data = Dataset::new(bytes(count * pixels, seed), labels, shape, std::path::Path::new("in memory")).unwrap();
    let up = DeviceImages::upload(device, &data).unwrap();
    (data, up)
}

fn upload(device: &Device, data: &[f32]) -> Buffer {
    device.upload(data, "test").unwrap()
}

fn read(device: &Device, buf: &Buffer) -> Vec<f32> {
    device.read(buf, 0, buf.len()).unwrap()
}

/// Scratch tensor ids for the buffers a test binds ([`record`]).
const T0: TensorId = EXTERNAL;
const T1: TensorId = EXTERNAL + 1;
const T2: TensorId = EXTERNAL + 2;
const T3: TensorId = EXTERNAL + 3;

/// Records one plan operation as the evaluator does ([`Device::record`]), with `bound` buffers at the
/// tensor ids the operation names (the fixed ids `WEIGHTS`, `PIXELS`, … among them); every other id
/// holds a one-element placeholder the operation does not touch.
fn record(device: &Device, op: impl Into<Op>, bound: &[(TensorId, &Buffer)]) -> Command {
    device.record(&op.into(), &tensors(device, bound)).unwrap()
}

/// The tensor list [`record`] binds: `bound` at their ids, a one-element placeholder elsewhere.
fn tensors(device: &Device, bound: &[(TensorId, &Buffer)]) -> Vec<Buffer> {
    let n = bound.iter().map(|(i, _)| i + 1).max().unwrap_or(0).max(EXTERNAL);
    let placeholder = device.zeros(1, "unbound").unwrap();
    let mut tensors = vec![placeholder; n];
    for (i, b) in bound {
        tensors[*i] = (*b).clone();
    }
    tensors
}

/// Runs recorded commands in order and waits.
fn run(device: &Device, commands: &[Command]) {
    device.submit(&commands.iter().collect::<Vec<_>>());
    device.wait().unwrap();
}

/// Asserts |got[i] − want[i]| ≤ tol(i) for every element, naming what, the element and the values.
fn check(what: &str, got: &[f32], want: &[f64], tol: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let t = tol(i);
        assert!((g as f64 - w).abs() <= t, "{what}: element {i} is {g}, the f64 version {w} (tolerance {t:e})");
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}
