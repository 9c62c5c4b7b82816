//! `pool.wgsl`: average and max pooling (PyTorch's `nn.AvgPool2d(k, s)` / `nn.MaxPool2d(k, s)`, no
//! padding) of `planes` maps and their gradients, the elements past the maps untouched. Tolerance of
//! the average: forward γ(k² + 1) of the window's Σ|x| / k² (the sum, then the f32 of 1 / k²);
//! backward γ(windows + 1) of the covering windows' Σ|g| / k². Max pooling is exact (a copy forward,
//! a sum of at most ⌈k/s⌉² gradients backward, checked at γ of that count), and its gradient goes to
//! the first maximal element of each window in row-major order: the tie cases hold maps of a few
//! repeated values, so that most windows have several maxima.

use super::{backends, check, gamma, read, record, run, upload, values, T0, T1, T2, T3};
use losscape::ops::plan::{PoolBackward, PoolForward};
use losscape::ops::{Pool, PoolKind};

/// f64 pooling of `x`: (forward, its magnitude) and, for gradient `g`, (backward, its magnitude).
fn reference(p: &Pool, x: &[f32], g: &[f32]) -> [Vec<f64>; 4] {
    let (oh, ow, k, s) = (p.out_h(), p.out_w(), p.kernel, p.stride);
    let (mut fwd, mut fmag) = (vec![7.0; p.out_len() + 2], vec![0.0; p.out_len() + 2]);
    let (mut bwd, mut bmag) = (vec![7.0; p.in_len() + 2], vec![0.0; p.in_len() + 2]);
    bwd[..p.in_len()].fill(0.0);
    let kk = (k * k) as f64;
    for plane in 0..p.planes {
        let base = plane * p.in_h * p.in_w;
        for (oy, ox) in (0..oh * ow).map(|t| (t / ow, t % ow)) {
            let window: Vec<usize> = (0..k * k).map(|e| base + (oy * s + e / k) * p.in_w + ox * s + e % k).collect();
            let o = (plane * oh + oy) * ow + ox;
            let go = g[o] as f64;
            match p.kind {
                PoolKind::Avg => {
                    fwd[o] = window.iter().map(|&i| x[i] as f64).sum::<f64>() / kk;
                    fmag[o] = window.iter().map(|&i| (x[i] as f64).abs()).sum::<f64>() / kk;
                    for &i in &window {
                        bwd[i] += go / kk;
                        bmag[i] += go.abs() / kk;
                    }
                }
                PoolKind::Max => {
                    // the first maximal element in row-major order
                    let best = window.iter().copied().fold(window[0], |b, i| if x[i] > x[b] { i } else { b });
                    fwd[o] = x[best] as f64;
                    bwd[best] += go;
                    bmag[best] += go.abs();
                }
            }
        }
    }
    [fwd, fmag, bwd, bmag]
}

/// Runs forward and backward of `p` on both backends and compares with [`reference`].
fn check_pool(p: Pool, x: &[f32], seed: u32) {
    let g = values(p.out_len(), seed, -1.0, 1.0);
    let [fwd, fmag, bwd, bmag] = reference(&p, x, &g);
    let (k, s) = (p.kernel, p.stride);
    let covering = k.div_ceil(s).pow(2);
    for (backend, device) in backends() {
        let what = |dir| format!("{backend}: {dir} of {p:?}");
        let (xb, gb) = (upload(&device, x), upload(&device, &g));
        let pooled = upload(&device, &vec![7.0; p.out_len() + 2]);
        let spread = upload(&device, &vec![7.0; p.in_len() + 2]);
        run(
            &device,
            &[
                record(&device, PoolForward { pool: p, src: T0, dst: T1 }, &[(T0, &xb), (T1, &pooled)]),
                record(
                    &device,
                    PoolBackward { pool: p, input: T0, grad_out: T2, grad_in: T3 },
                    &[(T0, &xb), (T2, &gb), (T3, &spread)],
                ),
            ],
        );
        let (ft, bt) = match p.kind {
            PoolKind::Avg => (gamma(k * k + 1), gamma(covering + 1)),
            PoolKind::Max => (0.0, gamma(covering)),
        };
        check(&what("forward"), &read(&device, &pooled), &fwd, |i| ft * fmag[i]);
        check(&what("backward"), &read(&device, &spread), &bwd, |i| bt * bmag[i]);
    }
}

#[test]
fn pooling_matches_f64_on_cpu_and_wgpu() {
    // the paper's LeNet pooling: 2x2, stride 2, square maps
    for planes in [1, 7, 33] {
        for in_hw in [2, 10, 28] {
            let p = Pool { kind: PoolKind::Avg, planes, in_h: in_hw, in_w: in_hw, kernel: 2, stride: 2 };
            check_pool(p, &values(p.in_len(), planes as u32, -1.0, 1.0), in_hw as u32);
        }
    }
}

#[test]
fn strided_and_overlapping_pooling_matches_f64_on_cpu_and_wgpu() {
    // (planes, in_h, in_w, kernel, stride): non-overlapping, overlapping (s < k), gaps (s > k), odd maps
    let shapes =
        [(3, 13, 11, 3, 2), (7, 13, 11, 2, 2), (5, 11, 13, 3, 1), (2, 9, 7, 2, 3), (1, 5, 5, 5, 1), (4, 6, 8, 3, 3)];
    for (i, &(planes, in_h, in_w, kernel, stride)) in shapes.iter().enumerate() {
        for kind in [PoolKind::Avg, PoolKind::Max] {
            let p = Pool { kind, planes, in_h, in_w, kernel, stride };
            check_pool(p, &values(p.in_len(), 40 + i as u32, -1.0, 1.0), 60 + i as u32);
        }
    }
}

#[test]
fn max_pooling_ties_go_to_the_first_maximum_on_cpu_and_wgpu() {
    for (i, &(in_h, in_w, kernel, stride)) in [(13, 11, 3, 2), (7, 9, 2, 2), (8, 7, 3, 1)].iter().enumerate() {
        let p = Pool { kind: PoolKind::Max, planes: 3, in_h, in_w, kernel, stride };
        // three distinct values (and all-equal maps): most windows hold several maxima
        let x: Vec<f32> = values(p.in_len(), 80 + i as u32, 0.0, 3.0).iter().map(|v| v.floor() - 1.0).collect();
        check_pool(p, &x, 90 + i as u32);
        check_pool(p, &vec![0.5; p.in_len()], 95 + i as u32);
    }
}
