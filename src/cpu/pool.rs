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
        for (oy, d) in d.chunks_exact_mut(ow).enumerate() {
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
    });
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

#[cfg(test)]
mod tests {
    use super::*;

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
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&tiled), bits(&general), "{kind:?} {in_h}x{in_w} kernel {kernel}");
            }
        }
    }
}
