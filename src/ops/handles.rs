//! The operand handles every backend takes, written once and generic over the backend's buffer type:
//! rows of a buffer ([`Rows`]), per-row coefficients ([`Coef`]) and a product's or convolution's input
//! ([`Source`]); and the bounds checks a call makes on them.

use anyhow::{bail, Result};

/// What every backend's buffer tells about itself.
pub trait DeviceBuffer: Clone {
    /// Number of 32-bit elements.
    fn len(&self) -> usize;
    /// Whether the buffer holds no element.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether two handles name the same buffer.
    fn same(&self, other: &Self) -> bool;
    /// Pixels per element of an image buffer ([`Source::Images`]): 4 where pixels are packed bytes
    /// (the GPU), 1 where they are f32 (the CPU).
    fn pixels_per_element(&self) -> usize;
}

/// B rows of `len` elements, `stride` apart, inside one buffer.
pub struct Rows<'a, B> {
    pub buf: &'a B,
    pub rows: usize,
    pub len: usize,
    pub stride: usize,
}

impl<'a, B: DeviceBuffer> Rows<'a, B> {
    /// Rows packed back to back (whether they fit in the buffer is checked when they are used).
    pub fn new(buf: &'a B, rows: usize, len: usize) -> Rows<'a, B> {
        Rows { buf, rows, len, stride: len }
    }

    /// Errors: the rows reach past the end of their buffer.
    pub fn check(&self) -> Result<()> {
        if self.rows > 0 && (self.rows - 1) * self.stride + self.len > self.buf.len() {
            bail!("{} rows of {} elements do not fit in a buffer of {}", self.rows, self.len, self.buf.len());
        }
        Ok(())
    }

    /// The same rows in another handle of the buffer (the backend's own, behind a device's enum).
    pub fn map<C>(&self, f: impl FnOnce(&'a B) -> Result<&'a C>) -> Result<Rows<'a, C>> {
        Ok(Rows { buf: f(self.buf)?, rows: self.rows, len: self.len, stride: self.stride })
    }
}

/// Errors: `x` and `y` differ in row count or row length (`op` names the operation).
pub fn same_shape<B>(op: &str, x: &Rows<B>, y: &Rows<B>) -> Result<()> {
    if (x.rows, x.len) != (y.rows, y.len) {
        bail!("{op} of differently shaped rows ({}x{} and {}x{})", x.rows, x.len, y.rows, y.len);
    }
    Ok(())
}

/// A per-row coefficient of a recorded vector operation: `factor`, times element
/// `row * stride + index` of a small buffer of scalars when one is given (so that a kernel reads what
/// an earlier kernel computed, without the host).
pub struct Coef<'a, B> {
    pub scalars: Option<&'a B>,
    pub index: usize,
    pub stride: usize,
    pub factor: f32,
}

// Handles copy whatever the buffer type (a derive would ask for `B: Copy`).
impl<B> Clone for Rows<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for Rows<'_, B> {}
impl<B> Clone for Coef<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for Coef<'_, B> {}

impl<B> Coef<'static, B> {
    /// The same coefficient for every row.
    pub fn constant(factor: f32) -> Coef<'static, B> {
        Coef { scalars: None, index: 0, stride: 0, factor }
    }
}

impl<'a, B: DeviceBuffer> Coef<'a, B> {
    /// Element `row * stride + index` of `scalars`.
    pub fn at(scalars: &'a B, index: usize, stride: usize) -> Coef<'a, B> {
        Coef { scalars: Some(scalars), index, stride, factor: 1.0 }
    }
    /// This coefficient multiplied by `factor`.
    pub fn times(self, factor: f32) -> Coef<'a, B> {
        Coef { factor: self.factor * factor, ..self }
    }
    /// Errors: the coefficient of row `rows - 1` lies past the end of its buffer.
    pub fn check(&self, rows: usize) -> Result<()> {
        if let Some(b) = self.scalars {
            if rows > 0 && (rows - 1) * self.stride + self.index >= b.len() {
                bail!("per-row coefficients of {rows} rows reach past a buffer of {} scalars", b.len());
            }
        }
        Ok(())
    }
    /// The same coefficient in another handle of its buffer.
    pub fn map<C>(&self, f: impl FnOnce(&'a B) -> Result<&'a C>) -> Result<Coef<'a, C>> {
        Ok(Coef {
            scalars: self.scalars.map(f).transpose()?,
            index: self.index,
            stride: self.stride,
            factor: self.factor,
        })
    }
}

/// Where a matrix-product or convolution operand's elements live.
pub enum Source<'a, B> {
    /// A buffer of f32.
    F32(&'a B),
    /// An image buffer (pixels scaled to [0, 1]; packed bytes on the GPU, f32 on the CPU:
    /// [`DeviceBuffer::pixels_per_element`]).
    Images(&'a B),
}

impl<B> Clone for Source<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for Source<'_, B> {}

impl<'a, B: DeviceBuffer> Source<'a, B> {
    /// The buffer behind the operand.
    pub fn buffer(&self) -> &'a B {
        match self {
            Source::F32(b) | Source::Images(b) => b,
        }
    }
    /// Whether the operand is an image buffer.
    pub fn is_images(&self) -> bool {
        matches!(self, Source::Images(_))
    }
    /// Elements the operand may address: pixels of an image buffer, else f32 elements.
    pub fn addressable(&self) -> usize {
        match self {
            Source::F32(b) => b.len(),
            Source::Images(b) => b.len() * b.pixels_per_element(),
        }
    }
    /// The same operand in another handle of its buffer.
    pub fn map<C>(&self, f: impl FnOnce(&'a B) -> Result<&'a C>) -> Result<Source<'a, C>> {
        Ok(match self {
            Source::F32(b) => Source::F32(f(b)?),
            Source::Images(b) => Source::Images(f(b)?),
        })
    }
}
