//! One interface over the compute backends: the wgpu GPU layer ([`crate::gpu`]) and the native CPU
//! backend ([`crate::cpu`]). Algorithms hold a [`Device`], allocate [`Buffer`]s, record [`Command`]s
//! once and submit them many times; they never know which backend runs them.

mod choose;
pub mod profiles;

use anyhow::{bail, Result};
use std::sync::Arc;

use crate::cpu::{Cpu, CpuBuffer, CpuCoef, CpuOp, CpuRows};
/// The workgroup grid of every GPU kernel launch, as pure functions of its shape (plans are checked
/// against an adapter's limits with them, without a device).
pub use crate::gpu::grids;
use crate::gpu::{self, Dispatch, Gpu, GpuBuffer};
pub use crate::gpu::{AdapterSummary, Counts, Subgroups};
use crate::ops::{Act, AdamStep, Conv, Head, Layout, LossChunk, LstmStep, Product, Reduced, Selection};
pub use choose::{choose_backend, only_software, BackendKind, DeviceChoice};

/// An open compute device.
#[derive(Clone)]
pub enum Device {
    Wgpu(Arc<Gpu>),
    Cpu(Arc<Cpu>),
}

/// A device buffer of 32-bit elements (f32, or u32 bit patterns).
#[derive(Clone)]
pub enum Buffer {
    Wgpu(GpuBuffer),
    Cpu(CpuBuffer),
}

impl Buffer {
    /// Number of 32-bit elements.
    pub fn len(&self) -> usize {
        match self {
            Buffer::Wgpu(b) => b.len,
            Buffer::Cpu(b) => b.len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether two handles name the same device buffer.
    pub fn same(&self, other: &Buffer) -> bool {
        match (self, other) {
            (Buffer::Wgpu(a), Buffer::Wgpu(b)) => a.same(b),
            (Buffer::Cpu(a), Buffer::Cpu(b)) => a.same(b),
            _ => false,
        }
    }
    fn gpu(&self) -> Result<&GpuBuffer> {
        match self {
            Buffer::Wgpu(b) => Ok(b),
            Buffer::Cpu(_) => bail!("a CPU buffer was handed to the GPU backend"),
        }
    }
    fn cpu(&self) -> Result<&CpuBuffer> {
        match self {
            Buffer::Cpu(b) => Ok(b),
            Buffer::Wgpu(_) => bail!("a GPU buffer was handed to the CPU backend"),
        }
    }
}

/// One recorded operation: a GPU dispatch (or a short sequence of them, e.g. a reduction and its
/// finishing kernel) or a CPU operation.
pub enum Command {
    /// One GPU dispatch.
    Wgpu(Dispatch),
    /// GPU dispatches run in order (a recorded reduction: partials, then the finishing kernel).
    WgpuSeq(Vec<Dispatch>),
    /// One CPU operation.
    Cpu(Box<CpuOp>),
}

impl Command {
    fn dispatches(&self) -> &[Dispatch] {
        match self {
            Command::Wgpu(d) => std::slice::from_ref(d),
            Command::WgpuSeq(list) => list,
            Command::Cpu(_) => &[],
        }
    }
}

fn dispatch_list<'a>(commands: &[&'a Command]) -> Vec<&'a Dispatch> {
    commands.iter().flat_map(|c| c.dispatches()).collect()
}

/// A per-row coefficient of a recorded vector operation: `factor`, times element
/// `row * stride + index` of a small device buffer of scalars when one is given (so that a kernel
/// reads what an earlier kernel computed, without the host).
#[derive(Clone, Copy)]
pub struct Coef<'a> {
    pub scalars: Option<&'a Buffer>,
    pub index: usize,
    pub stride: usize,
    pub factor: f32,
}

