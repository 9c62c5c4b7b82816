//! The native CPU backend: the kernel vocabulary ([`crate::ops`]) executed in f32 on the host, matrix
//! products through the `gemm` crate, everything else as plain Rust over slices with `rayon`. One
//! module per op family, mirroring `shaders/<family>.wgsl`, each implementing its family's trait;
//! a recorded operation is a [`CpuCommand`] (the counterpart of a GPU dispatch: the kernel and the
//! buffers it names), run in order when submitted.

mod activation;
mod adam;
mod buffer;
pub mod conv;
mod derived;
pub mod flush;
mod loss;
mod lstm;
pub mod math;
pub mod matmul;
mod output_layer;
mod pool;
mod profile;
mod scratch;
mod select;
pub mod simd;
mod vector;

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::ops::{AdamStep, DeviceBuffer, Memory};
pub use buffer::{distinct, exclusive, CpuBuffer, Exclusive};
pub use flush::Flushed;
pub use profile::OpTime;
pub use simd::Simd;

/// The host as a compute device. Its kernels run with subnormals flushed to zero ([`flush`]).
pub struct Cpu {
    /// Worker threads (rayon's pool).
    pub threads: usize,
    /// The widest SIMD instruction set the `gemm` kernels use here ([`simd_level`]).
    pub simd: String,
    /// The level the element-wise kernels run at ([`Simd::effective`] of what was asked).
    pub kernels: Simd,
    /// Host memory a kernel keeps between calls (the LSTM's per-tile weight gradients, the wide matrix
    /// product's gathered operands), so that no call allocates; commands run one at a time, so one is
    /// enough.
    scratch: Mutex<Vec<f32>>,
    /// Operands derived from buffers, kept until the buffers change (the output layer's W^T, the wide
    /// first-layer product's gathered weights).
    derived: Mutex<derived::Derived>,
    /// Per-operation timing, when asked for ([`Cpu::profile`]).
    profiler: profile::Profiler,
}

impl Cpu {
    /// The CPU backend at the level `LOSSCAPE_SIMD` asks for, or the widest this processor has when
    /// the variable is unset or invalid (with a warning on stderr; [`Cpu::from_env`] refuses instead).
    pub fn new() -> Cpu {
        Cpu::from_env().unwrap_or_else(|e| {
            eprintln!("warning: {e:#}; using {}", Simd::detect().name());
            Cpu::with_simd(Simd::detect())
        })
    }

    /// The CPU backend at the level `LOSSCAPE_SIMD` asks for.
    ///
    /// Errors: the variable names an unknown level or one this processor lacks.
    pub fn from_env() -> Result<Cpu> {
        Ok(Cpu::with_simd(Simd::from_env()?))
    }

    /// The CPU backend with its element-wise kernels at `simd` (or the widest level below it that this
    /// processor has).
    pub fn with_simd(simd: Simd) -> Cpu {
        flush::ensure_workers();
        gemm::set_threading_threshold(GEMM_THREADING_THRESHOLD);
        Cpu {
            threads: rayon::current_num_threads(),
            simd: simd_level(),
            kernels: simd.effective(),
            scratch: Mutex::new(Vec::new()),
            derived: Default::default(),
            profiler: Default::default(),
        }
    }

    /// Starts timing every command submitted from now on, per operation and shape (or stops, with
    /// `on` false), forgetting what was gathered before; [`Cpu::take_profile`] returns it.
    pub fn profile(&self, on: bool) {
        self.profiler.set(on);
    }

    /// The time per operation gathered since [`Cpu::profile`], the longest first, and a fresh start.
    pub fn take_profile(&self) -> Vec<OpTime> {
        self.profiler.take()
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

/// The vector extension the `gemm` crate's f32 products use here: the best of this processor's, but
/// AVX2+FMA at most in a build without the `gemm-avx512` feature (Cargo.toml).
pub fn simd_level() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let level = if cfg!(feature = "gemm-avx512") && std::is_x86_feature_detected!("avx512f") {
            "avx512f"
        } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            "avx2+fma"
        } else if std::is_x86_feature_detected!("avx") {
            "avx"
        } else {
            "sse2"
        };
        level.to_string()
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon".to_string()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar".to_string()
    }
}

