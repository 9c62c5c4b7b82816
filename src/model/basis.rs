//! Loss evaluations of points that are fixed linear combinations of basis vectors, through the first
//! layer's products of the basis: where a plan's first layer is linear in the weights
//! ([`LinearPrefix`]: a dense layer on the images, with or without bias) and the B = G x M points are,
//! per group g, W_gm = sum_j T_mj V_gj (a path's points from its basis rows [a, b, c_1 .. c_K], T the
//! M x F grid matrix shared by the G groups), the first layer's pre-activation of every point is
//!
//!   Z_gm = X W_gmᵀ + b(W_gm) = sum_j T_mj (X V_gjᵀ + b(V_gj)) = sum_j T_mj Q_gj,
//!
//! so per chunk of images the first layer takes G x F products of the images (the bases Q) and one
//! small batched product T · Q per group, instead of G x M products of the images. It pays where
//! F (inputs + M) < M x inputs in multiply-adds, which [`Basis::prefixes`] checks on the plans' FLOPs
//! (in short: F < M with a wide input). Exact in real arithmetic; in f32 the combination of the bases
//! rounds differently from the product at the rounded point (docs/algorithms.md §2.2). Built from
//! existing operations only (the plan's own first-layer products, one batched product), so every
//! backend runs it.

use anyhow::{bail, Result};

use super::line::BASIS_SHARE;
use super::Network;
use crate::backend::{Buffer, ChunkBudget, Command, Device, Source};
use crate::ops::plan::{Op, Plan, PlanOp, PIXELS, WEIGHTS};
use crate::ops::{Layout, LinearPrefix, Product};

/// Which first layer an evaluation of path points runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstLayer {
    /// The plan's own products of the images by every point's weights.
    Points,
    /// The products of the images by the basis vectors, combined per point ([`Basis`]).
    Basis,
}

/// The first layers of a plan's chunks for points that combine basis vectors: per chunk, how many of
/// its leading forward commands compute the first layer (skipped), and the commands that compute it
/// from the basis instead (the bases Q, then Z = T · Q). The evaluator interleaves them with the
/// commands it recorded already ([`crate::model::Evaluator::basis_commands`]), so a basis is used with
/// the evaluator that made it.
pub struct Basis {
    /// Per chunk: how many of its leading forward commands compute the first layer.
    pub(super) prefix_ops: Vec<usize>,
    /// Per chunk: the bases' products, then the combination into the first layer's output.
    pub(super) first: Vec<Vec<Command>>,
    /// Matrix-product FLOPs of the first layer per evaluation through the basis.
    flops: f64,
    /// The bases Q (G x F vectors of one chunk), shared by the chunks, kept alive with the commands.
    _bases: Buffer,
}

/// What [`Basis::prefixes`] found: the linear prefixes of the points' plan and of the basis plan, chunk
/// by chunk, and the plan of the basis vectors whose first-layer operations the basis records.
pub struct BasisPrefixes {
    points: Vec<LinearPrefix>,
    basis: Vec<LinearPrefix>,
    plan: Plan,
}

impl BasisPrefixes {
    /// Values of the bases buffer Q: the largest chunk's G x F first-layer outputs.
    pub fn len(&self) -> usize {
        self.basis.iter().map(|p| p.len).max().unwrap_or(0)
    }

    /// Whether the bases are empty (never, for prefixes [`Basis::prefixes`] returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Basis {
    /// Whether `plan` (of `net`, G x M vectors on images `loaded`) can take its first layer from G x F
    /// basis vectors (`groups` = G, `rows` = F), and the prefixes if so: the plan of G x F vectors on the
    /// same chunks of images (chunk for chunk the same first image and count), a linear prefix in every
    /// chunk of both plans with the same values per vector, fewer first-layer multiply-adds through the
    /// basis (its products plus T · Q) than through the points, and the bases Q within 1/[`BASIS_SHARE`]
    /// of `budget.total_bytes` and `budget.tensor_bytes`. `None` otherwise: evaluate the points plainly.
    pub fn prefixes(
        net: Network,
        plan: &Plan,
        loaded: usize,
        (groups, rows): (usize, usize),
        budget: ChunkBudget,
    ) -> Option<BasisPrefixes> {
        let vectors = plan.tensors[WEIGHTS].len / net.arch.n_params().max(1);
        let (first, last) = (plan.chunks.first()?, plan.chunks.last()?);
        if groups == 0 || rows == 0 || !vectors.is_multiple_of(groups) {
            return None;
        }
        let range = first.first..last.first + last.images;
        let basis_plan = Plan::new(net, range, loaded, groups * rows, first.images, 0).ok()?;
        let same_chunks = basis_plan.chunks.len() == plan.chunks.len()
            && basis_plan.chunks.iter().zip(&plan.chunks).all(|(b, p)| (b.first, b.images) == (p.first, p.images));
        if !same_chunks || basis_plan.tensors.len() != plan.tensors.len() {
            return None;
        }
        let of = |p: &Plan, v| p.chunks.iter().map(|c| LinearPrefix::of(c, &p.tensors, v)).collect::<Option<Vec<_>>>();
        let (points, basis) = (of(plan, vectors)?, of(&basis_plan, groups * rows)?);
        let m = vectors / groups;
        let (mut through_points, mut through_basis) = (0.0, 0.0);
        for (i, (p, b)) in points.iter().zip(&basis).enumerate() {
            if p.len / vectors != b.len / (groups * rows) || !shares_tensors(&basis_plan, plan, i, b) {
                return None;
            }
            let ops = |pl: &Plan, n: usize| pl.chunks[i].forward[..n].iter().map(Op::flops).sum::<f64>();
            through_points += ops(plan, p.ops);
            through_basis += ops(&basis_plan, b.ops) + combination(m, rows, groups, p.len / vectors).flops();
        }
        let prefixes = BasisPrefixes { points, basis, plan: basis_plan };
        let bytes = 4 * prefixes.len() as u64;
        let fits = bytes <= budget.total_bytes / BASIS_SHARE && bytes <= budget.tensor_bytes;
        (through_basis < through_points && fits).then_some(prefixes)
    }

