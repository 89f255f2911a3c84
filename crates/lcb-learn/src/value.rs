//! A learned soft value `v_phi(x, t) ~ V_t(x) = ln E[exp(r(x_0) / alpha) | x_t = x]`.
//!
//! Training data comes from base-model trajectories alone: a trajectory
//! `x_T, ..., x_0` gives one pair `(x_t, y = r(x_0) / alpha)` per step, and
//! its completion from `x_t` is a draw from the base model given `x_t`. The
//! network minimises
//!
//! ```text
//! L(phi) = mean over pairs of  exp(y - v_phi(x_t, t)) + v_phi(x_t, t),
//! ```
//!
//! whose minimiser given `x_t` is exactly `v = ln E[exp(y) | x_t]`, since
//! `d/dv (E[e^y] e^{-v} + v) = 0` there. So one completion per state is
//! enough for the loss to be consistent. A regression on `ln mean exp` over
//! `M` completions would be biased low, by Jensen's inequality.
//!
//! The network is the baseline network of [`crate::network`] with
//! `value_offset = ln mean exp(y)` over the data and `value_scale` the
//! standard deviation of `y`, so the loss is computed on `O(1)` numbers.
//! `v_phi` replaces `V_t` at `t = 1..=T`. At `t = 0` the exact `r / alpha`
//! is used.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Tensor, TensorData};
use lcb_core::{ComponentResult, Kernel, Lane, Limits, Progress, SampleError, Stream, Value, advance};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::baseline::NetworkBaseline;
use crate::checkpoint::{WeightsInfo, read_checked_weights, read_file, write_manifest, write_weights};
use crate::error::{CheckpointError, LearnError};
use crate::network::{Network, NetworkConfig, Normalization, write_features};

/// File name of the value manifest inside a checkpoint directory.
pub const VALUE_MANIFEST_FILE: &str = "value.json";
/// File name of the value network's burnpack weights.
pub const VALUE_WEIGHTS_FILE: &str = "value.bpk";

/// Settings of value-network training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueConfig {
    pub network: NetworkConfig,
    /// Base trajectories drawn for the data; each gives `T` pairs.
    pub trajectories: usize,
    /// Share of the trajectories held out to measure the loss, in `[0, 0.5]`.
    pub heldout_fraction: f64,
    /// Passes over the training pairs.
    pub epochs: usize,
    /// Pairs per Adam step.
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Backend that trains the network; inference runs on its CPU counterpart.
    pub backend: Backend,
}

impl Default for ValueConfig {
    fn default() -> Self {
        Self {
            network: NetworkConfig::default(),
            trajectories: 512,
            heldout_fraction: 0.2,
            epochs: 30,
            batch: 256,
            learning_rate: 3e-3,
            seed: 0,
            backend: Backend::default(),
        }
    }
}

impl ValueConfig {
    /// # Errors
    /// [`LearnError::InvalidConfig`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), LearnError> {
        self.network.validate()?;
        let invalid = |name: &'static str, value: String, expected: &'static str| {
            Err(LearnError::InvalidConfig { name, value, expected })
        };
        if self.trajectories < 2 {
            return invalid("value.trajectories", self.trajectories.to_string(), "at least 2, such as 512");
        }
        if !(0.0..=0.5).contains(&self.heldout_fraction) {
            return invalid(
                "value.heldout_fraction",
                self.heldout_fraction.to_string(),
                "a share in [0, 0.5], such as 0.2",
            );
        }
        if self.epochs == 0 {
            return invalid("value.epochs", "0".into(), "at least 1 pass, such as 30");
        }
        if self.batch == 0 {
            return invalid("value.batch", "0".into(), "at least 1 pair per step, such as 256");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid(
                "value.learning_rate",
                self.learning_rate.to_string(),
                "a finite rate > 0, such as 3e-3",
            );
        }
        Ok(())
    }
}

