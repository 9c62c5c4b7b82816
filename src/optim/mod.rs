//! Optimizers over GPU-resident weight batches: the line searches and L-BFGS advance R independent
//! runs together, reading back only scalars.

pub mod lbfgs;
pub mod line_search;
pub mod objective;

pub use lbfgs::{Lbfgs, LbfgsHost, LbfgsSettings, StepReport};
pub use line_search::{LineSearch, LineSearchKind, Next};
pub use objective::{BatchObjective, NetworkObjective};
