//! `select.wgsl` and the pixel gather of `lstm.wgsl`: each run's mini-batch copied out of the dataset
//! (images and labels, from an offset in each run's index list), and the permuted pixels of a chunk
//! of images as f32 (shared images, or each vector its own). Tolerance: copies exact (on a GPU the
//! images stay packed bytes, on the CPU f32 byte / 255, read back as bytes); gathered pixels within
//! 3u of byte / 255 (WGSL's division is good to 2.5 ULP).

use super::{backends, check, images, read, record, run, values, T0, T1, U};
use losscape::backend::{Buffer, Device};
use losscape::ops::plan::{GatherPixels, PIXELS};
use losscape::ops::{LstmShape, LstmStep, Selection};

/// A device's image buffer as bytes: f32 byte / 255 on the CPU, packed words on a GPU.
fn image_bytes(device: &Device, buf: &Buffer) -> Vec<u8> {
    if device.is_cpu() {
        read(device, buf).iter().map(|&v| (v * 255.0).round() as u8).collect()
    } else {
        device.read::<u32>(buf, 0, buf.len()).unwrap().iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

#[test]
fn image_selection_and_gathering_match_f64_on_cpu_and_wgpu() {
    for (backend, device) in backends() {
        // (runs, images per run, index-list length, offset, pixels per image, images in the dataset)
        for (runs, per_run, stride, offset, pixels, count) in [(1, 1, 1, 0, 784, 1), (3, 7, 11, 2, 20, 23)] {
            let what = format!("{backend}: selection of {per_run} of {count} images for {runs} runs");
            let (data, up) = images(&device, count, pixels, 10, per_run as u32);
            let idx: Vec<u32> = values(runs * stride, 3, 0.0, count as f32).iter().map(|&v| v as u32).collect();
            let idx_buf = device.upload(&idx, "indices").unwrap();
            let elements = if device.is_cpu() { pixels } else { pixels / 4 };
            let dst = (
                device.zeros(runs * per_run * elements, "batch").unwrap(),
                device.zeros(runs * per_run, "labels").unwrap(),
            );
            let s = Selection { runs, per_run, stride, offset, pixels };
            run(&device, &[device.select_images(s, (&up.pixels, &up.labels), &idx_buf, (&dst.0, &dst.1)).unwrap()]);
            let chosen: Vec<usize> =
                (0..runs * per_run).map(|t| idx[(t / per_run) * stride + offset + t % per_run] as usize).collect();
            let want: Vec<u8> = chosen.iter().flat_map(|&i| data.pixels[i * pixels..][..pixels].to_vec()).collect();
            assert!(image_bytes(&device, &dst.0) == want, "{what}: images differ");
            let labels: Vec<u32> = device.read(&dst.1, 0, runs * per_run).unwrap();
            assert_eq!(labels, chosen.iter().map(|&i| data.labels[i] as u32).collect::<Vec<_>>(), "{what}: labels");
        }

        // pixel gather: 4 steps of 3 features, 5 images from image 1 for 2 vectors
        for img_bs in [0, 6] {
            let shape = LstmShape { hidden: 1, steps: 4, features: 3 };
            let px = shape.pixels();
            let (n_img, batches, first_image) = (5, 2, 1);
            let s = LstmStep {
                shape,
                images: n_img,
                batches,
                step: 0,
                n_prm: 0,
                bias_ih: 0,
                bias_hh: 0,
                first_image,
                img_bs,
            };
            let what = format!("{backend}: gather of {n_img} images for {batches} vectors, {img_bs} images per vector");
            let (data, up) = images(&device, first_image + batches * 6 + n_img, px, 10, 7);
            let perm: Vec<u32> = (0..px as u32).map(|j| (j * 5 + 3) % px as u32).collect();
            let perm_buf = device.upload(&perm, "perm").unwrap();
            let vectors = if img_bs == 0 { 1 } else { batches };
            let out = device.upload(&vec![7.0f32; batches * n_img * px], "xperm").unwrap();
            let gather = GatherPixels { step: s, perm: T0, out: T1 };
            run(&device, &[record(&device, gather, &[(PIXELS, &up.pixels), (T0, &perm_buf), (T1, &out)])]);
            let mut want = vec![7.0; batches * n_img * px];
            for (t, w) in want.iter_mut().enumerate().take(vectors * n_img * px) {
                let (b, n, j) = (t / (n_img * px), t / px % n_img, t % px);
                *w = data.pixels[(b * img_bs + first_image + n) * px + perm[j] as usize] as f64 / 255.0;
            }
            check(&what, &read(&device, &out), &want, |i| 3.0 * U * want[i].abs());
        }
    }
}
