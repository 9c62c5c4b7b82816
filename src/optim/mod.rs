//! Optimizers over device-resident weight batches: SGD, Adam, the line searches and L-BFGS advance R
//! independent runs together, reading back only losses and a few scalars. The problem is a
//! [`BatchObjective`] (`objective.rs`); each solver has its own settings type and is built on its
//! problem; [`Solver`] is the interface the executor (`train`) drives them through; [`adam`] is the one
//! Adam update, shared with the path finder (`docs/architecture.md`, "Training: problem, solver,
//! executor").

pub mod adam;
pub mod lbfgs;
pub mod line_search;
pub mod minibatch;
pub mod objective;
pub mod solver;

pub use adam::{Adam, AdamSettings, AdamUpdate};
pub use lbfgs::{Lbfgs, LbfgsHost, LbfgsSettings, LbfgsSolver, StepReport};
pub use line_search::{LineSearch, LineSearchKind, Next};
pub use minibatch::{MiniBatch, MiniBatchHost, MiniBatchSettings, Rule};
pub use objective::{BatchObjective, NetworkObjective, RecordedObjective};
pub use solver::Solver;
