//! Paths between solutions: the batched FourierPathFinder and its Bezier and polygonal-chain siblings,
//! alignment of each pair's endpoints and its summary, pair sampling and resumable sweeps, and the
//! 2-D toy landscape of Fig. 3.

pub mod alignment;
pub mod batching;
pub mod convergence;
pub mod curve;
pub mod finder;
mod outcome;
pub mod pairs;
pub mod sweep;
pub mod toy;

pub use convergence::{ConvergenceRule, Trace};
pub use curve::Curve;
pub use finder::{Ends, PathFinder, PathOptions, PathOutcome, PathSettings};