/// Runs `work` on one of rayon's worker threads and waits for it (inline when the caller is one),
/// with the pool's other workers kept awake until it is done ([`keep_awake`]).
///
/// Why: a parallel kernel started from a thread outside the pool hands its pieces to the workers and
/// sleeps on a lock until they finish, two thread switches per kernel; an evaluation of B = 1 on
/// 2,000 images or an SGD step on 64 images is dozens of kernels of tens of microseconds each, where
/// those switches cost as much as the work. Started from a worker, a kernel runs its first piece on
/// that worker and the others are stolen by the other workers. The pieces and their order are the
/// same either way, so the results are the same bits.
///
/// A panic in `work` still ends the polling (the flag is set as the panic unwinds), so that it reaches
/// the caller instead of leaving the scope waiting forever for the polling workers.
fn run_in_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    let done = AtomicBool::new(false);
    rayon::scope(|s| {
        let (done, submitter) = (&done, rayon::current_thread_index());
        for _ in 1..rayon::current_num_threads() {
            s.spawn(move |_| keep_awake(done, submitter));
        }
        let _done = Done(done);
        work()
    })
}

/// Sets its flag when dropped: when the work returns, and when a panic unwinds out of it.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs the pool's pending work on this worker until `done`, polling instead of falling asleep; between
/// polls it yields its processor to any other thread that is ready to run.
///
/// Why: between two parallel kernels of a submission, a product too small to split
/// ([`GEMM_THREADING_THRESHOLD`]) or a serial step runs on the submitting worker alone, and rayon
/// puts a worker to sleep soon after it runs out of work; waking it for the next kernel cost
/// 45–50 µs on a 2-core VM, per wake-up (a LeNet SGD step of 2 ms paid it at least once). Polling, a
/// worker steals the next kernel's pieces at once: LeNet's SGD epoch 60–64 → 54–55 ms, the LSTM's
/// 26–27 → 22–24 ms, the autoencoder's L-BFGS iteration 9.2–9.9 → 8.3–8.8 ms; B = 51 unchanged
/// (docs/benchmarks.md). The cost: during a submission the pool's workers show as busy. Between
/// polls a worker calls `std::thread::yield_now`, not a bare spin, so that other processes or threads
/// on the same cores still run: with a spin, `tests/results.rs` (CLI processes run side by side on 2
/// cores) took 22.7 s instead of 18.0; with the yield 19.4–19.9 s, and the same gains as the spin.
///
/// Sound because no job of the pool takes the execution lock ([`exclusive`]): a submission takes it
/// before it enters the pool, so the work this worker may run here never waits on the submission
/// that keeps it awake. The submitting worker can take this job itself while it waits for a stolen
/// piece; it returns at once, to its commands.
fn keep_awake(done: &AtomicBool, submitter: Option<usize>) {
    if rayon::current_thread_index() == submitter {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::yield_now();
        }
    }
}

/// The smallest product, m·n·k, that `gemm` splits over the threads (its default is 48·48·256).
///
/// Why: a split hands work to another thread, and waking an idle thread costs microseconds, more on a
/// virtual machine whose idle processor has halted (the guest's `haltpoll` idle governor polls only
/// after recent wake-ups). An SGD step on 64 images is three dozen commands whose products are
/// 64 × 784 × 50 (2.5 million): split, they ran a 2-core VM's FCP SGD epoch in 0.0064 s, or in
/// 0.0140 s in processes that started with that processor asleep; on one thread, in 0.0056–0.0059 s
/// every time (the autoencoder's 0.0097–0.0188 s became 0.0082–0.0086 s). Products of 2,000 images
/// stay split. The threads a product uses never change its sums' order, so the bits are the same.
const GEMM_THREADING_THRESHOLD: usize = 4_000_000;