/// Record of value training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueHistory {
    /// Mean training loss over each epoch.
    pub train_loss: Vec<f64>,
    /// Held-out loss after each epoch (empty without held-out data).
    pub heldout_loss: Vec<f64>,
    /// Held-out loss of the constant `v = value_offset`, the fit to beat.
    pub heldout_constant_loss: Option<f64>,
    /// Epoch (from 0) whose network was kept: the one with the lowest
    /// held-out loss, or the last without held-out data.
    pub kept_epoch: usize,
    pub pairs: usize,
    pub wall_seconds: f64,
}

impl ValueHistory {
    /// Returns the held-out loss of the kept network, if there was held-out data.
    pub fn kept_heldout_loss(&self) -> Option<f64> {
        self.heldout_loss.get(self.kept_epoch).copied()
    }
}

/// A trained value network and its record.
#[derive(Debug, Clone)]
pub struct TrainedValue {
    /// `v_phi(x, t)` in log units for `t = 1..=T`.
    pub network: NetworkBaseline,
    pub config: ValueConfig,
    pub history: ValueHistory,
}

/// One training pair: the state `x_t` at step `t` and `y = r(x_0) / alpha`
/// of its completion.
struct Pair {
    t: usize,
    /// Index of the state row in the data's row table.
    row: usize,
    y: f64,
}

