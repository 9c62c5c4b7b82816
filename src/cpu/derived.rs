//! Operands a kernel derives from a buffer's values, kept until the buffer is written again
//! ([`Derived`]).
//!
//! Why: an evaluation runs one command per chunk of images, and every chunk reads the same weights.
//! Where a kernel wants the weights in another order than the parameter vector keeps them (the
//! autoencoder's output layer reads each vector's W^T; the wide first-layer product reads all
//! vectors' weights side by side), rearranging them per chunk cost as much as `gemm`'s own
//! transposing pack that it replaced (eight chunks of 256 images at B = 51, 1.3 M floats each);
//! kept, they are rearranged once per evaluation.

use super::buffer::Named;
use super::{CpuBuffer, Exclusive};

/// What a derived operand is, for its kernel (a tag and the layout and shape numbers that fix its
/// contents).
pub(super) type Key = [usize; 8];

/// The most floats of one derived operand (32 MiB); a larger operand is not derived at all (its
/// kernel reads the buffer as it is).
pub(super) const MOST_FLOATS: usize = 1 << 23;

/// The most floats kept over all derived operands (64 MiB, beside the evaluators' own memory). An
/// evaluation derives two operands (its first layer's and its output layer's weights), so two of the
/// largest fit together: with room for one, each chunk of images would derive both again, evicting
/// the other (measured: the autoencoder at B = 200–300, whose two copies were 5–7.5 M floats each,
/// ran 11–13 % slower per vector than at B = 150).
pub(super) const KEPT_FLOATS: usize = 2 * MOST_FLOATS;

/// One kept operand: derived from `source` at its `generation`.
struct Entry {
    source: Named,
    generation: u64,
    key: Key,
    data: Vec<f32>,
}

/// The kept derived operands, the newest last.
#[derive(Default)]
pub(super) struct Derived(Vec<Entry>);

impl Derived {
    /// The operand `key` of `len` floats derived from `source` by `fill` (which writes every float),
    /// run only when no kept copy was derived from the buffer's current values. `None`, with nothing
    /// run, when `len` exceeds [`MOST_FLOATS`]; the oldest operands are let go until the kept floats fit
    /// [`KEPT_FLOATS`].
    pub(super) fn get(
        &mut self,
        (source, lock): (&CpuBuffer, &Exclusive),
        key: Key,
        len: usize,
        fill: impl FnOnce(&mut [f32]),
    ) -> Option<&[f32]> {
        if len > MOST_FLOATS {
            return None;
        }
        let generation = source.generation(lock);
        self.0.retain(|e| !e.source.is_gone());
        let found = self.0.iter().position(|e| e.key == key && e.source.names(source));
        let entry = match found.map(|i| self.0.remove(i)) {
            Some(kept) if kept.generation == generation && kept.data.len() == len => kept,
            kept => {
                // the stale copy's memory reused; else the oldest dropped until the new one fits
                let mut data = kept.map(|e| e.data).unwrap_or_default();
                while self.0.iter().map(|e| e.data.len()).sum::<usize>() + len > KEPT_FLOATS {
                    self.0.remove(0);
                }
                data.resize(len, 0.0);
                fill(&mut data);
                Entry { source: source.named(), generation, key, data }
            }
        };
        self.0.push(entry);
        self.0.last().map(|e| &e.data[..])
    }
}

