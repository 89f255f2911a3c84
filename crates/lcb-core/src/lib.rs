//! Sampling maths for inference-time alignment with Learnable Chernoff
//! Baselines, independent of any model or tensor backend.
//!
//! A pretrained generative model is a chain of reverse kernels
//! `p_t(x_{t-1} | x_t)`. A reward `r` and a temperature `alpha > 0` define the
//! aligned target `p*(x_{0:T}) ~ p(x_{0:T}) exp(r(x_0) / alpha)`, whose
//! kernels are the tilts `p_t(x|y) exp(V_{t-1}(x) - V_t(y))` by the soft
//! value `V_t(y) = ln E[exp(r(x_0) / alpha) | x_t = y]` (log units). Every
//! sampler here draws from those tilts using only proposals from `p_t`,
//! through envelope rejection ([`rejection`]) with an envelope chosen by the
//! method ([`envelope`]).

pub mod chernoff;
pub mod envelope;
pub mod error;
pub mod logmath;
pub mod record;
pub mod rejection;
pub mod rng;
pub mod rollout;
pub mod guided;
pub mod samplers;
pub mod smc;
pub mod special;
pub mod stats;
pub mod traits;

pub use envelope::{AnalyticEnvelope, BallBound, GaussianComponent, GaussianKernel, GlobalBound, LearnedEnvelope};
pub use error::{ComponentError, ComponentResult, SampleError, check_alpha};
pub use record::{RunRecord, StepRecord};
pub use rejection::{Guide, Limits, StepOutcome, advance};
pub use rng::{Lane, Stream, StreamKey};
pub use samplers::{Method, Problem, RunOptions, SampleOutput, Selection, global_bound, sample};
pub use traits::{Baseline, Envelope, Kernel, NoProgress, Progress, Reward, StateElem, Value};
pub use guided::{GuidedConfig, GuidedSelection, sample_guided};
pub use smc::{Potential, Resampling, SmcConfig, WeightedParticles, effective_sample_size, run_smc, sample_smc};
pub use rollout::RolloutValue;
