//! `conv.wgsl`: the forward convolution (zero padding, any stride, rectangular maps, with or without
//! bias: PyTorch's `nn.Conv2d`), its weight-and-bias gradient
//! (overwriting or accumulating) and its input gradient, for B parameter vectors, with the input an
//! f32 map per vector or the image buffer (shared, or each vector its own images). Elements outside
//! what an op writes stay untouched. Tolerance: γ(terms + 3) of Σ|terms| (+ |bias| or the
//! accumulated value): the products, the bias or old value, and the byte / 255 of an image.

use super::{backends, check, gamma, images, read, record, run, upload, values, T0, T1, T2, T3};
use losscape::ops::plan::{ConvForward, ConvInputGrad, ConvWeightGrad, Operand, GRADS, PIXELS, WEIGHTS};
use losscape::ops::Conv;

/// (images, batches, in_c, (in_h, in_w), out_c, ksize, (stride, pad, bias), input from the image
/// buffer, images per vector)
type Case = (usize, usize, usize, (usize, usize), usize, usize, (usize, usize, bool), bool, usize);

const CASES: [Case; 10] = [
    (1, 1, 1, (1, 1), 1, 1, (1, 0, true), false, 0),
    (3, 2, 2, (7, 7), 3, 3, (1, 1, true), false, 0),
    (2, 1, 3, (9, 9), 2, 5, (1, 2, true), false, 0),
    (5, 2, 1, (9, 9), 2, 5, (1, 2, true), true, 0), // 405 output positions per weight: two workgroup strides
    (2, 3, 1, (6, 6), 3, 3, (1, 0, true), true, 3),
    // rectangular maps, strides 2 and 3, no bias
    (3, 2, 3, (13, 11), 4, 3, (2, 1, false), false, 0),
    (2, 2, 3, (13, 11), 2, 3, (2, 0, true), false, 0),
    (3, 2, 1, (13, 11), 3, 3, (3, 1, false), true, 0),
    (2, 2, 3, (11, 13), 2, 5, (2, 2, true), true, 2),
    (4, 1, 2, (8, 5), 3, 2, (2, 0, false), false, 0),
];