impl<'a> Coef<'a> {
    /// The same coefficient for every row.
    pub fn constant(factor: f32) -> Coef<'static> {
        Coef { scalars: None, index: 0, stride: 0, factor }
    }
    /// Element `row * stride + index` of `scalars`.
    pub fn at(scalars: &'a Buffer, index: usize, stride: usize) -> Coef<'a> {
        Coef { scalars: Some(scalars), index, stride, factor: 1.0 }
    }
    /// This coefficient multiplied by `factor`.
    pub fn times(self, factor: f32) -> Coef<'a> {
        Coef { factor: self.factor * factor, ..self }
    }
    fn check(&self, rows: usize) -> Result<()> {
        if let Some(b) = self.scalars {
            if rows > 0 && (rows - 1) * self.stride + self.index >= b.len() {
                bail!("per-row coefficients of {rows} rows reach past a buffer of {} scalars", b.len());
            }
        }
        Ok(())
    }
    fn gpu(&self) -> Result<gpu::Coef<'a>> {
        Ok(gpu::Coef {
            scalars: self.scalars.map(Buffer::gpu).transpose()?,
            index: self.index,
            stride: self.stride,
            factor: self.factor,
        })
    }
    fn cpu(&self) -> Result<CpuCoef> {
        Ok(CpuCoef {
            scalars: self.scalars.map(|b| b.cpu().cloned()).transpose()?,
            index: self.index,
            stride: self.stride,
            factor: self.factor,
        })
    }
}

/// Where a matrix-product or convolution operand's elements live.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A buffer of f32.
    F32(&'a Buffer),
    /// The image buffer of a [`crate::data::DeviceImages`] (pixels scaled to [0, 1]; packed bytes on
    /// the GPU, f32 on the CPU).
    Images(&'a Buffer),
}

impl<'a> Source<'a> {
    fn buffer(&self) -> &'a Buffer {
        match self {
            Source::F32(b) | Source::Images(b) => b,
        }
    }
    fn is_images(&self) -> bool {
        matches!(self, Source::Images(_))
    }
    fn gpu(&self) -> Result<gpu::Source<'a>> {
        Ok(match self {
            Source::F32(b) => gpu::Source::F32(b.gpu()?),
            Source::Images(b) => gpu::Source::Images(b.gpu()?),
        })
    }
}

/// B rows of `len` elements, `stride` apart, inside one buffer.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub buf: &'a Buffer,
    pub rows: usize,
    pub len: usize,
    pub stride: usize,
}

impl<'a> Rows<'a> {
    /// Rows packed back to back (whether they fit in the buffer is checked when they are used).
    pub fn new(buf: &'a Buffer, rows: usize, len: usize) -> Rows<'a> {
        Rows { buf, rows, len, stride: len }
    }
    fn check(&self) -> Result<()> {
        if self.rows > 0 && (self.rows - 1) * self.stride + self.len > self.buf.len() {
            bail!("{} rows of {} elements do not fit in a buffer of {}", self.rows, self.len, self.buf.len());
        }
        Ok(())
    }
    fn gpu(&self) -> Result<gpu::Rows<'a>> {
        self.check()?;
        Ok(gpu::Rows { buf: self.buf.gpu()?, rows: self.rows, len: self.len, stride: self.stride })
    }
    fn cpu(&self) -> Result<CpuRows> {
        self.check()?;
        Ok(CpuRows { buf: self.buf.cpu()?.clone(), rows: self.rows, len: self.len, stride: self.stride })
    }
}

fn same_shape(op: &str, x: &Rows, y: &Rows) -> Result<()> {
    if (x.rows, x.len) != (y.rows, y.len) {
        bail!("{op} of differently shaped rows ({}x{} and {}x{})", x.rows, x.len, y.rows, y.len);
    }
    Ok(())
}

/// Bytes a scratch tensor may take on the CPU backend (host memory is plentiful, and large chunks keep
/// the matrix products efficient), and all of an evaluator's together.
const CPU_BUDGET: ChunkBudget = ChunkBudget { tensor_bytes: 512 << 20, total_bytes: 8 << 30 };
/// Bytes a scratch tensor may take on a software rasteriser: lavapipe runs the test suite's GPU pass,
/// whose speed was measured with chunks of this size.
pub const SOFTWARE_TENSOR_BYTES: u64 = 32 << 20;
/// Scratch memory an evaluator may take on an unknown GPU when `--gpu-memory` is not given: safe on
/// any card with 4 GB. A GPU named in [`profiles::KNOWN_GPUS`] gets a share of its memory instead
/// ([`profiles::adapter_budget`]).
pub const DEFAULT_GPU_MEMORY: u64 = 2 << 30;
/// The same for a software rasteriser, whose "GPU memory" is host memory shared with the test suite.
pub const SOFTWARE_GPU_MEMORY: u64 = 256 << 20;

