//! Row-major arrays under ONNX's shape operators (Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
//! Gather, Slice, Concat), with an optional free batch dimension. The importer uses them twice: to
//! evaluate the constant subgraphs PyTorch's exporter writes around an LSTM's weights (`f32` values,
//! no batch), and to follow what each element of a value is around an LSTM (`u32` indices of the
//! image's pixels or of the LSTM's hidden states, with the batch), so that one implementation of each
//! operator serves both.
//!
//! Source: the ONNX operator specification (onnx/onnx `docs/Operators.md`), opset 17: negative axes
//! count from the end, Reshape's 0 copies a dimension and −1 infers one, Slice clamps its bounds.

use anyhow::{anyhow, bail, Result};

/// One dimension of an [`Array`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Size(usize),
    /// The batch: the number of images, free when the graph is read.
    Batch,
}

/// A row-major array. `values` are one image's elements: the batch dimension, if any, is left out of
/// them (every image has the same layout), so its operators refuse what would mix images (a Gather or
/// Slice along the batch, a Reshape that does not keep each image's values together).
#[derive(Clone, Debug, PartialEq)]
pub struct Array<T> {
    pub dims: Vec<Dim>,
    pub values: Vec<T>,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Size(n) => write!(f, "{n}"),
            Dim::Batch => f.write_str("batch"),
        }
    }
}

/// `dims` written as `[batch, 28, 28]`.
pub fn show(dims: &[Dim]) -> String {
    format!("[{}]", dims.iter().map(Dim::to_string).collect::<Vec<_>>().join(", "))
}

/// An axis of a rank-`rank` array, negative counting from the end.
fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if a < -r || a >= r {
        bail!("axis {a} is outside a rank-{rank} tensor");
    }
    Ok(a.rem_euclid(r.max(1)) as usize)
}

/// `values` over `sizes` with axis `at` replaced by the entries `indices` picks from it.
fn take<T: Copy>(values: &[T], sizes: &[usize], at: usize, indices: &[usize]) -> Vec<T> {
    let inner: usize = sizes[at + 1..].iter().product();
    let outer: usize = sizes[..at].iter().product();
    let along = sizes[at];
    let mut out = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &k in indices {
            out.extend_from_slice(&values[(o * along + k) * inner..][..inner]);
        }
    }
    out
}

