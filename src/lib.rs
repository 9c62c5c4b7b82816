//! losscape: how optimizers shape neural-network loss landscapes, on the GPU.
//!
//! The core is one batched primitive, [`model::Evaluator`]: the loss and gradient of B weight vectors of
//! a network on a set of MNIST images, in one stream of GPU dispatches. Data flows one way:
//! `cli` -> algorithms (`bench`) -> `model` -> `gpu`.

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod data;
pub mod gpu;
pub mod io;
pub mod model;
pub mod optim;
pub mod path;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod train;
