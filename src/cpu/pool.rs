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

/// Pools every plane of `src` into `dst` (the first `p.out_len()` values).
pub fn pool_forward(p: &Pool, src: &[f32], dst: &mut [f32]) {
    let (oh, ow, in_map) = (p.out_h(), p.out_w(), p.in_h * p.in_w);
    dst[..p.out_len()].par_chunks_mut(oh * ow).enumerate().for_each(|(plane, d)| {
        let map = &src[plane * in_map..][..in_map];
        for (t, v) in d.iter_mut().enumerate() {
            let (oy, ox) = (t / ow, t % ow);
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
    });
}

/// d loss / d input of every plane (the first `p.in_len()` values of `grad_in`, overwritten) from
/// `grad_out`; `input` is the forward input (read by max pooling).
pub fn pool_backward(p: &Pool, input: &[f32], grad_out: &[f32], grad_in: &mut [f32]) {
    let (oh, ow, in_map) = (p.out_h(), p.out_w(), p.in_h * p.in_w);
    grad_in[..p.in_len()].par_chunks_mut(in_map).enumerate().for_each(|(plane, d)| {
        let g = &grad_out[plane * oh * ow..][..oh * ow];
        let map = (p.kind == PoolKind::Max).then(|| &input[plane * in_map..][..in_map]);
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
    });
}