    /// Records the first layers of `prefixes` for the evaluator whose tensors are `tensors` (in plan
    /// order): per chunk the basis plan's first-layer operations with `basis` (G x F x N_prm, group-major)
    /// as the weights into the bases Q, then the first layer's output Z (G x M vectors) = T · Q per
    /// group, with `t` the M x F row-major combination shared by the groups.
    ///
    /// # Errors
    /// `basis` or `t` of the wrong length; device errors.
    pub fn record(
        device: &Device,
        tensors: &[Buffer],
        prefixes: &BasisPrefixes,
        (groups, rows): (usize, usize),
        basis: &Buffer,
        t: &Buffer,
    ) -> Result<Basis> {
        let vectors_b = groups * rows;
        if basis.len() != prefixes.plan.tensors[WEIGHTS].len {
            bail!("a basis of {} values for {vectors_b} basis vectors of the plan's weights", basis.len());
        }
        let vectors = tensors[WEIGHTS].len() / (basis.len() / vectors_b);
        let m = vectors / groups;
        if t.len() != m * rows {
            bail!("a combination of {} values for {m} points of {rows} basis vectors", t.len());
        }
        let bases = device.zeros(prefixes.len(), "first-layer bases")?;
        let mut out = Basis { prefix_ops: vec![], first: vec![], flops: 0.0, _bases: bases.clone() };
        for (i, (p, b)) in prefixes.points.iter().zip(&prefixes.basis).enumerate() {
            let mut table = tensors.to_vec();
            table[WEIGHTS] = basis.clone();
            table[b.output] = bases.clone();
            let linear = &prefixes.plan.chunks[i].forward[..b.ops];
            let mut first = linear.iter().map(|op| device.record(op, &table)).collect::<Result<Vec<_>>>()?;
            let block = p.len / vectors;
            let shape = combination(m, rows, groups, block);
            first.push(device.matmul(
                shape,
                (Source::F32(t), Layout::row_major(0, rows, 0)),
                (Source::F32(&bases), Layout::row_major(0, block, rows * block)),
                (&tensors[p.output], Layout::row_major(0, block, m * block)),
            )?);
            out.flops += linear.iter().map(Op::flops).sum::<f64>() + shape.flops();
            out.prefix_ops.push(p.ops);
            out.first.push(first);
        }
        Ok(out)
    }

    /// Matrix-product FLOPs of the first layer of one evaluation through the basis.
    pub fn flops(&self) -> f64 {
        self.flops
    }
}

/// The product Z (M x block) = T (M x F) · Q (F x block) for each of the G groups.
fn combination(m: usize, rows: usize, groups: usize, block: usize) -> Product {
    Product { m, n: block, k: rows, batches: groups, accumulate: false }
}

/// Whether the first-layer operations of chunk `i` of `basis_plan` (with prefix `prefix`) name only the
/// weights, the images, their output and tensors the points' `plan` has alike (the ones of a bias), so
/// that they can be recorded on the evaluator's tensors with the weights and the output replaced.
fn shares_tensors(basis_plan: &Plan, plan: &Plan, i: usize, prefix: &LinearPrefix) -> bool {
    basis_plan.chunks[i].forward[..prefix.ops].iter().flat_map(Op::tensors).all(|t| {
        t == WEIGHTS || t == PIXELS || t == prefix.output || basis_plan.tensors[t] == plan.tensors[t]
    })
}
