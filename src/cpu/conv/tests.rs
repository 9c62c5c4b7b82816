//! The three kernels against naive f64 loops that follow `shaders/conv.wgsl`, and the guarantees the
//! rest of the program relies on (thread-count-independent bits, untouched neighbours).

use super::*;
use crate::cpu::Simd;

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Input element (b, n, ci, y, x) as the shader reads it: zero outside the map.
fn in_at(c: &Conv, input: &[f32], in_bs: usize, (b, n, ci): (usize, usize, usize), y: isize, x: isize) -> f64 {
    if y < 0 || x < 0 || y >= c.in_h as isize || x >= c.in_w as isize {
        return 0.0;
    }
    input[c.in_off + b * in_bs + ((n * c.in_c + ci) * c.in_h + y as usize) * c.in_w + x as usize] as f64
}

/// The shader's `forward`, in f64.
fn naive_forward(c: &Conv, images: bool, input: &[f32], w: &[f32]) -> Vec<f64> {
    let (oh, ow, ks, p, s) = (c.out_h(), c.out_w(), c.ksize, c.pad as isize, c.stride);
    let mut out = vec![0.0; c.batches * c.out_bs()];
    for b in 0..c.batches {
        for n in 0..c.images {
            for co in 0..c.out_c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = c.b_off.map_or(0.0, |b_off| w[b * c.n_prm + b_off + co] as f64);
                        for ci in 0..c.in_c {
                            for ky in 0..ks {
                                for kx in 0..ks {
                                    let (y, x) = ((oy * s + ky) as isize - p, (ox * s + kx) as isize - p);
                                    let v = in_at(c, input, c.in_bs(images), (b, n, ci), y, x);
                                    let wi = b * c.n_prm + c.w_off + ((co * c.in_c + ci) * ks + ky) * ks + kx;
                                    acc += v * w[wi] as f64;
                                }
                            }
                        }
                        out[b * c.out_bs() + ((n * c.out_c + co) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
    }
    out
}

/// The shader's `weight_grad`, in f64, into a copy of `grads`.
fn naive_weight_grad(c: &Conv, images: bool, input: &[f32], g: &[f32], grads: &[f32], acc: bool) -> Vec<f64> {
    let (oh, ow, ks, p, s) = (c.out_h(), c.out_w(), c.ksize, c.pad as isize, c.stride);
    let mut out: Vec<f64> = grads.iter().map(|&v| v as f64).collect();
    for b in 0..c.batches {
        for co in 0..c.out_c {
            let (mut db, mut dw) = (0.0, vec![0.0; c.in_c * ks * ks]);
            for n in 0..c.images {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let gv = g[b * c.out_bs() + ((n * c.out_c + co) * oh + oy) * ow + ox] as f64;
                        db += gv;
                        for (e, d) in dw.iter_mut().enumerate() {
                            let (ci, ky, kx) = (e / (ks * ks), e / ks % ks, e % ks);
                            let (y, x) = ((oy * s + ky) as isize - p, (ox * s + kx) as isize - p);
                            *d += gv * in_at(c, input, c.in_bs(images), (b, n, ci), y, x);
                        }
                    }
                }
            }
            if let Some(b_off) = c.b_off {
                let bi = b * c.n_prm + b_off + co;
                out[bi] = if acc { out[bi] + db } else { db };
            }
            for (e, d) in dw.into_iter().enumerate() {
                let wi = b * c.n_prm + c.w_off + co * c.in_c * ks * ks + e;
                out[wi] = if acc { out[wi] + d } else { d };
            }
        }
    }
    out
}

/// The shader's `input_grad`, in f64, into a copy of `grad_in`.
fn naive_input_grad(c: &Conv, w: &[f32], g: &[f32], grad_in: &[f32]) -> Vec<f64> {
    let (oh, ow, ks, p, s) = (c.out_h() as isize, c.out_w() as isize, c.ksize, c.pad as isize, c.stride as isize);
    let mut out: Vec<f64> = grad_in.iter().map(|&v| v as f64).collect();
    for b in 0..c.batches {
        for n in 0..c.images {
            for ci in 0..c.in_c {
                for iy in 0..c.in_h as isize {
                    for ix in 0..c.in_w as isize {
                        let mut acc = 0.0;
                        for co in 0..c.out_c {
                            for ky in 0..ks {
                                for kx in 0..ks {
                                    let (sy, sx) = (iy - ky as isize + p, ix - kx as isize + p);
                                    if sy < 0 || sx < 0 || sy % s != 0 || sx % s != 0 {
                                        continue;
                                    }
                                    let (oy, ox) = (sy / s, sx / s);
                                    if oy >= oh || ox >= ow {
                                        continue;
                                    }
                                    let gi = b * c.out_bs() + (n * c.out_c + co) * (oh * ow) as usize;
                                    let gv = g[gi + (oy * ow + ox) as usize] as f64;
                                    let wi = b * c.n_prm + c.w_off + ((co * c.in_c + ci) * ks + ky) * ks + kx;
                                    acc += gv * w[wi] as f64;
                                }
                            }
                        }
                        let i = ((n * c.in_c + ci) * c.in_h + iy as usize) * c.in_w + ix as usize;
                        out[c.in_off + b * c.in_bs(false) + i] = acc;
                    }
                }
            }
        }
    }
    out
}

/// Asserts |fast - slow| <= 1e-5 * max |slow| element-wise.
fn assert_close(fast: &[f32], slow: &[f64], what: &str) {
    assert_eq!(fast.len(), slow.len(), "{what}: lengths");
    let scale = slow.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
    for (i, (&f, &s)) in fast.iter().zip(slow).enumerate() {
        assert!((f as f64 - s).abs() <= 1e-5 * scale, "{what}[{i}]: {f} vs {s} (scale {scale})");
    }
}

/// A convolution whose weights and bias sit inside a larger parameter vector.
fn conv(in_c: usize, in_hw: usize, out_c: usize, ksize: usize, pad: usize, images: usize) -> Conv {
    let w_off = 13;
    let b_off = w_off + out_c * in_c * ksize * ksize + 5;
    let n_prm = b_off + out_c + 11;
    Conv {
        images,
        batches: 3,
        in_c,
        in_h: in_hw,
        in_w: in_hw,
        out_c,
        ksize,
        stride: 1,
        pad,
        in_off: 0,
        w_off,
        b_off: Some(b_off),
        n_prm,
        img_bs: 0,
    }
}

/// Runs all three kernels against the naive loops for one shape and input kind, on 1 and 2 threads at
/// every SIMD level the machine has, and checks that every run writes the bits of the first (the
/// levels differ only in the copies around the products, and the sums keep their order).
fn check(c: &Conv, images: bool) {
    let in_len = c.in_off + (c.batches - 1) * c.in_bs(images) + c.images * c.in_map() + 3;
    let mut input = values(in_len, 1);
    if images {
        input.iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0); // pixels in [0, 1]
    }
    let weights = values(c.batches * c.n_prm, 2);
    let grad_out = values(c.batches * c.out_bs(), 3);
    let what = format!("{c:?} images {images}");
    let mut first: Option<Vec<Vec<f32>>> = None;
    for simd in Simd::ALL.into_iter().filter(|s| s.effective() == *s) {
        for threads in [1, 2] {
            let run = (threads, simd);
            let what = format!("{what} at {simd:?} on {threads} threads");
            let mut outputs = Vec::new();
            let mut out = values(c.batches * c.out_bs(), 4);
            forward(c, images, &input, &weights, &mut out, run);
            assert_close(&out, &naive_forward(c, images, &input, &weights), &format!("forward {what}"));
            outputs.push(out);
            for acc in [false, true] {
                let mut grads = values(c.batches * c.n_prm, 5);
                let slow = naive_weight_grad(c, images, &input, &grad_out, &grads, acc);
                weight_grad(c, images, &input, &grad_out, &mut grads, acc, run);
                assert_close(&grads, &slow, &format!("weight_grad acc {acc} {what}"));
                outputs.push(grads);
            }
            if !images {
                let mut grad_in = values(in_len, 6);
                let slow = naive_input_grad(c, &weights, &grad_out, &grad_in);
                input_grad(c, &weights, &grad_out, &mut grad_in, threads);
                assert_close(&grad_in, &slow, &format!("input_grad {what}"));
                outputs.push(grad_in);
            }
            let first = first.get_or_insert_with(|| outputs.clone());
            let bits = |v: &[Vec<f32>]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(first) == bits(&outputs), "{what}: not the bits of the first level and thread count");
        }
    }
}

