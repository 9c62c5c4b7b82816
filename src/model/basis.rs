//! Loss evaluations of points that are fixed linear combinations of basis vectors, through the first
//! layer's products of the basis: where a plan's first layer is linear in the weights
//! ([`LinearPrefix`]: a dense layer on the images, with or without bias) and the B = G x M points are,
//! per group g, W_gm = sum_j T_mj V_gj (a path's points from its basis rows [a, b, c_1 .. c_K], T the
//! M x F grid matrix shared by the G groups), the first layer's pre-activation of every point is
//!
//!   Z_gm = X W_gmᵀ + b(W_gm) = sum_j T_mj (X V_gjᵀ + b(V_gj)) = sum_j T_mj Q_gj,
//!
//! so per chunk of images the first layer takes G x F products of the images (the bases Q) and one
//! small batched product T · Q per group, instead of G x M products of the images. Backwards, where only
//! the gradient with respect to the basis vectors is wanted (a path's chain rule S · G), the first
//! layer's weight gradient is linear in d loss / d Z too:
//!
//!   d/dV_gj = sum_m S_jm Xᵀ dZ_gm = Xᵀ (sum_m S_jm dZ_gm) = Xᵀ D_gj,
//!
//! so per chunk one small product D = S · dZ per group and G x F weight-gradient products replace the
//! G x M of the points, written straight into the basis gradient's first-layer columns. It pays where
//! F (inputs + M) < M x inputs in multiply-adds, which [`Basis::prefixes`] checks on the plans' FLOPs
//! (in short: F < M with a wide input). Exact in real arithmetic; in f32 the combination of the bases
//! rounds differently from the product at the rounded point (docs/algorithms.md §2.2). Built from
//! existing operations only (the plan's own first-layer products, one batched product), so every
//! backend runs it.

use anyhow::{bail, Result};
use std::ops::Range;

use super::line::BASIS_SHARE;
use super::Network;
use crate::backend::{Buffer, ChunkBudget, Command, Device, Source};
use crate::ops::plan::{ChunkOps, MatMul, Op, Operand, Plan, PlanOp, TensorId, GRADS, PIXELS, WEIGHTS};
use crate::ops::{layout_end, Layout, LinearPrefix, Product};

/// Which first layer an evaluation of path points runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstLayer {
    /// The plan's own products of the images by every point's weights.
    Points,
    /// The products of the images by the basis vectors, combined per point ([`Basis`]); the points'
    /// own first-layer weight gradient.
    Basis,
    /// As `Basis`, and the first layer's gradient with respect to the basis vectors from the
    /// combined d loss / d Z ([`Basis::columns`]) instead of the points' weight gradients.
    BasisAndGradient,
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
    /// Per chunk, with the basis gradient: how many trailing backward commands (the points' first-layer
    /// weight gradient) it replaces, and D = S · dZ followed by the basis vectors' weight gradient.
    pub(super) backward: Vec<(usize, Vec<Command>)>,
    /// The parameter columns the basis gradient writes (the first layer's), when it is recorded.
    columns: Option<Range<usize>>,
    /// The bases Q (G x F vectors of one chunk), shared by the chunks, kept alive with the commands.
    _bases: Buffer,
}

/// What [`Basis::prefixes`] found: the linear prefixes of the points' plan and of the basis plan, chunk
/// by chunk, and the plan of the basis vectors whose first-layer operations the basis records.
pub struct BasisPrefixes {
    points: Vec<LinearPrefix>,
    basis: Vec<LinearPrefix>,
    plan: Plan,
    /// Per chunk, the first layer's weight gradient in the points' plan and in the basis plan, where
    /// both end their backward passes with it alike and going through the basis saves multiply-adds.
    gradient: Option<Vec<[FirstGradient; 2]>>,
}

