//! Networks: parameter layouts, seeded initialisation, hidden-unit permutations and weight matching, each network's
//! backend-neutral loss/gradient plan (of the [`crate::ops::plan`] vocabulary) and what it costs, the
//! evaluator that runs plans on a device, and the f64 CPU reference.

mod basis;
mod builder;
mod cost;
pub mod description;
mod evaluator;
mod generic;
mod init;
pub mod input;
mod line;
mod lstm;
pub mod matching;
mod mlp;
pub mod onnx;
mod parse;
mod permutation;
mod plans;
pub mod reference;
mod registry;
mod spec;
pub mod symmetry;
pub mod walk;

pub use crate::ops::plan::Plan;
pub use basis::{Basis, BasisPrefixes, FirstLayer};
pub use cost::{dispatch_goal, evaluator_bytes, per_vector_evaluator_bytes, plan_evaluation, EvaluationPlan};
pub use description::Description;
pub use evaluator::{Eval, Evaluator, Want};
pub use generic::rows_table;
pub use init::{init_vector, init_vectors};
pub use input::{check_input, InputMismatch, INPUT_PIXELS, INPUT_SHAPE};
pub use line::{Line, BASIS_SHARE};
pub use lstm::SHAPE as LSTM_SHAPE;
pub use matching::{weight_matching, MatchSettings, Matching};
pub use permutation::{lstm_permutation, randperm, Mt19937};
pub use plans::{
    batch_fits, batch_fits_for, check_plans, chunk_capacity, chunk_capacity_aimed, chunk_capacity_for, width,
    width_for, CACHE_FLOOR_IMAGES, MAX_CHUNK_IMAGES,
};
pub use registry::{Model, ModelRecord, TensorSpec};
pub use spec::{Arch, Network};
pub use symmetry::Symmetry;
