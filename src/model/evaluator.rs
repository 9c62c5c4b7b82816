//! The batched primitive: loss (and gradient) of B weight vectors of one network on a range of images.
//! The network's [`Plan`] is lowered once to backend commands; each evaluation submits them.

use anyhow::{bail, Result};
use std::ops::Range;

use super::basis::Basis;
use super::description::{Description, Head as LossHead};
use super::line::Line;
use super::plans::{chunk_capacity, chunk_capacity_for};
use super::Network;
use crate::backend::{Buffer, Coef, Command, Device};
use crate::data::DeviceImages;
use crate::ops::plan::{ChunkOps, Init, LossWithoutGradient, Op, Plan, EXTERNAL, GRADS, PARTIALS, WEIGHTS};
use crate::ops::OutputLayer;

/// What an evaluation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Loss,
    LossAndGrad,
}

/// One weight vector's mean loss over the images, and accuracy for classifiers (NaN where the loss is
/// not finite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// The commands of one chunk: forward (ending with the loss head) and backward, and the head as a
/// loss-only evaluation runs it (without the gradient, where the backend saves by that).
struct ChunkCommands {
    forward: Vec<Command>,
    backward: Vec<Command>,
    loss_only_head: Option<Command>,
}

impl ChunkCommands {
    /// The commands `want` runs, in order.
    fn ordered(&self, want: Want) -> impl Iterator<Item = &Command> {
        let (forward, head, backward): (&[Command], Option<&Command>, &[Command]) = match (want, &self.loss_only_head) {
            (Want::LossAndGrad, _) => (&self.forward, None, &self.backward),
            (Want::Loss, Some(head)) => (&self.forward[..self.forward.len() - 1], Some(head), &[]),
            (Want::Loss, None) => (&self.forward, None, &[]),
        };
        forward.iter().chain(head).chain(backward)
    }
}

/// Loss and gradient of B weight vectors on a fixed range of images, ready to run many times.
pub struct Evaluator {
    device: Device,
    /// The paper's network, when the evaluator was made from one.
    net: Option<Network>,
    /// Parameters per vector.
    n_prm: usize,
    /// Whether the loss head is a classifier's (accuracy is reported).
    classifier: bool,
    batch: usize,
    images: usize,
    /// Images loaded on the device (the dataset the range indexes).
    loaded: usize,
    parts: usize,
    plan: Plan,
    /// B x N_prm weights, row b = vector b; write them before [`Evaluator::run`].
    pub weights: Buffer,
    /// B x N_prm gradients of the mean loss, filled by a `LossAndGrad` run.
    pub grads: Buffer,
    partials: Buffer,
    chunks: Vec<ChunkCommands>,
    /// Every tensor of the plan in plan order (the external ones, then the scratch tensors the commands
    /// name), for recording more commands on them ([`Evaluator::line`]).
    tensors: Vec<Buffer>,
}

impl Evaluator {
    /// Plans the evaluation of `batch` vectors of `net` on images `range` of `images`.
    pub fn new(net: Network, images: &DeviceImages, range: Range<usize>, batch: usize) -> Result<Evaluator> {
        Evaluator::with_chunk(net, images, range, batch, None)
    }

    /// Like [`Evaluator::new`], with at most `chunk` images per chunk (default: sized to the device).
    pub fn with_chunk(
        net: Network,
        images: &DeviceImages,
        range: Range<usize>,
        batch: usize,
        chunk: Option<usize>,
    ) -> Result<Evaluator> {
        let cap = chunk.unwrap_or_else(|| chunk_capacity(net, images.device.chunk_budget(), batch, range.len()));
        let plan = Plan::new(net, range, images.count, batch, cap, 0)?;
        Evaluator::lower(Some(net), net.arch.n_params(), net.arch.is_classifier(), images, batch, plan, true)
    }

