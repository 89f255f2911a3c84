//! Training the text denoiser with the masked-diffusion objective, with
//! atomic checkpoints and exact resumption.
//!
//! Every random draw of a run (initial weights, the held-out split, each
//! step's rows and masks) comes from counter-based streams keyed by the
//! seed and the step. The optimizer state is saved with the weights, so a
//! run resumed from a checkpoint takes the same steps as one that was never
//! interrupted.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device};
use lcb_core::{Lane, Stream};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::text::backend::Backend;
use crate::text::checkpoint::{self, FileInfo, LOSS_LOG_FILE, Manifest};
use crate::text::corpus::{Corpus, EncodedTexts};
use crate::text::error::{CheckpointError, TextError};
use crate::text::model::{load_network, network_to_burnpack};
use crate::text::objective::{HeldoutLoss, MaskedBatch, diffusion_loss, heldout_batches, heldout_loss, training_batch};
use crate::text::tokenizer::CharTokenizer;
use crate::text::transformer::{DenoiserConfig, ModelShape, Transformer};

/// Settings of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelShape,
    /// Rows per optimizer step.
    pub batch_size: usize,
    /// Number of optimizer steps.
    pub steps: usize,
    /// Peak learning rate of AdamW.
    pub learning_rate: f64,
    /// Steps of linear warm-up from 0 to the peak.
    pub warmup_steps: usize,
    /// The cosine decay ends at `learning_rate * final_learning_rate_ratio`.
    pub final_learning_rate_ratio: f64,
    /// Decoupled weight decay of AdamW.
    pub weight_decay: f64,
    /// Largest gradient norm of each parameter tensor; larger ones are scaled down.
    pub gradient_clip_norm: Option<f64>,
    /// Floor `eps` of the masking probability `p = (1 - eps) t + eps`.
    pub min_mask_probability: f64,
    /// Share of the corpus held out for evaluation, in `[0, 1)`.
    pub heldout_fraction: f64,
    /// Masks per held-out text at each evaluation.
    pub heldout_draws: usize,
    /// Evaluate on the held-out texts every this many steps (and at the end).
    pub eval_every: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    pub seed: u64,
    /// Backend that trains; inference of the result may use any backend.
    pub backend: Backend,
}

impl Default for TrainConfig {
    /// Returns the default run: the default [`ModelShape`], 1000 steps of
    /// 64 rows on flex.
    fn default() -> Self {
        Self {
            model: ModelShape::default(),
            batch_size: 64,
            steps: 1000,
            learning_rate: 2e-3,
            warmup_steps: 100,
            final_learning_rate_ratio: 0.1,
            weight_decay: 0.01,
            gradient_clip_norm: Some(1.0),
            min_mask_probability: 1e-3,
            heldout_fraction: 0.05,
            heldout_draws: 4,
            eval_every: 100,
            checkpoint_every: 100,
            seed: 0,
            backend: Backend::Flex,
        }
    }
}

