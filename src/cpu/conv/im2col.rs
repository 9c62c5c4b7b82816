//! Moving between feature maps and the matrices the products read: `im2col` unfolds a block of images
//! into one column per output position, `col2im` folds such a matrix back (its adjoint), and
//! `gather_grad_out` lays d loss / d out of a block out as one matrix.

use super::lanes::{add_short, copy_ahead, copy_short, zero_ahead};
use super::Shape;
use crate::cpu::simd::{dispatch, sum8};
use crate::ops::Conv;

/// The range of outputs `o` along one axis (of `out_len`) whose input coordinate
/// `o * stride + kk - pad` lies inside [0, in_len), clipped to [0, out_len); empty (lo == hi) when
/// every output of the axis reads padding.
fn valid_range(c: &Conv, kk: usize, (in_len, out_len): (usize, usize)) -> (usize, usize) {
    let s = c.stride;
    let lo = c.pad.saturating_sub(kk).div_ceil(s).min(out_len);
    let hi = (in_len + c.pad).saturating_sub(kk).div_ceil(s).clamp(lo, out_len);
    (lo, hi)
}

/// The valid output columns of kernel column `kx` ([`valid_range`] along the width).
fn valid_columns(c: &Conv, kx: usize) -> (usize, usize) {
    valid_range(c, kx, (c.in_w, c.out_w()))
}

/// Fills `cols` [K x count * pos] (row (ci, ky, kx), column (image, oy, ox)) from `count` images that
/// start at `input[0]`, each in_c x in_h x in_w, with zeros where the window leaves the map.
///
/// With stride 1 elements are written strictly front to back in whole 8-float vectors, each write
/// starting where the finished part ends, so a write may spill garbage past its segment (the next
/// write covers it): the rows of a map are only 10 to 30 floats long and exact-length copies would
/// cost more than the product (see `lanes`). `cols` past the matrix is scratch that may receive such
/// garbage. A larger stride reads every `stride`-th input column, one float at a time.
///
/// Built at each SIMD level (`dispatch!`): compiled for the baseline, its row copies went 16 bytes at a
/// time, and the im2col matrix took a quarter of LeNet's SGD step (docs/benchmarks.md). Copies only, so
/// every level writes the same bits. Built the same way together, `col2im`, `gather_grad_out` and the
/// forward pass's output copy made LeNet's evaluations slower, so they stay at the baseline.
#[inline(always)]
fn im2col_plain(c: &Conv, sh: &Shape, input: &[f32], count: usize, cols: &mut [f32]) {
    let (ih, iw, ks) = (c.in_h, c.in_w, c.ksize);
    let n = sh.cols(count);
    for r in 0..sh.k {
        let (ci, ky, kx) = (r / (ks * ks), r / ks % ks, r % ks);
        let columns = valid_columns(c, kx);
        let rows = match columns.0 < columns.1 {
            true => valid_range(c, ky, (ih, c.out_h())),
            false => (0, 0),
        };
        for img in 0..count {
            let plane = &input[(img * c.in_c + ci) * ih * iw..];
            let dst = &mut cols[r * n + img * sh.pos..];
            if c.stride == 1 {
                unit_stride_rows(c, (rows, columns), (ky, kx), plane, dst);
            } else {
                strided_rows(c, (rows, columns), (ky, kx), plane, dst);
            }
        }
    }
}

/// One (row of the im2col matrix, image) piece of [`im2col`] at stride 1: `oh` rows of `ow` columns
/// into `dst`, the output rows `rows` and columns `lo..hi` read from the map (both non-empty, or `rows`
/// empty), zeros elsewhere. The rows inside the map are found once, so the copies run in one tight loop.
#[inline(always)]
fn unit_stride_rows(
    c: &Conv,
    (rows, (lo, hi)): ((usize, usize), (usize, usize)),
    (ky, kx): (usize, usize),
    plane: &[f32],
    dst: &mut [f32],
) {
    let (iw, ow) = (c.in_w, c.out_w());
    zero_ahead(dst, rows.0 * ow);
    // input row of output row oy is oy + ky - pad, its column of output column ox is ox + kx - pad
    // (written out, not a closure: see scripts/check-simd-inlining)
    if lo == 0 && hi == ow {
        for oy in rows.0..rows.1 {
            copy_ahead(&mut dst[oy * ow..], &plane[(oy + ky - c.pad) * iw + lo + kx - c.pad..], ow);
        }
    } else {
        for oy in rows.0..rows.1 {
            let d = oy * ow;
            zero_ahead(&mut dst[d..], lo);
            copy_ahead(&mut dst[d + lo..], &plane[(oy + ky - c.pad) * iw + lo + kx - c.pad..], hi - lo);
            zero_ahead(&mut dst[d + hi..], ow - hi);
        }
    }
    zero_ahead(&mut dst[rows.1 * ow..], (c.out_h() - rows.1) * ow);
}

