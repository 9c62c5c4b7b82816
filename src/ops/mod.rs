//! The kernel vocabulary every backend implements: shapes and strides of the strided batched matrix
//! product, the element-wise activations, the loss heads, convolution, pooling, the LSTM cell, the
//! per-run mini-batch selection and Adam, and (in [`lbfgs_scalars`]) the per-row scalars of L-BFGS that
//! the reductions write; and the plan ([`plan`]): a network's evaluation as operations of this
//! vocabulary on numbered tensors. Pure data: no device, no network.

pub mod plan;

/// Element (row r, column c) of matrix z in a batch lives at
/// `off + z*batch + r*row + (c / group.0)*group.1 + (c % group.0)*col`.
/// Without a group, `(c / group.0)` is always 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub off: usize,
    pub batch: usize,
    pub row: usize,
    pub col: usize,
    pub group: Option<(usize, usize)>,
}

impl Layout {
    /// A row-major matrix with `cols` columns, batches `batch` elements apart.
    pub fn row_major(off: usize, cols: usize, batch: usize) -> Layout {
        Layout { off, batch, row: cols, col: 1, group: None }
    }
    /// The transpose of a row-major matrix with `cols` columns: element (r, c) is at c*cols + r.
    pub fn transposed(off: usize, cols: usize, batch: usize) -> Layout {
        Layout { off, batch, row: 1, col: cols, group: None }
    }
    /// Index of element (z, r, c).
    pub fn at(&self, z: usize, r: usize, c: usize) -> usize {
        let (size, stride) = self.group.unwrap_or((usize::MAX, 0));
        self.off + z * self.batch + r * self.row + (c / size) * stride + (c % size) * self.col
    }
}

/// One past the largest index a batched layout addresses for (rows x cols) matrices.
pub fn layout_end(l: &Layout, batches: usize, rows: usize, cols: usize) -> usize {
    if batches == 0 || rows == 0 || cols == 0 {
        return 0;
    }
    let last_col = (0..cols).map(|c| l.at(0, 0, c)).max().unwrap_or(0) - l.off;
    l.off + (batches - 1) * l.batch + (rows - 1) * l.row + last_col + 1
}

/// Shape of a batched product C[z] (m x n) = A[z] (m x k) * B[z] (k x n), z < batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batches: usize,
    /// Add into C instead of overwriting it.
    pub accumulate: bool,
}

impl Product {
    /// Multiply-adds times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.batches) as f64
    }
}

/// Activation functions the kernels implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Softplus,
    Relu,
    Sigmoid,
    Tanh,
}

/// The loss on a network's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Cross-entropy of logits against labels (targets = the label buffer).
    CrossEntropy,
    /// Mean squared error of sigmoid(output) against the input image (targets = the image buffer).
    MseSigmoid,
}

/// Arguments of a loss head for one chunk of images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossChunk {
    pub images: usize,
    pub width: usize,
    pub first_image: usize,
    pub batches: usize,
    /// Stride between weight vectors in the output and gradient buffers.
    pub out_batch_stride: usize,
    /// First partial slot of this chunk; each chunk uses `partial_slots(images)` slots.
    pub part_off: usize,
    pub parts: usize,
    pub total_images: usize,
    /// Images per weight vector when each vector has its own images (0: all share them).
    pub img_bs: usize,
}

/// Partial sums (loss, correct) a loss head writes per weight vector for a chunk of `images`: one per
/// 256 images, summed by the host in f64.
pub fn partial_slots(images: usize) -> usize {
    images.div_ceil(256)
}

/// A square convolution (cross-correlation, zero padding, stride 1) over a chunk of images for B
/// vectors; maps are [vector][image][channel][row][col].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    pub images: usize,
    pub batches: usize,
    pub in_c: usize,
    pub in_hw: usize,
    pub out_c: usize,
    pub ksize: usize,
    pub pad: usize,
    /// First element of the input (for the image buffer: first image x pixels per image).
    pub in_off: usize,
    /// Offsets of the weight and bias tensors in a parameter vector, and its length.
    pub w_off: usize,
    pub b_off: usize,
    pub n_prm: usize,
    /// Images per vector when the input is the image buffer and each vector has its own images.
    pub img_bs: usize,
}

impl Conv {
    pub fn out_hw(&self) -> usize {
        self.in_hw + 2 * self.pad - self.ksize + 1
    }
    /// Input stride between vectors: for the shared image buffer `img_bs` images (0 when shared).
    pub fn in_bs(&self, images: bool) -> usize {
        if images {
            self.img_bs * self.in_c * self.in_hw * self.in_hw
        } else {
            self.images * self.in_c * self.in_hw * self.in_hw
        }
    }
    /// Output stride between vectors.
    pub fn out_bs(&self) -> usize {
        self.images * self.out_c * self.out_hw() * self.out_hw()
    }
    /// Multiply-adds times two of the forward pass.
    pub fn flops(&self) -> f64 {
        let k = self.in_c * self.ksize * self.ksize;
        2.0 * (self.batches * self.images * self.out_c * self.out_hw() * self.out_hw() * k) as f64
    }
}

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

/// Hyper-parameters of one Adam step (PyTorch semantics, no weight decay) at step number `t` (1-based).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub t: u32,
}

impl AdamStep {
    /// PyTorch's defaults (betas 0.9, 0.999, eps 1e-8) at learning rate `lr`, step `t` (from 1): what
    /// the path finder and the toy use (`docs/algorithms.md`).
    pub fn pytorch(lr: f64, t: u32) -> AdamStep {
        AdamStep { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, t }
    }

    /// lr / (1 - beta1^t) and sqrt(1 - beta2^t): the bias corrections folded as the kernels use them.
    pub fn corrections(&self) -> (f64, f64) {
        (self.lr / (1.0 - self.beta1.powi(self.t as i32)), (1.0 - self.beta2.powi(self.t as i32)).sqrt())
    }
}

/// A mini-batch per run: `per_run` images from position `offset` of each run's index list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub runs: usize,
    pub per_run: usize,
    /// Length of each run's index list.
    pub stride: usize,
    pub offset: usize,
    /// Pixels per image.
    pub pixels: usize,
}

pub mod lbfgs_scalars;
pub use lbfgs_scalars::{LbfgsScalars, Reduced, MIN_CURVATURE_COSINE, RHO_EPSILON, WGSL_CONSTANTS};
