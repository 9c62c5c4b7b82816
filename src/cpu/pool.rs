//! Average pooling on the CPU (`shaders/pool.wgsl`).

use anyhow::Result;
use rayon::prelude::*;

use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::Pooling;

impl Pooling for Cpu {
    fn avg_pool(
        &self,
        backward: bool,
        planes: usize,
        in_hw: usize,
        src: &CpuBuffer,
        dst: &CpuBuffer,
    ) -> Result<CpuCommand> {
        let (src, dst) = (src.clone(), dst.clone());
        Ok(CpuCommand::checked("average pooling", &[&dst], &[&src])?
            .run(move |_, l| avg_pool(backward, planes, in_hw, src.view(l), dst.view_mut(l))))
    }
}

/// 2x2 average pooling (stride 2) of `planes` maps of side `in_hw`, or its gradient when `backward`.
pub fn avg_pool(backward: bool, planes: usize, in_hw: usize, src: &[f32], dst: &mut [f32]) {
    let oh = in_hw / 2;
    if backward {
        dst[..planes * in_hw * in_hw].par_chunks_mut(in_hw * in_hw).enumerate().for_each(|(p, d)| {
            for y in 0..in_hw {
                for x in 0..in_hw {
                    d[y * in_hw + x] = 0.25 * src[(p * oh + y / 2) * oh + x / 2];
                }
            }
        });
    } else {
        dst[..planes * oh * oh].par_chunks_mut(oh * oh).enumerate().for_each(|(p, d)| {
            let s = &src[p * in_hw * in_hw..];
            for y in 0..oh {
                for x in 0..oh {
                    let i = 2 * y * in_hw + 2 * x;
                    d[y * oh + x] = 0.25 * (s[i] + s[i + 1] + s[i + in_hw] + s[i + in_hw + 1]);
                }
            }
        });
    }
}
