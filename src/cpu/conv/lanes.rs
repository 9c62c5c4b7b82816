//! Copies for the short rows of a feature map (10 to 30 floats), in whole 8-float vectors that the
//! compiler keeps in registers: a `memcpy` call's fixed cost, or an exact-length tail loop, would cost
//! more than the matrix product they feed.
//!
//! `copy_ahead` and `zero_ahead` may write up to 7 floats past the row they are given; `copy_short`
//! and `add_short` write exactly the row. None writes outside the slice it is handed.

/// Copies `src[..len]` to `dst[..len]`, in whole 8-float vectors when both slices have room.
///
/// Writes past `len`: up to 7 floats of garbage at `dst[len..]` (read from `src[len..]`), so that a
/// row of any length is a few whole-vector moves. Safe because the only caller, `im2col`, writes its
/// matrix strictly front to back, each write starting where the finished part ends: the next write
/// covers the garbage, and after the last one it lies in scratch past the matrix. Exact (no garbage)
/// when either slice ends before the whole vectors do.
#[inline(always)]
pub(super) fn copy_ahead(dst: &mut [f32], src: &[f32], len: usize) {
    let whole = len.next_multiple_of(8);
    if dst.len() >= whole && src.len() >= whole {
        for (d, s) in dst[..whole].chunks_exact_mut(8).zip(src[..whole].chunks_exact(8)) {
            let d: &mut [f32; 8] = d.try_into().expect("8 floats");
            *d = s.try_into().expect("8 floats");
        }
    } else {
        copy_short(&mut dst[..len], &src[..len]);
    }
}

/// Zeroes `dst[..len]`, in whole 8-float vectors when `dst` has room.
///
/// Writes past `len`: up to 7 more zeros, safe for the reason given at [`copy_ahead`] (the same
/// front-to-back writer); exact when `dst` ends before the whole vectors do.
#[inline(always)]
pub(super) fn zero_ahead(dst: &mut [f32], len: usize) {
    let whole = len.next_multiple_of(8);
    if dst.len() >= whole {
        for d in dst[..whole].chunks_exact_mut(8) {
            let d: &mut [f32; 8] = d.try_into().expect("8 floats");
            *d = [0.0; 8];
        }
    } else {
        dst[..len].iter_mut().for_each(|d| *d = 0.0);
    }
}

/// dst = src (equal lengths), in 8-float vectors and then one float at a time. Writes exactly the row:
/// it serves `copy_ahead` where a slice ends too soon, and `gather_grad_out`, whose buffer may end right
/// after the row it copies.
#[inline(always)]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let (mut d, mut s) = (dst.chunks_exact_mut(8), src.chunks_exact(8));
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; 8] = d.try_into().expect("8 floats");
        *d = s.try_into().expect("8 floats");
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// dst += src (equal lengths), as [`copy_short`]: exact, since `col2im` adds overlapping windows into
/// the same input map, where a write past the row would change a neighbour's sum.
#[inline(always)]
pub(super) fn add_short(dst: &mut [f32], src: &[f32]) {
    let (mut d, mut s) = (dst.chunks_exact_mut(8), src.chunks_exact(8));
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; 8] = d.try_into().expect("8 floats");
        let s: &[f32; 8] = s.try_into().expect("8 floats");
        for (d, s) in d.iter_mut().zip(s) {
            *d += s;
        }
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d += s;
    }
}
