//! One interface over the compute backends: the wgpu GPU layer ([`crate::gpu`]) and the native CPU
//! backend ([`crate::cpu`]), both implementations of [`crate::ops::Backend`]. Algorithms hold a
//! [`Device`], allocate [`Buffer`]s, record [`Command`]s once and submit them many times; they never
//! know which backend runs them. A `Device` method only forwards: the checks of a call live beside
//! the op's definition in `ops`, the kernels in each backend's op-family modules.

mod choose;
pub mod footprint;
pub mod host_memory;
pub mod profiles;

use anyhow::{bail, Result};
use std::sync::Arc;

pub use crate::cpu::OpTime;
use crate::cpu::{Cpu, CpuBuffer, CpuCommand};
/// The workgroup grid of every GPU kernel launch, as pure functions of its shape (plans are checked
/// against an adapter's limits with them, without a device).
pub use crate::gpu::grids;
pub use crate::gpu::{AdapterSummary, Counts, Subgroups};
use crate::gpu::{Dispatch, Gpu, GpuBuffer};
use crate::ops::{
    AdamStep, AdamSteps, Backend, DeviceBuffer, Layout, Memory, PlanOp, Product, Products, Reduced, Selection,
    Selections, VectorOps,
};
pub use choose::{choose_backend, only_software, BackendKind, DeviceChoice};
pub use footprint::{f32_bytes, Footprint, MemoryLimit};
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

    /// What decides the last bits of this device's results besides the build, for the record of the
    /// writers of a directory ([`crate::io::config::note_device`]): on the CPU backend the instruction
    /// set of `gemm`'s products (the element-wise kernels compute the same bits at every SIMD level
    /// and thread count, docs/backends.md); on a GPU the adapter, its API, its driver (whose shader
    /// compiler rounds) and the reductions' variant.
    pub fn provenance(&self) -> String {
        match self {
            Device::Wgpu(g) => {
                let s = &g.summary;
                let sums = if g.uses_subgroups() { "subgroup sums" } else { "workgroup-tree sums" };
                format!("{} via {}, driver {} {}, {sums}", s.name, s.backend, s.driver, s.driver_info)
            }
            Device::Cpu(c) => format!("the CPU backend (gemm at {})", c.simd),
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

    /// On the CPU backend, starts (`on`) or stops timing every submitted command per operation and
    /// shape ([`crate::cpu::Cpu::profile`]); returns false, doing nothing, on a GPU, whose commands are
    /// timed as whole submissions only.
    pub fn profile(&self, on: bool) -> bool {
        match self {
            Device::Wgpu(_) => false,
            Device::Cpu(c) => {
                c.profile(on);
                true
            }
        }
    }

    /// The time per operation gathered since [`Device::profile`], the longest first (None on a GPU).
    pub fn take_profile(&self) -> Option<Vec<OpTime>> {
        match self {
            Device::Wgpu(_) => None,
            Device::Cpu(c) => Some(c.take_profile()),
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

    /// An image buffer holding `pixels` (bytes, value × 255) as this backend's kernels read them
    /// ([`Memory::upload_images`]).
    pub fn upload_images(&self, pixels: &[u8], label: &str) -> Result<Buffer> {
        Ok(match self {
            Device::Wgpu(g) => Buffer::Wgpu(Memory::upload_images(&**g, pixels, label)?),
            Device::Cpu(c) => Buffer::Cpu(Memory::upload_images(&**c, pixels, label)?),
        })
    }

    /// Elements of an image buffer of `pixels` pixels on this device.
    pub fn image_elements(&self, pixels: usize) -> usize {
        run!(self, d: _B => Memory::image_elements(d, pixels))
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

    /// Records one plan operation ([`PlanOp::record`]); `tensors` holds the plan's tensors in
    /// [`crate::ops::plan::TensorId`] order.
    ///
    /// # Errors
    /// A tensor belongs to the other backend; the op's own checks (an operand past its buffer).
    ///
    /// # Panics
    /// `tensors` is shorter than an id the operation names: a programming error, since the
    /// evaluator binds every tensor of its plan.
    pub fn record(&self, op: &impl PlanOp, tensors: &[Buffer]) -> Result<Command> {
        record!(self, d: B => op.record(d, &tensors.iter().map(B::own).collect::<Result<Vec<_>>>()?))
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