/// Elements per parallel task of the element-wise kernels.
const GRAIN: usize = 1 << 14;

/// A recorded operation's kernel: it runs with the backend and under the execution lock.
type Kernel = Box<dyn Fn(&Cpu, &Exclusive) + Send + Sync>;

/// One recorded operation of the CPU backend: its kernel, holding shared handles of the buffers it
/// names, run under the execution lock when submitted.
pub struct CpuCommand {
    run: Kernel,
    /// The operation (and shape), as a profile names it ([`OpTime::op`]).
    op: String,
    /// Floating-point operations of one run (counted for matrix products only).
    flops: f64,
    /// The hyper-parameters of a recorded Adam step, which `set_adam_step` rewrites.
    adam: Option<Arc<Mutex<AdamStep>>>,
}

impl CpuCommand {
    /// Checks an operation's buffers before it is recorded: no output may also be an input or another
    /// output (what makes the views its kernel takes sound; `op` names the operation in the error).
    fn checked(op: &str, outputs: &[&CpuBuffer], inputs: &[&CpuBuffer]) -> Result<Checked> {
        distinct(op, outputs, inputs)?;
        Ok(Checked { op: op.to_string(), flops: 0.0 })
    }
}

/// Proof that an operation's buffers passed [`CpuCommand::checked`], with the operation's name.
struct Checked {
    op: String,
    flops: f64,
}

impl Checked {
    /// Counts `flops` floating-point operations per run of the command, for its profile.
    fn flops(self, flops: f64) -> Checked {
        Checked { flops, ..self }
    }

    /// The command that runs `kernel`, which holds shared handles of the checked buffers.
    fn run(self, kernel: impl Fn(&Cpu, &Exclusive) + Send + Sync + 'static) -> CpuCommand {
        CpuCommand { run: Box::new(kernel), op: self.op, flops: self.flops, adam: None }
    }
}

impl DeviceBuffer for CpuBuffer {
    fn len(&self) -> usize {
        self.len
    }
    fn same(&self, other: &Self) -> bool {
        CpuBuffer::same(self, other)
    }
    fn pixels_per_element(&self) -> usize {
        1
    }
}

impl Memory for Cpu {
    type Buffer = CpuBuffer;
    type Command = CpuCommand;

    fn zeros(&self, len: usize, _label: &str) -> Result<CpuBuffer> {
        Ok(CpuBuffer::new(vec![0.0; len]))
    }

    fn upload<T: bytemuck::Pod>(&self, data: &[T], _label: &str) -> Result<CpuBuffer> {
        Ok(CpuBuffer::new(bytemuck::cast_slice(data).to_vec()))
    }

    /// Each pixel the f32 value b / 255, so the kernels read images like any f32 operand.
    fn upload_images(&self, pixels: &[u8], _label: &str) -> Result<CpuBuffer> {
        Ok(CpuBuffer::new(pixels.iter().map(|&b| b as f32 / 255.0).collect()))
    }

    fn image_elements(&self, pixels: usize) -> usize {
        pixels
    }