    /// Plans the evaluation of `batch` vectors of the network `desc` describes on images `range` of
    /// `images` (each of `desc.input_len()` values), with at most `chunk` images per chunk (default:
    /// sized to the device).
    ///
    /// # Errors
    /// The images do not have the description's input length; the description does not derive or plan
    /// ([`Plan::for_description`]); device errors.
    pub fn for_description(
        desc: &Description,
        images: &DeviceImages,
        range: Range<usize>,
        batch: usize,
        chunk: Option<usize>,
    ) -> Result<Evaluator> {
        if images.shape.pixels() != desc.input_len() {
            bail!(
                "images of {} values ({:?}), but the network takes {} values per image",
                images.shape.pixels(),
                images.shape,
                desc.input_len()
            );
        }
        let derived = desc.derive()?;
        let budget = images.device.chunk_budget();
        let cap = chunk.unwrap_or_else(|| chunk_capacity_for(desc, budget, batch, range.len()));
        let plan = Plan::for_description(desc, range, images.count, batch, cap, 0)?;
        let classifier = matches!(desc.head, LossHead::CrossEntropy { .. });
        Evaluator::lower(None, derived.n_params(), classifier, images, batch, plan, true)
    }

    /// Each vector b evaluated on its own `per_vector` images, b * per_vector .. (b + 1) * per_vector of
    /// `images` (mini-batches of independent runs), in one chunk.
    pub fn per_vector(net: Network, images: &DeviceImages, per_vector: usize, batch: usize) -> Result<Evaluator> {
        let plan = Plan::new(net, 0..per_vector, images.count, batch, per_vector, per_vector)?;
        Evaluator::lower(Some(net), net.arch.n_params(), net.arch.is_classifier(), images, batch, plan, true)
    }

    /// Allocates the plan's tensors on the images' device and records its operations.
    /// With `fuse`, a chunk's output layer and loss head are recorded as one operation where
    /// [`OutputLayer::find`] finds them.
    fn lower(
        net: Option<Network>,
        n_prm: usize,
        classifier: bool,
        images: &DeviceImages,
        batch: usize,
        plan: Plan,
        fuse: bool,
    ) -> Result<Evaluator> {
        let device = images.device.clone();
        let mut buffers = vec![
            device.zeros(plan.tensors[WEIGHTS].len, "weights")?,
            device.zeros(plan.tensors[GRADS].len, "gradients")?,
            device.zeros(plan.tensors[PARTIALS].len, "loss partials")?,
            images.pixels.clone(),
            images.labels.clone(),
        ];
        for t in &plan.tensors[EXTERNAL..] {
            buffers.push(match &t.init {
                Init::Zeros => device.zeros(t.len, &t.name)?,
                Init::Ones => device.upload(&vec![1f32; t.len], &t.name)?,
                Init::U32(v) => device.upload(v, &t.name)?,
            });
        }
        let chunks = plan.chunks.iter().map(|c| lower_chunk(&device, &buffers, c, fuse)).collect::<Result<Vec<_>>>()?;
        let (weights, grads, partials) = (buffers[WEIGHTS].clone(), buffers[GRADS].clone(), buffers[PARTIALS].clone());
        Ok(Evaluator {
            device,
            net,
            n_prm,
            classifier,
            batch,
            images: plan.images(),
            loaded: images.count,
            parts: plan.parts(),
            plan,
            weights,
            grads,
            partials,
            chunks,
            tensors: buffers,
        })
    }

    /// The same evaluator with each operation of its plan recorded on its own: the output layer is not
    /// fused with its head ([`OutputLayer::find`]). For comparisons; the results differ by rounding.
    ///
    /// # Errors
    /// Device errors.
    pub fn unfused(&self, images: &DeviceImages) -> Result<Evaluator> {
        Evaluator::lower(self.net, self.n_prm, self.classifier, images, self.batch, self.plan.clone(), false)
    }

    /// The paper's network this evaluator runs, if it was made from one (not from a description).
    pub fn network(&self) -> Option<Network> {
        self.net
    }
    /// Parameters per weight vector (N_prm).
    pub fn n_params(&self) -> usize {
        self.n_prm
    }
    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The plan this evaluator runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The commands of a line search along `direction` (d, B x N_prm like the weights) through the
    /// point in [`Evaluator::weights`] (w), where the plan's first layer is linear in the weights in
    /// every chunk and the two bases fit the device ([`Line::prefixes`]); `None` otherwise (a
    /// convolution or an LSTM first, too little memory), and the caller evaluates plainly. Submit
    /// [`Evaluator::line_commands`] with `LossAndGrad` (the loss and gradient at w), then
    /// [`Line::basis`] once d is final, then per trial point w + a_r d (a_r = `coef` of vector r, read
    /// when the commands run) write that point to the weights and submit `line_commands` with `Loss`.
    ///
    /// # Errors
    /// `direction` is not B x N_prm; device errors.
    pub fn line(&self, direction: &Buffer, coef: Coef) -> Result<Option<Line>> {
        let Some(prefixes) = Line::prefixes(&self.plan, self.batch, self.device.chunk_budget()) else {
            return Ok(None);
        };
        Line::record(&self.device, &self.plan, &self.tensors, &prefixes, self.batch, direction, coef).map(Some)
    }

