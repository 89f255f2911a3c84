//! Rewards on `x_0` with closed-form soft values under a Gaussian mixture.

use lcb_core::{ComponentResult, Reward};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};

/// A reward `r(x_0)` in reward units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GmmReward {
    /// `r = w . x`: unbounded, so no global bound exists and per-step RS is
    /// impossible.
    Linear { weights: Vec<f64> },
    /// `r = scale * 1[x[coordinate] < threshold]`, bounded by `max(scale, 0)`.
    Step {
        scale: f64,
        coordinate: usize,
        threshold: f64,
    },
}

impl GmmReward {
    /// The paper preset's reward: `1[x_1 < -7]` on the first coordinate.
    pub fn paper() -> Self {
        Self::Step {
            scale: 1.0,
            coordinate: 0,
            threshold: -7.0,
        }
    }

    /// Checks the reward against the data dimension `d`.
    pub fn validate(&self, d: usize) -> Result<(), ModelError> {
        match self {
            Self::Linear { weights } => {
                if weights.len() != d {
                    return Err(ModelError::Dimension {
                        what: "reward.weights".into(),
                        expected: d,
                        actual: weights.len(),
                    });
                }
                if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
                    return Err(invalid("reward.weights", format!("value {w} is not finite")));
                }
            }
            Self::Step {
                scale,
                coordinate,
                threshold,
            } => {
                if *coordinate >= d {
                    return Err(invalid(
                        "reward.coordinate",
                        format!("coordinate {coordinate} is out of range for dimension {d} (use 0..{d})"),
                    ));
                }
                if !scale.is_finite() || !threshold.is_finite() {
                    return Err(invalid(
                        "reward",
                        format!("scale {scale} and threshold {threshold} must be finite"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `r(x)` for one state.
    #[inline]
    pub fn eval(&self, x: &[f64]) -> f64 {
        match self {
            Self::Linear { weights } => weights.iter().zip(x).map(|(w, v)| w * v).sum(),
            Self::Step {
                scale,
                coordinate,
                threshold,
            } => {
                if x[*coordinate] < *threshold {
                    *scale
                } else {
                    0.0
                }
            }
        }
    }

    /// `r_max`, when the reward is bounded above.
    pub fn bound(&self) -> Option<f64> {
        match self {
            Self::Linear { .. } => None,
            Self::Step { scale, .. } => Some(scale.max(0.0)),
        }
    }
}

/// A [`GmmReward`] on rows of width `d`, as a [`Reward`].
#[derive(Debug, Clone)]
pub struct RowReward {
    pub reward: GmmReward,
    pub dim: usize,
}

impl Reward for RowReward {
    type Elem = f64;

    fn rewards(&self, states: &[f64], out: &mut [f64]) -> ComponentResult {
        for (r, x) in out.iter_mut().zip(states.chunks_exact(self.dim)) {
            *r = self.reward.eval(x);
        }
        Ok(())
    }

    fn upper_bound(&self) -> Option<f64> {
        self.reward.bound()
    }
}