    fn write<T: bytemuck::Pod>(&self, dst: &CpuBuffer, offset: usize, data: &[T]) -> Result<()> {
        let data: &[f32] = bytemuck::cast_slice(data);
        if offset + data.len() > dst.len {
            bail!("write of {} elements past the end of a {}-element buffer", data.len(), dst.len);
        }
        let l = exclusive();
        dst.view_mut(&l)[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// Copies `len` elements between buffers (the same buffer allowed).
    fn copy(&self, src: &CpuBuffer, src_off: usize, dst: &CpuBuffer, dst_off: usize, len: usize) -> Result<()> {
        if src_off + len > src.len || dst_off + len > dst.len {
            bail!("copy of {len} elements past the end of a buffer");
        }
        let l = exclusive();
        if src.same(dst) {
            dst.view_mut(&l).copy_within(src_off..src_off + len, dst_off);
        } else {
            dst.view_mut(&l)[dst_off..dst_off + len].copy_from_slice(&src.view(&l)[src_off..src_off + len]);
        }
        Ok(())
    }

    fn read<T: bytemuck::Pod>(&self, src: &CpuBuffer, offset: usize, len: usize) -> Result<Vec<T>> {
        if offset + len > src.len {
            bail!("read of {len} elements past the end of a {}-element buffer", src.len);
        }
        let l = exclusive();
        Ok(bytemuck::cast_slice(&src.view(&l)[offset..offset + len]).to_vec())
    }

    fn wait(&self) -> Result<()> {
        Ok(())
    }

    /// Runs the commands in order, with subnormals flushed to zero ([`flush`]), on one of rayon's
    /// workers (see `run_in_pool`).
    fn submit(&self, commands: &[&CpuCommand]) {
        let _flush = Flushed::new();
        let lock = exclusive();
        if self.profiler.on() {
            run_in_pool(|| {
                for c in commands {
                    let t = std::time::Instant::now();
                    (c.run)(self, &lock);
                    self.profiler.add(&c.op, c.flops, t.elapsed());
                }
            });
        } else {
            run_in_pool(|| commands.iter().for_each(|c| (c.run)(self, &lock)));
        }
    }

    fn submit_read(&self, commands: &[&CpuCommand], reads: &[(&CpuBuffer, usize, usize)]) -> Result<Vec<Vec<f32>>> {
        self.submit(commands);
        reads.iter().map(|&(b, o, l)| self.read(b, o, l)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::time::Duration;

    /// Runs `f` on another thread and fails if it has not returned within a minute (a worker that
    /// never stops polling would hang the submission instead of failing it).
    fn returns<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("{what} did not return"))
    }

    /// The submitting worker can take one of its own polling jobs while it waits for a stolen piece;
    /// that job must hand the worker back to the commands at once, whatever `done` says.
    #[test]
    fn the_submitting_worker_does_not_poll_for_its_own_submission() {
        returns("keep_awake on the submitting worker", || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            pool.install(|| keep_awake(&AtomicBool::new(false), rayon::current_thread_index()));
        });
    }

    /// A panic in a submission's work reaches the submitter; the polling workers stop (before, they
    /// polled forever and the scope waited for them: a failing kernel hung the process).
    #[test]
    fn a_panic_in_a_submission_reaches_the_caller_instead_of_hanging() {
        let caught = returns("the panicking submission", || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            pool.install(|| std::panic::catch_unwind(|| run_in_pool(|| panic!("a kernel failed"))).is_err())
        });
        assert!(caught, "the panic reached the caller");
    }

    /// Submissions of parallel work, from several threads at once beside plain parallel work on the
    /// same pool (as parallel tests do), all return, with the sums of the work they were given.
    #[test]
    fn submissions_beside_other_parallel_work_finish_with_their_results() {
        let sums = returns("the submissions", || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            let pool = Arc::new(pool);
            let threads: Vec<_> = (0..4u64)
                .map(|t| {
                    let pool = pool.clone();
                    std::thread::spawn(move || {
                        (0..50u64)
                            .map(|i| {
                                let work = || (0..20_000u64).into_par_iter().map(|x| x * (t + i + 1)).sum::<u64>();
                                if t % 2 == 0 {
                                    let _lock = exclusive();
                                    pool.install(|| run_in_pool(work))
                                } else {
                                    pool.install(work)
                                }
                            })
                            .sum::<u64>()
                    })
                })
                .collect();
            threads.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        });
        let want = |t: u64| (0..50u64).map(|i| (0..20_000u64).sum::<u64>() * (t + i + 1)).sum::<u64>();
        assert_eq!(sums, (0..4).map(want).collect::<Vec<_>>());
    }
}
