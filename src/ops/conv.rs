//! 2-D convolutions (`shaders/conv.wgsl`, `cpu/conv/`): shapes and strides, and the
//! [`Convolutions`] trait a backend implements.

use anyhow::{bail, Result};

use super::backend::{Backend, Memory};
use super::handles::Source;
use super::op::{end, Operand, PlanOp, TensorId, GRADS, WEIGHTS};

/// A convolution as PyTorch's `nn.Conv2d(in_c, out_c, ksize, stride, pad, bias)` computes it (a
/// cross-correlation with zero padding; square kernel, the same stride and padding along both axes)
/// over a chunk of images for B vectors. Maps are `[vector][image][channel][row][col]`; the input is
/// `in_c × in_h × in_w`, the output `out_c × out_h × out_w` with side ⌊(n + 2·pad − ksize) / stride⌋ + 1
/// (PyTorch's `nn.Conv2d` shape formula, dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    pub images: usize,
    pub batches: usize,
    pub in_c: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_c: usize,
    pub ksize: usize,
    pub stride: usize,
    pub pad: usize,
    /// First element of the input (for the image buffer: first image x pixels per image).
    pub in_off: usize,
    /// Offset of the weight tensor `[out_c][in_c][ksize][ksize]` in a parameter vector.
    pub w_off: usize,
    /// Offset of the bias `[out_c]` in a parameter vector, if the convolution has one.
    pub b_off: Option<usize>,
    /// Length of a parameter vector.
    pub n_prm: usize,
    /// Images per vector when the input is the image buffer and each vector has its own images.
    pub img_bs: usize,
}

impl Conv {
    /// Output rows: ⌊(in_h + 2·pad − ksize) / stride⌋ + 1 (valid after [`Conv::check`]).
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.pad - self.ksize) / self.stride + 1
    }
    /// Output columns: ⌊(in_w + 2·pad − ksize) / stride⌋ + 1 (valid after [`Conv::check`]).
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.pad - self.ksize) / self.stride + 1
    }
    /// Input values per image: in_c · in_h · in_w.
    pub fn in_map(&self) -> usize {
        self.in_c * self.in_h * self.in_w
    }
    /// Output values per image: out_c · out_h · out_w.
    pub fn out_map(&self) -> usize {
        self.out_c * self.out_h() * self.out_w()
    }
    /// Input stride between vectors: for the shared image buffer `img_bs` images (0 when shared).
    pub fn in_bs(&self, images: bool) -> usize {
        if images {
            self.img_bs * self.in_map()
        } else {
            self.images * self.in_map()
        }
    }
    /// Output stride between vectors.
    pub fn out_bs(&self) -> usize {
        self.images * self.out_map()
    }
    /// Values of the weight tensor: out_c · in_c · ksize².
    pub fn weight_len(&self) -> usize {
        self.out_c * self.in_c * self.ksize * self.ksize
    }
    /// Multiply-adds times two of the forward pass.
    pub fn flops(&self) -> f64 {
        let k = self.in_c * self.ksize * self.ksize;
        2.0 * (self.batches * self.images * self.out_map() * k) as f64
    }

    /// Checks the shape: non-zero sizes, kernel and stride, a kernel that fits the padded input, and
    /// the weights and bias inside the parameter vector.
    ///
    /// # Errors
    /// The first rule broken, with the convolution's sizes.
    pub fn check(&self) -> Result<()> {
        if self.in_c == 0 || self.out_c == 0 || self.in_h == 0 || self.in_w == 0 {
            bail!("convolution {self:?}: zero channels or an empty input map");
        }
        if self.ksize == 0 || self.stride == 0 {
            bail!("convolution {self:?}: the kernel and the stride must be at least 1");
        }
        if self.ksize > self.in_h.min(self.in_w) + 2 * self.pad {
            bail!(
                "convolution {self:?}: a {k}x{k} kernel does not fit a {}x{} map padded by {}",
                self.in_h,
                self.in_w,
                self.pad,
                k = self.ksize
            );
        }
        let bias_end = self.b_off.map_or(0, |b| b + self.out_c);
        if self.w_off + self.weight_len() > self.n_prm || bias_end > self.n_prm {
            bail!("convolution {self:?}: weights or bias past the parameter vector of {}", self.n_prm);
        }
        Ok(())
    }
}

