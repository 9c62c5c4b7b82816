//! The LSTM over pixel rows (`shaders/lstm.wgsl`, `cpu/lstm.rs`): shapes, the recurrence of one chunk
//! of images as one operation forward and one backward ([`LstmSequence`]), the per-step launches a
//! GPU makes of them ([`LstmLaunch`]), and the [`LstmCells`] trait (pixel gather, sequence forward and
//! backward).
//!
//! Tensors of a chunk of c images for B vectors (H hidden units, S steps, F inputs per step, 4H
//! gates): inputs [vector or 1][image][step][F] (the gathered pixels, one copy when the images are
//! shared); last, dh, dc [vector][image][H]; ones [c·S] (ones, for the bias gradients as products).
//! The gates (c·S·4H per vector), cells (c·(S + 1)·H, c_0 = 0) and hidden states (c·S·H, the input
//! h_s of each step, h_0 = 0) pass from a backend's forward pass to its backward pass only, and each
//! backend lays them out its own way inside the [vector][image] blocks: a GPU as [step][4H], [S + 1][H]
//! and [S][H] per image (what the launches below address), the CPU step-major per group of images
//! (`cpu/lstm.rs`).

use anyhow::{bail, Result};

use super::backend::Memory;
use super::handles::DeviceBuffer;
use super::products::{Layout, Product};

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

/// The LSTM layer over one chunk of `images` images for `batches` weight vectors (each `n_prm`
/// parameters, W_ih [4H x F], W_hh [4H x H], b_ih and b_hh [4H] at the given offsets): the whole
/// recurrence forward, and backward through time with the weight gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmSequence {
    pub shape: LstmShape,
    pub images: usize,
    pub batches: usize,
    pub n_prm: usize,
    pub w_ih: usize,
    pub w_hh: usize,
    pub b_ih: usize,
    pub b_hh: usize,
    /// The chunk's first image (dataset index), for the gather.
    pub first_image: usize,
    /// Images per vector when each vector has its own images (0: shared, one copy of the inputs).
    pub img_bs: usize,
}

/// The tensors an LSTM sequence operation names; a backend binds a buffer to each
/// ([`LstmOperands::get`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LstmTensor {
    Inputs,
    Weights,
    Grads,
    Gates,
    Cells,
    Hidden,
    Last,
    Dh,
    Dc,
    Ones,
}

/// One value (a tensor id in a plan, a buffer in a backend) per [`LstmTensor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmOperands<T> {
    pub inputs: T,
    pub weights: T,
    pub grads: T,
    pub gates: T,
    pub cells: T,
    pub hidden: T,
    pub last: T,
    pub dh: T,
    pub dc: T,
    pub ones: T,
}

impl<T: Copy> LstmOperands<T> {
    /// The value of tensor `t`.
    pub fn get(&self, t: LstmTensor) -> T {
        match t {
            LstmTensor::Inputs => self.inputs,
            LstmTensor::Weights => self.weights,
            LstmTensor::Grads => self.grads,
            LstmTensor::Gates => self.gates,
            LstmTensor::Cells => self.cells,
            LstmTensor::Hidden => self.hidden,
            LstmTensor::Last => self.last,
            LstmTensor::Dh => self.dh,
            LstmTensor::Dc => self.dc,
            LstmTensor::Ones => self.ones,
        }
    }
}

impl<T> LstmOperands<T> {
    /// References to the values (buffers to the handles the operations take).
    pub fn as_ref(&self) -> LstmOperands<&T> {
        LstmOperands {
            inputs: &self.inputs,
            weights: &self.weights,
            grads: &self.grads,
            gates: &self.gates,
            cells: &self.cells,
            hidden: &self.hidden,
            last: &self.last,
            dh: &self.dh,
            dc: &self.dc,
            ones: &self.ones,
        }
    }

    /// Every value passed through `f` (a device's buffers to a backend's own handles).
    pub fn try_map<U>(self, mut f: impl FnMut(T) -> Result<U>) -> Result<LstmOperands<U>> {
        Ok(LstmOperands {
            inputs: f(self.inputs)?,
            weights: f(self.weights)?,
            grads: f(self.grads)?,
            gates: f(self.gates)?,
            cells: f(self.cells)?,
            hidden: f(self.hidden)?,
            last: f(self.last)?,
            dh: f(self.dh)?,
            dc: f(self.dc)?,
            ones: f(self.ones)?,
        })
    }
}

