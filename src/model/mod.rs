//! Networks: parameter layouts, seeded initialisation, GPU loss/gradient plans and the CPU reference.

mod evaluator;
mod init;
mod lenet;
mod lstm;
mod mlp;
mod permutation;
mod plans;
pub mod reference;
mod spec;

pub use evaluator::{Eval, Evaluator, Network, Want};
pub use init::init_vector;
pub use permutation::{lstm_permutation, randperm, Mt19937};
pub use spec::{Arch, TensorSpec};