/// Trains `v_phi` on base trajectories of `kernel`, with `terminal` giving
/// `V_0 = r / alpha` of the final states (only `t = 0` is asked of it).
///
/// The network kept is the one of the epoch with the lowest held-out loss.
/// Progress counts `T + epochs` units: the trajectories' steps, then the epochs.
///
/// # Errors
/// An invalid config, an unavailable backend, a failing or non-finite
/// kernel or terminal value, or a loss that is not finite.
pub fn fit_value(
    kernel: &dyn Kernel<Elem = f64>,
    terminal: &dyn Value<Elem = f64>,
    config: &ValueConfig,
    progress: &dyn Progress,
) -> Result<TrainedValue, LearnError> {
    let started = Instant::now();
    config.validate()?;
    let (width, steps) = crate::train::kernel_shape(kernel)?;
    config.network.check_width(width)?;
    let total_progress = steps + config.epochs;

    // Base trajectories: rows[s] contains the states x_s of every trajectory.
    let n = config.trajectories;
    let particles: Vec<u64> = (0..n as u64).collect();
    let mut root = vec![0.0; width];
    kernel.root(&mut root);
    let mut states: Vec<f64> = root.iter().copied().cycle().take(width * n).collect();
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); steps + 1];
    let seed = Stream::at(config.seed, 1, 0, 0, Lane::Select).next_u64();
    for t in (1..=steps).rev() {
        let children = advance(kernel, None, t, &states, &particles, seed, &Limits::default())?.children;
        rows[t] = std::mem::replace(&mut states, children);
        progress.advance(steps - t + 1, total_progress);
    }
    let mut y = vec![0.0; n];
    terminal
        .log_values(0, &states, &mut y)
        .map_err(|source| SampleError::Component {
            what: "terminal value r / alpha",
            step: 0,
            source,
        })?;
    if let Some((index, &value)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(SampleError::NonFinite {
            what: "terminal value r(x_0) / alpha",
            step: Some(0),
            index,
            value,
        }
        .into());
    }

    // Trajectories are split, not pairs, so held-out states are unseen.
    let heldout = ((n as f64) * config.heldout_fraction).round() as usize;
    let (train_ids, test_ids) = (heldout..n, 0..heldout);
    let pairs_of = |ids: std::ops::Range<usize>| -> Vec<Pair> {
        (1..=steps)
            .flat_map(|t| ids.clone().map(move |i| (t, i)))
            .map(|(t, i)| Pair {
                t,
                row: i,
                y: y[i],
            })
            .collect()
    };
    let mut train_pairs = pairs_of(train_ids.clone());
    let test_pairs = pairs_of(test_ids);

    let train_y: Vec<f64> = train_ids.map(|i| y[i]).collect();
    let normalization = value_normalization(&config.network, width, &rows, &train_y);
    let fit = Fit {
        config,
        normalization: &normalization,
        rows: &rows,
        width,
        steps,
    };

    let device = config.backend.device()?.autodiff();
    let mut network = Network::init(&config.network, width, config.seed, &device);
    let mut optimizer: ModuleOptimizer = AdamConfig::new().init();
    let mut shuffle = Stream::at(config.seed, 2, 0, 0, Lane::Select);
    let mut train_loss = Vec::with_capacity(config.epochs);
    let mut heldout_loss = Vec::with_capacity(config.epochs);
    let inference = config.backend.inference_backend();
    let heldout_constant_loss = (!test_pairs.is_empty()).then(|| constant_loss(&test_pairs, &normalization));
    // The network of the epoch with the lowest held-out loss (early stopping).
    let mut best_epoch: Option<(usize, f64, NetworkBaseline)> = None;
    for epoch in 0..config.epochs {
        // Fisher-Yates with the run's own stream: the same seed gives the same order.
        for i in (1..train_pairs.len()).rev() {
            let j = (shuffle.next_u64() % (i as u64 + 1)) as usize;
            train_pairs.swap(i, j);
        }
        let mut losses = Vec::new();
        for batch in train_pairs.chunks(config.batch) {
            let loss = fit.loss(&network, batch, &device);
            losses.push(loss.clone().detach());
            let mut grads = loss.backward();
            let grads = GradientsParams::from_module(&mut grads, &network);
            network = optimizer.step(config.learning_rate, network, grads);
        }
        let losses = read_values(Tensor::cat(losses, 0), config.backend)?;
        let mean = losses.iter().sum::<f64>() / losses.len() as f64;
        if !mean.is_finite() {
            return Err(LearnError::Diverged {
                step: 0,
                iteration: epoch,
                value: mean,
            });
        }
        train_loss.push(mean);
        if !test_pairs.is_empty() {
            let snapshot = NetworkBaseline::from_network(&network, &config.network, &normalization, steps, inference)?;
            let loss = fit.evaluate_loss(&snapshot, &test_pairs)?;
            heldout_loss.push(loss);
            if best_epoch.as_ref().is_none_or(|(_, best, _)| loss < *best) {
                best_epoch = Some((epoch, loss, snapshot));
            }
        }
        tracing::info!(epoch, loss = mean, heldout = heldout_loss.last().copied(), "value epoch");
        progress.advance(steps + epoch + 1, total_progress);
    }

    let (kept_epoch, network) = match best_epoch {
        Some((epoch, _, snapshot)) => (epoch, snapshot),
        None => (
            config.epochs - 1,
            NetworkBaseline::from_network(&network, &config.network, &normalization, steps, inference)?,
        ),
    };
    Ok(TrainedValue {
        network,
        config: config.clone(),
        history: ValueHistory {
            train_loss,
            heldout_loss,
            heldout_constant_loss,
            kept_epoch,
            pairs: train_pairs.len() + test_pairs.len(),
            wall_seconds: started.elapsed().as_secs_f64(),
        },
    })
}

/// The data and settings the loss is computed from.
struct Fit<'a> {
    config: &'a ValueConfig,
    normalization: &'a Normalization,
    rows: &'a [Vec<f64>],
    width: usize,
    steps: usize,
}