/// How much memory one evaluator's scratch tensors may take: the image chunk is the largest whose
/// tensors fit both (`model::chunk_capacity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChunkBudget {
    /// Bytes one scratch tensor may take: a GPU's storage-binding limit (or less).
    pub tensor_bytes: u64,
    /// Bytes all scratch tensors of an evaluator may take together.
    pub total_bytes: u64,
}

impl Device {
    /// Opens the backend and adapter the choice names (see [`choose_backend`]).
    pub fn open(choice: &DeviceChoice) -> Result<Device> {
        match choose_backend(choice)? {
            BackendKind::Cpu => Ok(Device::Cpu(Arc::new(Cpu::from_env()?))),
            BackendKind::Wgpu(wgpu_choice) => {
                let gpu = Gpu::open(&wgpu_choice)?;
                let budget = profiles::adapter_budget(gpu.budget_limits(), wgpu_choice.memory);
                if let Some(note) = &budget.note {
                    eprintln!("losscape: {note}");
                }
                Ok(Device::Wgpu(gpu))
            }
        }
    }

    /// The native CPU backend.
    pub fn cpu() -> Device {
        Device::Cpu(Arc::new(Cpu::new()))
    }

    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu(_))
    }

    /// What runs the work, for reports and benchmark records.
    pub fn summary(&self) -> AdapterSummary {
        match self {
            Device::Wgpu(g) => g.summary.clone(),
            Device::Cpu(c) => choose::cpu_summary(c),
        }
    }

    /// What a GPU device has been asked to do since it was opened (dispatches, submissions,
    /// read-backs, buffers and bind groups created); `None` on the CPU backend, which needs no such
    /// accounting.
    pub fn counts(&self) -> Option<Counts> {
        match self {
            Device::Wgpu(g) => Some(g.counts()),
            Device::Cpu(_) => None,
        }
    }

    /// True on a GPU whose loss heads and dot and sum reduce with subgroup operations
    /// ([`Subgroups`]); false on the CPU backend.
    pub fn uses_subgroups(&self) -> bool {
        matches!(self, Device::Wgpu(g) if g.uses_subgroups())
    }

    /// True when durations come from GPU timestamps rather than the wall clock.
    pub fn has_timestamps(&self) -> bool {
        matches!(self, Device::Wgpu(g) if g.has_timestamps())
    }

    /// How much memory the evaluators' scratch tensors may take on this device.
    pub fn chunk_budget(&self) -> ChunkBudget {
        self.memory_budget().budget
    }

    /// The chunk budget and where it comes from ([`profiles::adapter_budget`] on a GPU).
    pub fn memory_budget(&self) -> profiles::MemoryBudget {
        match self {
            Device::Wgpu(g) => profiles::adapter_budget(g.budget_limits(), g.memory_option()),
            Device::Cpu(_) => profiles::MemoryBudget {
                budget: CPU_BUDGET,
                source: "the CPU backend: host memory".into(),
                recognised: true,
                note: None,
            },
        }
    }

    /// A zero-filled buffer of `len` 32-bit elements.
    pub fn zeros(&self, len: usize, label: &str) -> Result<Buffer> {
        Ok(match self {
            Device::Wgpu(g) => Buffer::Wgpu(g.zeros(len, label)?),
            Device::Cpu(_) => Buffer::Cpu(CpuBuffer::new(vec![0.0; len])),
        })
    }

    /// A buffer holding `data` (any 32-bit plain type).
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T], label: &str) -> Result<Buffer> {
        if std::mem::size_of::<T>() != 4 {
            bail!("buffer '{label}': device buffers hold 32-bit elements");
        }
        Ok(match self {
            Device::Wgpu(g) => Buffer::Wgpu(g.upload(data, label)?),
            Device::Cpu(_) => Buffer::Cpu(CpuBuffer::new(bytemuck::cast_slice(data).to_vec())),
        })
    }

    /// Overwrites elements of `dst` starting at element `offset`.
    pub fn write<T: bytemuck::Pod>(&self, dst: &Buffer, offset: usize, data: &[T]) -> Result<()> {
        if std::mem::size_of::<T>() != 4 {
            bail!("device buffers hold 32-bit elements");
        }
        if offset + data.len() > dst.len() {
            bail!("write of {} elements at {offset} past the end of a {}-element buffer", data.len(), dst.len());
        }
        match self {
            Device::Wgpu(g) => g.write(dst.gpu()?, offset, data),
            Device::Cpu(c) => c.write(dst.cpu()?, offset, bytemuck::cast_slice(data))?,
        }
        Ok(())
    }

    /// Copies `len` elements between buffers on the device.
    pub fn copy(&self, src: &Buffer, src_off: usize, dst: &Buffer, dst_off: usize, len: usize) -> Result<()> {
        match self {
            Device::Wgpu(g) => {
                if src_off + len > src.len() || dst_off + len > dst.len() {
                    bail!("copy of {len} elements past the end of a buffer");
                }
                g.copy(src.gpu()?, src_off, dst.gpu()?, dst_off, len);
                Ok(())
            }
            Device::Cpu(c) => c.copy(src.cpu()?, src_off, dst.cpu()?, dst_off, len),
        }
    }

    /// Reads `len` elements from `offset` back to the host, after all submitted work.
    pub fn read<T: bytemuck::Pod>(&self, src: &Buffer, offset: usize, len: usize) -> Result<Vec<T>> {
        if std::mem::size_of::<T>() != 4 {
            bail!("device buffers hold 32-bit elements");
        }
        match self {
            Device::Wgpu(g) => g.read(src.gpu()?, offset, len),
            Device::Cpu(c) => Ok(bytemuck::cast_slice(&c.read(src.cpu()?, offset, len)?).to_vec()),
        }
    }

    /// Blocks until every submitted command has finished.
    pub fn wait(&self) -> Result<()> {
        match self {
            Device::Wgpu(g) => g.wait(),
            Device::Cpu(_) => Ok(()),
        }
    }

    /// Runs commands in order (on a GPU: queues them as one pass and returns at once).
    pub fn submit(&self, commands: &[&Command]) {
        match self {
            Device::Wgpu(g) => g.submit(&dispatch_list(commands)),
            Device::Cpu(c) => {
                let list: Vec<&CpuOp> = commands
                    .iter()
                    .filter_map(|c| if let Command::Cpu(o) = c { Some(o.as_ref()) } else { None })
                    .collect();
                c.submit(&list)
            }
        }
    }

    /// Runs commands, then reads the `(buffer, offset, len)` ranges back (f32): on a GPU one submission
    /// and one blocking read-back in all.
    pub fn submit_read(&self, commands: &[&Command], reads: &[(&Buffer, usize, usize)]) -> Result<Vec<Vec<f32>>> {
        for (b, off, len) in reads {
            if off + len > b.len() {
                bail!("read of {len} elements at {off} past the end of a {}-element buffer", b.len());
            }
        }
        match self {
            Device::Wgpu(g) => {
                let reads: Vec<(&GpuBuffer, usize, usize)> =
                    reads.iter().map(|&(b, o, l)| Ok((b.gpu()?, o, l))).collect::<Result<_>>()?;
                g.submit_read(&dispatch_list(commands), &reads)
            }
            Device::Cpu(_) => {
                self.submit(commands);
                reads.iter().map(|&(b, o, l)| self.read(b, o, l)).collect()
            }
        }
    }

    /// Runs commands and waits; returns seconds (GPU timestamps where available, else wall clock).
    pub fn submit_timed(&self, commands: &[&Command]) -> Result<f64> {
        if let Device::Wgpu(g) = self {
            if g.has_timestamps() {
                return g.submit_timed(&dispatch_list(commands));
            }
        }
        let t = std::time::Instant::now();
        self.submit(commands);
        self.wait()?;
        Ok(t.elapsed().as_secs_f64())
    }

    fn record(
        &self,
        gpu: impl FnOnce(&Gpu) -> Result<Dispatch>,
        cpu: impl FnOnce() -> Result<CpuOp>,
    ) -> Result<Command> {
        match self {
            Device::Wgpu(g) => Ok(Command::Wgpu(gpu(g)?)),
            Device::Cpu(_) => Ok(Command::Cpu(Box::new(cpu()?.checked()?))),
        }
    }

    /// Records C (+)= A * B for every batch member (see [`Layout`]); A may not use column groups.
    pub fn matmul(
        &self,
        p: Product,
        a: (Source, Layout),
        b: (Source, Layout),
        c: (&Buffer, Layout),
    ) -> Result<Command> {
        check_product(&p, &a, &b, &c)?;
        self.record(
            |g| g.matmul(p, (a.0.gpu()?, a.1), (b.0.gpu()?, b.1), (c.0.gpu()?, c.1)),
            || {
                Ok(CpuOp::MatMul {
                    p,
                    a: (a.0.buffer().cpu()?.clone(), a.1),
                    b: (b.0.buffer().cpu()?.clone(), b.1),
                    c: (c.0.cpu()?.clone(), c.1),
                })
            },
        )
    }

    /// Records `out = act(z)` over the first `len` elements.
    pub fn activation_forward(&self, act: Act, z: &Buffer, out: &Buffer, len: usize) -> Result<Command> {
        self.activation(act, false, z, out, len)
    }

    /// Records `grad *= act'(z)` over the first `len` elements.
    pub fn activation_backward(&self, act: Act, z: &Buffer, grad: &Buffer, len: usize) -> Result<Command> {
        self.activation(act, true, z, grad, len)
    }

    fn activation(&self, act: Act, backward: bool, z: &Buffer, out: &Buffer, len: usize) -> Result<Command> {
        if len > z.len() || len > out.len() {
            bail!("activation over {len} elements past the end of a buffer");
        }
        self.record(
            |g| {
                if backward {
                    g.activation_backward(act, z.gpu()?, out.gpu()?, len)
                } else {
                    g.activation_forward(act, z.gpu()?, out.gpu()?, len)
                }
            },
            || Ok(CpuOp::Activation { act, backward, z: z.cpu()?.clone(), out: out.cpu()?.clone(), len }),
        )
    }

    /// Records a loss head: per-image losses into `partials`, d loss / d outputs into `grad`. Targets are
    /// the labels (cross-entropy) or the image buffer (reconstruction).
    pub fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &Buffer,
        targets: &Buffer,
        grad: &Buffer,
        partials: &Buffer,
    ) -> Result<Command> {
        self.record(
            |g| g.loss_head(head, chunk, outputs.gpu()?, targets.gpu()?, grad.gpu()?, partials.gpu()?),
            || {
                Ok(CpuOp::Loss {
                    head,
                    chunk,
                    outputs: outputs.cpu()?.clone(),
                    targets: targets.cpu()?.clone(),
                    grad: grad.cpu()?.clone(),
                    partials: partials.cpu()?.clone(),
                })
            },
        )
    }

    /// Records out = conv(input) + bias.
    pub fn conv_forward(&self, c: Conv, input: Source, weights: &Buffer, out: &Buffer) -> Result<Command> {
        self.record(
            |g| g.conv_forward(c, input.gpu()?, weights.gpu()?, out.gpu()?),
            || {
                Ok(CpuOp::ConvForward {
                    conv: c,
                    images: input.is_images(),
                    input: input.buffer().cpu()?.clone(),
                    weights: weights.cpu()?.clone(),
                    out: out.cpu()?.clone(),
                })
            },
        )
    }

    /// Records grads (+)= d loss / d (weights, bias) from d loss / d out.
    pub fn conv_weight_grad(
        &self,
        c: Conv,
        input: Source,
        grad_out: &Buffer,
        grads: &Buffer,
        accumulate: bool,
    ) -> Result<Command> {
        self.record(
            |g| g.conv_weight_grad(c, input.gpu()?, grad_out.gpu()?, grads.gpu()?, accumulate),
            || {
                Ok(CpuOp::ConvWeightGrad {
                    conv: c,
                    images: input.is_images(),
                    input: input.buffer().cpu()?.clone(),
                    grad_out: grad_out.cpu()?.clone(),
                    grads: grads.cpu()?.clone(),
                    accumulate,
                })
            },
        )
    }

    /// Records grad_in = d loss / d input from d loss / d out.
    pub fn conv_input_grad(&self, c: Conv, weights: &Buffer, grad_out: &Buffer, grad_in: &Buffer) -> Result<Command> {
        self.record(
            |g| g.conv_input_grad(c, weights.gpu()?, grad_out.gpu()?, grad_in.gpu()?),
            || {
                Ok(CpuOp::ConvInputGrad {
                    conv: c,
                    weights: weights.cpu()?.clone(),
                    grad_out: grad_out.cpu()?.clone(),
                    grad_in: grad_in.cpu()?.clone(),
                })
            },
        )
    }

    /// Records 2x2 average pooling of `planes` maps of side `in_hw`, or its gradient when `backward`.
    pub fn avg_pool(&self, backward: bool, planes: usize, in_hw: usize, src: &Buffer, dst: &Buffer) -> Result<Command> {
        self.record(
            |g| g.avg_pool(backward, planes, in_hw, src.gpu()?, dst.gpu()?),
            || Ok(CpuOp::Pool { backward, planes, in_hw, src: src.cpu()?.clone(), dst: dst.cpu()?.clone() }),
        )
    }

    /// Records the permuted-pixel gather of an LSTM chunk.
    pub fn gather_pixels(&self, s: LstmStep, pixels: &Buffer, perm: &Buffer, out: &Buffer) -> Result<Command> {
        self.record(
            |g| g.gather_pixels(s, pixels.gpu()?, perm.gpu()?, out.gpu()?),
            || {
                Ok(CpuOp::Gather {
                    step: s,
                    pixels: pixels.cpu()?.clone(),
                    perm: perm.cpu()?.clone(),
                    out: out.cpu()?.clone(),
                })
            },
        )
    }

    /// Records one LSTM step forward.
    pub fn lstm_cell_forward(
        &self,
        s: LstmStep,
        weights: &Buffer,
        gates: &Buffer,
        cells: &Buffer,
        hidden: &Buffer,
        last: &Buffer,
    ) -> Result<Command> {
        self.record(
            |g| g.lstm_cell_forward(s, weights.gpu()?, gates.gpu()?, cells.gpu()?, hidden.gpu()?, last.gpu()?),
            || {
                Ok(CpuOp::LstmForward {
                    step: s,
                    weights: weights.cpu()?.clone(),
                    gates: gates.cpu()?.clone(),
                    cells: cells.cpu()?.clone(),
                    hidden: hidden.cpu()?.clone(),
                    last: last.cpu()?.clone(),
                })
            },
        )
    }

    /// Records one LSTM step backward.
    pub fn lstm_cell_backward(
        &self,
        s: LstmStep,
        gates: &Buffer,
        cells: &Buffer,
        dh: &Buffer,
        dc: &Buffer,
    ) -> Result<Command> {
        self.record(
            |g| g.lstm_cell_backward(s, gates.gpu()?, cells.gpu()?, dh.gpu()?, dc.gpu()?),
            || {
                Ok(CpuOp::LstmBackward {
                    step: s,
                    gates: gates.cpu()?.clone(),
                    cells: cells.cpu()?.clone(),
                    dh: dh.cpu()?.clone(),
                    dc: dc.cpu()?.clone(),
                })
            },
        )
    }

    /// Records one Adam step on `grad.len()` parameters of `param` from element `param.1`.
    pub fn adam(&self, s: AdamStep, grad: &Buffer, param: (&Buffer, usize), m: &Buffer, v: &Buffer) -> Result<Command> {
        if param.1 + grad.len() > param.0.len() || m.len() < grad.len() || v.len() < grad.len() {
            bail!("Adam step over {} parameters past the end of a buffer", grad.len());
        }
        self.record(
            |g| g.adam(s, grad.gpu()?, (param.0.gpu()?, param.1), m.gpu()?, v.gpu()?),
            || {
                Ok(CpuOp::Adam {
                    step: s,
                    grad: grad.cpu()?.clone(),
                    param: (param.0.cpu()?.clone(), param.1),
                    m: m.cpu()?.clone(),
                    v: v.cpu()?.clone(),
                })
            },
        )
    }

    /// Makes a recorded [`Device::adam`] command take step `s` (learning rate, betas and step number),
    /// so that one recording serves every step. Errors: `cmd` is not an Adam step.
    pub fn set_adam_step(&self, cmd: &mut Command, s: AdamStep) -> Result<()> {
        match (self, cmd) {
            (Device::Wgpu(g), Command::Wgpu(d)) => {
                g.set_adam_step(d, s);
                Ok(())
            }
            (Device::Cpu(_), Command::Cpu(op)) => match op.as_mut() {
                CpuOp::Adam { step, .. } => {
                    *step = s;
                    Ok(())
                }
                _ => bail!("set_adam_step: the command is not an Adam step"),
            },
            _ => bail!("set_adam_step: the command belongs to another backend"),
        }
    }

    /// Records the copy of each run's mini-batch (images and labels) out of the dataset.
    pub fn select_images(
        &self,
        s: Selection,
        src: (&Buffer, &Buffer),
        idx: &Buffer,
        dst: (&Buffer, &Buffer),
    ) -> Result<Command> {
        self.record(
            |g| g.select_images(s, (src.0.gpu()?, src.1.gpu()?), idx.gpu()?, (dst.0.gpu()?, dst.1.gpu()?)),
            || {
                Ok(CpuOp::Select {
                    sel: s,
                    src: (src.0.cpu()?.clone(), src.1.cpu()?.clone()),
                    idx: idx.cpu()?.clone(),
                    dst: (dst.0.cpu()?.clone(), dst.1.cpu()?.clone()),
                })
            },
        )
    }

    /// Per-row dot products x_b . y_b, accumulated in f64 (only scalars reach the host).
    pub fn dot(&self, x: Rows, y: Rows) -> Result<Vec<f64>> {
        same_shape("dot", &x, &y)?;
        match self {
            Device::Wgpu(g) => g.dot(x.gpu()?, y.gpu()?),
            Device::Cpu(c) => Ok(c.dot(&x.cpu()?, &y.cpu()?)),
        }
    }

    /// Per-row sums.
    pub fn sum(&self, x: Rows) -> Result<Vec<f64>> {
        match self {
            Device::Wgpu(g) => g.sum(x.gpu()?),
            Device::Cpu(c) => Ok(c.sum(&x.cpu()?)),
        }
    }

    /// y_b <- y_b + a_b x_b for every row b, now.
    pub fn axpy(&self, a: &[f32], x: Rows, y: Rows) -> Result<()> {
        let cmd = self.axpy_command(a, x, y)?;
        self.submit(&[&cmd]);
        Ok(())
    }

    /// The recorded form of [`Device::axpy`], to submit many times (e.g. every SGD step).
    pub fn axpy_command(&self, a: &[f32], x: Rows, y: Rows) -> Result<Command> {
        same_shape("axpy", &x, &y)?;
        if a.len() != x.rows {
            bail!("axpy needs one coefficient per row ({} rows, {} coefficients)", x.rows, a.len());
        }
        self.record(
            |g| g.axpy_dispatch(a, x.gpu()?, y.gpu()?),
            || Ok(CpuOp::Axpy { coef: a.to_vec(), x: x.cpu()?, y: y.cpu()? }),
        )
    }

    /// Records y_b <- y_b + a_b x_b with a_b from a [`Coef`] (read when the command runs).
    pub fn axpy_at(&self, a: Coef, x: Rows, y: Rows) -> Result<Command> {
        same_shape("axpy", &x, &y)?;
        a.check(x.rows)?;
        self.record(
            |g| g.axpy_at(a.gpu()?, x.gpu()?, y.gpu()?),
            || Ok(CpuOp::AxpyAt { coef: a.cpu()?, x: x.cpu()?, y: y.cpu()? }),
        )
    }

    /// Records y_b <- a_b y_b with a_b from a [`Coef`].
    pub fn scale_at(&self, a: Coef, y: Rows) -> Result<Command> {
        a.check(y.rows)?;
        self.record(|g| g.scale_at(a.gpu()?, y.gpu()?), || Ok(CpuOp::ScaleAt { coef: a.cpu()?, y: y.cpu()? }))
    }

    /// Records y_b <- x_b for every row, or only for the rows whose flag `when` is not 0.
    pub fn copy_rows(&self, x: Rows, y: Rows, when: Option<Coef>) -> Result<Command> {
        same_shape("copy", &x, &y)?;
        if let Some(w) = &when {
            w.check(x.rows)?;
        }
        self.record(
            |g| g.copy_rows(x.gpu()?, y.gpu()?, when.as_ref().map(Coef::gpu).transpose()?),
            || Ok(CpuOp::CopyRows { x: x.cpu()?, y: y.cpu()?, when: when.as_ref().map(Coef::cpu).transpose()? }),
        )
    }

    /// Records the per-row dot products d_b = x_b . y_b and `op` applied to row b of `scalars`
    /// (`width` scalars per row, laid out as [`crate::ops::LbfgsScalars`]); nothing reaches the host.
    /// Precision: f32 partial sums (per workgroup on a GPU, per 4096 elements on the CPU) added in order
    /// in f64 (CPU) or with compensated f32 sums into a double-f32 (GPU: WGSL has no f64); `op` computes
    /// in f64 (CPU) or double-f32 (GPU) and stores double-f32 scalars.
    pub fn reduce(&self, x: Rows, y: Rows, scalars: &Buffer, width: usize, op: Reduced) -> Result<Command> {
        same_shape("dot", &x, &y)?;
        if x.rows * width > scalars.len() {
            bail!("{} rows of {width} scalars do not fit in a buffer of {}", x.rows, scalars.len());
        }
        match self {
            Device::Wgpu(g) => {
                Ok(Command::WgpuSeq(g.reduce_dispatches(x.gpu()?, y.gpu()?, scalars.gpu()?, width, op)?))
            }
            Device::Cpu(_) => Ok(Command::Cpu(Box::new(
                CpuOp::Reduce { x: x.cpu()?, y: y.cpu()?, scalars: scalars.cpu()?.clone(), width, op }.checked()?,
            ))),
        }
    }

    /// y_b <- a_b y_b for every row b, now.
    pub fn scale(&self, a: &[f32], y: Rows) -> Result<()> {
        if a.len() != y.rows {
            bail!("scale needs one coefficient per row ({} rows, {} coefficients)", y.rows, a.len());
        }
        match self {
            Device::Wgpu(g) => g.scale(a, y.gpu()?),
            Device::Cpu(c) => {
                c.scale(a, &y.cpu()?);
                Ok(())
            }
        }
    }
}

/// Checks that a product stays inside its buffers (the GPU would read garbage, the CPU must not).
fn check_product(p: &Product, a: &(Source, Layout), b: &(Source, Layout), c: &(&Buffer, Layout)) -> Result<()> {
    use crate::ops::layout_end;
    if a.1.group.is_some() {
        bail!("matrix product: operand A cannot be grouped");
    }
    let images_scale = |s: &Source| if s.is_images() && matches!(s.buffer(), Buffer::Wgpu(_)) { 4 } else { 1 };
    let fits = [
        ("A", layout_end(&a.1, p.batches, p.m, p.k), a.0.buffer().len() * images_scale(&a.0)),
        ("B", layout_end(&b.1, p.batches, p.k, p.n), b.0.buffer().len() * images_scale(&b.0)),
        ("C", layout_end(&c.1, p.batches, p.m, p.n), c.0.len()),
    ];
    for (name, end, len) in fits {
        if end > len {
            bail!(
                "matrix product {}x{}x{} (x{}): operand {name} reaches element {end} of a buffer of {len}",
                p.m,
                p.n,
                p.k,
                p.batches
            );
        }
    }
    Ok(())
}
