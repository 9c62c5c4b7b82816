//! Per-run mini-batch selection on the CPU (`shaders/select.wgsl`).

use anyhow::Result;
use rayon::prelude::*;

use super::{Cpu, CpuBuffer, CpuCommand};
use crate::ops::{Selection, Selections};

impl Selections for Cpu {
    fn select_images(
        &self,
        s: Selection,
        src: (&CpuBuffer, &CpuBuffer),
        idx: &CpuBuffer,
        dst: (&CpuBuffer, &CpuBuffer),
    ) -> Result<CpuCommand> {
        let (images, labels, idx) = (src.0.clone(), src.1.clone(), idx.clone());
        let (out_images, out_labels) = (dst.0.clone(), dst.1.clone());
        Ok(CpuCommand::checked("mini-batch selection", &[&out_images, &out_labels], &[&images, &labels, &idx])?.run(
            move |_, l| {
                select_images(
                    &s,
                    (images.view(l), labels.view(l)),
                    idx.view(l),
                    (out_images.view_mut(l), out_labels.view_mut(l)),
                )
            },
        ))
    }
}

/// Copies each run's mini-batch (f32 pixels and labels) out of the dataset.
pub fn select_images(s: &Selection, src: (&[f32], &[f32]), idx: &[f32], dst: (&mut [f32], &mut [f32])) {
    let px = s.pixels;
    dst.0[..s.runs * s.per_run * px]
        .par_chunks_mut(px)
        .zip(dst.1[..s.runs * s.per_run].par_iter_mut())
        .enumerate()
        // a mini-batch of 64 MNIST images is one piece: splitting it costs more than it saves
        .with_min_len(64)
        .for_each(|(slot, (pixels, label))| {
            let (b, n) = (slot / s.per_run, slot % s.per_run);
            let image = idx[b * s.stride + s.offset + n].to_bits() as usize;
            pixels.copy_from_slice(&src.0[image * px..][..px]);
            *label = src.1[image];
        });
}
