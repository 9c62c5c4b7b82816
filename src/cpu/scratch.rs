//! Scratch memory a CPU kernel's task keeps on its worker thread between calls ([`Scratch`]): the
//! convolutions' im2col and product matrices, the output layer's blocks of outputs and gradients.

use std::cell::Cell;

thread_local! {
    /// This thread's kept scratch matrices (see [`Scratch`]).
    static KEPT: Cell<Option<[Vec<f32>; 2]>> = const { Cell::new(None) };
}

/// Two scratch matrices of at least the asked lengths, taken from the ones this thread kept (grown
/// when short) and given back when dropped.
///
/// Why: a fresh zeroed matrix per task cost as much as the task's product on LeNet's 64-image SGD
/// step (an allocation, a `memset` and the page faults of memory the allocator had just returned to
/// the system).
/// The contents are whatever an earlier kernel left there: every kernel writes what it reads. Taken
/// rather than borrowed, so that a kernel running inside another on the same thread (rayon runs
/// stolen work while a thread waits) gets fresh matrices instead of a conflict.
pub(super) struct Scratch(pub [Vec<f32>; 2]);

impl Scratch {
    pub(super) fn take(first: usize, second: usize) -> Scratch {
        let mut kept = KEPT.take().unwrap_or_default();
        for (v, len) in kept.iter_mut().zip([first, second]) {
            if v.len() < len {
                v.resize(len, 0.0);
            }
        }
        Scratch(kept)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        KEPT.set(Some(std::mem::take(&mut self.0)));
    }
}