/// A row-major matrix with `n` columns, as many rows as `rows` holds, whose element (q, j) is
/// `values[column(j) + q * step]`: a layer's weights, one unit's inputs after another, as the
/// transposed operand a product reads. Sixteen columns at a time, so that their reads share cache
/// lines and each row is written in runs of sixteen floats.
pub(super) fn gather_rows(
    values: &[f32],
    (step, n): (usize, usize),
    column: impl Fn(usize) -> usize,
    rows: &mut [f32],
) {
    for j0 in (0..n).step_by(16) {
        let cols = 16.min(n - j0);
        let mut starts = [0; 16];
        starts[..cols].iter_mut().enumerate().for_each(|(c, s)| *s = column(j0 + c));
        for (r, row) in rows.chunks_exact_mut(n).enumerate() {
            let run = &mut row[j0..j0 + cols];
            run.iter_mut().zip(&starts).for_each(|(v, s)| *v = values[s + r * step]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::exclusive;

    /// Derives `key` from `buffer` with values that say how many times `fill` ran, and returns that.
    fn derive(kept: &mut Derived, buffer: &CpuBuffer, key: Key, len: usize, fills: &mut usize) -> Option<f32> {
        let lock = exclusive();
        kept.get((buffer, &lock), key, len, |out| {
            *fills += 1;
            out.fill(*fills as f32);
        })
        .map(|v| {
            assert_eq!(v.len(), len);
            v[0]
        })
    }

    #[test]
    fn a_kept_operand_is_derived_again_after_its_buffer_is_written_and_only_then() {
        let (a, b) = (CpuBuffer::new(vec![1.0; 8]), CpuBuffer::new(vec![2.0; 8]));
        let (mut kept, mut fills) = (Derived::default(), 0);
        let key = [1, 0, 0, 0, 0, 0, 0, 4];
        assert_eq!(derive(&mut kept, &a, key, 4, &mut fills), Some(1.0));
        assert_eq!(derive(&mut kept, &a, key, 4, &mut fills), Some(1.0), "unchanged: kept");
        a.view_mut(&exclusive())[0] = 5.0;
        assert_eq!(derive(&mut kept, &a, key, 4, &mut fills), Some(2.0), "written: derived again");
        assert_eq!(derive(&mut kept, &b, key, 4, &mut fills), Some(3.0), "another buffer");
        assert_eq!(derive(&mut kept, &a, [2, 0, 0, 0, 0, 0, 0, 4], 4, &mut fills), Some(4.0), "another key");
        assert_eq!(derive(&mut kept, &a, key, 4, &mut fills), Some(2.0), "the first key is still kept");
        assert_eq!(derive(&mut kept, &a, key, MOST_FLOATS + 1, &mut fills), None, "too large to keep");
        assert_eq!(fills, 4);
        // two of the largest operands (an evaluation's first and output layers') are kept together
        let kept_floats = |kept: &Derived| kept.0.iter().map(|e| e.data.len()).sum::<usize>();
        assert_eq!(derive(&mut kept, &a, [3; 8], MOST_FLOATS, &mut fills), Some(5.0));
        assert_eq!(derive(&mut kept, &b, [3; 8], MOST_FLOATS - 12, &mut fills), Some(6.0));
        assert_eq!(derive(&mut kept, &a, [3; 8], MOST_FLOATS, &mut fills), Some(5.0), "not evicted by the second");
        assert_eq!(kept_floats(&kept), KEPT_FLOATS);
        assert_eq!(derive(&mut kept, &a, key, 4, &mut fills), Some(2.0), "the newest small ones stayed");
        // a third large operand drops the oldest until the kept floats fit
        assert_eq!(derive(&mut kept, &b, [5; 8], MOST_FLOATS - 8, &mut fills), Some(7.0));
        assert_eq!(kept_floats(&kept), KEPT_FLOATS - 4);
        assert_eq!(derive(&mut kept, &a, key, 4, &mut fills), Some(2.0), "the newest small one stayed");
        assert_eq!(derive(&mut kept, &b, [3; 8], MOST_FLOATS - 12, &mut fills), Some(8.0), "the oldest was let go");
        // a dropped buffer's operand is let go, and its values are not kept alive meanwhile
        let c = CpuBuffer::new(vec![3.0; 8]);
        assert_eq!(derive(&mut kept, &c, [4; 8], 4, &mut fills), Some(9.0));
        let named = c.named();
        drop(c);
        assert!(named.is_gone(), "the kept operand does not hold its buffer");
        assert_eq!(derive(&mut kept, &a, key, 4, &mut fills), Some(2.0));
        assert!(kept.0.iter().all(|e| !e.source.is_gone()), "the dropped buffer's operand was let go");
    }

    #[test]
    fn gathered_rows_are_the_elements_their_columns_name() {
        // 5 x 37, column j starting at 11 j + 2 (stride 1) or 2 + j (stride 40)
        for (step, column) in [(1, 11usize), (40, 1)] {
            let values: Vec<f32> = (0..2000).map(|i| i as f32).collect();
            let n = 37;
            let mut rows = vec![f32::NAN; 5 * n];
            gather_rows(&values, (step, n), |j| 2 + column * j, &mut rows);
            for (r, row) in rows.chunks(n).enumerate() {
                for (j, v) in row.iter().enumerate() {
                    assert_eq!(*v, values[2 + column * j + r * step], "row {r}, column {j}");
                }
            }
        }
    }
}