/// The convolutions of a backend.
pub trait Convolutions: Memory {
    /// Records out = conv(input) (+ bias).
    fn conv_forward(
        &self,
        c: Conv,
        input: Source<Self::Buffer>,
        weights: &Self::Buffer,
        out: &Self::Buffer,
    ) -> Result<Self::Command>;

    /// Records grads (+)= d loss / d (weights, bias) from d loss / d out.
    fn conv_weight_grad(
        &self,
        c: Conv,
        input: Source<Self::Buffer>,
        grad_out: &Self::Buffer,
        grads: &Self::Buffer,
        accumulate: bool,
    ) -> Result<Self::Command>;

    /// Records grad_in = d loss / d input (an f32 map per vector) from d loss / d out.
    fn conv_input_grad(
        &self,
        c: Conv,
        weights: &Self::Buffer,
        grad_out: &Self::Buffer,
        grad_in: &Self::Buffer,
    ) -> Result<Self::Command>;
}

/// Plan operation: `out` = conv(`input`) (+ bias), the weights read from [`WEIGHTS`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvForward {
    pub conv: Conv,
    pub input: Operand,
    pub out: TensorId,
}

/// Plan operation: [`GRADS`] (+)= d loss / d (weights, bias) from `grad_out` = d loss / d out.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvWeightGrad {
    pub conv: Conv,
    pub input: Operand,
    pub grad_out: TensorId,
    pub accumulate: bool,
}

/// Plan operation: `grad_in` = d loss / d input from `grad_out`, the weights read from [`WEIGHTS`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvInputGrad {
    pub conv: Conv,
    pub grad_out: TensorId,
    pub grad_in: TensorId,
}

impl Conv {
    /// Values of all output maps (every vector's): one thread each in the forward kernel.
    pub fn out_total(&self) -> usize {
        self.batches * self.out_bs()
    }
    /// Values of all input-gradient maps (every vector's): one thread each in the input-gradient kernel.
    pub fn in_grad_total(&self) -> usize {
        self.batches * self.in_bs(false)
    }
    /// One past the last parameter of the convolution in a B x N_prm weight (or gradient) buffer.
    fn params_end(&self, bias: bool) -> usize {
        let last = self.w_off + self.weight_len();
        let last = if bias { last.max(self.b_off.map_or(0, |b| b + self.out_c)) } else { last };
        self.batches.saturating_sub(1) * self.n_prm + last
    }
    /// The touched ranges of the forward and weight-gradient kernels, which read the same input.
    fn input_ends(&self, input: Operand, params: TensorId, out: TensorId) -> Vec<(TensorId, u64)> {
        let images = matches!(input, Operand::Images);
        let input_end = self.in_off + self.batches.saturating_sub(1) * self.in_bs(images) + self.images * self.in_map();
        vec![(input.tensor(), end(input_end)), (params, end(self.params_end(true))), (out, end(self.out_total()))]
    }
}

impl PlanOp for ConvForward {
    fn kind(&self) -> &'static str {
        "conv"
    }
    fn flops(&self) -> f64 {
        self.conv.flops()
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        self.conv.input_ends(self.input, WEIGHTS, self.out)
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.conv_forward(self.conv, self.input.source(t), t[WEIGHTS], t[self.out])
    }
}

impl PlanOp for ConvWeightGrad {
    fn kind(&self) -> &'static str {
        "conv-weight-grad"
    }
    fn flops(&self) -> f64 {
        self.conv.flops()
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        self.conv.input_ends(self.input, GRADS, self.grad_out)
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.conv_weight_grad(self.conv, self.input.source(t), t[self.grad_out], t[GRADS], self.accumulate)
    }
}

impl PlanOp for ConvInputGrad {
    fn kind(&self) -> &'static str {
        "conv-input-grad"
    }
    fn flops(&self) -> f64 {
        self.conv.flops()
    }
    fn ends(&self) -> Vec<(TensorId, u64)> {
        let c = &self.conv;
        vec![
            (WEIGHTS, end(c.params_end(false))),
            (self.grad_out, end(c.out_total())),
            (self.grad_in, end(c.in_off + c.in_grad_total())),
        ]
    }
    fn record<B: Backend>(&self, backend: &B, t: &[&B::Buffer]) -> Result<B::Command> {
        backend.conv_input_grad(self.conv, t[WEIGHTS], t[self.grad_out], t[self.grad_in])
    }
}
