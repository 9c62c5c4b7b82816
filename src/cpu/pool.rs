//! Average and max pooling on the CPU (`shaders/pool.wgsl`; the semantics in [`crate::ops::pool`]).

use anyhow::Result;
use rayon::prelude::*;

use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::pool::covering;
use crate::ops::{Pool, PoolKind, Pooling};

impl Pooling for Cpu {
    fn pool_forward(&self, pool: Pool, input: &CpuBuffer, out: &CpuBuffer) -> Result<CpuCommand> {
        pool.check()?;
        let (input, out) = (input.clone(), out.clone());
        Ok(CpuCommand::checked("pooling", &[&out], &[&input])?
            .run(move |_, l| pool_forward(&pool, input.view(l), out.view_mut(l))))
    }

    fn pool_backward(
        &self,
        pool: Pool,
        input: &CpuBuffer,
        grad_out: &CpuBuffer,
        grad_in: &CpuBuffer,
    ) -> Result<CpuCommand> {
        pool.check()?;
        let (input, grad_out, grad_in) = (input.clone(), grad_out.clone(), grad_in.clone());
        Ok(CpuCommand::checked("pooling backward", &[&grad_in], &[&input, &grad_out])?
            .run(move |_, l| pool_backward(&pool, input.view(l), grad_out.view(l), grad_in.view_mut(l))))
    }
}

/// The first maximal element of window (oy, ox) of `map` in row-major order, as an index into `map`.
fn argmax(p: &Pool, map: &[f32], oy: usize, ox: usize) -> usize {
    let mut best = oy * p.stride * p.in_w + ox * p.stride;
    for ky in 0..p.kernel {
        for kx in 0..p.kernel {
            let i = (oy * p.stride + ky) * p.in_w + ox * p.stride + kx;
            if map[i] > map[best] {
                best = i;
            }
        }
    }
    best
}

/// Values per rayon task: planes are small (LeNet's 14 x 14), and one task per plane spent more time
/// in rayon than in the pooling.
const VALUES_PER_TASK: usize = 1 << 14;

/// The planes one rayon task takes, for planes of `len` values.
fn planes_per_task(len: usize) -> usize {
    (VALUES_PER_TASK / len.max(1)).max(1)
}

/// Pools every plane of `src` into `dst` (the first `p.out_len()` values).
pub fn pool_forward(p: &Pool, src: &[f32], dst: &mut [f32]) {
    let (oh, ow, in_map) = (p.out_h(), p.out_w(), p.in_h * p.in_w);
    let planes = dst[..p.out_len()].par_chunks_mut(oh * ow).with_min_len(planes_per_task(in_map));
    planes.enumerate().for_each(|(plane, d)| {
        let map = &src[plane * in_map..][..in_map];
        if p.kind == PoolKind::Avg && p.stride == p.kernel {
            tiled_average(p, map, d)
        } else {
            windows_forward(p, map, d)
        }
    });
}

/// [`pool_forward`] of one plane, any kind and stride, a window at a time.
fn windows_forward(p: &Pool, map: &[f32], d: &mut [f32]) {
    for (oy, d) in d.chunks_exact_mut(p.out_w()).enumerate() {
        for (ox, v) in d.iter_mut().enumerate() {
            *v = match p.kind {
                PoolKind::Max => map[argmax(p, map, oy, ox)],
                PoolKind::Avg => {
                    let mut acc = 0.0f32;
                    for ky in 0..p.kernel {
                        let row = &map[(oy * p.stride + ky) * p.in_w + ox * p.stride..][..p.kernel];
                        row.iter().for_each(|x| acc += x);
                    }
                    acc * p.scale()
                }
            };
        }
    }
}

/// [`pool_forward`] of one plane of average pooling whose windows tile it (stride = kernel, as
/// LeNet's 2 x 2), a row of windows at a time so that the loops run over contiguous rows: each output
/// is the general loop's sum, bit for bit (0, then the window's values row by row, times the scale).
fn tiled_average(p: &Pool, map: &[f32], d: &mut [f32]) {
    let (ow, k, scale) = (p.out_w(), p.kernel, p.scale());
    if k == 2 {
        // unrolled so that the compiler vectorises across windows (the same sums, in the same order)
        for (oy, d) in d.chunks_exact_mut(ow).enumerate() {
            let rows = &map[oy * 2 * p.in_w..];
            let (r0, r1) = (&rows[..ow * 2], &rows[p.in_w..][..ow * 2]);
            for ((v, a), b) in d.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                *v = ((((0.0f32 + a[0]) + a[1]) + b[0]) + b[1]) * scale;
            }
        }
        return;
    }
    for (oy, d) in d.chunks_exact_mut(ow).enumerate() {
        d.fill(0.0);
        for ky in 0..k {
            let row = &map[(oy * k + ky) * p.in_w..][..ow * k];
            for (v, window) in d.iter_mut().zip(row.chunks_exact(k)) {
                *v = window.iter().fold(*v, |acc, x| acc + x);
            }
        }
        d.iter_mut().for_each(|v| *v *= scale);
    }
}

/// d loss / d input of every plane (the first `p.in_len()` values of `grad_in`, overwritten) from
/// `grad_out`; `input` is the forward input (read by max pooling).
pub fn pool_backward(p: &Pool, input: &[f32], grad_out: &[f32], grad_in: &mut [f32]) {
    let (oh, ow, in_map) = (p.out_h(), p.out_w(), p.in_h * p.in_w);
    let planes = grad_in[..p.in_len()].par_chunks_mut(in_map).with_min_len(planes_per_task(in_map));
    planes.enumerate().for_each(|(plane, d)| {
        let g = &grad_out[plane * oh * ow..][..oh * ow];
        let map = (p.kind == PoolKind::Max).then(|| &input[plane * in_map..][..in_map]);
        if p.stride == p.kernel {
            tiled_backward(p, map, g, d)
        } else {
            windows_backward(p, map, g, d)
        }
    });
}

