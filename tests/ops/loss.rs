//! `loss.wgsl`: both heads over a chunk of images for B vectors (shared images from image 2, or each
//! vector its own), per-256-image partial sums of the loss and the correct count from slot 1 (slot 0
//! untouched), and d loss / d output scaled by 1 / the evaluation's image count; the head of a
//! loss-only evaluation (`LossWithoutGradient`) writes the same partials bit for bit, and on the CPU
//! leaves the gradient buffer as it was. Tolerance: a slot's loss within γ(images + 2) of Σ|loss_i|
//! (its f32 sum) plus [`REL`] of Σ(|loss_i| + 1) (each image's loss: exp, log1p and a difference of
//! logits of size 1); correct counts exact; gradients [`REL`] of their scale, 1 / images.

use super::{backends, check, gamma, images, read, record, run, sigmoid, tensors, upload, values, REL, T0, T1};
use losscape::ops::plan::{Loss, LossWithoutGradient, LABELS, PARTIALS, PIXELS};
use losscape::ops::{partial_slots, Head, LossChunk};

/// Loss, correct (0 or 1) and gradient (unscaled) of one image in f64.
fn f64_loss(head: Head, z: &[f64], label: usize, pixels: &[f64]) -> (f64, f64, Vec<f64>) {
    match head {
        Head::CrossEntropy => {
            let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
            let first_max = z.iter().position(|&v| v == max).unwrap();
            let grad = z.iter().enumerate().map(|(k, v)| (v - max).exp() / sum - if k == label { 1.0 } else { 0.0 });
            (max + sum.ln() - z[label], if first_max == label { 1.0 } else { 0.0 }, grad.collect())
        }
        Head::MseSigmoid => {
            let w = z.len() as f64;
            let y: Vec<f64> = z.iter().map(|&v| sigmoid(v)).collect();
            let loss = y.iter().zip(pixels).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / w;
            (loss, 0.0, y.iter().zip(pixels).map(|(a, b)| 2.0 / w * (a - b) * a * (1.0 - a)).collect())
        }
    }
}

#[test]
fn loss_heads_match_f64_on_cpu_and_wgpu() {
    for (backend, device) in backends() {
        for (head, width) in [(Head::CrossEntropy, 10), (Head::CrossEntropy, 3), (Head::MseSigmoid, 13)] {
            for n_img in [1, 7, 257, 300] {
                for own in [false, true] {
                    let batches = 2;
                    let (first_image, img_bs) = if own { (0, n_img + 1) } else { (2, 0) };
                    let slots = partial_slots(n_img);
                    let total = n_img + 5;
                    let out_bs = n_img * width + 3;
                    let chunk = LossChunk {
                        images: n_img,
                        width,
                        first_image,
                        batches,
                        out_batch_stride: out_bs,
                        part_off: 1,
                        parts: slots + 1,
                        total_images: total,
                        img_bs,
                    };
                    let what = format!("{backend}: {head:?} over {n_img} images of width {width}, own images {own}");
                    let count = first_image + (batches - 1) * img_bs + n_img + 1;
                    let (data, up) = images(&device, count, width, width as u8, n_img as u32);
                    let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();
                    let targets = match head {
                        Head::CrossEntropy => device.upload(&labels, "labels").unwrap(),
                        Head::MseSigmoid => up.pixels,
                    };
                    let z = values(batches * out_bs, width as u32, -4.0, 4.0);
                    let zb = upload(&device, &z);
                    let grad = upload(&device, &vec![7.0; batches * out_bs]);
                    let partials = upload(&device, &vec![0.5; batches * (slots + 1) * 2]);
                    let target_id = if head == Head::CrossEntropy { LABELS } else { PIXELS };
                    let op = Loss { head, chunk, outputs: T0, grad: T1 };
                    let bound = [(T0, &zb), (T1, &grad), (target_id, &targets), (PARTIALS, &partials)];
                    run(&device, &[record(&device, op.clone(), &bound)]);
                    // the head of a loss-only evaluation: the same bits; the CPU writes no gradient
                    let (grad_untouched, partials_only) =
                        (upload(&device, &vec![7.0; batches * out_bs]), partials.len());
                    let partials_only = upload(&device, &vec![0.5; partials_only]);
                    let bound = [(T0, &zb), (T1, &grad_untouched), (target_id, &targets), (PARTIALS, &partials_only)];
                    run(&device, &[device.record(&LossWithoutGradient(op), &tensors(&device, &bound)).unwrap()]);

                    let mut want_grad = vec![7.0; batches * out_bs];
                    let mut want_parts = vec![0.5; batches * (slots + 1) * 2];
                    let mut magnitude = vec![0.0; want_parts.len()];
                    for b in 0..batches {
                        for n in 0..n_img {
                            let image = b * img_bs + first_image + n;
                            let zi: Vec<f64> = z[b * out_bs + n * width..][..width].iter().map(|&v| v as f64).collect();
                            let px: Vec<f64> =
                                data.pixels[image * width..][..width].iter().map(|&p| p as f64 / 255.0).collect();
                            let (loss, correct, g) = f64_loss(head, &zi, labels[image] as usize, &px);
                            let slot = (b * (slots + 1) + 1 + n / 256) * 2;
                            if n % 256 == 0 {
                                (want_parts[slot], want_parts[slot + 1]) = (0.0, 0.0);
                            }
                            want_parts[slot] += loss;
                            want_parts[slot + 1] += correct;
                            magnitude[slot] += loss.abs();
                            for (k, gk) in g.iter().enumerate() {
                                want_grad[b * out_bs + n * width + k] = gk / total as f64;
                            }
                        }
                    }
                    let got = read(&device, &partials);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&read(&device, &partials_only)), bits(&got), "{what}: loss-only partials");
                    if backend == "cpu" {
                        assert!(read(&device, &grad_untouched).iter().all(|&g| g == 7.0), "{what}: loss-only gradient");
                    }
                    check(&format!("{what}: partial sums"), &got, &want_parts, |i| {
                        let per_slot = if i % 2 == 0 { n_img.min(256) } else { 0 };
                        (gamma(per_slot + 2) + REL) * (magnitude[i] + per_slot as f64)
                    });
                    check(&format!("{what}: gradient"), &read(&device, &grad), &want_grad, |_| REL / total as f64);
                }
            }
        }
    }
}