/// The first layer's gradient operations at the end of a chunk's backward pass (one per operation of
/// its linear prefix: the weights', then the biases'): how many, the tensor of d loss / d Z they read,
/// and the parameter columns they write in each vector.
#[derive(Clone, Debug, PartialEq)]
struct FirstGradient {
    ops: usize,
    d: TensorId,
    columns: Range<usize>,
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
        let gradient = gradients(plan, &basis_plan, (&points, &basis), (groups, rows), vectors);
        let prefixes = BasisPrefixes { points, basis, plan: basis_plan, gradient };
        let bytes = 4 * prefixes.len() as u64;
        let fits = bytes <= budget.total_bytes / BASIS_SHARE && bytes <= budget.tensor_bytes;
        (through_basis < through_points && fits).then_some(prefixes)
    }

    /// Records the first layers of `prefixes` for the evaluator whose tensors are `tensors` (in plan
    /// order): per chunk the basis plan's first-layer operations with `basis` (G x F x N_prm, group-major)
    /// as the weights into the bases Q, then the first layer's output Z (G x M vectors) = T · Q per
    /// group, with `t` the M x F row-major combination shared by the groups. With `gradient` = (S, grads),
    /// S the F x M row-major matrix of d W_gm / d V_gj and grads a G x F x N_prm buffer, and where the
    /// prefixes allow it, also the backward step: per chunk D = S · dZ per group into the bases' buffer
    /// (Q is spent by then) and the basis plan's first-layer weight gradient into grads' first-layer
    /// columns ([`Basis::columns`]; the first chunk overwrites them, later ones add), replacing the
    /// points' own.
    ///
    /// # Errors
    /// `basis`, `t` or the gradient's buffers of the wrong length; device errors.
    pub fn record(
        device: &Device,
        tensors: &[Buffer],
        prefixes: &BasisPrefixes,
        (groups, rows): (usize, usize),
        basis: &Buffer,
        t: &Buffer,
        gradient: Option<(&Buffer, &Buffer)>,
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
        if gradient.is_some_and(|(s, g)| s.len() != rows * m || g.len() != basis.len()) {
            bail!("a basis gradient needs S of {rows} x {m} values and gradients like the basis ({})", basis.len());
        }
        let bases = device.zeros(prefixes.len(), "first-layer bases")?;
        let mut out =
            Basis { prefix_ops: vec![], first: vec![], backward: vec![], columns: None, _bases: bases.clone() };
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
            out.prefix_ops.push(p.ops);
            out.first.push(first);
        }
        if let (Some((s, grads)), Some(pairs)) = (gradient, &prefixes.gradient) {
            for (i, [on_points, on_basis]) in pairs.iter().enumerate() {
                let block = prefixes.points[i].len / vectors;
                let mut table = tensors.to_vec();
                table[WEIGHTS] = basis.clone();
                table[GRADS] = grads.clone();
                table[on_basis.d] = bases.clone();
                let shape = Product { m: rows, n: block, k: m, batches: groups, accumulate: false };
                let mut commands = vec![device.matmul(
                    shape,
                    (Source::F32(s), Layout::row_major(0, m, 0)),
                    (Source::F32(&tensors[on_points.d]), Layout::row_major(0, block, m * block)),
                    (&bases, Layout::row_major(0, block, rows * block)),
                )?];
                let backward = &prefixes.plan.chunks[i].backward;
                let tail = &backward[backward.len() - on_basis.ops..];
                for op in tail {
                    commands.push(device.record(op, &table)?);
                }
                out.backward.push((on_points.ops, commands));
                out.columns = Some(on_basis.columns.clone());
            }
        }
        Ok(out)
    }

    /// Which first layer the evaluations through this basis run: [`FirstLayer::BasisAndGradient`] where
    /// the basis gradient was recorded, else [`FirstLayer::Basis`].
    pub fn first_layer(&self) -> FirstLayer {
        match self.columns {
            Some(_) => FirstLayer::BasisAndGradient,
            None => FirstLayer::Basis,
        }
    }

    /// The parameter columns of each vector that the recorded basis gradient writes (the first
    /// layer's), or `None` when it was not recorded and the points' gradients hold them.
    pub fn columns(&self) -> Option<Range<usize>> {
        self.columns.clone()
    }
}

/// The product Z (M x block) = T (M x F) · Q (F x block) for each of the G groups.
fn combination(m: usize, rows: usize, groups: usize, block: usize) -> Product {
    Product { m, n: block, k: rows, batches: groups, accumulate: false }
}

