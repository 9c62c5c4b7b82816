//! Paths between solutions: the batched FourierPathFinder, pair sampling and resumable sweeps, and the
//! 2-D toy landscape of Fig. 3.

pub mod fourier;
pub mod pairs;
pub mod sweep;
pub mod toy;

pub use fourier::{PathFinder, PathOutcome, PathSettings};
