//! One interface over the compute backends: the wgpu GPU layer ([`crate::gpu`]) and the native CPU
//! backend ([`crate::cpu`]), both implementations of [`crate::ops::Backend`]. Algorithms hold a
//! [`Device`], allocate [`Buffer`]s, record [`Command`]s once and submit them many times; they never
//! know which backend runs them. A `Device` method only forwards: the checks of a call live beside
//! the op's definition in `ops`, the kernels in each backend's op-family modules.

mod choose;
pub mod profiles;

use anyhow::{bail, Result};
use std::sync::Arc;

use crate::cpu::{Cpu, CpuBuffer, CpuCommand};
/// The workgroup grid of every GPU kernel launch, as pure functions of its shape (plans are checked
/// against an adapter's limits with them, without a device).
pub use crate::gpu::grids;
pub use crate::gpu::{AdapterSummary, Counts, Subgroups};
use crate::gpu::{Dispatch, Gpu, GpuBuffer};
use crate::ops::{
    Act, Activations, AdamStep, AdamSteps, Backend, Conv, Convolutions, DeviceBuffer, Head, Layout, LossChunk,
    LossHeads, LstmCells, LstmOperands, LstmSequence, LstmStep, Memory, Pool, Pooling, Product, Products, Reduced,
    Selection, Selections, VectorOps,
};
pub use choose::{choose_backend, only_software, BackendKind, DeviceChoice};
use profiles::CPU_BUDGET;
pub use profiles::{ChunkBudget, DEFAULT_GPU_MEMORY, SOFTWARE_GPU_MEMORY, SOFTWARE_TENSOR_BYTES};

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

/// B rows of `len` elements, `stride` apart, inside one device buffer ([`crate::ops::Rows`]).
pub type Rows<'a> = crate::ops::Rows<'a, Buffer>;
/// A per-row coefficient read from a device buffer ([`crate::ops::Coef`]).
pub type Coef<'a> = crate::ops::Coef<'a, Buffer>;
/// A matrix-product or convolution operand ([`crate::ops::Source`]).
pub type Source<'a> = crate::ops::Source<'a, Buffer>;

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
}

impl DeviceBuffer for Buffer {
    fn len(&self) -> usize {
        Buffer::len(self)
    }
    fn same(&self, other: &Self) -> bool {
        Buffer::same(self, other)
    }
    fn pixels_per_element(&self) -> usize {
        match self {
            Buffer::Wgpu(b) => b.pixels_per_element(),
            Buffer::Cpu(b) => b.pixels_per_element(),
        }
    }
}

/// One recorded operation: GPU dispatches run in order, or a CPU operation.
pub enum Command {
    Wgpu(Vec<Dispatch>),
    Cpu(CpuCommand),
}

/// A backend a [`Device`] can hold: how its own buffer handle is found in a [`Buffer`].
trait Wrapped: Backend {
    /// The backend's handle. Errors: the buffer belongs to the other backend.
    fn own(b: &Buffer) -> Result<&Self::Buffer>;
}

impl Wrapped for Gpu {
    fn own(b: &Buffer) -> Result<&GpuBuffer> {
        match b {
            Buffer::Wgpu(b) => Ok(b),
            Buffer::Cpu(_) => bail!("a CPU buffer was handed to the GPU backend"),
        }
    }
}

impl Wrapped for Cpu {
    fn own(b: &Buffer) -> Result<&CpuBuffer> {
        match b {
            Buffer::Cpu(b) => Ok(b),
            Buffer::Wgpu(_) => bail!("a GPU buffer was handed to the CPU backend"),
        }
    }
}

/// Runs `$body` on the open backend, bound to `$d` (its type to `$B`), and returns its value.
macro_rules! run {
    ($device:expr, $d:ident: $B:ident => $body:expr) => {
        match $device {
            Device::Wgpu(g) => {
                type $B = Gpu;
                let $d: &Gpu = g;
                $body
            }
            Device::Cpu(c) => {
                type $B = Cpu;
                let $d: &Cpu = c;
                $body
            }
        }
    };
}