impl TrainConfig {
    /// # Errors
    /// The first invalid setting, by name.
    pub fn validate(&self) -> Result<(), TextError> {
        self.model.validate()?;
        let invalid = |name: &'static str, value: String, expected: &'static str| {
            Err(TextError::InvalidConfig { name, value, expected })
        };
        for (name, value) in [
            ("batch_size", self.batch_size),
            ("steps", self.steps),
            ("heldout_draws", self.heldout_draws),
            ("eval_every", self.eval_every),
            ("checkpoint_every", self.checkpoint_every),
        ] {
            if value == 0 {
                return invalid(name, "0".into(), "a count >= 1");
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid("learning_rate", self.learning_rate.to_string(), "a finite rate > 0, such as 2e-3");
        }
        if !(0.0..=1.0).contains(&self.final_learning_rate_ratio) {
            return invalid(
                "final_learning_rate_ratio",
                self.final_learning_rate_ratio.to_string(),
                "a ratio in [0, 1]",
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid("weight_decay", self.weight_decay.to_string(), "a finite value >= 0");
        }
        if let Some(norm) = self.gradient_clip_norm
            && !(norm.is_finite() && norm > 0.0)
        {
            return invalid("gradient_clip_norm", norm.to_string(), "a finite norm > 0, or none");
        }
        if !(self.min_mask_probability > 0.0 && self.min_mask_probability < 1.0) {
            return invalid(
                "min_mask_probability",
                self.min_mask_probability.to_string(),
                "a probability in (0, 1), such as 1e-3",
            );
        }
        if !(0.0..1.0).contains(&self.heldout_fraction) {
            return invalid("heldout_fraction", self.heldout_fraction.to_string(), "a share in [0, 1)");
        }
        Ok(())
    }

    /// Reads a config from a TOML file, or JSON when the name ends in `.json`;
    /// missing fields take their defaults.
    ///
    /// # Errors
    /// An unreadable file, a syntax error or an unknown field, or an invalid setting.
    pub fn from_file(path: &Path) -> Result<Self, TextError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io {
            action: "read the training config",
            path: path.to_path_buf(),
            source,
        })?;
        let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed: Result<Self, String> = if is_json {
            serde_json::from_str(&text).map_err(|err| err.to_string())
        } else {
            toml::from_str(&text).map_err(|err| err.to_string())
        };
        let config = parsed.map_err(|message| TextError::InvalidConfig {
            name: "training config",
            value: format!("{}: {message}", path.display()),
            expected: "TrainConfig fields such as steps, batch_size, learning_rate and [model]",
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Computes the learning rate of optimizer step `step` (0-based): linear warm-up,
    /// then cosine decay to `learning_rate * final_learning_rate_ratio`.
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let floor = self.final_learning_rate_ratio;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.learning_rate * (floor + (1.0 - floor) * cosine)
    }
}

/// The corpus a run trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusInfo {
    pub source: String,
    pub fnv1a64: String,
    pub train_texts: usize,
    pub heldout_texts: usize,
    /// Texts left out because they are longer than the sequence length.
    pub skipped_too_long: usize,
}

/// One row of the loss log, written at each evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossRecord {
    /// Optimizer steps done.
    pub step: usize,
    pub learning_rate: f64,
    /// Mean training objective over the steps since the previous record.
    pub train_loss: f64,
    /// Held-out objective (negative ELBO per token, nats); `None` without held-out texts.
    pub heldout_loss: Option<f64>,
    /// Held-out cross-entropy over masked positions, nats.
    pub heldout_masked_cross_entropy: Option<f64>,
    /// Training wall time so far, summed over resumed sessions.
    pub elapsed_seconds: f64,
}

/// The training state stored in a checkpoint's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingRecord {
    pub config: TrainConfig,
    /// Optimizer steps done.
    pub step: usize,
    /// The optimizer state; absent in a shipped model that cannot be resumed.
    pub optimizer: Option<FileInfo>,
    pub corpus: CorpusInfo,
    pub history: Vec<LossRecord>,
    /// Training wall time so far, summed over resumed sessions.
    pub wall_seconds: f64,
}

/// Progress report of a running training.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// Training starts (or resumes) after `step` of `total` steps.
    Started {
        step: usize,
        total: usize,
        parameters: usize,
        corpus: CorpusInfo,
    },
    /// Optimizer step `step` (1-based) finished with this batch loss.
    Step {
        step: usize,
        total: usize,
        loss: f64,
        learning_rate: f64,
    },
    /// A loss-log row was recorded.
    Evaluated(LossRecord),
    /// A checkpoint after `step` steps was written to `path`.
    Checkpointed { step: usize, path: PathBuf },
}

/// Outcome of a call to [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Optimizer steps done, including those of earlier sessions.
    pub steps_done: usize,
    pub total_steps: usize,
    /// True when the caller stopped the run before `total_steps`.
    pub stopped: bool,
    /// The last loss-log row.
    pub last: Option<LossRecord>,
    /// `ln V`: the loss of the uniform prediction over the vocabulary.
    pub uniform_loss: f64,
    pub parameters: usize,
    pub corpus: CorpusInfo,
    /// Wall time of this call.
    pub session_seconds: f64,
    pub checkpoint: PathBuf,
}