/// One kernel launch of a sequence operation in its per-step form (what a GPU dispatches, and what
/// the plan walk checks): a matrix product on the named tensors, or one step of the cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LstmLaunch {
    Product {
        shape: Product,
        a: (LstmTensor, Layout),
        b: (LstmTensor, Layout),
        c: (LstmTensor, Layout),
    },
    /// Biases into the step's gates, then c and h (`lstm.wgsl` `cell_forward`).
    CellForward(LstmStep),
    /// The step's gates become d loss / d pre-activations, dc carries d c_{s-1} (`cell_backward`).
    CellBackward(LstmStep),
}

impl LstmSequence {
    /// Step `s` as a cell launch.
    pub fn step(&self, s: usize) -> LstmStep {
        LstmStep {
            shape: self.shape,
            images: self.images,
            batches: self.batches,
            step: s,
            n_prm: self.n_prm,
            bias_ih: self.b_ih,
            bias_hh: self.b_hh,
            first_image: self.first_image,
            img_bs: self.img_bs,
        }
    }

    /// Per vector, the stride of the gate blocks.
    fn gate_stride(&self) -> usize {
        self.images * self.shape.steps * self.shape.gates()
    }

    /// Per vector, the stride of the inputs (0 when the images are shared).
    pub fn inputs_stride(&self) -> usize {
        if self.img_bs > 0 {
            self.images * self.shape.pixels()
        } else {
            0
        }
    }

    /// The gates of step `s` as a (c x 4H) matrix per vector.
    fn gates_at(&self, s: usize) -> Layout {
        let g = self.shape.gates();
        Layout { off: s * g, batch: self.gate_stride(), row: self.shape.steps * g, col: 1, group: None }
    }

    /// The forward pass as launches: the input projection of all steps (one product for all vectors
    /// when the images are shared, columns (vector, gate); else one per vector), then per step
    /// h_s W_hh^T added to its gates (s > 0, a product batched over the vectors) and the cell.
    pub fn forward_launches(&self) -> Vec<LstmLaunch> {
        use LstmTensor::*;
        let (b, c, n_prm) = (self.batches, self.images, self.n_prm);
        let (steps, feat, g, h) = (self.shape.steps, self.shape.features, self.shape.gates(), self.shape.hidden);
        let product = |m, n, k, batches, accumulate| Product { m, n, k, batches, accumulate };
        let mut out = vec![if self.img_bs == 0 {
            LstmLaunch::Product {
                shape: product(c * steps, g * b, feat, 1, false),
                a: (Inputs, Layout::row_major(0, feat, 0)),
                b: (Weights, Layout { off: self.w_ih, batch: 0, row: 1, col: feat, group: Some((g, n_prm)) }),
                c: (Gates, Layout { off: 0, batch: 0, row: g, col: 1, group: Some((g, self.gate_stride())) }),
            }
        } else {
            LstmLaunch::Product {
                shape: product(c * steps, g, feat, b, false),
                a: (Inputs, Layout::row_major(0, feat, self.inputs_stride())),
                b: (Weights, Layout { off: self.w_ih, batch: n_prm, row: 1, col: feat, group: None }),
                c: (Gates, Layout::row_major(0, g, self.gate_stride())),
            }
        }];
        for s in 0..steps {
            if s > 0 {
                out.push(LstmLaunch::Product {
                    shape: product(c, g, h, b, true),
                    a: (Hidden, Layout { off: s * h, batch: c * steps * h, row: steps * h, col: 1, group: None }),
                    b: (Weights, Layout { off: self.w_hh, batch: n_prm, row: 1, col: h, group: None }),
                    c: (Gates, self.gates_at(s)),
                });
            }
            out.push(LstmLaunch::CellForward(self.step(s)));
        }
        out
    }