/// Runs `$body` on the open backend like [`run!`] and wraps the command it records.
macro_rules! record {
    ($device:expr, $d:ident: $B:ident => $body:expr) => {
        match $device {
            Device::Wgpu(g) => {
                type $B = Gpu;
                let $d: &Gpu = g;
                Ok(Command::Wgpu($body?))
            }
            Device::Cpu(c) => {
                type $B = Cpu;
                let $d: &Cpu = c;
                Ok(Command::Cpu($body?))
            }
        }
    };
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
            Device::Wgpu(g) => Buffer::Wgpu(Memory::zeros(&**g, len, label)?),
            Device::Cpu(c) => Buffer::Cpu(Memory::zeros(&**c, len, label)?),
        })
    }

    /// A buffer holding `data` (any 32-bit plain type).
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T], label: &str) -> Result<Buffer> {
        if std::mem::size_of::<T>() != 4 {
            bail!("buffer '{label}': device buffers hold 32-bit elements");
        }
        Ok(match self {
            Device::Wgpu(g) => Buffer::Wgpu(Memory::upload(&**g, data, label)?),
            Device::Cpu(c) => Buffer::Cpu(Memory::upload(&**c, data, label)?),
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
        run!(self, d: B => Memory::write(d, B::own(dst)?, offset, data))
    }

    /// Copies `len` elements between buffers on the device (the same buffer allowed on the CPU).
    pub fn copy(&self, src: &Buffer, src_off: usize, dst: &Buffer, dst_off: usize, len: usize) -> Result<()> {
        if src_off + len > src.len() || dst_off + len > dst.len() {
            bail!("copy of {len} elements past the end of a buffer");
        }
        run!(self, d: B => Memory::copy(d, B::own(src)?, src_off, B::own(dst)?, dst_off, len))
    }

    /// Reads `len` elements from `offset` back to the host, after all submitted work.
    pub fn read<T: bytemuck::Pod>(&self, src: &Buffer, offset: usize, len: usize) -> Result<Vec<T>> {
        if std::mem::size_of::<T>() != 4 {
            bail!("device buffers hold 32-bit elements");
        }
        run!(self, d: B => Memory::read(d, B::own(src)?, offset, len))
    }

    /// Blocks until every submitted command has finished.
    pub fn wait(&self) -> Result<()> {
        run!(self, d: _B => Memory::wait(d))
    }

    /// Runs commands in order (on a GPU: queues them as one pass and returns at once). Commands of
    /// the other backend are skipped.
    pub fn submit(&self, commands: &[&Command]) {
        match self {
            Device::Wgpu(g) => Memory::submit(&**g, &gpu_commands(commands)),
            Device::Cpu(c) => Memory::submit(&**c, &cpu_commands(commands)),
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
            Device::Wgpu(g) => Memory::submit_read(&**g, &gpu_commands(commands), &own_reads::<Gpu>(reads)?),
            Device::Cpu(c) => Memory::submit_read(&**c, &cpu_commands(commands), &own_reads::<Cpu>(reads)?),
        }
    }

    /// Runs commands and waits; returns seconds (GPU timestamps where available, else wall clock).
    pub fn submit_timed(&self, commands: &[&Command]) -> Result<f64> {
        match self {
            Device::Wgpu(g) => Memory::submit_timed(&**g, &gpu_commands(commands)),
            Device::Cpu(c) => Memory::submit_timed(&**c, &cpu_commands(commands)),
        }
    }

    /// Records C (+)= A * B for every batch member ([`Products::matmul`]).
    pub fn matmul(
        &self,
        p: Product,
        a: (Source, Layout),
        b: (Source, Layout),
        c: (&Buffer, Layout),
    ) -> Result<Command> {
        record!(self, d: B => d.matmul(p, (a.0.map(B::own)?, a.1), (b.0.map(B::own)?, b.1), (B::own(c.0)?, c.1)))
    }

    /// Records `out = act(z)` over the first `len` elements.
    pub fn activation_forward(&self, act: Act, z: &Buffer, out: &Buffer, len: usize) -> Result<Command> {
        record!(self, d: B => d.activation(act, false, B::own(z)?, B::own(out)?, len))
    }

    /// Records `grad *= act'(z)` over the first `len` elements.
    pub fn activation_backward(&self, act: Act, z: &Buffer, grad: &Buffer, len: usize) -> Result<Command> {
        record!(self, d: B => d.activation(act, true, B::own(z)?, B::own(grad)?, len))
    }

    /// Records a loss head ([`LossHeads::loss_head`]).
    pub fn loss_head(
        &self,
        head: Head,
        chunk: LossChunk,
        outputs: &Buffer,
        targets: &Buffer,
        grad: &Buffer,
        partials: &Buffer,
    ) -> Result<Command> {
        record!(self, d: B => d.loss_head(head, chunk, B::own(outputs)?, B::own(targets)?, B::own(grad)?, B::own(partials)?))
    }

    /// Records out = conv(input) + bias.
    pub fn conv_forward(&self, c: Conv, input: Source, weights: &Buffer, out: &Buffer) -> Result<Command> {
        record!(self, d: B => d.conv_forward(c, input.map(B::own)?, B::own(weights)?, B::own(out)?))
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
        record!(self, d: B => d.conv_weight_grad(c, input.map(B::own)?, B::own(grad_out)?, B::own(grads)?, accumulate))
    }

    /// Records grad_in = d loss / d input from d loss / d out.
    pub fn conv_input_grad(&self, c: Conv, weights: &Buffer, grad_out: &Buffer, grad_in: &Buffer) -> Result<Command> {
        record!(self, d: B => d.conv_input_grad(c, B::own(weights)?, B::own(grad_out)?, B::own(grad_in)?))
    }

    /// Records `out` = `input` pooled (average or max, [`crate::ops::pool`]).
    pub fn pool_forward(&self, pool: Pool, input: &Buffer, out: &Buffer) -> Result<Command> {
        record!(self, d: B => d.pool_forward(pool, B::own(input)?, B::own(out)?))
    }

    /// Records `grad_in` = d loss / d input of a pooling from `grad_out`; `input` is the forward input.
    pub fn pool_backward(&self, pool: Pool, input: &Buffer, grad_out: &Buffer, grad_in: &Buffer) -> Result<Command> {
        record!(self, d: B => d.pool_backward(pool, B::own(input)?, B::own(grad_out)?, B::own(grad_in)?))
    }

    /// Records the permuted-pixel gather of an LSTM chunk.
    pub fn gather_pixels(&self, s: LstmStep, pixels: &Buffer, perm: &Buffer, out: &Buffer) -> Result<Command> {
        record!(self, d: B => d.gather_pixels(s, B::own(pixels)?, B::own(perm)?, B::own(out)?))
    }

    /// Records the LSTM recurrence of a chunk, forward ([`LstmCells::lstm_forward`]).
    pub fn lstm_forward(&self, s: LstmSequence, t: LstmOperands<&Buffer>) -> Result<Command> {
        record!(self, d: B => d.lstm_forward(s, t.try_map(B::own)?))
    }

    /// Records backpropagation through time and the LSTM's weight gradients
    /// ([`LstmCells::lstm_backward`]).
    pub fn lstm_backward(&self, s: LstmSequence, t: LstmOperands<&Buffer>, accumulate: bool) -> Result<Command> {
        record!(self, d: B => d.lstm_backward(s, t.try_map(B::own)?, accumulate))
    }

    /// Records one Adam step on `grad.len()` parameters of `param` from element `param.1`.
    pub fn adam(&self, s: AdamStep, grad: &Buffer, param: (&Buffer, usize), m: &Buffer, v: &Buffer) -> Result<Command> {
        record!(self, d: B => d.adam(s, B::own(grad)?, (B::own(param.0)?, param.1), B::own(m)?, B::own(v)?))
    }

    /// Makes a recorded [`Device::adam`] command take step `s` (learning rate, betas, epsilon and step
    /// number), so that one recording serves every step. Errors: `cmd` is not an Adam step.
    pub fn set_adam_step(&self, cmd: &mut Command, s: AdamStep) -> Result<()> {
        match (self, cmd) {
            (Device::Wgpu(g), Command::Wgpu(c)) => g.set_adam_step(c, s),
            (Device::Cpu(d), Command::Cpu(c)) => d.set_adam_step(c, s),
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
        record!(self, d: B => d.select_images(
            s,
            (B::own(src.0)?, B::own(src.1)?),
            B::own(idx)?,
            (B::own(dst.0)?, B::own(dst.1)?)
        ))
    }

    /// Per-row dot products x_b . y_b, accumulated in f64 (only scalars reach the host).
    pub fn dot(&self, x: Rows, y: Rows) -> Result<Vec<f64>> {
        run!(self, d: B => d.dot(x.map(B::own)?, y.map(B::own)?))
    }

    /// Per-row sums.
    pub fn sum(&self, x: Rows) -> Result<Vec<f64>> {
        run!(self, d: B => d.sum(x.map(B::own)?))
    }

    /// y_b <- y_b + a_b x_b for every row b, now.
    pub fn axpy(&self, a: &[f32], x: Rows, y: Rows) -> Result<()> {
        run!(self, d: B => d.axpy(a, x.map(B::own)?, y.map(B::own)?))
    }

    /// The recorded form of [`Device::axpy`], to submit many times (e.g. every SGD step).
    pub fn axpy_command(&self, a: &[f32], x: Rows, y: Rows) -> Result<Command> {
        record!(self, d: B => d.axpy_command(a, x.map(B::own)?, y.map(B::own)?))
    }

    /// Records y_b <- y_b + a_b x_b with a_b from a [`Coef`] (read when the command runs).
    pub fn axpy_at(&self, a: Coef, x: Rows, y: Rows) -> Result<Command> {
        record!(self, d: B => d.axpy_at(a.map(B::own)?, x.map(B::own)?, y.map(B::own)?))
    }

    /// Records y_b <- a_b y_b with a_b from a [`Coef`].
    pub fn scale_at(&self, a: Coef, y: Rows) -> Result<Command> {
        record!(self, d: B => d.scale_at(a.map(B::own)?, y.map(B::own)?))
    }

    /// Records y_b <- x_b for every row, or only for the rows whose flag `when` is not 0.
    pub fn copy_rows(&self, x: Rows, y: Rows, when: Option<Coef>) -> Result<Command> {
        record!(self, d: B => d.copy_rows(x.map(B::own)?, y.map(B::own)?, when.map(|w| w.map(B::own)).transpose()?))
    }

    /// Records the per-row dot products of `x` and `y` and `op` applied to row b of `scalars`
    /// ([`VectorOps::reduce`]: layout and precision); nothing reaches the host.
    pub fn reduce(&self, x: Rows, y: Rows, scalars: &Buffer, width: usize, op: Reduced) -> Result<Command> {
        record!(self, d: B => d.reduce(x.map(B::own)?, y.map(B::own)?, B::own(scalars)?, width, op))
    }

    /// y_b <- a_b y_b for every row b, now.
    pub fn scale(&self, a: &[f32], y: Rows) -> Result<()> {
        run!(self, d: B => d.scale(a, y.map(B::own)?))
    }
}

/// The GPU commands among `commands`, in order.
fn gpu_commands<'a>(commands: &[&'a Command]) -> Vec<&'a Vec<Dispatch>> {
    commands.iter().filter_map(|c| if let Command::Wgpu(d) = c { Some(d) } else { None }).collect()
}

/// The CPU commands among `commands`, in order.
fn cpu_commands<'a>(commands: &[&'a Command]) -> Vec<&'a CpuCommand> {
    commands.iter().filter_map(|c| if let Command::Cpu(o) = c { Some(o) } else { None }).collect()
}

/// Read ranges with the backend's own buffer handles.
fn own_reads<'a, B: Wrapped>(reads: &[(&'a Buffer, usize, usize)]) -> Result<Vec<(&'a B::Buffer, usize, usize)>> {
    reads.iter().map(|&(b, o, l)| Ok((B::own(b)?, o, l))).collect()
}
