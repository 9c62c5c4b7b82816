//! Host memory standing in for device buffers on the native CPU backend.
//!
//! Buffers are shared handles (as on a GPU, several recorded operations name the same buffer). Every
//! access goes through [`exclusive`], one process-wide lock, so operations run one at a time in
//! submission order; inside one operation an output may never be one of its inputs (checked), which is
//! what makes the shared and mutable views of a step sound.

use anyhow::{bail, Result};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A buffer's values and its generation: how many mutable views have been taken of it, so that what
/// a kernel derives from the values can be kept until they may have changed ([`CpuBuffer::generation`]).
struct Storage(UnsafeCell<Vec<f32>>, AtomicU64);

// SAFETY: the cell is only touched while `EXEC` is held (see `exclusive`).
unsafe impl Sync for Storage {}
unsafe impl Send for Storage {}

static EXEC: Mutex<()> = Mutex::new(());

/// Holds the CPU backend's execution lock: while it lives, buffer views may be taken.
pub struct Exclusive<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

/// Takes the execution lock (a poisoned lock is taken over: buffers hold plain floats).
pub fn exclusive() -> Exclusive<'static> {
    Exclusive(EXEC.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A buffer of `len` 32-bit elements (f32, or u32 stored bit for bit) in host memory.
#[derive(Clone)]
pub struct CpuBuffer {
    data: Arc<Storage>,
    pub len: usize,
}

impl CpuBuffer {
    /// A buffer holding `values` (at least one element, like a bindable GPU buffer).
    pub fn new(mut values: Vec<f32>) -> CpuBuffer {
        let len = values.len();
        if values.is_empty() {
            values.push(0.0);
        }
        CpuBuffer { data: Arc::new(Storage(UnsafeCell::new(values), AtomicU64::new(0))), len }
    }

    /// Whether two handles name the same buffer.
    pub fn same(&self, other: &CpuBuffer) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    /// A handle that names this buffer without keeping its values alive ([`Named::names`]).
    pub(super) fn named(&self) -> Named {
        Named(Arc::downgrade(&self.data))
    }

    /// The buffer's generation: it changes whenever a mutable view is taken (every write goes through
    /// one), so equal generations, read under the lock, mean equal values since.
    pub fn generation(&self, _lock: &Exclusive) -> u64 {
        self.data.1.load(Ordering::Relaxed)
    }

    /// A shared view.
    pub fn view<'a>(&'a self, _lock: &'a Exclusive) -> &'a [f32] {
        // SAFETY: the lock serialises all access; mutable views are only taken through `view_mut`,
        // whose callers check that no shared view of the same buffer is alive (`distinct`).
        unsafe { &(&*self.data.0.get())[..self.len] }
    }

    /// A mutable view; the caller must hold no other view of this buffer (see [`distinct`]). Taking
    /// it starts a new [`CpuBuffer::generation`].
    #[allow(clippy::mut_from_ref)]
    pub fn view_mut<'a>(&'a self, _lock: &'a Exclusive) -> &'a mut [f32] {
        self.data.1.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `view`; callers establish exclusivity with `distinct` before taking it.
        unsafe { &mut (&mut *self.data.0.get())[..self.len] }
    }
}

/// A buffer named without keeping its values alive: what is kept beside a buffer (`cpu::derived`)
/// must not hold a dropped evaluator's weights in memory. While it lives, no other buffer can take the
/// dropped one's address, so it never names a newer buffer.
pub(super) struct Named(Weak<Storage>);

impl Named {
    /// Whether `buffer` is the buffer this names.
    pub(super) fn names(&self, buffer: &CpuBuffer) -> bool {
        Weak::ptr_eq(&self.0, &Arc::downgrade(&buffer.data))
    }

    /// Whether the named buffer has been dropped.
    pub(super) fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// Fails when an output buffer is also one of the inputs (or another output) of one operation.
pub fn distinct(op: &str, outputs: &[&CpuBuffer], inputs: &[&CpuBuffer]) -> Result<()> {
    for (i, o) in outputs.iter().enumerate() {
        if inputs.iter().chain(&outputs[i + 1..]).any(|x| x.same(o)) {
            bail!("{op}: an output buffer is also read or written by another operand of the same operation");
        }
    }
    Ok(())
}