/// `values` over `sizes` with their axes reordered: output axis i is input axis `perm[i]`.
fn permute<T: Copy>(values: &[T], sizes: &[usize], perm: &[usize]) -> Vec<T> {
    let mut strides = vec![1; sizes.len()];
    for i in (0..sizes.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * sizes[i + 1];
    }
    let out_sizes: Vec<usize> = perm.iter().map(|&p| sizes[p]).collect();
    let mut index = vec![0; sizes.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(values[index.iter().zip(perm).map(|(&i, &p)| i * strides[p]).sum::<usize>()]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < out_sizes[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

impl<T: Copy> Array<T> {
    /// An array of `values` over `dims` (no batch), checked to hold their product.
    ///
    /// Errors: a count that does not match.
    pub fn new(dims: Vec<usize>, values: Vec<T>) -> Result<Array<T>> {
        if dims.iter().product::<usize>() != values.len() {
            bail!("{} values do not fill the dimensions {dims:?}", values.len());
        }
        Ok(Array { dims: dims.into_iter().map(Dim::Size).collect(), values })
    }

    /// The sizes of the dimensions other than the batch.
    pub fn sizes(&self) -> Vec<usize> {
        self.dims.iter().filter_map(|d| if let Dim::Size(n) = d { Some(*n) } else { None }).collect()
    }

    fn batch(&self) -> Option<usize> {
        self.dims.iter().position(|d| *d == Dim::Batch)
    }

    /// The position of `dims[at]` among the dimensions other than the batch.
    fn fixed(&self, at: usize) -> usize {
        self.dims[..at].iter().filter(|d| **d != Dim::Batch).count()
    }

    /// Whether each image's values are contiguous in memory: only size-1 dimensions before the batch.
    fn images_contiguous(dims: &[Dim]) -> bool {
        dims.iter().take_while(|d| **d != Dim::Batch).all(|d| *d == Dim::Size(1))
    }

    /// ONNX Reshape to `shape` (0 copies the input's dimension unless `allowzero`, −1 is inferred).
    /// With a batch, each image must stay whole: exactly one entry is the batch (a −1, or a 0 at its
    /// place) and only size-1 dimensions come before it, on both sides.
    ///
    /// Errors: a shape that does not fit the values, or that would mix images.
    pub fn reshape(&self, shape: &[i64], allowzero: bool) -> Result<Array<T>> {
        let mixes = || anyhow!("a reshape of {} to {shape:?} would mix the images of a batch", show(&self.dims));
        if !Self::images_contiguous(&self.dims) {
            return Err(mixes());
        }
        let mut dims = Vec::with_capacity(shape.len());
        let mut infer = None;
        for (i, &s) in shape.iter().enumerate() {
            dims.push(match s {
                -1 if infer.is_none() => {
                    infer = Some(i);
                    Dim::Size(0)
                }
                0 if !allowzero => {
                    *self.dims.get(i).ok_or_else(|| anyhow!("shape {shape:?}: no dimension {i} to copy"))?
                }
                s if s > 0 => Dim::Size(s as usize),
                _ => bail!("shape {shape:?} is not a valid Reshape target"),
            });
        }
        let known: usize = dims.iter().map(|d| if let Dim::Size(n) = d { *n } else { 1 }).filter(|&n| n > 0).product();
        let n = self.values.len();
        let has_batch = self.batch().is_some();
        match infer {
            // the −1 takes the batch when no 0 copied it
            Some(i) if has_batch && !dims.contains(&Dim::Batch) => dims[i] = Dim::Batch,
            Some(i) if known > 0 && n.is_multiple_of(known) => dims[i] = Dim::Size(n / known),
            Some(_) => bail!("{n} values cannot be reshaped to {shape:?}"),
            None => {}
        }
        let fixed: usize = dims.iter().map(|d| if let Dim::Size(n) = d { *n } else { 1 }).product();
        let batches = dims.iter().filter(|d| **d == Dim::Batch).count();
        if fixed != n || batches != usize::from(has_batch) {
            bail!("{} ({n} values per image) cannot be reshaped to {shape:?}", show(&self.dims));
        }
        if !Self::images_contiguous(&dims) {
            return Err(mixes());
        }
        Ok(Array { dims, values: self.values.clone() })
    }

    /// ONNX Flatten at `axis`: the dimensions before it and those from it each become one.
    ///
    /// Errors: with a batch, one that is not before `axis` with only size-1 dimensions around it.
    pub fn flatten(&self, at: i64) -> Result<Array<T>> {
        let rank = self.dims.len();
        let at = if at < 0 { at + rank as i64 } else { at };
        if !(0..=rank as i64).contains(&at) {
            bail!("Flatten axis {at} is outside a rank-{rank} tensor");
        }
        let (before, after) = self.dims.split_at(at as usize);
        let size = |ds: &[Dim]| ds.iter().map(|d| if let Dim::Size(n) = d { *n } else { 1 }).product::<usize>();
        let first = match self.batch() {
            None => Dim::Size(size(before)),
            Some(b) if b < before.len() && size(before) == 1 => Dim::Batch,
            Some(_) => bail!("a flatten of {} at axis {at} would mix the images of a batch", show(&self.dims)),
        };
        Ok(Array { dims: vec![first, Dim::Size(size(after))], values: self.values.clone() })
    }

    /// ONNX Transpose by `perm` (default: the axes reversed).
    ///
    /// Errors: `perm` is not a permutation of the axes.
    pub fn transpose(&self, perm: Option<&[i64]>) -> Result<Array<T>> {
        let rank = self.dims.len();
        let perm: Vec<usize> = match perm {
            Some(p) => p.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?,
            None => (0..rank).rev().collect(),
        };
        let mut seen = vec![false; rank];
        if perm.len() != rank || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
            bail!("perm {perm:?} is not a permutation of {rank} axes");
        }
        // the batch is not among the values: reorder the other axes only
        let fixed: Vec<usize> = perm.iter().filter(|&&p| self.dims[p] != Dim::Batch).map(|&p| self.fixed(p)).collect();
        Ok(Array {
            dims: perm.iter().map(|&p| self.dims[p]).collect(),
            values: permute(&self.values, &self.sizes(), &fixed),
        })
    }

    /// ONNX Squeeze of `axes` (all size-1 axes when absent, which a batch forbids: a batch of one image
    /// would go too).
    ///
    /// Errors: an axis that is not of size 1, or the batch's.
    pub fn squeeze(&self, axes: Option<&[i64]>) -> Result<Array<T>> {
        let rank = self.dims.len();
        let drop: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?,
            None if self.batch().is_some() => {
                bail!("a Squeeze without axes of {} would drop the batch when it holds one image", show(&self.dims))
            }
            None => (0..rank).filter(|&i| self.dims[i] == Dim::Size(1)).collect(),
        };
        if let Some(&i) = drop.iter().find(|&&i| self.dims[i] != Dim::Size(1)) {
            bail!("axis {i} of {} is not of size 1 and cannot be squeezed", show(&self.dims));
        }
        let dims = (0..rank).filter(|i| !drop.contains(i)).map(|i| self.dims[i]).collect();
        Ok(Array { dims, values: self.values.clone() })
    }

    /// ONNX Unsqueeze: size-1 axes inserted at `axes` (of the output).
    ///
    /// Errors: an axis outside the output's rank, or given twice.
    pub fn unsqueeze(&self, axes: &[i64]) -> Result<Array<T>> {
        let rank = self.dims.len() + axes.len();
        let mut at: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?;
        at.sort_unstable();
        if at.windows(2).any(|w| w[0] == w[1]) {
            bail!("Unsqueeze axes {axes:?} repeat an axis");
        }
        let mut dims = self.dims.clone();
        for a in at {
            dims.insert(a, Dim::Size(1));
        }
        Ok(Array { dims, values: self.values.clone() })
    }

    /// ONNX Gather along `at` of the entries `indices` (of shape `index_dims`; negative counting from
    /// the end), which replace that axis.
    ///
    /// Errors: the batch's axis, or an index out of range.
    pub fn gather(&self, at: i64, indices: &[i64], index_dims: &[usize]) -> Result<Array<T>> {
        let at = axis(at, self.dims.len())?;
        let Dim::Size(along) = self.dims[at] else {
            bail!("a Gather along the batch axis would select images, not values of one image");
        };
        let picked: Vec<usize> = indices
            .iter()
            .map(|&i| {
                let k = if i < 0 { i + along as i64 } else { i };
                usize::try_from(k).ok().filter(|&k| k < along).ok_or_else(|| anyhow!("index {i} is outside 0..{along}"))
            })
            .collect::<Result<_>>()?;
        let values = take(&self.values, &self.sizes(), self.fixed(at), &picked);
        let mut dims = self.dims[..at].to_vec();
        dims.extend(index_dims.iter().map(|&n| Dim::Size(n)));
        dims.extend_from_slice(&self.dims[at + 1..]);
        Ok(Array { dims, values })
    }

    /// ONNX Slice: along each of `axes` (default 0, 1, …) the entries from `starts` to `ends` by
    /// `steps` (default 1), bounds clamped as the operator does. Along the batch only the whole axis
    /// (start 0, step 1, an end past any batch) is taken.
    ///
    /// Errors: mismatched lengths, a zero step, a part of the batch.
    pub fn slice(&self, starts: &[i64], ends: &[i64], axes: Option<&[i64]>, steps: Option<&[i64]>) -> Result<Array<T>> {
        let rank = self.dims.len();
        let axes: Vec<i64> = axes.map_or_else(|| (0..starts.len() as i64).collect(), <[i64]>::to_vec);
        let steps: Vec<i64> = steps.map_or_else(|| vec![1; starts.len()], <[i64]>::to_vec);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            bail!("Slice's starts, ends, axes and steps differ in length");
        }
        let mut out = self.clone();
        for (((&s, &e), &a), &step) in starts.iter().zip(ends).zip(&axes).zip(&steps) {
            let a = axis(a, rank)?;
            let Dim::Size(n) = out.dims[a] else {
                if s == 0 && step == 1 && e >= i64::from(i32::MAX) {
                    continue;
                }
                bail!("a Slice of the batch axis ({s}..{e} by {step}) would select images");
            };
            if step == 0 {
                bail!("Slice step 0");
            }
            let n = n as i64;
            let clamp = |v: i64, lo: i64, hi: i64| (if v < 0 { v + n } else { v }).clamp(lo, hi);
            let picked: Vec<usize> = if step > 0 {
                (clamp(s, 0, n)..clamp(e, 0, n)).step_by(step as usize).map(|i| i as usize).collect()
            } else {
                let (s, e) = (clamp(s, -1, n - 1), clamp(e, -1, n - 1));
                (e + 1..=s).rev().step_by(step.unsigned_abs() as usize).map(|i| i as usize).collect()
            };
            let values = take(&out.values, &out.sizes(), out.fixed(a), &picked);
            out.dims[a] = Dim::Size(picked.len());
            out.values = values;
        }
        Ok(out)
    }

    /// ONNX Concat of `parts` along `at` (constants only: no batch).
    ///
    /// Errors: no parts, a batch, or dimensions that differ off the axis.
    pub fn concat(parts: &[Array<T>], at: i64) -> Result<Array<T>> {
        let first = parts.first().ok_or_else(|| anyhow!("a Concat of nothing"))?;
        let at = axis(at, first.dims.len())?;
        let same = |p: &Array<T>| {
            p.dims.len() == first.dims.len()
                && p.batch().is_none()
                && p.dims.iter().zip(&first.dims).enumerate().all(|(i, (a, b))| i == at || a == b)
        };
        if let Some(p) = parts.iter().find(|p| !same(p)) {
            bail!("cannot concatenate {} and {} along axis {at}", show(&first.dims), show(&p.dims));
        }
        let outer: usize = first.sizes()[..at].iter().product();
        let mut values = Vec::with_capacity(parts.iter().map(|p| p.values.len()).sum());
        for o in 0..outer {
            for p in parts {
                let block = p.values.len() / outer;
                values.extend_from_slice(&p.values[o * block..][..block]);
            }
        }
        let mut dims = first.dims.clone();
        dims[at] = Dim::Size(parts.iter().map(|p| p.sizes()[at]).sum());
        Ok(Array { dims, values })
    }
}
