//! Generative models for lcb: Gaussian-mixture diffusions with closed-form
//! soft values and aligned targets (ground truth for the samplers), and
//! masked diffusion over text (an exact finite-language testbed and a
//! neural denoiser) with rewards on text.

pub mod error;
pub mod gmm;
pub mod text;

pub use error::ModelError;
