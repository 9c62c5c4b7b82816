//! `matmul.wgsl`: C[z] (+)= A[z] B[z] with every operand layout the networks use: row-major and
//! transposed A and B, B in column groups (the first layer of B vectors as one product), C in column
//! groups, offsets and batch strides, accumulation, and the image buffer as A (forward) or B (weight
//! gradient). Tolerance: γ(k + 2) of Σ|a b| (+ |C| when accumulating): k products, the addition to C
//! and the byte / 255 of an image operand.

use super::{backends, check, gamma, images, read, run, upload, values};
use losscape::backend::Source;
use losscape::ops::{layout_end, Layout, Product};

/// How an operand is stored.
#[derive(Clone, Copy, Debug)]
enum Store {
    RowMajor,
    Transposed,
    /// Columns in groups of `g`, group q a g x rows matrix read transposed (B: vector q's weights).
    WeightBlocks(usize),
    /// Columns in groups of `g`, group q a row-major rows x g block (C: vector q's outputs).
    OutputBlocks(usize),
    /// The image buffer (row-major, shared by the batch).
    Images,
}

/// The layout of a rows x cols operand stored as `s` from `off`, batch members apart (gaps between
/// rows, groups and batch members).
fn layout(s: Store, rows: usize, cols: usize, off: usize) -> Layout {
    let size = rows * cols + 3;
    let blocks = |g: usize| cols.div_ceil(g) * (rows * g + 5) + 7;
    match s {
        Store::RowMajor => Layout::row_major(off, cols, size),
        Store::Transposed => Layout::transposed(off, rows, size),
        Store::WeightBlocks(g) => Layout { off, batch: blocks(g), row: 1, col: rows, group: Some((g, rows * g + 5)) },
        Store::OutputBlocks(g) => Layout { off, batch: blocks(g), row: g, col: 1, group: Some((g, rows * g + 5)) },
        Store::Images => Layout::row_major(off, cols, 0),
    }
}

/// One past the last element a layout reaches.
fn extent(l: &Layout, batches: usize, rows: usize, cols: usize) -> usize {
    (0..batches).flat_map(|z| (0..rows).flat_map(move |r| (0..cols).map(move |c| l.at(z, r, c)))).max().unwrap() + 1
}

#[test]
fn products_match_f64_on_cpu_and_wgpu() {
    use Store::*;
    let cases = [
        (RowMajor, RowMajor, RowMajor, false),
        (Transposed, RowMajor, RowMajor, true),
        (RowMajor, Transposed, RowMajor, false),
        (Transposed, Transposed, RowMajor, true),
        (RowMajor, WeightBlocks(3), OutputBlocks(3), false),
        (Images, Transposed, RowMajor, false),
        (Transposed, Images, OutputBlocks(4), true),
    ];
    for (backend, device) in backends() {
        for (m, n, k) in [(1, 1, 1), (7, 33, 5), (33, 7, 257), (65, 70, 17)] {
            for (case, &(sa, sb, sc, accumulate)) in cases.iter().enumerate() {
                let what =
                    format!("{backend}: {m}x{n}x{k} product, A {sa:?}, B {sb:?}, C {sc:?}, accumulate {accumulate}");
                let batches = 2;
                let p = Product { m, n, k, batches, accumulate };
                let (la, lb, lc) = (layout(sa, m, k, 2), layout(sb, k, n, 1), layout(sc, m, n, 3));
                let seed = (case * 10 + m) as u32;
                // operands: f32 values in [-1, 1), or image bytes read as byte / 255
                let operand = |s: Store, l: &Layout, rows, cols, seed| -> (Vec<f64>, _) {
                    let len = extent(l, batches, rows, cols) + 2;
                    if let Images = s {
                        let (data, up) = images(&device, 1, len, 10, seed);
                        (data.pixels.iter().map(|&b| b as f64 / 255.0).collect(), up.pixels)
                    } else {
                        let v = values(len, seed, -1.0, 1.0);
                        (v.iter().map(|&x| x as f64).collect(), upload(&device, &v))
                    }
                };
                let (a, a_buf) = operand(sa, &la, m, k, seed);
                let (b, b_buf) = operand(sb, &lb, k, n, seed + 1);
                let source = |s: Store, buf| if let Images = s { Source::Images(buf) } else { Source::F32(buf) };
                let c0 = values(extent(&lc, batches, m, n) + 2, seed + 2, -1.0, 1.0);
                let c_buf = upload(&device, &c0);
                let cmd = device.matmul(p, (source(sa, &a_buf), la), (source(sb, &b_buf), lb), (&c_buf, lc)).unwrap();
                run(&device, &[cmd]);
                // the f64 version; elements outside C's layout stay as they were
                let mut want: Vec<f64> = c0.iter().map(|&x| x as f64).collect();
                let mut magnitude = vec![0.0; c0.len()];
                for z in 0..batches {
                    for r in 0..m {
                        for c in 0..n {
                            let at = lc.at(z, r, c);
                            let terms = (0..k).map(|i| a[la.at(z, r, i)] * b[lb.at(z, i, c)]);
                            let (sum, abs) = terms.fold((0.0, 0.0), |(s, m), t: f64| (s + t, m + t.abs()));
                            let old = if accumulate { c0[at] as f64 } else { 0.0 };
                            (want[at], magnitude[at]) = (old + sum, old.abs() + abs);
                        }
                    }
                }
                check(&what, &read(&device, &c_buf), &want, |i| gamma(k + 2) * magnitude[i]);
            }
        }
    }
}

#[test]
fn layout_end_is_the_furthest_element_in_constant_time() {
    use Store::*;
    // every store, with full and partial column groups, against the element-by-element maximum
    for (rows, cols) in [(1, 1), (3, 7), (5, 9), (4, 12), (2, 13)] {
        for s in [RowMajor, Transposed, WeightBlocks(3), OutputBlocks(4), WeightBlocks(13), OutputBlocks(20), Images] {
            for batches in [1, 3] {
                let l = layout(s, rows, cols, 5);
                let what = format!("{s:?} {batches}x{rows}x{cols}");
                assert_eq!(layout_end(&l, batches, rows, cols), extent(&l, batches, rows, cols), "{what}");
            }
        }
    }
    // a partial last group whose columns end before the full group's: (2, 100) groups, col 10
    let l = Layout { off: 0, batch: 0, row: 0, col: 10, group: Some((4, 1)) };
    assert_eq!(layout_end(&l, 1, 1, 9), extent(&l, 1, 1, 9));
    // a layer of 2^40 columns (`plan` of a wide network asks this of every product): at once, not a
    // loop over the columns
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let wide = 1usize << 40;
        tx.send(layout_end(&Layout::row_major(0, wide, 0), 1, 2, wide)).unwrap();
    });
    let end = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("layout_end of 2^40 columns within 10 s");
    assert_eq!(end, 2 << 40);
    // an end past the address space saturates (fails every bounds check) instead of wrapping
    let huge = Layout::row_major(0, usize::MAX / 2, usize::MAX / 2);
    assert_eq!(layout_end(&huge, 3, 3, 3), usize::MAX);
}