/// [`pool_backward`] of one plane, any stride: each input sums the gradients of the windows that
/// cover it (and, in max pooling, have it as their maximum), in window order.
fn windows_backward(p: &Pool, map: Option<&[f32]>, g: &[f32], d: &mut [f32]) {
    let (oh, ow) = (p.out_h(), p.out_w());
    for (i, v) in d.iter_mut().enumerate() {
        let (iy, ix) = (i / p.in_w, i % p.in_w);
        let mut acc = 0.0f32;
        for oy in covering(iy, p.kernel, p.stride, oh) {
            for ox in covering(ix, p.kernel, p.stride, ow) {
                if map.is_none_or(|m| argmax(p, m, oy, ox) == i) {
                    acc += g[oy * ow + ox];
                }
            }
        }
        *v = match p.kind {
            PoolKind::Avg => acc * p.scale(),
            PoolKind::Max => acc,
        };
    }
}

/// [`pool_backward`] of one plane when the windows tile it (stride = kernel, as LeNet's 2 x 2): each
/// input is in at most one window, so each window writes its own inputs. The values are those of the
/// general loop, bit for bit: a sum of one gradient, 0 + g (which turns −0 into +0), or 0 for an input
/// no window covers or, in max pooling, one that is not its window's maximum.
fn tiled_backward(p: &Pool, map: Option<&[f32]>, g: &[f32], d: &mut [f32]) {
    let (oh, ow, k) = (p.out_h(), p.out_w(), p.kernel);
    if map.is_none() {
        return tiled_average_backward(p, g, d);
    }
    d.fill(0.0);
    for oy in 0..oh {
        for ox in 0..ow {
            let one = 0.0f32 + g[oy * ow + ox];
            match map {
                None => {
                    let v = one * p.scale();
                    for ky in 0..k {
                        d[(oy * k + ky) * p.in_w + ox * k..][..k].fill(v);
                    }
                }
                Some(m) => d[argmax(p, m, oy, ox)] = one,
            }
        }
    }
}

/// [`tiled_backward`] of average pooling, a row of windows at a time: every input a window covers
/// gets (0 + g) · scale, the inputs no window covers (past the last whole window) 0.
fn tiled_average_backward(p: &Pool, g: &[f32], d: &mut [f32]) {
    let (oh, ow, k, scale) = (p.out_h(), p.out_w(), p.kernel, p.scale());
    let (covered, rest) = d.split_at_mut(oh * k * p.in_w);
    rest.fill(0.0);
    for (row, d) in covered.chunks_exact_mut(p.in_w).enumerate() {
        let g = &g[row / k * ow..][..ow];
        let (windows, tail) = d.split_at_mut(ow * k);
        if k == 2 {
            // unrolled so that the compiler vectorises across windows
            for (window, g) in windows.chunks_exact_mut(2).zip(g) {
                let v = (0.0f32 + g) * scale;
                window[0] = v;
                window[1] = v;
            }
        } else {
            for (window, g) in windows.chunks_exact_mut(k).zip(g) {
                window.fill((0.0f32 + g) * scale);
            }
        }
        tail.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The tiled average pooling writes the bits of the window-at-a-time loop, negative zeros and
    /// the columns and rows past the last whole window included.
    #[test]
    fn tiled_average_has_the_bits_of_the_general_loop() {
        for (in_h, in_w, kernel) in [(4, 4, 2), (5, 7, 2), (28, 28, 2), (9, 9, 3), (3, 3, 1)] {
            let p = Pool { kind: PoolKind::Avg, planes: 1, in_h, in_w, kernel, stride: kernel };
            let map: Vec<f32> = (0..in_h * in_w).map(|i| [-0.0, 0.1, -3.7, 1e-3][i % 4] * (1 + i % 5) as f32).collect();
            let n = p.out_h() * p.out_w();
            let (mut tiled, mut general) = (vec![f32::NAN; n], vec![f32::NAN; n]);
            tiled_average(&p, &map, &mut tiled);
            windows_forward(&p, &map, &mut general);
            assert_eq!(bits(&tiled), bits(&general), "{in_h}x{in_w} kernel {kernel}");
        }
    }

    /// The tiled backward pass writes the bits of the general one (negative zeros, ties and inputs no
    /// window covers included), for average and max pooling.
    #[test]
    fn tiled_backward_has_the_bits_of_the_general_loop() {
        for kind in [PoolKind::Avg, PoolKind::Max] {
            for (in_h, in_w, kernel) in [(4, 4, 2), (5, 7, 2), (9, 9, 3), (3, 3, 1)] {
                let p = Pool { kind, planes: 1, in_h, in_w, kernel, stride: kernel };
                let n = p.out_h() * p.out_w();
                // ties (values repeat every 3) and signed zeros among the gradients
                let input: Vec<f32> = (0..in_h * in_w).map(|i| ((i * 7) % 3) as f32 - 1.0).collect();
                let g: Vec<f32> = (0..n).map(|i| [-0.0, 0.0, 1.5, -2.25][i % 4] / (1 + i) as f32).collect();
                let map = (kind == PoolKind::Max).then_some(&input[..]);
                let (mut tiled, mut general) = (vec![f32::NAN; in_h * in_w], vec![f32::NAN; in_h * in_w]);
                tiled_backward(&p, map, &g, &mut tiled);
                windows_backward(&p, map, &g, &mut general);
                assert_eq!(bits(&tiled), bits(&general), "{kind:?} {in_h}x{in_w} kernel {kernel}");
            }
        }
    }
}