    /// The commands of one evaluation through `line` (made by [`Evaluator::line`] of this evaluator):
    /// `LossAndGrad` is the evaluation at the point, each chunk's first layer kept in P_w; `Loss` a
    /// trial point's, each chunk's first layer taken from the bases instead of its product.
    pub fn line_commands<'a>(&'a self, line: &'a Line, want: Want) -> Vec<&'a Command> {
        let mut out = Vec::new();
        for (i, chunk) in self.chunks.iter().enumerate() {
            let (ops, mut commands) = (line.prefix_ops[i], chunk.ordered(want));
            match want {
                Want::LossAndGrad => {
                    out.extend(commands.by_ref().take(ops));
                    out.push(&line.keep[i]);
                }
                Want::Loss => {
                    out.extend(&line.first[i]);
                    commands.by_ref().take(ops).for_each(drop);
                }
            }
            out.extend(commands);
        }
        out
    }

    /// The first layers of this evaluator's B = G x M points taken from G x F basis vectors
    /// (`groups` = G, `rows` = F): point m of group g is sum_j T_mj V_gj, with `basis` the G x F x N_prm
    /// vectors V (group-major) and `t` the M x F row-major T shared by the groups
    /// (docs/algorithms.md §2.2). `None` where [`Basis::prefixes`] refuses (no linear first layer, a
    /// description rather than a network, a basis no smaller than the points, too little memory): the
    /// caller evaluates plainly. Submit [`Evaluator::basis_commands`] after writing the points to the
    /// weights (the later layers read them) and the basis. With `gradient` = (S, grads) (S: F x M
    /// row-major, d W_gm / d V_gj; grads: like the basis), a `LossAndGrad` evaluation also writes the
    /// first layer's gradient with respect to the basis vectors into grads' [`Basis::columns`] where
    /// that pays, and leaves those columns of [`Evaluator::grads`] unwritten (stale).
    ///
    /// # Errors
    /// `basis`, `t` or the gradient's buffers of the wrong length; device errors.
    pub fn basis(
        &self,
        basis: &Buffer,
        t: &Buffer,
        gradient: Option<(&Buffer, &Buffer)>,
        (groups, rows): (usize, usize),
    ) -> Result<Option<Basis>> {
        let Some(net) = self.net else { return Ok(None) };
        let budget = self.device.chunk_budget();
        let Some(prefixes) = Basis::prefixes(net, &self.plan, self.loaded, (groups, rows), budget) else {
            return Ok(None);
        };
        Basis::record(&self.device, &self.tensors, &prefixes, (groups, rows), basis, t, gradient).map(Some)
    }

    /// The commands of one evaluation through `basis` (made by [`Evaluator::basis`] of this evaluator):
    /// each chunk's first layer from the basis instead of its products, then the rest as `want` runs it;
    /// with `LossAndGrad` and a recorded basis gradient, the first layer's weight gradient of the points
    /// replaced by the basis vectors'.
    pub fn basis_commands<'a>(&'a self, basis: &'a Basis, want: Want) -> Vec<&'a Command> {
        let mut out = Vec::new();
        for (i, chunk) in self.chunks.iter().enumerate() {
            out.extend(&basis.first[i]);
            let rest = chunk.ordered(want).skip(basis.prefix_ops[i]);
            match (want, basis.backward.get(i)) {
                (Want::LossAndGrad, Some((skipped, commands))) => {
                    let rest: Vec<&Command> = rest.collect();
                    out.extend(&rest[..rest.len() - skipped]);
                    out.extend(commands);
                }
                _ => out.extend(rest),
            }
        }
        out
    }

