//! losscape: how optimizers shape neural-network loss landscapes, on the GPU.
//!
//! The core is one batched primitive, [`model::Evaluator`]: the loss and gradient of B weight vectors of
//! a network on a set of MNIST images. Each network is a backend-neutral [`ops::plan::Plan`] (operations
//! of the [`ops`] vocabulary on named tensors) that a [`backend::Device`] executes: the wgpu kernels
//! ([`gpu`]) or the native CPU backend ([`cpu`]). Imports go one way, down the layers
//! (docs/architecture.md, checked by `tests/layers.rs`): `cli` -> study (`planner`, `pipeline`,
//! `report`, `bench`, `plot`) -> algorithms (`train`, `path`, `probe`, `optim`) -> `io` -> `model` ->
//! `data` -> `backend` -> `cpu` | `gpu` -> `ops`, with `analysis` a leaf.

/// `eprintln!` for the whole crate (it shadows std's): a message that cannot be written because
/// standard error is closed or full (`losscape … 2>&1 | head -1`) is dropped, where std's macro panics
/// and would stop a run in the middle of writing its results.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod analysis;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod cpu;
pub mod data;
pub mod gpu;
pub mod io;
pub mod model;
pub mod ops;
pub mod optim;
pub mod path;
pub mod pipeline;
pub mod planner;
pub mod plot;
pub mod probe;
pub mod report;
pub mod train;