/// The first layer's gradient of every chunk in both plans, where each chunk's backward pass ends with
/// it alike in both (the same operations, columns and d loss / d Z tensor) and the basis route (its
/// weight gradients plus D = S · dZ) takes fewer multiply-adds than the points' weight gradients.
fn gradients(
    plan: &Plan,
    basis_plan: &Plan,
    (points, basis): (&[LinearPrefix], &[LinearPrefix]),
    (groups, rows): (usize, usize),
    vectors: usize,
) -> Option<Vec<[FirstGradient; 2]>> {
    let (n_prm, m) = (plan.tensors[WEIGHTS].len / vectors, vectors / groups);
    let (mut through_points, mut through_basis) = (0.0, 0.0);
    let mut out = Vec::new();
    for (i, (p, b)) in points.iter().zip(basis).enumerate() {
        let block = p.len / vectors;
        let on_points = first_gradient(&plan.chunks[i], p, n_prm, block)?;
        let on_basis = first_gradient(&basis_plan.chunks[i], b, n_prm, block)?;
        let tail = |c: &ChunkOps, n: usize| c.backward[c.backward.len() - n..].to_vec();
        let basis_tail = tail(&basis_plan.chunks[i], on_basis.ops);
        let alike = (on_points.ops, on_points.d, &on_points.columns) == (on_basis.ops, on_basis.d, &on_basis.columns);
        let shared = basis_tail
            .iter()
            .flat_map(Op::tensors)
            .all(|t| [WEIGHTS, GRADS, PIXELS, on_basis.d].contains(&t) || basis_plan.tensors[t] == plan.tensors[t]);
        if !alike || !shared {
            return None;
        }
        through_points += tail(&plan.chunks[i], on_points.ops).iter().map(Op::flops).sum::<f64>();
        through_basis += basis_tail.iter().map(Op::flops).sum::<f64>() + 2.0 * (groups * rows * m * block) as f64;
        out.push([on_points, on_basis]);
    }
    (through_basis < through_points).then_some(out)
}

/// The first layer's gradient at the end of `chunk`'s backward pass: as many products as the forward
/// prefix has, each adding (or, in the first chunk, writing) into the gradients, with a common A
/// operand d loss / d Z laid out by vector like the prefix's output (`block` values each), a B operand
/// of the images or a bias's ones, and per vector (`n_prm` apart) columns that together make one range.
fn first_gradient(chunk: &ChunkOps, prefix: &LinearPrefix, n_prm: usize, block: usize) -> Option<FirstGradient> {
    let tail = chunk.backward.len().checked_sub(prefix.ops)?;
    let products: Vec<&MatMul> = chunk.backward[tail..]
        .iter()
        .map(|op| match op {
            Op::MatMul(m) => Some(m),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let Operand::Tensor(d) = products.first()?.a.0 else { return None };
    let mut spans = Vec::new();
    for p in &products {
        let reads = p.a.0 == Operand::Tensor(d) && p.a.1.off == 0 && p.a.1.batch == block && p.a.1.group.is_none();
        let input =
            matches!(p.b.0, Operand::Images) || matches!(p.b.0, Operand::Tensor(t) if t != WEIGHTS && t != GRADS);
        if !reads || !input || p.c.0 != GRADS || p.c.1.batch != n_prm || p.c.1.group.is_some() {
            return None;
        }
        let one = Layout { batch: 0, ..p.c.1 };
        spans.push(p.c.1.off..layout_end(&one, 1, p.shape.m, p.shape.n));
    }
    spans.sort_by_key(|s| s.start);
    let mut columns = spans[0].clone();
    for s in &spans[1..] {
        if s.start > columns.end {
            return None;
        }
        columns.end = columns.end.max(s.end);
    }
    let dense = columns.len() == spans.iter().map(|s| s.len()).sum::<usize>();
    (dense && columns.end <= n_prm).then_some(FirstGradient { ops: prefix.ops, d, columns })
}

/// Whether the first-layer operations of chunk `i` of `basis_plan` (with prefix `prefix`) name only the
/// weights, the images, their output and tensors the points' `plan` has alike (the ones of a bias), so
/// that they can be recorded on the evaluator's tensors with the weights and the output replaced.
fn shares_tensors(basis_plan: &Plan, plan: &Plan, i: usize, prefix: &LinearPrefix) -> bool {
    basis_plan.chunks[i].forward[..prefix.ops]
        .iter()
        .flat_map(Op::tensors)
        .all(|t| t == WEIGHTS || t == PIXELS || t == prefix.output || basis_plan.tensors[t] == plan.tensors[t])
}
