//! Learned Chernoff baselines: a network `b_theta(y, t)` trained with burn so
//! that the envelope `b_theta(y, t) + tau_t` makes envelope rejection cheap.
//!
//! [`train`] fits the network along the aligned trajectory of any
//! [`lcb_core::Kernel`] and [`lcb_core::Value`] (log units, `V_0 = r / alpha`)
//! by minimising the Chernoff objective
//!
//! ```text
//! J = ( ln(1/delta) + ln mean exp(lambda s) ) / lambda + ln mean exp(-s),   s = V^_{t-1}(x) - b(y, t),
//! ```
//!
//! an upper bound on the log of the expected proposal count per accepted
//! child, calibrates `tau_t` and returns a [`TrainedBaseline`], which
//! implements the envelope through [`lcb_core::LearnedEnvelope`] and saves to
//! a checkpoint directory. The network trains on the ndarray, flex or wgpu
//! backend ([`Backend`]) and runs inference on a CPU one.

pub mod backend;
pub mod baseline;
mod calibrate;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod files;
pub mod network;
mod objective;
mod pilot;
pub mod tokens;
pub mod train;
pub mod trained;
pub mod value;

pub use backend::Backend;
pub use baseline::NetworkBaseline;
pub use checkpoint::{CheckpointExpectations, CheckpointInfo, Manifest, read_manifest};
pub use config::{LambdaConfig, TrainConfig};
pub use error::{CheckpointError, LearnError};
pub use network::{NetworkConfig, Normalization, TokenInput};
pub use train::train;
pub use trained::{CalibrationLog, StepLog, TrainedBaseline, TrainingHistory};
pub use tokens::{OneHot, OneHotKernel, OneHotValue, TokenBaseline, TokenValue};
pub use value::{NetworkValue, TrainedValue, ValueConfig, ValueHistory, fit_value};
