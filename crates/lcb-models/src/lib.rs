//! Generative models for lcb: Gaussian-mixture diffusions with closed-form
//! soft values and aligned targets (ground truth for the samplers).

pub mod error;
pub mod gmm;

pub use error::ModelError;
