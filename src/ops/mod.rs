//! The kernel vocabulary every backend implements: shapes and strides of the strided batched matrix
//! product, the element-wise activations, the loss heads, convolution, pooling, the LSTM cell, the
//! per-run mini-batch selection and Adam; and the plan ([`plan`]): a network's evaluation as operations
//! of this vocabulary on numbered tensors. Pure data: no device, no network.

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

/// The per-row scalars of the L-BFGS two-loop recursion (Nocedal & Wright, Numerical Optimization,
/// 2nd ed., Alg. 7.4) that stay on the device: row r of a scalar buffer holds [`LbfgsScalars::width`]
/// f32 elements from element `r * width`. Each scalar is a double-f32 pair (hi, lo) whose sum carries
/// about 48 significant bits, so the recursion keeps the f64 precision the host gave it before (WGSL
/// has no f64); flags are 0 or 1 in `hi`. The constants and functions give the element of `hi`:
/// kernels that take a per-row coefficient read `hi`, which is the scalar rounded to f32. The reduction
/// kernels ([`Reduced`]) write them.
pub struct LbfgsScalars;

/// ε in ρ = 1 / (s·y + ε): keeps ρ finite when s·y is 0 (the authors' code; no curvature skip,
/// `docs/decisions.md`).
pub const RHO_EPSILON: f64 = 1e-6;

/// A stored pair whose cos(s, y) = s·y / (|s| |y|) is NaN or below this drops the run's whole history
/// (d = g): the curvature condition s·y > 0 holds with too little margin to trust H (`docs/algorithms.md`).
pub const MIN_CURVATURE_COSINE: f64 = 1e-4;

impl LbfgsScalars {
    /// s·y of the newest pair (written before [`Reduced::Pair`]).
    pub const SY: usize = 0;
    /// y·y of the newest pair (written before [`Reduced::Pair`]).
    pub const YY: usize = 2;
    /// γ = s·y / y·y of the newest pair: the initial Hessian approximation H⁰ = γI.
    pub const GAMMA: usize = 4;
    /// |d|² of the final search direction.
    pub const RR: usize = 6;
    /// 1 when the history was reset this iteration (then d = g), else 0.
    pub const RESET: usize = 8;
    /// Second-loop coefficient α_i − ρ_i y_i·d of the pair being applied.
    pub const COEF: usize = 10;
    const PAIRS: usize = 12;
    const FIELDS: usize = 8;

    /// Elements per row for a history of `history` pairs.
    pub fn width(history: usize) -> usize {
        Self::PAIRS + Self::FIELDS * history
    }
    /// Pairs a row of `width` elements holds.
    pub fn pairs(width: usize) -> usize {
        (width - Self::PAIRS) / Self::FIELDS
    }
    /// ρ_i = 1 / (s_i·y_i + 1e-6) (the authors' guard; no curvature test).
    pub fn rho(i: usize) -> usize {
        Self::PAIRS + Self::FIELDS * i
    }
    /// 1 when cos(s_i, y_i) is NaN or below 1e-4 (the authors' reset test), else 0.
    pub fn bad(i: usize) -> usize {
        Self::rho(i) + 2
    }
    /// 1 while pair i is in use, 0 before it is made and after a reset.
    pub fn mask(i: usize) -> usize {
        Self::rho(i) + 4
    }
    /// α_i = ρ_i s_i·q of the first loop (0 when the pair is masked).
    pub fn alpha(i: usize) -> usize {
        Self::rho(i) + 6
    }
    /// The scalar at element `i` of a row (hi + lo).
    pub fn get(s: &[f32], i: usize) -> f64 {
        s[i] as f64 + s[i + 1] as f64
    }
    /// Stores `v` at element `i` of a row as hi = v rounded to f32, lo = the rest (0 when v is not
    /// finite).
    pub fn put(s: &mut [f32], i: usize, v: f64) {
        let hi = v as f32;
        s[i] = hi;
        s[i + 1] = if hi.is_finite() { (v - hi as f64) as f32 } else { 0.0 };
    }
}

/// What a recorded per-row reduction (a dot product d = x_r·y_r) does with its result, on row r of a
/// scalar buffer `s` laid out as [`LbfgsScalars`]. The CPU backend computes in f64, a GPU in double-f32
/// arithmetic (cos(s, y) in f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduced {
    /// s[i] = d.
    Store(usize),
    /// Pair i from s·y = s[SY], y·y = s[YY] and s·s = d: ρ_i = 1/(s·y + 1e-6),
    /// bad_i = cos(s, y) is NaN or < 1e-4 (cos = s·y / √(y·y s·s), NaN when that is 0),
    /// mask_i = 1, γ = s·y / y·y.
    Pair(usize),
    /// First loop: α_i = ρ_i d (d = s_i·q), 0 when pair i is masked.
    Alpha(usize),
    /// Second loop: s[COEF] = α_i − ρ_i d (d = y_i·r), 0 when pair i is masked.
    Beta(usize),
    /// Reset test on d = |d|²: s[RESET] = 1 when d is not finite or a masked-in pair is bad, and
    /// then every mask of the row is cleared (the next pair starts a new history).
    Reset,
}

impl Reduced {
    /// The operation code and element index the WGSL `finish` kernel reads.
    pub fn code(self) -> (u32, u32) {
        match self {
            Reduced::Store(i) => (0, i as u32),
            Reduced::Pair(i) => (1, i as u32),
            Reduced::Alpha(i) => (2, i as u32),
            Reduced::Beta(i) => (3, i as u32),
            Reduced::Reset => (4, 0),
        }
    }

    /// Applies the operation to one row of scalars in f64 (the CPU backend; the WGSL `finish` kernel
    /// does the same in double-f32).
    pub fn apply(self, d: f64, s: &mut [f32]) {
        type L = LbfgsScalars;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            Reduced::Store(i) => L::put(s, i, d),
            Reduced::Pair(i) => {
                let (sy, yy) = (L::get(s, L::SY), L::get(s, L::YY));
                let norm = (yy * d).sqrt();
                let cos = if norm > 0.0 { sy / norm } else { f64::NAN };
                L::put(s, L::rho(i), 1.0 / (sy + RHO_EPSILON));
                L::put(s, L::bad(i), flag(cos.is_nan() || cos < MIN_CURVATURE_COSINE));
                L::put(s, L::mask(i), 1.0);
                L::put(s, L::GAMMA, sy / yy);
            }
            Reduced::Alpha(i) => {
                let alpha = if s[L::mask(i)] != 0.0 { L::get(s, L::rho(i)) * d } else { 0.0 };
                L::put(s, L::alpha(i), alpha)
            }
            Reduced::Beta(i) => {
                let valid = s[L::mask(i)] != 0.0;
                let beta = if valid { L::get(s, L::alpha(i)) - L::get(s, L::rho(i)) * d } else { 0.0 };
                L::put(s, L::COEF, beta)
            }
            Reduced::Reset => {
                let pairs = L::pairs(s.len());
                let bad = (0..pairs).any(|i| s[L::mask(i)] != 0.0 && s[L::bad(i)] != 0.0);
                let reset = !d.is_finite() || bad;
                L::put(s, L::RESET, flag(reset));
                if reset {
                    (0..pairs).for_each(|i| L::put(s, L::mask(i), 0.0));
                }
            }
        }
    }
}
