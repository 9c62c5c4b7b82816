//! Probes of the landscape around solutions, beyond the paper: loss surfaces on lines and planes in
//! weight space ([`surface`], with the directions of [`directions`] and the grids of [`grid`]) and
//! Hessian spectra by Lanczos iteration and Hutchinson's trace estimator ([`hessian`]). Both are batched
//! over [`crate::model::Evaluator`]: every grid point, and every Hessian-vector product, is one more
//! weight vector in a batched evaluation. See `docs/probes.md`.

pub mod directions;
pub mod grid;
pub mod hessian;
pub mod surface;
