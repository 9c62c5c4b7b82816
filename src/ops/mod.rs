//! The kernel vocabulary every backend implements, one module per op family (mirroring
//! `shaders/<family>.wgsl`, `cpu/<family>.rs` and `gpu/<family>.rs`): each holds the op's parameters,
//! the checks of a call and the trait a backend implements ([`Backend`] is all of them). Also the
//! operand handles ([`handles`]), what a plan operation is ([`op`]), the per-row scalars of L-BFGS that the reductions write
//! ([`lbfgs_scalars`]), the plan ([`plan`]): a network's evaluation as operations of this vocabulary on
//! numbered tensors, and the part of a plan linear in the weights ([`linear_prefix`]). No device, no
//! network.

pub mod activation;
pub mod adam;
pub mod backend;
pub mod conv;
pub mod handles;
pub mod lbfgs_scalars;
pub mod linear_prefix;
pub mod loss;
pub mod lstm;
pub mod lstm_sequence;
pub mod op;
pub mod output_layer;
pub mod plan;
pub mod pool;
pub mod products;
pub mod select;
pub mod vector;

pub use activation::{Act, Activations};
pub use adam::{AdamStep, AdamSteps};
pub use backend::{Backend, Memory};
pub use conv::{Conv, Convolutions};
pub use handles::{Coef, DeviceBuffer, Rows, Source};
pub use lbfgs_scalars::{LbfgsScalars, Reduced, MIN_CURVATURE_COSINE, RHO_EPSILON, WGSL_CONSTANTS};
pub use linear_prefix::LinearPrefix;
pub use loss::{partial_slots, Head, LossChunk, LossHeads};
pub use lstm::{LstmCells, LstmShape, LstmStep};
pub use lstm_sequence::{LstmLaunch, LstmOperands, LstmSequence, LstmTensor};
pub use op::PlanOp;
pub use output_layer::{OutputLayer, OutputLayers};
pub use pool::{Pool, PoolKind, Pooling};
pub use products::{layout_end, Layout, Product, Products};
pub use select::{Selection, Selections};
pub use vector::VectorOps;
