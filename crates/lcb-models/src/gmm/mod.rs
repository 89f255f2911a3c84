//! Gaussian-mixture diffusions with closed-form ground truth.

pub mod config;
pub mod diffusion;
pub mod kernels;
pub mod mixture;
pub mod reward;
pub mod schedule;
pub mod target;
pub mod value;

pub use config::{GmmConfig, GmmSetup, MixtureSpec, PRESETS};
pub use diffusion::Diffusion;
pub use kernels::{DdpmKernel, ExactKernel};
pub use mixture::Mixture;
pub use reward::{GmmReward, RowReward};
pub use schedule::{Schedule, ScheduleSpec};
pub use target::AlignedTarget;
pub use value::MixtureValue;
