//! Settings of baseline training, readable from TOML or JSON.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::LearnError;
use crate::network::NetworkConfig;

/// Rule that sets each step's Chernoff exponent `lambda_t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum LambdaConfig {
    /// `lambda_t = minimum + softplus(theta_t)`, with `theta_t` trained by
    /// Adam on `J` together with the network. Step `T` starts at `initial`
    /// and every later step starts from the previous step's value.
    Learned {
        initial: f64,
        /// Lower bound on `lambda_t`. With `lambda >= 1` the clipped mass
        /// `E[(e^{s - tau} - 1)_+]` is also at most `delta`.
        minimum: f64,
        /// Adam learning rate of `theta_t`.
        learning_rate: f64,
    },
    /// The same `lambda` at every step.
    Fixed { value: f64 },
}

impl Default for LambdaConfig {
    fn default() -> Self {
        LambdaConfig::Learned {
            initial: 2.0,
            minimum: 1.0,
            learning_rate: 0.05,
        }
    }
}

/// Settings of [`crate::train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Number `S` of aligned particles carried along the trajectory.
    pub particles: usize,
    /// Gradient steps per transition, each on one fresh proposal per particle.
    pub iterations_per_step: usize,
    /// Adam learning rate of the network.
    pub learning_rate: f64,
    /// Finished steps replayed at every gradient step: the loss becomes
    /// `J_t` plus the mean `J_r` of `replay_steps` earlier steps `r > t`,
    /// each on its stored particles with one fresh proposal per particle.
    /// 0 trains on `J_t` alone, as the method is described. Replay keeps the
    /// shared network from drifting away from the earlier steps. Each
    /// replayed step costs one more batch per iteration. The default, 1,
    /// cut LCB's proposals on the paper preset at `alpha = 0.2` from 5.4% to
    /// 1.7% of per-step RS's, for twice the training time.
    pub replay_steps: usize,
    pub network: NetworkConfig,
    pub lambda: LambdaConfig,
    /// Tail level of the Chernoff bound, in `(0, 1)`.
    pub delta: f64,
    /// Added to every calibrated `tau_t` (log units, >= 0) as a margin for
    /// the sampling error of the calibration batch. The default, 0.3, brought
    /// the summed clipping-TV estimate on the paper preset at `alpha = 0.2`
    /// from 0.04 to 0.01 for about 30% more proposals.
    pub tau_slack: f64,
    /// Fresh proposals per particle in each calibration batch of `tau_t`.
    pub calibration_proposals: usize,
    /// Valid global bound `B >= sup V^` in log units, such as `r_max / alpha`
    /// for a reward bounded by `r_max`. It caps the envelope while the
    /// particles advance. `None` when no bound is known.
    pub envelope_cap: Option<f64>,
    /// Proposals one particle may use at one transition before training
    /// stops with an error.
    pub max_proposals_per_prefix: u64,
    /// Seed of every random draw: weights, proposals and acceptance tests.
    pub seed: u64,
    /// Backend that trains the network. Inference runs on
    /// [`Backend::inference_backend`].
    pub backend: Backend,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            particles: 1024,
            iterations_per_step: 40,
            learning_rate: 1e-3,
            replay_steps: 1,
            network: NetworkConfig::default(),
            lambda: LambdaConfig::default(),
            delta: 0.1,
            tau_slack: 0.3,
            calibration_proposals: 2,
            envelope_cap: None,
            max_proposals_per_prefix: 1_000_000,
            seed: 0,
            backend: Backend::Flex,
        }
    }
}

fn invalid(name: &'static str, value: impl std::fmt::Display, expected: &'static str) -> LearnError {
    LearnError::InvalidConfig {
        name,
        value: value.to_string(),
        expected,
    }
}

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

impl TrainConfig {
    /// Checks every setting; the error names the first invalid one.
    pub fn validate(&self) -> Result<(), LearnError> {
        if self.particles == 0 {
            return Err(invalid("particles", self.particles, "at least 1, such as 1024"));
        }
        if !positive(self.learning_rate) {
            return Err(invalid(
                "learning_rate",
                self.learning_rate,
                "a finite value > 0, such as 1e-3",
            ));
        }
        self.network.validate()?;
        lcb_core::chernoff::check_delta(self.delta)?;
        if !(self.tau_slack.is_finite() && self.tau_slack >= 0.0) {
            return Err(invalid(
                "tau_slack",
                self.tau_slack,
                "a finite margin >= 0 in log units",
            ));
        }
        if self.calibration_proposals == 0 {
            return Err(invalid("calibration_proposals", 0, "at least 1 proposal per particle"));
        }
        if let Some(cap) = self.envelope_cap
            && !cap.is_finite()
        {
            return Err(invalid(
                "envelope_cap",
                cap,
                "a finite bound on V^ in log units, or none",
            ));
        }
        if self.max_proposals_per_prefix == 0 {
            return Err(invalid("max_proposals_per_prefix", 0, "at least 1"));
        }
        self.validate_lambda()
    }

    fn validate_lambda(&self) -> Result<(), LearnError> {
        match self.lambda {
            LambdaConfig::Fixed { value } => {
                if !positive(value) {
                    return Err(invalid("lambda.value", value, "a finite exponent > 0, such as 2"));
                }
            }
            LambdaConfig::Learned {
                initial,
                minimum,
                learning_rate,
            } => {
                if !(minimum.is_finite() && minimum >= 0.0) {
                    return Err(invalid(
                        "lambda.minimum",
                        minimum,
                        "a finite lower bound >= 0, such as 1",
                    ));
                }
                if !(initial.is_finite() && initial > minimum) {
                    return Err(invalid(
                        "lambda.initial",
                        initial,
                        "a finite value above lambda.minimum",
                    ));
                }
                if !positive(learning_rate) {
                    return Err(invalid(
                        "lambda.learning_rate",
                        learning_rate,
                        "a finite value > 0, such as 0.05",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        TrainConfig::default().validate().unwrap();
    }

    #[test]
    fn partial_json_fills_defaults() {
        let config: TrainConfig = serde_json::from_str(
            r#"{"particles": 64, "lambda": {"mode": "fixed", "value": 3.0}, "backend": "ndarray"}"#,
        )
        .unwrap();
        assert_eq!(config.particles, 64);
        assert_eq!(config.lambda, LambdaConfig::Fixed { value: 3.0 });
        assert_eq!(config.backend, Backend::Ndarray);
        assert_eq!(config.delta, TrainConfig::default().delta);
    }

    #[test]
    fn misspelled_field_is_rejected() {
        let err = serde_json::from_str::<TrainConfig>(r#"{"particle": 64}"#).unwrap_err();
        assert!(err.to_string().contains("particle"), "{err}");
    }

    #[test]
    fn invalid_settings_are_named() {
        let cases: [(TrainConfig, &str); 5] = [
            (
                TrainConfig {
                    particles: 0,
                    ..Default::default()
                },
                "particles",
            ),
            (
                TrainConfig {
                    delta: 1.0,
                    ..Default::default()
                },
                "delta",
            ),
            (
                TrainConfig {
                    tau_slack: -0.1,
                    ..Default::default()
                },
                "tau_slack",
            ),
            (
                TrainConfig {
                    lambda: LambdaConfig::Fixed { value: 0.0 },
                    ..Default::default()
                },
                "lambda.value",
            ),
            (
                TrainConfig {
                    lambda: LambdaConfig::Learned {
                        initial: 0.5,
                        minimum: 1.0,
                        learning_rate: 0.05,
                    },
                    ..Default::default()
                },
                "lambda.initial",
            ),
        ];
        for (config, name) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