#[test]
fn convolution_matches_f64_on_cpu_and_wgpu() {
    for (backend, device) in backends() {
        for (case, &(n_img, batches, in_c, (ih, iw), out_c, k, (stride, pad, bias), from_images, img_bs)) in
            CASES.iter().enumerate()
        {
            let (w_off, kk) = (3, in_c * k * k);
            let b_off = w_off + out_c * kk + 1;
            let n_prm = b_off + out_c + 2;
            let map = in_c * ih * iw;
            // the image buffer's first image is 1; an f32 input starts at element 5
            let in_off = if from_images { map } else { 5 };
            let c = Conv {
                images: n_img,
                batches,
                in_c,
                in_h: ih,
                in_w: iw,
                out_c,
                ksize: k,
                stride,
                pad,
                in_off,
                w_off,
                b_off: bias.then_some(b_off),
                n_prm,
                img_bs,
            };
            let what = |op| format!("{backend}: convolution {op} of case {case} ({c:?})");
            let (oh, ow, in_bs, out_bs) = (c.out_h(), c.out_w(), c.in_bs(from_images), c.out_bs());
            let (input, in_buf) = if from_images {
                let (data, up) = images(&device, 2 + (batches - 1) * img_bs + n_img, map, 10, case as u32);
                (data.pixels.iter().map(|&b| b as f64 / 255.0).collect(), up.pixels)
            } else {
                let v = values(in_off + batches * in_bs + 2, case as u32, -1.0, 1.0);
                (super::to_f64(&v), upload(&device, &v))
            };
            let (input_op, input_id) = if from_images { (Operand::Images, PIXELS) } else { (Operand::Tensor(T0), T0) };
            let w = values(batches * n_prm, case as u32 + 1, -1.0, 1.0);
            let g_out = values(batches * out_bs, case as u32 + 2, -1.0, 1.0);
            let grads0 = values(batches * n_prm, case as u32 + 3, -1.0, 1.0);
            let accumulate = case % 2 == 1;
            let (w_buf, g_buf) = (upload(&device, &w), upload(&device, &g_out));
            let out = upload(&device, &vec![7.0; batches * out_bs + 2]);
            let grads = upload(&device, &grads0);
            let grad_in = upload(&device, &vec![7.0; in_off + batches * c.in_bs(false) + 2]);
            let bound =
                [(input_id, &in_buf), (WEIGHTS, &w_buf), (GRADS, &grads), (T1, &out), (T2, &g_buf), (T3, &grad_in)];
            let mut commands = vec![
                record(&device, ConvForward { conv: c, input: input_op, out: T1 }, &bound),
                record(&device, ConvWeightGrad { conv: c, input: input_op, grad_out: T2, accumulate }, &bound),
            ];
            if !from_images {
                commands.push(record(&device, ConvInputGrad { conv: c, grad_out: T2, grad_in: T3 }, &bound));
            }
            run(&device, &commands);

            let x = |b: usize, n: usize, ci: usize, y: isize, xx: isize| -> f64 {
                if y < 0 || xx < 0 || y >= ih as isize || xx >= iw as isize {
                    return 0.0;
                }
                input[in_off + b * in_bs + ((n * in_c + ci) * ih + y as usize) * iw + xx as usize]
            };
            let weight = |b: usize, co: usize, ci: usize, ky: usize, kx: usize| {
                w[b * n_prm + w_off + ((co * in_c + ci) * k + ky) * k + kx] as f64
            };
            let at = |v: usize, d: usize| (v * stride) as isize + d as isize - pad as isize;
            // sums of (value, |value|)
            let add = |(s, m): (f64, f64), t: f64| (s + t, m + t.abs());

            let mut fwd = (vec![7.0; batches * out_bs + 2], vec![0.0; batches * out_bs + 2]);
            let mut dw = (super::to_f64(&grads0), vec![0.0; grads0.len()]);
            let mut din = (vec![7.0; grad_in.len()], vec![0.0; grad_in.len()]);
            for b in 0..batches {
                for co in 0..out_c {
                    let out_at = |n: usize, oy: usize, ox: usize| b * out_bs + ((n * out_c + co) * oh + oy) * ow + ox;
                    let positions = || (0..n_img).flat_map(move |n| (0..oh * ow).map(move |p| (n, p / ow, p % ow)));
                    for (n, oy, ox) in positions() {
                        let bias = if bias { w[b * n_prm + b_off + co] as f64 } else { 0.0 };
                        let terms = (0..kk).map(|e| {
                            let (ci, ky, kx) = (e / (k * k), e % (k * k) / k, e % k);
                            x(b, n, ci, at(oy, ky), at(ox, kx)) * weight(b, co, ci, ky, kx)
                        });
                        let (s, m) = terms.fold((bias, bias.abs()), add);
                        (fwd.0[out_at(n, oy, ox)], fwd.1[out_at(n, oy, ox)]) = (s, m);
                    }
                    let old = |i: usize| if accumulate { grads0[i] as f64 } else { 0.0 };
                    for e in 0..kk + bias as usize {
                        let (ci, ky, kx) = (e / (k * k), e % (k * k) / k, e % k);
                        let terms = positions().map(|(n, oy, ox)| {
                            let g = g_out[out_at(n, oy, ox)] as f64;
                            if e == kk {
                                g
                            } else {
                                g * x(b, n, ci, at(oy, ky), at(ox, kx))
                            }
                        });
                        let i = b * n_prm + if e == kk { b_off + co } else { w_off + co * kk + e };
                        (dw.0[i], dw.1[i]) = terms.fold((old(i), old(i).abs()), add);
                    }
                }
                // scattered: every (output position, kernel element) adds into the input it read
                let din_at = |n: usize, ci: usize, y: isize, xx: isize| {
                    let inside = y >= 0 && xx >= 0 && y < ih as isize && xx < iw as isize;
                    inside.then(|| in_off + b * c.in_bs(false) + ((n * in_c + ci) * ih + y as usize) * iw + xx as usize)
                };
                for (n, ci) in (0..n_img * in_c).map(|t| (t / in_c, t % in_c)) {
                    for i in
                        (0..ih as isize * iw as isize).filter_map(|p| din_at(n, ci, p / iw as isize, p % iw as isize))
                    {
                        (din.0[i], din.1[i]) = (0.0, 0.0);
                    }
                }
                for co in 0..out_c {
                    for (n, oy, ox) in (0..n_img).flat_map(|n| (0..oh * ow).map(move |p| (n, p / ow, p % ow))) {
                        let g = g_out[b * out_bs + ((n * out_c + co) * oh + oy) * ow + ox] as f64;
                        for (ci, ky, kx) in (0..kk).map(|e| (e / (k * k), e % (k * k) / k, e % k)) {
                            if let Some(i) = din_at(n, ci, at(oy, ky), at(ox, kx)) {
                                let t = g * weight(b, co, ci, ky, kx);
                                (din.0[i], din.1[i]) = (din.0[i] + t, din.1[i] + t.abs());
                            }
                        }
                    }
                }
            }
            check(&what("forward"), &read(&device, &out), &fwd.0, |i| gamma(kk + 3) * fwd.1[i]);
            let n_sum = n_img * oh * ow + 3;
            check(&what("weight gradient"), &read(&device, &grads), &dw.0, |i| gamma(n_sum) * dw.1[i]);
            if !from_images {
                let terms = out_c * k * k + 2;
                check(&what("input gradient"), &read(&device, &grad_in), &din.0, |i| gamma(terms) * din.1[i]);
            }
        }
    }
}
