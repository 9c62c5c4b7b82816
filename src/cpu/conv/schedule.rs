//! How the kernels share out their tasks: on at most the caller's thread budget (the rayon pool may be
//! larger), with scratch allocated once per worker, into output pieces no two tasks share, and, for
//! the one sum across tasks (the weight gradient), in pieces that do not depend on the thread count.

use rayon::prelude::*;

pub(super) use crate::cpu::scratch::Scratch;

/// Pieces a sum over tasks is split into, whatever the thread count: enough to keep the cores of a
/// large node busy, few enough that their partial sums stay small.
const SUM_PIECES: usize = 32;

/// Runs `f` on every task with per-worker scratch from `init`, on at most `threads` workers.
pub(super) fn run_tasks<T, S, I, F>(tasks: Vec<T>, threads: usize, init: I, f: F)
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, T) + Sync + Send,
{
    if threads <= 1 || tasks.len() <= 1 {
        let mut scratch = init();
        tasks.into_iter().for_each(|t| f(&mut scratch, t));
    } else {
        let min_len = min_len(tasks.len(), threads);
        tasks.into_par_iter().with_min_len(min_len).for_each_init(init, f);
    }
}

/// Folds every task into a sum with `run`, starting from `init()`, and adds the partial sums with
/// `add`, on at most `threads` workers.
///
/// The tasks go in fixed contiguous pieces, each folded in order, then the pieces are added in order:
/// the same inputs give the same bits on every run (rayon's own fold splits as work is stolen) and on
/// every thread count (a cluster's nodes differ in cores, and a sharded run must equal an unsharded
/// one), so the pieces depend on the task count only.
pub(super) fn sum_tasks<T, S, I, R, A>(tasks: &[T], threads: usize, init: I, run: R, add: A) -> S
where
    T: Copy + Sync,
    S: Send,
    I: Fn() -> S + Sync + Send,
    R: Fn(S, T) -> S + Sync + Send,
    A: Fn(S, S) -> S,
{
    let piece = tasks.len().div_ceil(SUM_PIECES).max(1);
    let parts: Vec<S> = if threads <= 1 || tasks.len() <= 1 {
        tasks.chunks(piece).map(|p| p.iter().copied().fold(init(), &run)).collect()
    } else {
        let pieces = tasks.len().div_ceil(piece);
        tasks
            .par_chunks(piece)
            .with_min_len(min_len(pieces, threads))
            .map(|p| p.iter().copied().fold(init(), &run))
            .collect()
    };
    parts.into_iter().reduce(add).unwrap_or_else(init)
}

/// Smallest piece rayon may split `len` tasks into so that at most `threads` workers take part (the
/// current pool may be larger than the caller's budget); 1 when the pool already fits the budget.
fn min_len(len: usize, threads: usize) -> usize {
    if rayon::current_num_threads() <= threads {
        1
    } else {
        len.div_ceil(threads)
    }
}

/// Threads for each matrix product: all of them when there is a single task, else one per task.
pub(super) fn inner_threads(tasks: usize, threads: usize) -> usize {
    if tasks == 1 {
        threads.max(1)
    } else {
        1
    }
}

/// Splits per-vector maps of `map` floats each, stored back to back from the start of `buf`, into
/// disjoint per-block pieces of `block_len` floats: `result[block][vector]`.
pub(super) fn split_blocks(buf: &mut [f32], map: usize, batches: usize, block_len: usize) -> Vec<Vec<&mut [f32]>> {
    let mut per_block: Vec<Vec<&mut [f32]>> = Vec::new();
    if map == 0 {
        return per_block;
    }
    for vector in buf[..batches * map].chunks_mut(map) {
        for (i, piece) in vector.chunks_mut(block_len).enumerate() {
            if per_block.len() <= i {
                per_block.push(Vec::with_capacity(batches));
            }
            per_block[i].push(piece);
        }
    }
    per_block
}