/// `c`, after asserting that its images make several blocks and a partial last one (so that a new
/// block target cannot silently turn a multi-block case into a one-block case).
fn several_blocks(c: Conv) -> Conv {
    let sh = Shape::new(&c, true);
    assert!(c.images > sh.block && !c.images.is_multiple_of(sh.block), "{c:?}: {sh:?}");
    c
}

/// Every input kind: shared images, per-vector images at an offset, per-vector f32 maps at an offset.
fn check_all_inputs(c: Conv) {
    check(&c, true);
    check(&Conv { img_bs: c.images + 2, in_off: 2 * c.in_map(), ..c }, true);
    check(&Conv { in_off: 7, ..c }, false);
}

#[test]
fn lenet_conv1_matches_the_shader() {
    check_all_inputs(conv(1, 28, 6, 5, 2, 3));
}

#[test]
fn lenet_conv2_matches_the_shader() {
    check_all_inputs(conv(6, 14, 16, 5, 0, 3));
}

#[test]
fn odd_sizes_match_the_shader() {
    check_all_inputs(conv(3, 7, 5, 3, 1, 2));
    // more padding than the kernel needs: some windows see only padding
    check_all_inputs(conv(2, 3, 4, 3, 3, 2));
    // a one-column map padded by 2 under a 5x5 kernel: some kernel columns see only padding in every
    // row (stride 1 takes its own im2col loop)
    check_all_inputs(Conv { in_w: 1, ..conv(2, 6, 3, 5, 2, 2) });
    // many images, so several blocks and tasks, and a partial last block
    check_all_inputs(several_blocks(conv(2, 7, 3, 3, 1, 75)));
    // 1x1 kernels on many images: several blocks with a partial last one, the shared products in
    // groups of 1 vector (3 channels); the shapes are asserted so that a new block target cannot
    // silently turn these into one-block cases
    let c = several_blocks(conv(1, 28, 3, 1, 0, 100));
    assert_eq!(Shape::new(&c, true).group, 1, "{:?}", Shape::new(&c, true));
    check_all_inputs(c);
    // one channel, fewer images: the shared products in groups of 2 and 1 vectors
    let c = conv(1, 28, 1, 1, 0, 50);
    assert_eq!(Shape::new(&c, true).group, 2, "{:?}", Shape::new(&c, true));
    check_all_inputs(c);
}