/// Trains a denoiser on `corpus` and writes checkpoints into `dir`.
///
/// The tokenizer's alphabet is every character of the corpus. `on_event`
/// receives every step, evaluation and checkpoint. Returning
/// `ControlFlow::Break` from it stops the run after a final checkpoint.
///
/// With `resume`, a checkpoint already in `dir` is continued; it must have
/// been written with the same config and corpus. Without `resume`, a
/// checkpoint in `dir` is an error, so nothing is overwritten by accident.
///
/// # Errors
/// An invalid config or corpus, an unavailable backend, an unreadable or
/// mismatched checkpoint, a failed write, or a diverging loss.
pub fn train(
    corpus: &Corpus,
    dir: &Path,
    config: &TrainConfig,
    resume: bool,
    on_event: &mut dyn FnMut(&TrainEvent) -> ControlFlow<()>,
) -> Result<TrainSummary, TextError> {
    let started = Instant::now();
    config.validate()?;
    let data = TrainingData::new(corpus, config)?;
    let model_config = DenoiserConfig {
        vocab_size: data.tokenizer.vocab_size(),
        shape: config.model.clone(),
    };
    checkpoint::create_dir(dir)?;
    let device = config.backend.device()?.autodiff();

    let mut state = match existing_checkpoint(dir)? {
        Some(manifest) if resume => TrainState::resume(dir, manifest, config, &data, &device)?,
        Some(manifest) => {
            let step = manifest.training.map(|t| t.step).unwrap_or(0);
            return Err(CheckpointError::AlreadyExists {
                dir: dir.to_path_buf(),
                step,
            }
            .into());
        }
        None => TrainState::fresh(config, &model_config, &device),
    };

    let parameters = model_config.parameter_count();
    let _ = on_event(&TrainEvent::Started {
        step: state.step,
        total: config.steps,
        parameters,
        corpus: data.info.clone(),
    });

    let session_start_wall = state.wall_seconds;
    let mut run = Run {
        config,
        data: &data,
        model_config: &model_config,
        dir,
        device: &device,
        started,
        session_start_wall,
        losses_since_record: Vec::new(),
    };
    let stopped = run.steps(&mut state, on_event)?;

    Ok(TrainSummary {
        steps_done: state.step,
        total_steps: config.steps,
        stopped,
        last: state.history.last().cloned(),
        uniform_loss: (model_config.vocab_size as f64).ln(),
        parameters,
        corpus: data.info.clone(),
        session_seconds: started.elapsed().as_secs_f64(),
        checkpoint: dir.join(checkpoint::MANIFEST_FILE),
    })
}

/// The encoded corpus of a run.
struct TrainingData {
    tokenizer: CharTokenizer,
    train: EncodedTexts,
    heldout: Vec<MaskedBatch>,
    info: CorpusInfo,
}

/// Rows per forward pass when scoring the held-out texts.
const HELDOUT_ROWS_PER_BATCH: usize = 256;

impl TrainingData {
    fn new(corpus: &Corpus, config: &TrainConfig) -> Result<Self, TextError> {
        let seeds = PhaseSeeds::new(config.seed);
        let len = config.model.seq_len;
        let tokenizer = CharTokenizer::from_texts(corpus.texts.iter().map(String::as_str)).map_err(|err| {
            TextError::EmptyCorpus {
                path: corpus.source.clone().into(),
                reason: err.to_string(),
            }
        })?;
        let (train_texts, heldout_texts) = corpus.split(config.heldout_fraction, seeds.split);
        let train = EncodedTexts::encode(&train_texts, &tokenizer, len)?;
        let heldout = EncodedTexts::encode(&heldout_texts, &tokenizer, len)?;
        if train.rows == 0 {
            return Err(TextError::EmptyCorpus {
                path: corpus.source.clone().into(),
                reason: format!(
                    "none of its {} training texts fits the sequence length of {len} characters",
                    train_texts.len()
                ),
            });
        }
        let heldout_rows = heldout.rows;
        let heldout_batches = heldout_batches(
            &heldout,
            len,
            config.heldout_draws,
            HELDOUT_ROWS_PER_BATCH,
            seeds.heldout_masks,
            config.min_mask_probability,
            tokenizer.mask_id(),
        );
        let info = CorpusInfo {
            source: corpus.source.clone(),
            fnv1a64: corpus.fnv1a64.clone(),
            train_texts: train.rows,
            heldout_texts: heldout_rows,
            skipped_too_long: train.skipped_too_long + heldout.skipped_too_long,
        };
        Ok(Self {
            tokenizer,
            train,
            heldout: heldout_batches,
            info,
        })
    }
}

/// Seeds of the independent random phases of a run.
struct PhaseSeeds {
    init: u64,
    split: u64,
    batches: u64,
    heldout_masks: u64,
}

