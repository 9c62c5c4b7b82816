//! The LSTM cell over pixel rows (`shaders/lstm.wgsl`, `cpu/lstm.rs`): shapes of one step, and the
//! [`LstmCells`] trait (pixel gather, cell forward and backward).

use anyhow::Result;

use super::backend::{Backend, Memory};
use super::op::{end, PlanOp, TensorId, PIXELS, WEIGHTS};
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

/// One LSTM step over a chunk of images for B vectors. Gates: [vector][image][step][4H]; cells
/// [vector][image][steps + 1][H] (slot 0 = c_0 = 0); hidden [vector][image][steps][H] (slot s = the
/// input h_s of step s, slot 0 = h_0 = 0); the last state goes to its own [vector][image][H] buffer.
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
    fn state_ends(&self, gates: TensorId, cells: TensorId) -> [(TensorId, u64); 2] {
        let (bn, h, steps) = (end(self.batches * self.images), end(self.shape.hidden), end(self.shape.steps));
        let step = end(self.step);
        [
            (gates, (bn.saturating_sub(1) * steps + step + 1) * 4 * h),
            (cells, (bn.saturating_sub(1) * (steps + 1) + step + 2) * h),
        ]
    }
}

/// The LSTM cell of a backend.
pub trait LstmCells: Memory {
    /// Records the permuted-pixel gather of an LSTM chunk: xperm[b][n][j] = pixel perm[j] of image
    /// b * img_bs + first_image + n (one vector's worth when the images are shared).
    fn gather_pixels(
        &self,
        s: LstmStep,
        pixels: &Self::Buffer,
        perm: &Self::Buffer,
        out: &Self::Buffer,
    ) -> Result<Self::Command>;

    /// Records one LSTM step forward: biases into the gates, then c and h.
    fn lstm_cell_forward(
        &self,
        s: LstmStep,
        weights: &Self::Buffer,
        gates: &Self::Buffer,
        cells: &Self::Buffer,
        hidden: &Self::Buffer,
        last: &Self::Buffer,
    ) -> Result<Self::Command>;

    /// Records one LSTM step backward: gates become their gradients; dc carries d loss / d c.
    fn lstm_cell_backward(
        &self,
        s: LstmStep,
        gates: &Self::Buffer,
        cells: &Self::Buffer,
        dh: &Self::Buffer,
        dc: &Self::Buffer,
    ) -> Result<Self::Command>;
}

/// Plan operation: the LSTM's permuted pixel rows of a chunk, `out` = images gathered through `perm`.
#[derive(Clone, Debug, PartialEq)]
pub struct GatherPixels {
    pub step: LstmStep,
    pub perm: TensorId,
    pub out: TensorId,
}

/// Plan operation: one LSTM step forward ([`LstmCells::lstm_cell_forward`]), biases read from
/// [`WEIGHTS`].
#[derive(Clone, Debug, PartialEq)]
pub struct LstmCellForward {
    pub step: LstmStep,
    pub gates: TensorId,
    pub cells: TensorId,
    pub hidden: TensorId,
    pub last: TensorId,
}

/// Plan operation: one LSTM step backward ([`LstmCells::lstm_cell_backward`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmCellBackward {
    pub step: LstmStep,
    pub gates: TensorId,
    pub cells: TensorId,
    pub dh: TensorId,
    pub dc: TensorId,
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

impl PlanOp for LstmCellForward {
    fn kind(&self) -> &'static str {
        "lstm-cell"
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        let s = &self.step;
        let (bn, h) = (end(s.batches * s.images), end(s.shape.hidden));
        let biases = s.batches.saturating_sub(1) * s.n_prm + s.bias_ih.max(s.bias_hh) + s.shape.gates();
        let mut ends = vec![(WEIGHTS, end(biases))];
        ends.extend(s.state_ends(self.gates, self.cells));
        ends.push(if s.step + 1 < s.shape.steps {
            (self.hidden, (bn.saturating_sub(1) * end(s.shape.steps) + end(s.step) + 2) * h)
        } else {
            (self.last, bn * h)
        });
        ends
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        let (g, c, h, l) = (t[self.gates], t[self.cells], t[self.hidden], t[self.last]);
        backend.lstm_cell_forward(self.step, t[WEIGHTS], g, c, h, l)
    }
}

impl PlanOp for LstmCellBackward {
    fn kind(&self) -> &'static str {
        "lstm-cell-backward"
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        let rows = end(self.step.cell_len());
        let mut ends = self.step.state_ends(self.gates, self.cells).to_vec();
        ends.extend([(self.dh, rows), (self.dc, rows)]);
        ends
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.lstm_cell_backward(self.step, t[self.gates], t[self.cells], t[self.dh], t[self.dc])
    }
}