dispatch!(pub(super) fn im2col(c: &Conv, sh: &Shape, input: &[f32], count: usize, cols: &mut [f32]) => im2col_plain);

/// [`unit_stride_rows`] at a larger stride: every `stride`-th input column of every `stride`-th row,
/// one float at a time, exactly `oh` x `ow` values. Not inlined: a larger `im2col` body slowed the
/// stride-1 path that LeNet takes.
fn strided_rows(
    c: &Conv,
    (rows, (lo, hi)): ((usize, usize), (usize, usize)),
    (ky, kx): (usize, usize),
    plane: &[f32],
    dst: &mut [f32],
) {
    let (s, iw, ow) = (c.stride, c.in_w, c.out_w());
    for (oy, dst) in dst[..c.out_h() * ow].chunks_exact_mut(ow).enumerate() {
        if !(rows.0..rows.1).contains(&oy) {
            dst.fill(0.0);
            continue;
        }
        let row = &plane[(oy * s + ky - c.pad) * iw..];
        for (ox, v) in dst.iter_mut().enumerate() {
            *v = if (lo..hi).contains(&ox) { row[ox * s + kx - c.pad] } else { 0.0 };
        }
    }
}

/// The adjoint of [`im2col`]: adds every element of `cols` into the input element it was read from
/// (`grad_in` holds `count` images from index 0 and must be zeroed or hold a sum to add to).
pub(super) fn col2im(c: &Conv, sh: &Shape, cols: &[f32], count: usize, grad_in: &mut [f32]) {
    let (ih, iw, ow, ks, s) = (c.in_h, c.in_w, c.out_w(), c.ksize, c.stride);
    let n = sh.cols(count);
    for (r, row) in cols[..sh.k * n].chunks_exact(n).enumerate() {
        let (ci, ky, kx) = (r / (ks * ks), r / ks % ks, r % ks);
        let (lo, hi) = valid_columns(c, kx);
        if lo == hi {
            continue;
        }
        for (img, src_img) in row.chunks_exact(sh.pos).enumerate() {
            let plane = &mut grad_in[(img * c.in_c + ci) * ih * iw..][..ih * iw];
            for (oy, src) in src_img.chunks_exact(ow).enumerate() {
                let y = (oy * s + ky).wrapping_sub(c.pad);
                if y >= ih {
                    continue;
                }
                if s == 1 {
                    let dst = &mut plane[y * iw + lo + kx - c.pad..][..hi - lo];
                    add_short(dst, &src[lo..hi]);
                } else {
                    let dst = &mut plane[y * iw..][..iw];
                    for ox in lo..hi {
                        dst[ox * s + kx - c.pad] += src[ox];
                    }
                }
            }
        }
    }
}

/// Copies d loss / d out of vectors `b0..b0 + vectors`, images `first..first + count`, into `buf` as
/// one row-major matrix [(vector, co) x (image, position)] so a single product can contract over all
/// images; adds each row's sum to `bias_sums[(vector, co)]` when given.
pub(super) fn gather_grad_out(
    c: &Conv,
    sh: &Shape,
    grad_out: &[f32],
    (b0, vectors): (usize, usize),
    (first, count): (usize, usize),
    buf: &mut [f32],
    mut bias_sums: Option<&mut [f32]>,
) {
    let n = sh.cols(count);
    for (row, dst) in buf[..vectors * c.out_c * n].chunks_exact_mut(n).enumerate() {
        let (b, co) = (b0 + row / c.out_c, row % c.out_c);
        let base = b * c.out_bs() + first * sh.out_map + co * sh.pos;
        for (img, d) in dst.chunks_exact_mut(sh.pos).enumerate() {
            copy_short(d, &grad_out[base + img * sh.out_map..][..sh.pos]);
        }
        if let Some(sums) = bias_sums.as_deref_mut() {
            // the row's sum, in eight lanes so that it vectorises (one slice: the second is ignored)
            sums[b * c.out_c + co] += sum8!(dst, dst, |x, _y| x);
        }
    }
}