    /// Uploads all B vectors (B x N_prm, row-major).
    pub fn set_weights(&self, flat: &[f32]) -> Result<()> {
        if flat.len() != self.weights.len() {
            bail!(
                "expected {} weights ({} vectors of {}), got {}",
                self.weights.len(),
                self.batch,
                self.n_prm,
                flat.len()
            );
        }
        self.device.write(&self.weights, 0, flat)
    }

    /// The commands of one evaluation, in order, for callers that submit them with their own.
    pub fn ordered(&self, want: Want) -> Vec<&Command> {
        self.chunks.iter().flat_map(|c| c.ordered(want)).collect()
    }

    /// Queues one evaluation (on a GPU it returns at once).
    pub fn run(&self, want: Want) {
        self.device.submit(&self.ordered(want));
    }

    /// Runs one evaluation and returns each vector's mean loss and accuracy: one submission that also
    /// copies the loss partials back, and one read-back.
    ///
    /// # Errors
    /// Device errors.
    pub fn evaluate(&self, want: Want) -> Result<Vec<Eval>> {
        let parts = self.device.submit_read(&self.ordered(want), &[(&self.partials, 0, self.partials.len())])?;
        Ok(self.evals(&parts[0]))
    }

    /// Runs one evaluation and returns its duration in seconds (GPU timestamps where available).
    pub fn run_timed(&self, want: Want) -> Result<f64> {
        self.device.submit_timed(&self.ordered(want))
    }

    /// Per-vector mean loss and accuracy of the last run, summed in f64 from the device's partials.
    pub fn results(&self) -> Result<Vec<Eval>> {
        Ok(self.evals(&self.device.read(&self.partials, 0, self.partials.len())?))
    }

    /// The buffer of per-vector loss partials an evaluation writes (read it whole and hand the values
    /// to [`Evaluator::evals`]), for callers that read it back together with their own results.
    pub fn partials(&self) -> &Buffer {
        &self.partials
    }

    /// Per-vector mean loss and accuracy from the values of [`Evaluator::partials`], summed in f64.
    pub fn evals(&self, parts: &[f32]) -> Vec<Eval> {
        let n = self.images as f64;
        parts
            .chunks(self.parts * 2)
            .map(|p| {
                let loss: f64 = p.iter().step_by(2).map(|&v| v as f64).sum();
                let correct: f64 = p.iter().skip(1).step_by(2).map(|&v| v as f64).sum();
                // a non-finite loss means overflowing outputs, whose arg max (the counted guess) means
                // nothing: no accuracy, rather than a number that looks like one
                let accuracy = if loss.is_finite() { correct / n } else { f64::NAN };
                Eval { loss: loss / n, accuracy: self.classifier.then_some(accuracy) }
            })
            .collect()
    }

    /// The B x N_prm gradients of the last `LossAndGrad` run (for tests and checks; optimizers keep
    /// them on the device).
    pub fn gradients(&self) -> Result<Vec<f32>> {
        self.device.read(&self.grads, 0, self.grads.len())
    }
}

/// The commands of one chunk: each operation recorded on its own, but for the output layer and its
/// head, one operation where `fuse` and [`OutputLayer::find`] finds them (the last command of the
/// forward pass then computes the output layer's gradients too, and the backward pass starts after
/// them).
fn lower_chunk(device: &Device, buffers: &[Buffer], c: &ChunkOps, fuse: bool) -> Result<ChunkCommands> {
    let lower_all = |ops: &[Op]| ops.iter().map(|op| device.record(op, buffers)).collect::<Result<Vec<_>>>();
    if let Some(layer) = OutputLayer::find(c).filter(|_| fuse) {
        let (forward_ops, backward_ops) = OutputLayer::REPLACES;
        let mut forward = lower_all(&c.forward[..c.forward.len() - forward_ops])?;
        forward.push(device.record(&layer, buffers)?);
        return Ok(ChunkCommands {
            forward,
            backward: lower_all(&c.backward[backward_ops..])?,
            loss_only_head: Some(device.record(&layer.without_gradient(), buffers)?),
        });
    }
    let loss_only_head = match c.forward.last() {
        Some(Op::Loss(head)) => Some(device.record(&LossWithoutGradient(head.clone()), buffers)?),
        _ => None,
    };
    Ok(ChunkCommands { forward: lower_all(&c.forward)?, backward: lower_all(&c.backward)?, loss_only_head })
}
