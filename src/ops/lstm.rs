//! The LSTM over pixel rows (`shaders/lstm.wgsl`, `cpu/lstm.rs`): shapes, the recurrence of one chunk
//! of images as one operation forward and one backward ([`LstmSequence`]), the per-step launches a
//! GPU makes of them ([`super::lstm_sequence::LstmLaunch`]), and the [`LstmCells`] trait (pixel gather, sequence forward and
//! backward).
//!
//! Tensors of a chunk of c images for B vectors (H hidden units, S steps, F inputs per step, 4H
//! gates): inputs `[vector or 1][image][step][F]` (the gathered pixels, one copy when the images are
//! shared); last, dh, dc `[vector][image][H]`; ones `[c·S]` (ones, for the bias gradients as products).
//! The gates (c·S·4H per vector), cells (c·(S + 1)·H, c_0 = 0) and hidden states (c·S·H, the input
//! h_s of each step, h_0 = 0) pass from a backend's forward pass to its backward pass only, and each
//! backend lays them out its own way inside the `[vector][image]` blocks: a GPU as `[step][4H]`, `[S + 1][H]`
//! and `[S][H]` per image (what the launches below address), the CPU step-major per group of images
//! (`cpu/lstm.rs`).

use anyhow::Result;

use super::backend::{Backend, Memory};
use super::lstm_sequence::{LstmOperands, LstmSequence};
use super::op::{end, PlanOp, TensorId, PIXELS};

/// Sizes of an LSTM (PyTorch `nn.LSTM`, gate order i, f, g, o) over a sequence of pixel rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmShape {
    pub hidden: usize,
    pub steps: usize,
    /// Inputs per step.
    pub features: usize,
}

impl LstmShape {
    /// Gate pre-activations per step: 4 x hidden.
    pub fn gates(&self) -> usize {
        4 * self.hidden
    }
    /// Pixels per image: steps x features.
    pub fn pixels(&self) -> usize {
        self.steps * self.features
    }
}

/// One LSTM step over a chunk of images for B vectors (a GPU's cell launch, on the GPU's layouts of the
/// module documentation; the pixel gather uses `images`, `batches`, `first_image` and `img_bs` of
/// step 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmStep {
    pub shape: LstmShape,
    pub images: usize,
    pub batches: usize,
    pub step: usize,
    pub n_prm: usize,
    pub bias_ih: usize,
    pub bias_hh: usize,
    pub first_image: usize,
    /// Images per vector when each vector has its own images (0: shared).
    pub img_bs: usize,
}

impl LstmStep {
    /// The gather's step: one vector's worth when the images are shared.
    pub fn gathered(self) -> LstmStep {
        if self.img_bs == 0 {
            LstmStep { batches: 1, ..self }
        } else {
            self
        }
    }
    /// Pixels the gather writes (one thread each).
    pub fn gathered_len(self) -> usize {
        let s = self.gathered();
        s.batches * s.images * s.shape.pixels()
    }
    /// (vector, image) rows × hidden units: one thread each in the cell kernels.
    pub fn cell_len(&self) -> usize {
        self.batches * self.images * self.shape.hidden
    }
    /// One past the furthest gate and cell-state values step `step` touches (the layouts above).
    pub(crate) fn state_ends(&self, gates: TensorId, cells: TensorId) -> [(TensorId, u64); 2] {
        let (bn, h, steps) = (end(self.batches * self.images), end(self.shape.hidden), end(self.shape.steps));
        let step = end(self.step);
        [
            (gates, (bn.saturating_sub(1) * steps + step + 1) * 4 * h),
            (cells, (bn.saturating_sub(1) * (steps + 1) + step + 2) * h),
        ]
    }
}

/// The LSTM of a backend.
pub trait LstmCells: Memory {
    /// Records the permuted-pixel gather of an LSTM chunk: `xperm[b][n][j]` = pixel `perm[j]` of image
    /// b * img_bs + first_image + n (one vector's worth when the images are shared).
    fn gather_pixels(
        &self,
        s: LstmStep,
        pixels: &Self::Buffer,
        perm: &Self::Buffer,
        out: &Self::Buffer,
    ) -> Result<Self::Command>;