#[test]
fn strides_rectangles_and_no_bias_match_the_shader() {
    // 13x11 maps, stride 2 and 3, with and without padding, with and without bias
    for (stride, pad, bias) in [(2, 1, true), (2, 0, false), (3, 1, false), (3, 2, true)] {
        let c = conv(3, 13, 4, 3, pad, 5);
        let c = Conv { in_w: 11, stride, b_off: c.b_off.filter(|_| bias), ..c };
        check_all_inputs(c);
    }
    // many images at stride 2: several blocks, a partial last one
    check_all_inputs(several_blocks(Conv { in_h: 9, in_w: 8, stride: 2, ..conv(2, 9, 3, 3, 1, 400) }));
}

/// Cluster nodes differ in core count, and a sharded `reproduce` must equal an unsharded one: the
/// weight gradient may not depend on how many threads summed it.
#[test]
fn weight_grad_bits_do_not_depend_on_the_thread_count() {
    // enough images for many blocks, so that the sum over blocks is split into pieces
    let c = conv(2, 7, 3, 3, 1, 900);
    assert!(c.images >= 8 * Shape::new(&c, false).block, "{:?}", Shape::new(&c, false));
    for images in [true, false] {
        let in_len = c.batches * c.in_bs(images) + c.images * c.in_map();
        let input = values(in_len, 1);
        let grad_out = values(c.batches * c.out_bs(), 3);
        let run = |threads| {
            let mut grads = vec![0.0; c.batches * c.n_prm];
            weight_grad(&c, images, &input, &grad_out, &mut grads, false, (threads, Simd::detect()));
            grads.iter().map(|g| g.to_bits()).collect::<Vec<_>>()
        };
        let one = run(1);
        for threads in [2, 3, 7] {
            assert!(one == run(threads), "images {images}: 1 and {threads} threads differ");
        }
    }
}

#[test]
fn weight_grad_leaves_other_parameters_untouched() {
    let c = conv(6, 14, 16, 5, 0, 2);
    let input = values(c.images * c.in_map(), 1);
    let grad_out = values(c.batches * c.out_bs(), 3);
    let before = values(c.batches * c.n_prm + 9, 5);
    let mut grads = before.clone();
    weight_grad(&c, true, &input, &grad_out, &mut grads, false, (2, Simd::detect()));
    let k = c.in_c * c.ksize * c.ksize;
    for (i, (a, b)) in grads.iter().zip(&before).enumerate() {
        let (vector, j) = (i / c.n_prm, i % c.n_prm);
        let conv_param = vector < c.batches
            && ((c.w_off..c.w_off + c.out_c * k).contains(&j)
                || c.b_off.is_some_and(|b| (b..b + c.out_c).contains(&j)));
        if !conv_param {
            assert_eq!(a.to_bits(), b.to_bits(), "parameter {i} changed");
        }
    }
}

#[test]
fn input_grad_writes_only_the_maps() {
    let c = Conv { in_off: 5, ..conv(3, 7, 5, 3, 1, 2) };
    let weights = values(c.batches * c.n_prm, 2);
    let grad_out = values(c.batches * c.out_bs(), 3);
    let end = c.in_off + c.batches * c.in_bs(false);
    let mut grad_in = vec![f32::NAN; end + 4];
    input_grad(&c, &weights, &grad_out, &mut grad_in, 2);
    assert!(grad_in[..c.in_off].iter().chain(&grad_in[end..]).all(|v| v.is_nan()));
    assert!(grad_in[c.in_off..end].iter().all(|v| v.is_finite()));
}
