//! The part of a chunk's forward pass that is linear in the weights: leading matrix products of the
//! images (or of a constant tensor of ones, a bias) by the weights, all writing one tensor. Along a line
//! w − c d such a tensor is Z(w − c d) = Z(w) − c Z(d) exactly in real arithmetic, which is what an
//! optimizer's line search exploits (docs/algorithms.md, "L-BFGS: trial points through the first
//! layer"). Found from the plan's operations alone, so any network whose first layer is a dense product
//! of the images (FCP, the autoencoder, a compact MLP, a description or an ONNX graph that starts so)
//! qualifies, and any other (a convolution, an LSTM) does not.

use super::op::{Operand, TensorId, EXTERNAL, WEIGHTS};
use super::plan::{ChunkOps, Init, MatMul, Op, Tensor};
use super::products::{layout_end, Layout};

/// The leading forward operations of one chunk that compute a tensor linear in the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearPrefix {
    /// How many leading operations of the chunk's forward pass compute it.
    pub ops: usize,
    /// The tensor they write.
    pub output: TensorId,
    /// Elements of `output` they write: elements `0..len`, vector v's values at
    /// `v * len / vectors .. (v + 1) * len / vectors` (vector-major).
    pub len: usize,
}

impl LinearPrefix {
    /// The linear prefix of `chunk` of a plan of `vectors` weight vectors with `tensors`, if it has one:
    /// a first product `output = images x W(w)` that overwrites elements `0..len` of a scratch tensor,
    /// then any number of products `output += ones x W(w)` (biases), where each column of each
    /// product reads the weights of one vector only and writes into that vector's block of `output`.
    pub fn of(chunk: &ChunkOps, tensors: &[Tensor], vectors: usize) -> Option<LinearPrefix> {
        if vectors == 0 {
            return None;
        }
        let n_prm = tensors[WEIGHTS].len / vectors;
        let Some(Op::MatMul(first)) = chunk.forward.first() else { return None };
        let output = first.c.0;
        let p = &first.shape;
        let len = layout_end(&first.c.1, p.batches, p.m, p.n);
        let dense = first.c.1.off == 0 && len == p.m * p.n * p.batches;
        if first.a.0 != Operand::Images || p.accumulate || output < EXTERNAL || !dense || !len.is_multiple_of(vectors) {
            return None;
        }
        let block = len / vectors;
        if !per_vector(first, n_prm, block) {
            return None;
        }
        let is_ones = |a: Operand| matches!(a, Operand::Tensor(t) if t >= EXTERNAL && tensors[t].init == Init::Ones);
        let biases = chunk.forward[1..]
            .iter()
            .take_while(|op| {
                matches!(op, Op::MatMul(m) if m.c.0 == output && m.shape.accumulate && is_ones(m.a.0)
                    && layout_end(&m.c.1, m.shape.batches, m.shape.m, m.shape.n) <= len
                    && per_vector(m, n_prm, block))
            })
            .count();
        Some(LinearPrefix { ops: 1 + biases, output, len })
    }
}

/// Whether the product reads its B operand from the weights, each of its columns (per batch member)
/// from one vector's `n_prm` weights only, and writes that column into the same vector's `block` of C.
/// Layouts are affine along a column, so its two ends decide.
fn per_vector(m: &MatMul, n_prm: usize, block: usize) -> bool {
    let p = &m.shape;
    if m.b.0 != Operand::Tensor(WEIGHTS) || p.k == 0 || p.m == 0 || n_prm == 0 || block == 0 {
        return false;
    }
    let vector_of = |l: &Layout, z: usize, rows: usize, col: usize, size: usize| {
        let (first, last) = (l.at(z, 0, col) / size, l.at(z, rows - 1, col) / size);
        (first == last).then_some(first)
    };
    (0..p.batches).all(|z| {
        (0..p.n).all(|col| {
            let read = vector_of(&m.b.1, z, p.k, col, n_prm);
            read.is_some() && read == vector_of(&m.c.1, z, p.m, col, block)
        })
    })
}
