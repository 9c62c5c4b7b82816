//! The LSTM cell over pixel rows (`shaders/lstm.wgsl`, `cpu/lstm.rs`): shapes of one step, and the
//! [`LstmCells`] trait (pixel gather, cell forward and backward).

use anyhow::Result;

use super::backend::Memory;
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
