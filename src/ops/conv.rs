//! Square convolutions (`shaders/conv.wgsl`, `cpu/conv/`): shapes and strides, and the
//! [`Convolutions`] trait a backend implements.

use anyhow::Result;

use super::backend::Memory;
use super::handles::Source;
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

/// The convolutions of a backend.
pub trait Convolutions: Memory {
    /// Records out = conv(input) + bias.
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