impl Fit<'_> {
    fn features(&self, pairs: &[Pair]) -> Vec<f32> {
        let mut features = Vec::with_capacity(pairs.len() * self.config.network.feature_count(self.width));
        for pair in pairs {
            let row = &self.rows[pair.t][pair.row * self.width..(pair.row + 1) * self.width];
            write_features(
                &self.config.network,
                self.normalization,
                pair.t,
                self.steps,
                row,
                &mut features,
            );
        }
        features
    }

    /// Computes the loss `mean exp(y - v) + v - offset` of a batch, differentiable in the network.
    fn loss(&self, network: &Network, pairs: &[Pair], device: &burn::tensor::Device) -> Tensor<1> {
        let count = self.config.network.feature_count(self.width);
        let features = Tensor::<2>::from_data(TensorData::new(self.features(pairs), [pairs.len(), count]), device);
        let scale = self.normalization.value_scale;
        let offset = self.normalization.value_offset;
        let targets: Vec<f32> = pairs.iter().map(|p| ((p.y - offset) / scale) as f32).collect();
        let targets = Tensor::<1>::from_data(TensorData::new(targets, [pairs.len()]), device);
        // In units of value_scale: u = (v - offset) / scale, z = (y - offset) / scale,
        // and exp(y - v) = exp(scale (z - u)).
        let u = network.forward(features);
        let tilt = (targets - u.clone()).mul_scalar(scale).exp();
        (tilt + u.mul_scalar(scale)).mean().reshape([1])
    }

    /// Computes the loss of a trained network on `pairs`, in `f64`.
    fn evaluate_loss(&self, network: &NetworkBaseline, pairs: &[Pair]) -> Result<f64, LearnError> {
        let offset = self.normalization.value_offset;
        let mut total = 0.0;
        for t in 1..=self.steps {
            let at_t: Vec<&Pair> = pairs.iter().filter(|p| p.t == t).collect();
            if at_t.is_empty() {
                continue;
            }
            let states: Vec<f64> = at_t
                .iter()
                .flat_map(|p| self.rows[t][p.row * self.width..(p.row + 1) * self.width].iter().copied())
                .collect();
            let values = network.evaluate(t, &states)?;
            total += at_t
                .iter()
                .zip(values)
                .map(|(p, v)| (p.y - v).exp() + (v - offset))
                .sum::<f64>();
        }
        Ok(total / pairs.len() as f64)
    }
}

/// Computes the loss of the constant `v = offset`, the value of the root state.
fn constant_loss(pairs: &[Pair], normalization: &Normalization) -> f64 {
    let offset = normalization.value_offset;
    pairs.iter().map(|p| (p.y - offset).exp()).sum::<f64>() / pairs.len() as f64
}

/// Derives the offset `ln mean exp(y)`, the scale `sd(y)` and, for states
/// that are not tokens, the per-coordinate mean and spread of the states.
fn value_normalization(config: &NetworkConfig, width: usize, rows: &[Vec<f64>], y: &[f64]) -> Normalization {
    let offset = lcb_core::logmath::log_mean_exp(y);
    let mean_y = y.iter().sum::<f64>() / y.len() as f64;
    let sd = (y.iter().map(|v| (v - mean_y).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
    let value_scale = if sd.is_finite() && sd > 1e-8 { sd } else { 1.0 };
    let mut normalization = Normalization {
        value_scale,
        value_offset: offset,
        ..Normalization::identity(width)
    };
    if config.tokens.is_none() {
        let all: Vec<&[f64]> = rows.iter().flat_map(|r| r.chunks_exact(width)).collect();
        for k in 0..width {
            let m = all.iter().map(|r| r[k]).sum::<f64>() / all.len() as f64;
            let var = all.iter().map(|r| (r[k] - m).powi(2)).sum::<f64>() / all.len() as f64;
            normalization.state_mean[k] = m;
            normalization.state_scale[k] = if var.sqrt() > 1e-8 { var.sqrt() } else { 1.0 };
        }
    }
    normalization
}

fn read_values(tensor: Tensor<1>, backend: Backend) -> Result<Vec<f64>, LearnError> {
    Ok(tensor
        .try_into_vec_as::<f32>()
        .map_err(|err| LearnError::TensorRead {
            what: "value loss",
            backend: backend.name(),
            message: err.to_string(),
        })?
        .into_iter()
        .map(f64::from)
        .collect())
}

/// A learned value over `f64` states: `v_phi` for `t >= 1`, the exact
/// terminal value at `t = 0`, capped above by `upper` (such as `r_max / alpha`,
/// which bounds every soft value).
pub struct NetworkValue<'a> {
    pub network: &'a NetworkBaseline,
    pub terminal: &'a dyn Value<Elem = f64>,
    pub upper: Option<f64>,
}

impl Value for NetworkValue<'_> {
    type Elem = f64;

    fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
        if t == 0 {
            return self.terminal.log_values(0, states, out);
        }
        write_capped(self.network, t, states, self.upper, out)
    }
}

