//! The run record every sampler returns.

use serde::{Deserialize, Serialize};

/// Statistics of one transition `t` (drawing `x_{t-1}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    /// Kernel proposals computed at this transition.
    pub computed_proposals: u64,
    /// Proposals counted up to each acceptance.
    pub sequential_proposals: u64,
    /// Accepted children per sequential proposal.
    pub acceptance_rate: f64,
    /// Mean over prefixes of the clipping-TV estimate
    /// `sum (w_i - 1)_+ / sum w_i` (0 when no proposal exceeded the envelope).
    pub tv_clip: f64,
    /// Effective sample size after reweighting, for weighted samplers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ess: Option<f64>,
}

/// Summary of one sampler run. Proposal counts are kernel calls; values are
/// in log units and rewards in reward units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub method: String,
    /// Samples returned.
    pub samples: usize,
    /// Transitions `T` per trajectory.
    pub steps: usize,
    pub alpha: f64,
    pub seed: u64,
    /// All kernel proposals computed.
    pub computed_proposals: u64,
    /// Proposals a one-at-a-time sampler would have drawn: up to each
    /// acceptance, or every proposal of a selection method.
    pub sequential_proposals: u64,
    /// `sequential_proposals / samples`.
    pub proposals_per_sample: f64,
    /// `proposals_per_sample / steps`: the N a best-of-N of equal cost would use.
    pub effective_n: f64,
    pub reward_mean: f64,
    pub reward_stderr: f64,
    /// Sum over transitions of the per-step clipping-TV estimates: an
    /// estimate of the bound on the trajectory's TV distance to the chain
    /// tilted by `V^`.
    pub tv_clip_estimate: f64,
    pub wall_seconds: f64,
    /// Reward mean under the exact aligned target, when known in closed form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_reward_mean: Option<f64>,
    /// KS statistic of the first coordinate against the exact target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_pvalue: Option<f64>,
    /// Estimate of `ln E_p[exp(r / alpha)]`, for samplers that produce one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_normalizer_estimate: Option<f64>,
    pub per_step: Vec<StepRecord>,
}

impl RunRecord {
    /// Per-step acceptance rates, ordered from `t = T` down to 1.
    pub fn acceptance_rates(&self) -> Vec<f64> {
        self.per_step.iter().map(|s| s.acceptance_rate).collect()
    }
}