impl PhaseSeeds {
    fn new(seed: u64) -> Self {
        let derive = |phase: u64| Stream::at(seed, phase, 0, 0, Lane::Select).next_u64();
        Self {
            init: derive(1),
            split: derive(2),
            batches: derive(3),
            heldout_masks: derive(4),
        }
    }
}

/// The network, the optimizer and the log, at `step` optimizer steps.
struct TrainState {
    network: Transformer,
    optimizer: ModuleOptimizer,
    step: usize,
    history: Vec<LossRecord>,
    wall_seconds: f64,
}

fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_grad_clipping(config.gradient_clip_norm.map(|norm| GradientClippingConfig::Norm(norm as f32)))
        .init()
}

impl TrainState {
    fn fresh(config: &TrainConfig, model_config: &DenoiserConfig, device: &Device) -> Self {
        let seeds = PhaseSeeds::new(config.seed);
        Self {
            network: Transformer::init(model_config, seeds.init, device),
            optimizer: optimizer(config),
            step: 0,
            history: Vec::new(),
            wall_seconds: 0.0,
        }
    }

    fn resume(
        dir: &Path,
        manifest: Manifest,
        config: &TrainConfig,
        data: &TrainingData,
        device: &Device,
    ) -> Result<Self, TextError> {
        let cannot = |reason: String| CheckpointError::CannotResume {
            dir: dir.to_path_buf(),
            reason,
        };
        let Some(training) = manifest.training else {
            return Err(cannot("it holds a model without training state".into()).into());
        };
        if training.config != *config {
            return Err(cannot(format!(
                "it was trained with other settings ({}); rerun with the checkpoint's settings, or choose another output directory",
                config_differences(&training.config, config)
            ))
            .into());
        }
        if training.corpus.fnv1a64 != data.info.fnv1a64 {
            return Err(cannot(format!(
                "it was trained on another corpus ({}, FNV-1a {}), not on {} (FNV-1a {})",
                training.corpus.source, training.corpus.fnv1a64, data.info.source, data.info.fnv1a64
            ))
            .into());
        }
        if manifest.tokenizer != data.tokenizer {
            return Err(cannot("its tokenizer differs from the corpus's alphabet".into()).into());
        }
        let Some(optimizer_info) = training.optimizer else {
            return Err(cannot("it has no optimizer state".into()).into());
        };

        let weights = checkpoint::read_checked(dir, &manifest.weights)?;
        let network = load_network(&manifest.model, weights, device).map_err(|message| CheckpointError::InvalidTensors {
            path: dir.join(&manifest.weights.file),
            message,
        })?;
        let optimizer_bytes = checkpoint::read_checked(dir, &optimizer_info)?;
        let optimizer_path = dir.join(&optimizer_info.file);
        // NOTE: burn 0.22.1 restores optimizer state on `Device::default()`
        // and moves it to each parameter's device on the next step. With the
        // wgpu feature compiled in, that default is wgpu even on a machine
        // without an adapter, where this call panics; BURN_DEVICE=flex (or
        // ndarray) in the environment avoids it.
        let optimizer = optimizer(config)
            .from_bytes(Bytes::from_bytes_vec(optimizer_bytes))
            .map_err(|err| CheckpointError::InvalidTensors {
                path: optimizer_path,
                message: err.to_string(),
            })?;
        Ok(Self {
            network,
            optimizer,
            step: training.step,
            history: training.history,
            wall_seconds: training.wall_seconds,
        })
    }
}

/// Lists the settings that differ between two configs, as
/// `name: checkpoint X, requested Y` items.
fn config_differences(saved: &TrainConfig, requested: &TrainConfig) -> String {
    let flatten = |config: &TrainConfig| -> Vec<(String, String)> {
        let json = serde_json::to_value(config).unwrap_or_default();
        let mut fields = Vec::new();
        if let serde_json::Value::Object(map) = json {
            for (key, value) in map {
                match value {
                    serde_json::Value::Object(inner) => {
                        fields.extend(inner.into_iter().map(|(k, v)| (format!("{key}.{k}"), v.to_string())));
                    }
                    other => fields.push((key, other.to_string())),
                }
            }
        }
        fields
    };
    let requested = flatten(requested);
    flatten(saved)
        .into_iter()
        .zip(requested)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, b)| format!("{}: checkpoint {}, requested {}", a.0, a.1, b.1))
        .collect::<Vec<_>>()
        .join("; ")
}

