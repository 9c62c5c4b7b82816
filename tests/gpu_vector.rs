//! GPU vector operations against plain Rust.
mod common;

use common::gpu;
use losscape::backend::Rows;

fn data(rows: usize, len: usize, seed: u32) -> Vec<f32> {
    (0..rows * len)
        .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

#[test]
fn dot_and_sum_match_f64_per_row() {
    let gpu = gpu();
    let (rows, len) = (3, 100_003); // not a multiple of the workgroup size
    let (x, y) = (data(rows, len, 1), data(rows, len, 2));
    let (gx, gy) = (gpu.upload(&x, "x").unwrap(), gpu.upload(&y, "y").unwrap());
    let dots = gpu.dot(Rows::new(&gx, rows, len), Rows::new(&gy, rows, len)).unwrap();
    let sums = gpu.sum(Rows::new(&gx, rows, len)).unwrap();
    let norms = gpu.dot(Rows::new(&gx, rows, len), Rows::new(&gx, rows, len)).unwrap();
    for r in 0..rows {
        let (xr, yr) = (&x[r * len..(r + 1) * len], &y[r * len..(r + 1) * len]);
        let dot: f64 = xr.iter().zip(yr).map(|(&a, &b)| a as f64 * b as f64).sum();
        let sum: f64 = xr.iter().map(|&a| a as f64).sum();
        let norm: f64 = xr.iter().map(|&a| (a as f64).powi(2)).sum();
        let scale: f64 = xr.iter().zip(yr).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
        assert!((dots[r] - dot).abs() < 1e-5 * scale, "row {r}: dot {} vs {dot}", dots[r]);
        assert!((sums[r] - sum).abs() < 1e-5 * xr.iter().map(|a| a.abs() as f64).sum::<f64>(), "row {r}: sum");
        assert!((norms[r] - norm).abs() < 1e-5 * norm, "row {r}: norm");
    }
}

#[test]
fn axpy_and_scale_use_one_coefficient_per_row() {
    let gpu = gpu();
    let (rows, len) = (4, 5000);
    let (x, y) = (data(rows, len, 3), data(rows, len, 4));
    let (gx, gy) = (gpu.upload(&x, "x").unwrap(), gpu.upload(&y, "y").unwrap());
    let a = [0.5f32, -2.0, 0.0, 3.25];
    gpu.axpy(&a, Rows::new(&gx, rows, len), Rows::new(&gy, rows, len)).unwrap();
    let s = [2.0f32, 0.5, -1.0, 0.0];
    gpu.scale(&s, Rows::new(&gy, rows, len)).unwrap();
    let out: Vec<f32> = gpu.read(&gy, 0, rows * len).unwrap();
    for i in 0..rows * len {
        let r = i / len;
        let expect = s[r] * a[r].mul_add(x[i], y[i]);
        assert!((out[i] - expect).abs() <= 1e-6 * expect.abs().max(1.0), "element {i}: {} vs {expect}", out[i]);
    }
}
