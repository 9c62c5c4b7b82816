//! The LSTM recurrence of one chunk of images as data ([`LstmSequence`]): the tensors it names
//! ([`LstmOperands`]), the per-step kernel launches a GPU makes of it ([`LstmLaunch`], what the plan
//! walk checks), its FLOPs and its checks. The layouts are those of `ops/lstm.rs`'s documentation.

use anyhow::{bail, Result};

use super::handles::DeviceBuffer;
use super::lstm::{LstmShape, LstmStep};
use super::op::{end, TensorId};
use super::products::{layout_end, Layout, Product};

/// The LSTM layer over one chunk of `images` images for `batches` weight vectors (each `n_prm`
/// parameters, W_ih `[4H x F]`, W_hh `[4H x H]`, b_ih and b_hh `[4H]` at the given offsets): the whole
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

    /// Every value passed through `f` (a plan's tensor ids to its buffers).
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> LstmOperands<U> {
        LstmOperands {
            inputs: f(self.inputs),
            weights: f(self.weights),
            grads: f(self.grads),
            gates: f(self.gates),
            cells: f(self.cells),
            hidden: f(self.hidden),
            last: f(self.last),
            dh: f(self.dh),
            dc: f(self.dc),
            ones: f(self.ones),
        }
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

impl LstmLaunch {
    /// The launch's kernel kind and, per tensor of `t` it touches, one past the furthest element (its
    /// kernel's indexing: `shaders/lstm.wgsl`, `shaders/matmul.wgsl`).
    pub fn ends(&self, t: &LstmOperands<TensorId>) -> (&'static str, Vec<(TensorId, u64)>) {
        match *self {
            LstmLaunch::Product { shape: p, a, b, c } => (
                "matmul",
                vec![
                    (t.get(a.0), end(layout_end(&a.1, p.batches, p.m, p.k))),
                    (t.get(b.0), end(layout_end(&b.1, p.batches, p.k, p.n))),
                    (t.get(c.0), end(layout_end(&c.1, p.batches, p.m, p.n))),
                ],
            ),
            LstmLaunch::CellForward(s) => {
                let (bn, h) = (end(s.batches * s.images), end(s.shape.hidden));
                let biases = s.batches.saturating_sub(1) * s.n_prm + s.bias_ih.max(s.bias_hh) + s.shape.gates();
                let mut ends = vec![(t.weights, end(biases))];
                ends.extend(s.state_ends(t.gates, t.cells));
                ends.push(if s.step + 1 < s.shape.steps {
                    (t.hidden, (bn.saturating_sub(1) * end(s.shape.steps) + end(s.step) + 2) * h)
                } else {
                    (t.last, bn * h)
                });
                ("lstm-cell", ends)
            }
            LstmLaunch::CellBackward(s) => {
                let rows = end(s.cell_len());
                let mut ends = s.state_ends(t.gates, t.cells).to_vec();
                ends.extend([(t.dh, rows), (t.dc, rows)]);
                ("lstm-cell-backward", ends)
            }
        }
    }
}