fn existing_checkpoint(dir: &Path) -> Result<Option<Manifest>, TextError> {
    match checkpoint::read_manifest(dir) {
        Ok(manifest) => Ok(Some(manifest)),
        Err(CheckpointError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The fixed context of a training session.
struct Run<'a> {
    config: &'a TrainConfig,
    data: &'a TrainingData,
    model_config: &'a DenoiserConfig,
    dir: &'a Path,
    device: &'a Device,
    started: Instant,
    /// Wall time of earlier sessions.
    session_start_wall: f64,
    losses_since_record: Vec<f64>,
}

impl Run<'_> {
    fn elapsed(&self) -> f64 {
        self.session_start_wall + self.started.elapsed().as_secs_f64()
    }

    /// Takes optimizer steps until the end or a stop request; returns whether
    /// the caller stopped the run.
    fn steps(
        &mut self,
        state: &mut TrainState,
        on_event: &mut dyn FnMut(&TrainEvent) -> ControlFlow<()>,
    ) -> Result<bool, TextError> {
        let config = self.config;
        let len = config.model.seq_len;
        let seeds = PhaseSeeds::new(config.seed);
        let mask_id = self.data.tokenizer.mask_id();

        while state.step < config.steps {
            let learning_rate = config.learning_rate_at(state.step);
            let batch = training_batch(
                &self.data.train,
                len,
                config.batch_size,
                state.step,
                seeds.batches,
                config.min_mask_probability,
                mask_id,
            );
            let loss = diffusion_loss(&state.network, &batch, len, self.device);
            let loss_value = self.read_scalar(loss.clone(), "training loss")?;
            if !loss_value.is_finite() {
                return Err(TextError::Diverged {
                    step: state.step + 1,
                    value: loss_value,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &state.network);
            state.network = state.optimizer.step(learning_rate, state.network.clone(), grads);
            state.step += 1;
            self.losses_since_record.push(loss_value);

            let mut flow = on_event(&TrainEvent::Step {
                step: state.step,
                total: config.steps,
                loss: loss_value,
                learning_rate,
            });
            let at_end = state.step == config.steps;
            if state.step.is_multiple_of(config.eval_every) || at_end || flow.is_break() {
                let record = self.record(state, learning_rate)?;
                flow = merge(flow, on_event(&TrainEvent::Evaluated(record)));
            }
            if state.step.is_multiple_of(config.checkpoint_every) || at_end || flow.is_break() {
                let path = self.save(state)?;
                flow = merge(flow, on_event(&TrainEvent::Checkpointed { step: state.step, path }));
            }
            if flow.is_break() && !at_end {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn read_scalar(&self, tensor: burn::tensor::Tensor<1>, what: &'static str) -> Result<f64, TextError> {
        tensor
            .try_into_scalar::<f32>()
            .map(f64::from)
            .map_err(|err| TextError::TensorRead {
                what,
                backend: self.config.backend.name(),
                message: err.to_string(),
            })
    }

    /// Scores the held-out texts and appends a loss-log row.
    fn record(&mut self, state: &mut TrainState, learning_rate: f64) -> Result<LossRecord, TextError> {
        let heldout = if self.data.heldout.is_empty() {
            None
        } else {
            let network = state.network.valid();
            let inner = self.device.clone().inner();
            let loss: HeldoutLoss = heldout_loss(&network, &self.data.heldout, self.config.model.seq_len, &inner)
                .map_err(|message| TextError::TensorRead {
                    what: "held-out loss",
                    backend: self.config.backend.name(),
                    message,
                })?;
            Some(loss)
        };
        let train_loss = self.losses_since_record.iter().sum::<f64>() / self.losses_since_record.len().max(1) as f64;
        self.losses_since_record.clear();
        let record = LossRecord {
            step: state.step,
            learning_rate,
            train_loss,
            heldout_loss: heldout.map(|h| h.loss),
            heldout_masked_cross_entropy: heldout.map(|h| h.masked_cross_entropy),
            elapsed_seconds: self.elapsed(),
        };
        tracing::info!(
            step = record.step,
            train_loss = record.train_loss,
            heldout_loss = record.heldout_loss,
            "evaluated"
        );
        state.history.push(record.clone());
        Ok(record)
    }

    /// Writes weights, optimizer state, manifest and loss log, in that
    /// order, then removes the data files of older checkpoints.
    fn save(&self, state: &mut TrainState) -> Result<PathBuf, TextError> {
        let dir = self.dir;
        let weights_name = format!("weights-{:07}.bpk", state.step);
        let optimizer_name = format!("optimizer-{:07}.bpk", state.step);

        let weights = network_to_burnpack(&state.network).map_err(|message| CheckpointError::InvalidTensors {
            path: dir.join(&weights_name),
            message,
        })?;
        checkpoint::write_atomic(dir, &dir.join(&weights_name), &weights)?;
        let optimizer = state
            .optimizer
            .into_bytes()
            .map_err(|err| CheckpointError::InvalidTensors {
                path: dir.join(&optimizer_name),
                message: err.to_string(),
            })?
            .to_vec();
        checkpoint::write_atomic(dir, &dir.join(&optimizer_name), &optimizer)?;

        state.wall_seconds = self.elapsed();
        let manifest = Manifest {
            format_version: checkpoint::FORMAT_VERSION,
            tokenizer: self.data.tokenizer.clone(),
            model: self.model_config.clone(),
            weights: FileInfo::of(&weights_name, &weights),
            training: Some(TrainingRecord {
                config: self.config.clone(),
                step: state.step,
                optimizer: Some(FileInfo::of(&optimizer_name, &optimizer)),
                corpus: self.data.info.clone(),
                history: state.history.clone(),
                wall_seconds: state.wall_seconds,
            }),
        };
        let path = checkpoint::write_manifest(dir, &manifest)?;
        checkpoint::write_atomic(dir, &dir.join(LOSS_LOG_FILE), loss_csv(&state.history).as_bytes())?;
        remove_stale_files(dir, &[&weights_name, &optimizer_name]);
        tracing::info!(step = state.step, path = %path.display(), "checkpoint written");
        Ok(path)
    }
}

fn merge(a: ControlFlow<()>, b: ControlFlow<()>) -> ControlFlow<()> {
    if a.is_break() || b.is_break() {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

/// Formats the loss log as CSV with a header row.
pub fn loss_csv(history: &[LossRecord]) -> String {
    let mut csv = String::from("step,learning_rate,train_loss,heldout_loss,heldout_masked_cross_entropy,elapsed_seconds\n");
    let optional = |x: Option<f64>| x.map(|v| format!("{v:.6}")).unwrap_or_default();
    for r in history {
        csv.push_str(&format!(
            "{},{:.6e},{:.6},{},{},{:.1}\n",
            r.step,
            r.learning_rate,
            r.train_loss,
            optional(r.heldout_loss),
            optional(r.heldout_masked_cross_entropy),
            r.elapsed_seconds
        ));
    }
    csv
}

/// Removes `weights-*.bpk` and `optimizer-*.bpk` files other than `keep`.
/// A file that cannot be removed is logged and left in place.
fn remove_stale_files(dir: &Path, keep: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_data = (name.starts_with("weights-") || name.starts_with("optimizer-")) && name.ends_with(".bpk");
        if is_data
            && !keep.contains(&name.as_str())
            && let Err(error) = std::fs::remove_file(entry.path())
        {
            tracing::warn!(file = %entry.path().display(), %error, "failed to remove a stale checkpoint file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_warms_up_then_decays() {
        let config = TrainConfig {
            steps: 110,
            warmup_steps: 10,
            learning_rate: 1.0,
            final_learning_rate_ratio: 0.1,
            ..TrainConfig::default()
        };
        assert!((config.learning_rate_at(0) - 0.1).abs() < 1e-12);
        assert!((config.learning_rate_at(9) - 1.0).abs() < 1e-12);
        assert!((config.learning_rate_at(10) - 1.0).abs() < 1e-12);
        assert!((config.learning_rate_at(60) - 0.55).abs() < 1e-12, "halfway down the cosine");
        assert!((config.learning_rate_at(109) - 0.1).abs() < 1e-3);
    }

    #[test]
    fn default_config_is_valid() {
        TrainConfig::default().validate().unwrap();
        let bad = TrainConfig {
            heldout_fraction: 1.0,
            ..TrainConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("heldout_fraction"));
    }
}
