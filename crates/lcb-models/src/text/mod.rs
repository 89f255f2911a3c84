//! Masked diffusion over text: token-id states with a mask id.
//!
//! - [`finite`]: the exact finite-language testbed, with exact reverse
//!   kernel, soft values and aligned target by enumeration;
//! - [`step_kernel`]: LLaDA-style reverse steps over any [`Denoiser`];
//! - [`transformer`], [`model`], [`train`]: a bidirectional transformer
//!   denoiser in burn, its masked-diffusion training and checkpoints;
//! - [`reward`], [`command`]: rewards on decoded text, built in or computed
//!   by an external command.

pub mod backend;
pub mod checkpoint;
pub mod command;
pub mod corpus;
pub mod denoiser;
pub mod error;
pub mod finite;
pub mod generate;
pub mod model;
pub mod objective;
pub mod reward;
pub mod schedule;
pub mod step_kernel;
pub mod tokenizer;
pub mod train;
pub mod transformer;

pub use backend::Backend;
pub use command::{CommandError, CommandScorer};
pub use corpus::Corpus;
pub use denoiser::Denoiser;
pub use error::{CheckpointError, TextError};
pub use finite::{FiniteLanguage, FiniteLanguageKernel, FiniteLanguageValue};
pub use generate::{GenerateOptions, generate, generate_tokens};
pub use model::TextModel;
pub use objective::HeldoutLoss;
pub use reward::{LengthScorer, RegexScorer, TextReward, TextRewardSpec, TextScorer, WordListScorer};
pub use schedule::RevealSchedule;
pub use step_kernel::{Remasking, StepKernel, StepKernelConfig};
pub use tokenizer::CharTokenizer;
pub use train::{TrainConfig, TrainEvent, TrainSummary, train};
pub use transformer::{DenoiserConfig, ModelShape, Transformer};
