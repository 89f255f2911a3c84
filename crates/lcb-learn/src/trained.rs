//! The result of training: network, `lambda_t`, `tau_t` and the training history.

use lcb_core::{Baseline, LearnedEnvelope, SampleError};
use serde::{Deserialize, Serialize};

use crate::baseline::NetworkBaseline;
use crate::config::TrainConfig;

/// Record of training at one transition `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    /// The sample objective `J` (log units) at every gradient step, before
    /// that step's update.
    pub losses: Vec<f64>,
    /// `lambda_t` after training at this step.
    pub lambda: f64,
    /// `tau_t` calibrated right after training at this step (log units).
    pub tau: f64,
    /// Accepted children per proposal while the particles advanced.
    pub accept_rate: f64,
    /// Proposals counted up to each particle's acceptance.
    pub proposals: u64,
    /// Mean clipping-TV estimate of the advance.
    pub tv_clip: f64,
}

/// Record of the final calibration pass at one transition `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationLog {
    pub step: usize,
    /// `tau_t` of the final network (log units).
    pub tau: f64,
    pub accept_rate: f64,
    pub proposals: u64,
    pub tv_clip: f64,
}

/// The record of a training run, ordered from `t = T` down to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingHistory {
    pub steps: Vec<StepLog>,
    pub final_pass: Vec<CalibrationLog>,
    /// `tau[t - 1]` as calibrated during training, before the final pass.
    pub tau_during_training: Vec<f64>,
    /// Wall time of the whole run, final pass included.
    pub wall_seconds: f64,
}

impl TrainingHistory {
    /// Returns every objective value in training order (`t = T` first).
    pub fn loss_trajectory(&self) -> Vec<f64> {
        self.steps.iter().flat_map(|step| step.losses.iter().copied()).collect()
    }
}

/// A trained learned-Chernoff baseline: everything inference needs.
///
/// The envelope at transition `t` is `b_theta(y, t) + tau[t - 1]` in log units.
#[derive(Debug, Clone)]
pub struct TrainedBaseline {
    pub network: NetworkBaseline,
    /// `lambda[t - 1]` is `lambda_t`.
    pub lambda: Vec<f64>,
    /// `tau[t - 1]` is `tau_t` from the final calibration pass.
    pub tau: Vec<f64>,
    pub history: TrainingHistory,
    pub config: TrainConfig,
}

impl TrainedBaseline {
    /// Returns the baseline and `tau_t` (`tau[t - 1]` for `t = 1..=T`) to
    /// build an envelope from.
    pub fn envelope_parts(&self) -> (&dyn Baseline<Elem = f64>, Vec<f64>) {
        (&self.network, self.tau.clone())
    }

    /// Builds the LCB envelope `min(b_theta(y, t) + tau_t, cap)`.
    pub fn envelope(&self, cap: Option<f64>) -> Result<LearnedEnvelope<'_, f64>, SampleError> {
        LearnedEnvelope::new(&self.network, self.tau.clone(), cap)
    }

    /// Returns every objective value in training order, as
    /// [`TrainingHistory::loss_trajectory`] does.
    pub fn loss_trajectory(&self) -> Vec<f64> {
        self.history.loss_trajectory()
    }

    /// Number of transitions `T`.
    pub fn steps(&self) -> usize {
        self.tau.len()
    }
}