    /// Records the forward recurrence of a chunk: the gates of every step from the inputs, W_ih, W_hh
    /// and the biases, the cells, the hidden states and the last hidden state (what
    /// [`LstmSequence::forward_launches`] computes; gates, cells and hidden states keep, in the
    /// backend's own layout, what the backward pass needs).
    ///
    /// Errors: a buffer is too short for the sequence ([`LstmSequence::check`]).
    fn lstm_forward(&self, s: LstmSequence, t: LstmOperands<&Self::Buffer>) -> Result<Self::Command> {
        s.check(&t)?;
        self.record_lstm_forward(s, t)
    }

    /// Records backpropagation through time from d loss / d last hidden state (`dh`), after
    /// [`LstmCells::lstm_forward`]: the gradients of W_ih, W_hh, b_ih and b_hh into the gradients
    /// (added when `accumulate`). `gates`, `dh` and `dc` are scratch afterwards.
    ///
    /// Errors: as [`LstmCells::lstm_forward`].
    fn lstm_backward(
        &self,
        s: LstmSequence,
        t: LstmOperands<&Self::Buffer>,
        accumulate: bool,
    ) -> Result<Self::Command> {
        s.check(&t)?;
        self.record_lstm_backward(s, t, accumulate)
    }

    /// [`LstmCells::lstm_forward`] after its checks.
    fn record_lstm_forward(&self, s: LstmSequence, t: LstmOperands<&Self::Buffer>) -> Result<Self::Command>;

    /// [`LstmCells::lstm_backward`] after its checks.
    fn record_lstm_backward(
        &self,
        s: LstmSequence,
        t: LstmOperands<&Self::Buffer>,
        accumulate: bool,
    ) -> Result<Self::Command>;
}

/// Plan operation: the LSTM's permuted pixel rows of a chunk, `out` = images gathered through `perm`.
#[derive(Clone, Debug, PartialEq)]
pub struct GatherPixels {
    pub step: LstmStep,
    pub perm: TensorId,
    pub out: TensorId,
}

/// Plan operation: the LSTM recurrence of a chunk, forward ([`LstmCells::lstm_forward`]; on a GPU the
/// input projection, then a product and a cell launch per step, [`LstmSequence::forward_launches`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmForward {
    pub seq: LstmSequence,
    pub tensors: LstmOperands<TensorId>,
}

/// Plan operation: backpropagation through time and the LSTM's weight gradients
/// ([`LstmCells::lstm_backward`]; added to the gradients when `accumulate`,
/// [`LstmSequence::backward_launches`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmBackward {
    pub seq: LstmSequence,
    pub tensors: LstmOperands<TensorId>,
    pub accumulate: bool,
}

impl PlanOp for GatherPixels {
    fn kind(&self) -> &'static str {
        "gather"
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        let s = self.step.gathered();
        let images = (s.batches.saturating_sub(1) * s.img_bs + s.first_image + s.images) * s.shape.pixels();
        vec![(PIXELS, end(images)), (self.perm, end(s.shape.pixels())), (self.out, end(self.step.gathered_len()))]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.gather_pixels(self.step, t[PIXELS], t[self.perm], t[self.out])
    }
}

impl PlanOp for LstmForward {
    fn kind(&self) -> &'static str {
        "lstm-forward"
    }
    fn flops(&self) -> f64 {
        self.seq.flops(false)
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        union_of(self.launch_ends())
    }
    fn launch_ends(&self) -> Vec<(&'static str, Vec<(TensorId, u64)>)> {
        self.seq.forward_launches().iter().map(|l| l.ends(&self.tensors)).collect()
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.lstm_forward(self.seq, self.tensors.map(|i| t[i]))
    }
}

impl PlanOp for LstmBackward {
    fn kind(&self) -> &'static str {
        "lstm-backward"
    }
    fn flops(&self) -> f64 {
        self.seq.flops(true)
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        union_of(self.launch_ends())
    }
    fn launch_ends(&self) -> Vec<(&'static str, Vec<(TensorId, u64)>)> {
        self.seq.backward_launches(self.accumulate).iter().map(|l| l.ends(&self.tensors)).collect()
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.lstm_backward(self.seq, self.tensors.map(|i| t[i]), self.accumulate)
    }
}

/// Per tensor, the furthest end over an operation's launches, in first-seen order.
fn union_of(launches: Vec<(&'static str, Vec<(TensorId, u64)>)>) -> Vec<(TensorId, u64)> {
    let mut out: Vec<(TensorId, u64)> = Vec::new();
    for (t, e) in launches.into_iter().flat_map(|(_, ends)| ends) {
        match out.iter_mut().find(|(u, _)| *u == t) {
            Some((_, have)) => *have = (*have).max(e),
            None => out.push((t, e)),
        }
    }
    out
}