    /// The backward pass as launches: back through time (per step the cell, then d h_{s} = dz W_hh
    /// for s > 0), then the weight gradients over all (image, step) rows at once, added to [`Grads`]
    /// when `accumulate` (after a chunk's first).
    ///
    /// [`Grads`]: LstmTensor::Grads
    pub fn backward_launches(&self, accumulate: bool) -> Vec<LstmLaunch> {
        use LstmTensor::*;
        let (b, c, n_prm) = (self.batches, self.images, self.n_prm);
        let (steps, feat, g, h) = (self.shape.steps, self.shape.features, self.shape.gates(), self.shape.hidden);
        let product = |m, n, k, accumulate| Product { m, n, k, batches: b, accumulate };
        let mut out = Vec::new();
        for s in (0..steps).rev() {
            out.push(LstmLaunch::CellBackward(self.step(s)));
            if s > 0 {
                out.push(LstmLaunch::Product {
                    shape: product(c, h, g, false),
                    a: (Gates, self.gates_at(s)),
                    b: (Weights, Layout::row_major(self.w_hh, h, n_prm)),
                    c: (Dh, Layout::row_major(0, h, c * h)),
                });
            }
        }
        let dz_t = (Gates, Layout::transposed(0, g, self.gate_stride()));
        let rows = c * steps;
        out.push(LstmLaunch::Product {
            shape: product(g, feat, rows, accumulate),
            a: dz_t,
            b: (Inputs, Layout::row_major(0, feat, self.inputs_stride())),
            c: (Grads, Layout::row_major(self.w_ih, feat, n_prm)),
        });
        out.push(LstmLaunch::Product {
            shape: product(g, h, rows, accumulate),
            a: dz_t,
            b: (Hidden, Layout::row_major(0, h, c * steps * h)),
            c: (Grads, Layout::row_major(self.w_hh, h, n_prm)),
        });
        for bias in [self.b_ih, self.b_hh] {
            out.push(LstmLaunch::Product {
                shape: product(g, 1, rows, accumulate),
                a: dz_t,
                b: (Ones, Layout { off: 0, batch: 0, row: 1, col: 0, group: None }),
                c: (Grads, Layout { off: bias, batch: n_prm, row: 1, col: 0, group: None }),
            });
        }
        out
    }

    /// Matrix-product FLOPs of the forward (`backward` false) or backward pass (2 per multiply-add; the
    /// bias gradients counted as the products with ones they are on a GPU).
    pub fn flops(&self, backward: bool) -> f64 {
        let launches = if backward { self.backward_launches(false) } else { self.forward_launches() };
        launches
            .iter()
            .map(|l| match l {
                LstmLaunch::Product { shape, .. } => shape.flops(),
                _ => 0.0,
            })
            .sum()
    }

    /// Elements each tensor must hold (weights and gradients: B parameter vectors).
    pub fn lengths(&self) -> LstmOperands<usize> {
        let (b, c, h, steps) = (self.batches, self.images, self.shape.hidden, self.shape.steps);
        let g = self.shape.gates();
        let params = [(self.w_ih, g * self.shape.features), (self.w_hh, g * h), (self.b_ih, g), (self.b_hh, g)];
        let vector = params.iter().map(|&(off, len)| off + len).max().unwrap_or(0);
        let vectors = (b.saturating_sub(1)) * self.n_prm + vector;
        let input_vectors = if self.img_bs > 0 { b } else { 1 };
        LstmOperands {
            inputs: input_vectors * c * self.shape.pixels(),
            weights: vectors,
            grads: vectors,
            gates: b * c * steps * g,
            cells: b * c * (steps + 1) * h,
            hidden: b * c * steps * h,
            last: b * c * h,
            dh: b * c * h,
            dc: b * c * h,
            ones: c * steps,
        }
    }

    /// Errors: a buffer is shorter than the sequence addresses (naming it), or a parameter tensor
    /// reaches past its vector's `n_prm`.
    pub fn check<B: DeviceBuffer>(&self, t: &LstmOperands<&B>) -> Result<()> {
        let g = self.shape.gates();
        for (name, off, len) in [
            ("W_ih", self.w_ih, g * self.shape.features),
            ("W_hh", self.w_hh, g * self.shape.hidden),
            ("b_ih", self.b_ih, g),
            ("b_hh", self.b_hh, g),
        ] {
            if off + len > self.n_prm {
                bail!("LSTM: {name} at {off}..{} reaches past a parameter vector of {}", off + len, self.n_prm);
            }
        }
        let need = self.lengths();
        for (name, tensor) in [
            ("inputs", LstmTensor::Inputs),
            ("weights", LstmTensor::Weights),
            ("gradients", LstmTensor::Grads),
            ("gates", LstmTensor::Gates),
            ("cells", LstmTensor::Cells),
            ("hidden states", LstmTensor::Hidden),
            ("last hidden state", LstmTensor::Last),
            ("dh", LstmTensor::Dh),
            ("dc", LstmTensor::Dc),
            ("ones", LstmTensor::Ones),
        ] {
            let (have, want) = (t.get(tensor).len(), need.get(tensor));
            if have < want {
                bail!(
                    "LSTM over {} images x {} vectors: the {name} buffer holds {have} elements, {want} needed",
                    self.images,
                    self.batches
                );
            }
        }
        Ok(())
    }
}

/// The LSTM of a backend.
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