/// Writes `min(v_phi(row, t), upper)` for every row of `rows` into `out`.
pub(crate) fn write_capped(
    network: &NetworkBaseline,
    t: usize,
    rows: &[f64],
    upper: Option<f64>,
    out: &mut [f64],
) -> ComponentResult {
    let values = network.evaluate(t, rows)?;
    for (o, v) in out.iter_mut().zip(values) {
        *o = upper.map_or(v, |upper| v.min(upper));
    }
    Ok(())
}

/// The manifest of a saved value network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueManifest {
    pub format_version: u32,
    pub model_id: String,
    pub alpha: f64,
    pub width: usize,
    pub steps: usize,
    pub inference_backend: Backend,
    pub normalization: Normalization,
    pub weights: WeightsInfo,
    pub training: ValueConfig,
    pub history: ValueHistory,
}

impl TrainedValue {
    /// Saves `value.json` and `value.bpk` into `dir` (created if missing),
    /// weights first, each written atomically.
    pub fn save(&self, dir: &Path, model_id: &str, alpha: f64) -> Result<PathBuf, CheckpointError> {
        let weights = write_weights(dir, VALUE_WEIGHTS_FILE, &self.network)?;
        let manifest = ValueManifest {
            format_version: crate::checkpoint::FORMAT_VERSION,
            model_id: model_id.to_string(),
            alpha,
            width: self.network.width(),
            steps: self.network.steps(),
            inference_backend: self.network.backend(),
            normalization: self.network.normalization().clone(),
            weights,
            training: self.config.clone(),
            history: self.history.clone(),
        };
        write_manifest(dir, VALUE_MANIFEST_FILE, &manifest)
    }

    /// Loads the value network saved in `dir`, checking that it was trained
    /// for `model_id`, `alpha`, `width` and `steps`.
    pub fn load(dir: &Path, model_id: &str, alpha: f64, width: usize, steps: usize) -> Result<Self, CheckpointError> {
        let path = dir.join(VALUE_MANIFEST_FILE);
        let text = read_file(&path, "read the value manifest")?;
        let manifest: ValueManifest = serde_json::from_slice(&text).map_err(|err| CheckpointError::CorruptManifest {
            path: path.clone(),
            message: err.to_string(),
        })?;

        let mismatch = |field: &'static str, expected: String, found: String| CheckpointError::Mismatch {
            path: path.clone(),
            field,
            expected,
            found,
        };
        if manifest.model_id != model_id {
            return Err({
                let (expected, found) = crate::checkpoint::model_id_difference(model_id, &manifest.model_id);
                mismatch("model id", expected, found)
            });
        }
        if (manifest.alpha - alpha).abs() > 1e-12 * alpha.abs().max(1.0) {
            return Err(mismatch("alpha", alpha.to_string(), manifest.alpha.to_string()));
        }
        if manifest.width != width {
            return Err(mismatch("state width", width.to_string(), manifest.width.to_string()));
        }
        if manifest.steps != steps {
            return Err(mismatch("steps T", steps.to_string(), manifest.steps.to_string()));
        }
        manifest
            .normalization
            .validate(width)
            .map_err(|message| CheckpointError::Inconsistent {
                path: path.clone(),
                message,
            })?;

        let weights_path = dir.join(VALUE_WEIGHTS_FILE);
        let weights = read_checked_weights(&weights_path, &manifest.weights)?;
        let network = NetworkBaseline::from_burnpack(
            weights,
            &manifest.training.network,
            &manifest.normalization,
            steps,
            manifest.inference_backend,
        )
        .map_err(|err| CheckpointError::InvalidWeights {
            path: weights_path,
            message: err.to_string(),
        })?;
        Ok(Self {
            network,
            config: manifest.training,
            history: manifest.history,
        })
    }
}
