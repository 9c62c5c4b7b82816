//! Loss evaluations along a line, for a line search's trial points w − c_r d (one c_r per vector r):
//! where a plan's first layer is linear in the weights ([`LinearPrefix`]: a dense layer on the images,
//! with or without bias), its pre-activation at a trial point is
//!
//!   Z(w − c d) = X W(w)ᵀ + b(w) − c (X W(d)ᵀ + b(d)) = P_w − c P_d,
//!
//! so the two bases are computed once per line — P_w kept (copied) from the loss-and-gradient evaluation
//! at w, which computes it anyway, and P_d by one product of the images — and each trial's first layer
//! is a row copy and an axpy with the per-row coefficient, followed by the rest of the forward pass and
//! the loss head as a plain loss evaluation runs them. Exact in real arithmetic; in f32
//! the trial's pre-activation rounds differently from the product at the rounded vector w − c d
//! (docs/algorithms.md). Built from existing operations only (products, row copies, axpy), so every
//! backend runs it.

use anyhow::{bail, Result};

use crate::backend::{Buffer, ChunkBudget, Coef, Command, Device, Rows};
use crate::ops::plan::{ChunkOps, Op, Plan, PlanOp, WEIGHTS};
use crate::ops::LinearPrefix;

/// The bases may take at most 1/`BASIS_SHARE` of the device's scratch budget (`total_bytes`): they
/// live as long as the optimizer, beside an evaluator that was sized to the whole budget.
pub const BASIS_SHARE: u64 = 4;

/// The commands a line adds to its evaluator's, per chunk: after the point's first layer, a copy of it
/// into P_w; the basis P_d (submit once the direction is final); a trial's first layer from the bases
/// (submit after writing that point to the weights and the coefficients). The evaluator interleaves
/// them with the commands it recorded already ([`crate::model::Evaluator::line_commands`]), so a line
/// is used with the evaluator that made it.
pub struct Line {
    /// Per chunk: how many of its leading forward commands compute the first layer.
    pub(super) prefix_ops: Vec<usize>,
    /// Per chunk: P_w = the first layer's output at the point.
    pub(super) keep: Vec<Command>,
    basis: Vec<Command>,
    /// Per chunk: the first layer's output = P_w, then += a_r P_d.
    pub(super) first: Vec<[Command; 2]>,
    /// FLOPs of the basis P_d and of one trial (matrix products).
    flops: (f64, f64),
    /// P_w and P_d of every chunk, kept alive with the commands that name them.
    bases: Vec<Buffer>,
}

impl Line {
    /// The linear prefix of every chunk of `plan` (of `vectors` weight vectors), if every chunk has one
    /// and the bases, 2 x vectors x images x units values, fit: together within
    /// 1/[`BASIS_SHARE`] of `budget.total_bytes`, each chunk's within `budget.tensor_bytes`.
    pub fn prefixes(plan: &Plan, vectors: usize, budget: ChunkBudget) -> Option<Vec<LinearPrefix>> {
        let prefixes: Vec<LinearPrefix> =
            plan.chunks.iter().map(|c| LinearPrefix::of(c, &plan.tensors, vectors)).collect::<Option<_>>()?;
        let bytes: u64 = prefixes.iter().map(|p| 2 * 4 * p.len as u64).sum();
        let widest = prefixes.iter().map(|p| 4 * p.len as u64).max().unwrap_or(0);
        (bytes <= budget.total_bytes / BASIS_SHARE && widest <= budget.tensor_bytes).then_some(prefixes)
    }

    /// Records the line of `plan`, whose tensors are `tensors` (in plan order), through the point in the
    /// weights tensor along `direction` (`vectors` x N_prm, laid out like the weights): a trial takes
    /// the first layer as P_w + a_r P_d with a_r = `coef` of row r, and every other layer's weights
    /// from the weights tensor, which the caller sets to that trial point first (an optimizer trying
    /// w − c d passes `c` times −1).
    ///
    /// # Errors
    /// `direction` differs in length from the weights; device errors.
    pub fn record(
        device: &Device,
        plan: &Plan,
        tensors: &[Buffer],
        prefixes: &[LinearPrefix],
        vectors: usize,
        direction: &Buffer,
        coef: Coef,
    ) -> Result<Line> {
        let n = tensors[WEIGHTS].len();
        if direction.len() != n {
            bail!("a line along a direction of {} values for weights of {n}", direction.len());
        }
        let mut line =
            Line { prefix_ops: vec![], keep: vec![], basis: vec![], first: vec![], flops: (0.0, 0.0), bases: vec![] };
        for (chunk, prefix) in plan.chunks.iter().zip(prefixes) {
            line.add_chunk(device, (chunk, prefix), tensors, vectors, (direction, coef))?;
        }
        Ok(line)
    }

    /// Records one chunk's commands: the copy into P_w, its first layer with the direction as the
    /// weights into P_d, and the trial's first layer from the bases.
    fn add_chunk(
        &mut self,
        device: &Device,
        (chunk, prefix): (&ChunkOps, &LinearPrefix),
        tensors: &[Buffer],
        vectors: usize,
        (direction, coef): (&Buffer, Coef),
    ) -> Result<()> {
        let (linear, rest) = chunk.forward.split_at(prefix.ops);
        let rows = |b| Rows::new(b, vectors, prefix.len / vectors);
        let (p_w, p_d) = (device.zeros(prefix.len, "line basis w")?, device.zeros(prefix.len, "line basis d")?);
        let z = &tensors[prefix.output];
        let mut table = tensors.to_vec();
        table[WEIGHTS] = direction.clone();
        table[prefix.output] = p_d.clone();
        for op in linear {
            self.basis.push(device.record(op, &table)?);
        }
        self.prefix_ops.push(prefix.ops);
        self.keep.push(device.copy_rows(rows(z), rows(&p_w), None)?);
        self.first.push([device.copy_rows(rows(&p_w), rows(z), None)?, device.axpy_at(coef, rows(&p_d), rows(z))?]);
        self.flops.0 += linear.iter().map(Op::flops).sum::<f64>();
        self.flops.1 += rest.iter().map(Op::flops).sum::<f64>();
        self.bases.extend([p_w, p_d]);
        Ok(())
    }

    /// The commands that compute the basis P_d of every chunk from the direction.
    pub fn basis(&self) -> impl Iterator<Item = &Command> {
        self.basis.iter()
    }

    /// Matrix-product FLOPs of the bases and of one trial.
    pub fn flops(&self) -> (f64, f64) {
        self.flops
    }
}
