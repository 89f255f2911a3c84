//! Mixture experiments as plain serde configs, with named presets.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};
use crate::gmm::diffusion::Diffusion;
use crate::gmm::kernels::{DdpmKernel, ExactKernel};
use crate::gmm::mixture::Mixture;
use crate::gmm::reward::{GmmReward, RowReward};
use crate::gmm::schedule::{Schedule, ScheduleSpec};
use crate::gmm::target::AlignedTarget;
use crate::gmm::value::MixtureValue;

/// Mixture parameters as written in a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureSpec {
    pub weights: Vec<f64>,
    pub means: Vec<Vec<f64>>,
    /// Full covariances, one `d x d` matrix per component; identity when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariances: Option<Vec<Vec<Vec<f64>>>>,
}

/// A mixture experiment: data, schedule, reward and the default `alpha`
/// and `delta` (command-line options override both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GmmConfig {
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_delta")]
    pub delta: f64,
    pub mixture: MixtureSpec,
    pub schedule: ScheduleSpec,
    pub reward: GmmReward,
}

fn default_alpha() -> f64 {
    1.0
}

fn default_delta() -> f64 {
    0.1
}

/// Names of the built-in presets.
pub const PRESETS: [&str; 2] = ["paper-gmm", "aniso-4d"];

impl GmmConfig {
    /// Returns the Gaussian-mixture setting of Madhow et al., "Learnable Chernoff
    /// Baselines for Inference-Time Alignment": `d = 2`, means `(+-5, 0)`,
    /// identity covariances, weights 0.95 / 0.05, the paper schedule with
    /// `T = 20`, reward `1[x_1 < -7]`, `alpha = 0.2`, `delta = 0.1`.
    pub fn paper() -> Self {
        Self {
            alpha: 0.2,
            delta: 0.1,
            mixture: MixtureSpec {
                weights: vec![0.95, 0.05],
                means: vec![vec![5.0, 0.0], vec![-5.0, 0.0]],
                covariances: None,
            },
            schedule: ScheduleSpec::paper(),
            reward: GmmReward::paper(),
        }
    }

    /// Returns a 3-component anisotropic mixture in 4 dimensions with a linear
    /// reward: no global bound exists, so only envelopes that follow the
    /// value (LCB) can sample it.
    pub fn aniso_4d() -> Self {
        Self {
            alpha: 1.0,
            delta: 0.1,
            mixture: MixtureSpec {
                weights: vec![0.5, 0.3, 0.2],
                means: vec![
                    vec![2.0, 0.0, -1.0, 0.0],
                    vec![-2.0, 1.0, 0.0, 1.0],
                    vec![0.0, -2.0, 2.0, -1.0],
                ],
                covariances: Some(vec![
                    vec![
                        vec![1.5, 0.6, 0.0, 0.0],
                        vec![0.6, 1.0, 0.2, 0.0],
                        vec![0.0, 0.2, 0.5, 0.1],
                        vec![0.0, 0.0, 0.1, 2.0],
                    ],
                    vec![
                        vec![0.4, -0.1, 0.0, 0.05],
                        vec![-0.1, 2.0, 0.3, 0.0],
                        vec![0.0, 0.3, 1.0, -0.2],
                        vec![0.05, 0.0, -0.2, 0.8],
                    ],
                    vec![
                        vec![1.0, 0.0, 0.4, 0.0],
                        vec![0.0, 0.6, 0.0, 0.1],
                        vec![0.4, 0.0, 1.2, 0.0],
                        vec![0.0, 0.1, 0.0, 0.3],
                    ],
                ]),
            },
            schedule: ScheduleSpec::paper(),
            reward: GmmReward::Linear {
                weights: vec![1.0, -0.5, 0.3, 0.2],
            },
        }
    }

    /// Returns the paper preset lifted to `d >= 1` dimensions: means `(+-5, 0, ..., 0)`,
    /// identity covariances, the same schedule and reward. Used to study how
    /// cost grows with dimension.
    pub fn paper_in(d: usize) -> Result<Self, ModelError> {
        if d == 0 {
            return Err(invalid("dimension", "d must be at least 1"));
        }
        let mut config = Self::paper();
        config.mixture.means = [5.0, -5.0]
            .iter()
            .map(|&m| {
                let mut mean = vec![0.0; d];
                mean[0] = m;
                mean
            })
            .collect();
        Ok(config)
    }

    /// Looks up a preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        match name {
            "paper-gmm" => Ok(Self::paper()),
            "aniso-4d" => Ok(Self::aniso_4d()),
            other => Err(invalid(
                "preset",
                format!("unknown preset {other:?}; available: {}", PRESETS.join(", ")),
            )),
        }
    }

    /// Parses a TOML config; `path` only names the source in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ModelError> {
        toml::from_str(text).map_err(|e| ModelError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Hashes the config's TOML text with 64-bit FNV-1a. Checkpoints store the
    /// hash to recognise the model they were trained for.
    pub fn fingerprint(&self) -> String {
        let text = toml::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// Validates the config and builds its kernels, value and target at `alpha`.
    pub fn build(&self, alpha: f64) -> Result<GmmSetup, ModelError> {
        lcb_core::check_alpha(alpha)?;
        lcb_core::chernoff::check_delta(self.delta)?;
        let mixture = match &self.mixture.covariances {
            Some(c) => Mixture::new(self.mixture.weights.clone(), self.mixture.means.clone(), c.clone())?,
            None => Mixture::isotropic(self.mixture.weights.clone(), self.mixture.means.clone())?,
        };
        self.reward.validate(mixture.dim())?;
        let schedule = Schedule::from_spec(&self.schedule)?;
        let target = AlignedTarget::new(&mixture, &self.reward, alpha);
        let diffusion = Arc::new(Diffusion::new(mixture, schedule)?);
        let value = MixtureValue::new(diffusion.clone(), self.reward.clone(), alpha)?;
        Ok(GmmSetup {
            exact: ExactKernel::new(diffusion.clone()),
            ddpm: DdpmKernel::new(diffusion.clone()),
            reward: RowReward {
                reward: self.reward.clone(),
                dim: diffusion.dim(),
            },
            diffusion,
            value,
            target,
            alpha,
            delta: self.delta,
        })
    }
}

/// Everything a mixture experiment needs, built from a [`GmmConfig`].
#[derive(Debug, Clone)]
pub struct GmmSetup {
    pub diffusion: Arc<Diffusion>,
    pub exact: ExactKernel,
    pub ddpm: DdpmKernel,
    pub value: MixtureValue,
    pub reward: RowReward,
    pub target: AlignedTarget,
    pub alpha: f64,
    pub delta: f64,
}
