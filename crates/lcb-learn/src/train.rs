//! Sequential training of the baseline along the aligned trajectory.
//!
//! `S` particles start at the root state `x_T`. For `t = T, ..., 1`:
//!
//! 1. take `iterations_per_step` Adam steps on the sample `J`, each on one
//!    fresh proposal `x_i ~ p_t(.|y_i)` per particle;
//! 2. calibrate `tau_t` on a fresh, independent batch of pairs;
//! 3. advance every particle with the LCB envelope `b_theta(y, t) + tau_t`.
//!
//! The network is shared by all steps and keeps training after `tau_t` was
//! set, so a final pass re-derives every `tau_t` with the final network
//! along a fresh aligned trajectory. With `replay_steps > 0` each gradient
//! step also includes the objective of earlier steps on their stored
//! particles, which limits how far the network drifts from them.

use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor, TensorData};
use lcb_core::{Kernel, Lane, Limits, Progress, Stream, Value};
use rand::Rng;

use crate::baseline::NetworkBaseline;
use crate::calibrate::{CalibrationBatch, advance_particles, proposal_values};
use crate::config::{LambdaConfig, TrainConfig};
use crate::error::LearnError;
use crate::network::{Network, Normalization, features_tensor};
use crate::objective::chernoff_objective;
use crate::pilot::pilot_normalization;
use crate::trained::{CalibrationLog, StepLog, TrainedBaseline, TrainingHistory};

/// Seeds of the independent random phases of one run, derived from the
/// user's seed so that no two phases share a stream.
struct PhaseSeeds {
    init: u64,
    pilot: u64,
    train: u64,
    calibration: u64,
    advance: u64,
    final_calibration: u64,
    final_advance: u64,
    replay: u64,
}

impl PhaseSeeds {
    fn new(seed: u64) -> Self {
        let derive = |phase: u64| Stream::at(seed, phase, 0, 0, Lane::Select).next_u64();
        Self {
            init: derive(1),
            pilot: derive(2),
            train: derive(3),
            calibration: derive(4),
            advance: derive(5),
            final_calibration: derive(6),
            final_advance: derive(7),
            replay: derive(8),
        }
    }
}

/// Trains a learned Chernoff baseline for `kernel` and the value estimate
/// `value` (log units, `V^_0 = r / alpha`), then re-derives every `tau_t`
/// with the final network.
///
/// Progress counts `2 T` units: `T` trained steps, then `T` calibrated ones.
/// Each step logs an `info` event with the fields `step`, `loss`, `lambda`,
/// `tau` and `accept_rate`.
///
/// # Errors
/// An invalid config, an unavailable backend, a failing or non-finite
/// kernel or value, a diverging objective, or an envelope that exhausts
/// `max_proposals_per_prefix`.
pub fn train(
    kernel: &dyn Kernel<Elem = f64>,
    value: &dyn Value<Elem = f64>,
    config: &TrainConfig,
    progress: &dyn Progress,
) -> Result<TrainedBaseline, LearnError> {
    let started = Instant::now();
    config.validate()?;
    let (width, steps) = kernel_shape(kernel)?;

    let seeds = PhaseSeeds::new(config.seed);
    let limits = Limits {
        max_proposals_per_prefix: config.max_proposals_per_prefix,
        ..Limits::default()
    };
    let particles: Vec<u64> = (0..config.particles as u64).collect();
    let mut root_row = vec![0.0; width];
    kernel.root(&mut root_row);
    let root: Vec<f64> = root_row
        .iter()
        .copied()
        .cycle()
        .take(width * config.particles)
        .collect();

    config.network.check_width(width)?;
    let mut normalization = pilot_normalization(kernel, value, &root, &particles, seeds.pilot, &limits)?;
    if config.network.tokens.is_some() {
        // Token embeddings read the one-hot row as it is.
        let value_scale = normalization.value_scale;
        normalization = Normalization {
            value_scale,
            ..Normalization::identity(width)
        };
    }
    let mut trainer = Trainer::new(config, normalization, width, steps, seeds.init)?;
    let inference = config.backend.inference_backend();

    let mut states = root.clone();
    let mut lambda = vec![0.0; steps];
    let mut tau_during_training = vec![0.0; steps];
    let mut logs = Vec::with_capacity(steps);
    for t in (1..=steps).rev() {
        let losses = trainer.train_step(kernel, value, t, &states, &seeds)?;
        let lambda_t = trainer.lambda();
        lambda[t - 1] = lambda_t;

        let snapshot = trainer.snapshot(inference)?;
        let batch = CalibrationBatch {
            kernel,
            value,
            baseline: &snapshot,
            proposals: config.calibration_proposals,
            seed: seeds.calibration,
        };
        let tau_t = batch.tau(t, &states, lambda_t, config.delta, config.tau_slack)?;
        tau_during_training[t - 1] = tau_t;

        let outcome = advance_particles(
            kernel,
            value,
            &snapshot,
            t,
            tau_t,
            config.envelope_cap,
            &states,
            &particles,
            seeds.advance,
            &limits,
        )?;
        let loss = losses.last().copied().unwrap_or(f64::NAN);
        tracing::info!(
            step = t,
            loss,
            lambda = lambda_t,
            tau = tau_t,
            accept_rate = outcome.acceptance_rate(),
            "trained step"
        );
        logs.push(StepLog {
            step: t,
            losses,
            lambda: lambda_t,
            tau: tau_t,
            accept_rate: outcome.acceptance_rate(),
            proposals: outcome.sequential,
            tv_clip: outcome.tv_clip(),
        });
        states = outcome.children;
        progress.advance(steps - t + 1, 2 * steps);
    }

    let network = trainer.snapshot(inference)?;
    let pass = FinalPass {
        kernel,
        value,
        network: &network,
        config,
        limits: &limits,
        calibration_seed: seeds.final_calibration,
        advance_seed: seeds.final_advance,
    };
    let (tau, final_pass) = pass.run(&root, &particles, &lambda, progress)?;

    Ok(TrainedBaseline {
        network,
        lambda,
        tau,
        history: TrainingHistory {
            steps: logs,
            final_pass,
            tau_during_training,
            wall_seconds: started.elapsed().as_secs_f64(),
        },
        config: config.clone(),
    })
}

/// Returns the state width and the number of transitions `T` of `kernel`.
///
/// # Errors
/// [`LearnError::EmptyKernel`] when either is 0.
pub(crate) fn kernel_shape(kernel: &dyn Kernel<Elem = f64>) -> Result<(usize, usize), LearnError> {
    let width = kernel.width();
    let steps = kernel.steps();
    if width == 0 {
        return Err(LearnError::EmptyKernel { what: "state width" });
    }
    if steps == 0 {
        return Err(LearnError::EmptyKernel {
            what: "number of transitions T",
        });
    }
    Ok((width, steps))
}

/// The final calibration pass: a fresh aligned trajectory under the final
/// network, re-deriving `tau_t` at every step before advancing with it.
struct FinalPass<'a> {
    kernel: &'a dyn Kernel<Elem = f64>,
    value: &'a dyn Value<Elem = f64>,
    network: &'a NetworkBaseline,
    config: &'a TrainConfig,
    limits: &'a Limits,
    calibration_seed: u64,
    advance_seed: u64,
}

impl FinalPass<'_> {
    fn run(
        &self,
        root: &[f64],
        particles: &[u64],
        lambda: &[f64],
        progress: &dyn Progress,
    ) -> Result<(Vec<f64>, Vec<CalibrationLog>), LearnError> {
        let steps = self.kernel.steps();
        let batch = CalibrationBatch {
            kernel: self.kernel,
            value: self.value,
            baseline: self.network,
            proposals: self.config.calibration_proposals,
            seed: self.calibration_seed,
        };
        let mut tau = vec![0.0; steps];
        let mut logs = Vec::with_capacity(steps);
        let mut states = root.to_vec();
        for t in (1..=steps).rev() {
            let tau_t = batch.tau(t, &states, lambda[t - 1], self.config.delta, self.config.tau_slack)?;
            tau[t - 1] = tau_t;
            let outcome = advance_particles(
                self.kernel,
                self.value,
                self.network,
                t,
                tau_t,
                self.config.envelope_cap,
                &states,
                particles,
                self.advance_seed,
                self.limits,
            )?;
            tracing::info!(
                step = t,
                tau = tau_t,
                accept_rate = outcome.acceptance_rate(),
                "calibrated step"
            );
            logs.push(CalibrationLog {
                step: t,
                tau: tau_t,
                accept_rate: outcome.acceptance_rate(),
                proposals: outcome.sequential,
                tv_clip: outcome.tv_clip(),
            });
            states = outcome.children;
            progress.advance(2 * steps - t + 1, 2 * steps);
        }
        Ok((tau, logs))
    }
}

/// The raw parameter `theta_t` of a learned `lambda_t = minimum + softplus(theta_t)`.
#[derive(Module, Debug)]
struct LambdaParam {
    raw: Param<Tensor<1>>,
}

/// State of `lambda_t` during training.
enum LambdaState {
    Fixed(f64),
    Learned {
        /// `lambda` at the end of the last trained step.
        current: f64,
        minimum: f64,
        learning_rate: f64,
    },
}

/// The particles of a finished step, kept for replay.
struct FinishedStep {
    t: usize,
    /// `[particles, width]`
    parents: Vec<f64>,
    /// `[particles, features]` on the training device.
    features: Tensor<2>,
    lambda: f64,
}

/// The network and its optimiser on the training device.
struct Trainer {
    mlp: Network,
    optimizer: ModuleOptimizer,
    lambda: LambdaState,
    normalization: Normalization,
    config: TrainConfig,
    steps: usize,
    device: Device,
    /// Finished steps, `t = T` first; filled only when replay is on.
    finished: Vec<FinishedStep>,
}

impl Trainer {
    fn new(
        config: &TrainConfig,
        normalization: Normalization,
        width: usize,
        steps: usize,
        seed: u64,
    ) -> Result<Self, LearnError> {
        let device = config.backend.device()?.autodiff();
        let mlp = Network::init(&config.network, width, seed, &device);
        let lambda = match config.lambda {
            LambdaConfig::Fixed { value } => LambdaState::Fixed(value),
            LambdaConfig::Learned {
                initial,
                minimum,
                learning_rate,
            } => LambdaState::Learned {
                current: initial,
                minimum,
                learning_rate,
            },
        };
        Ok(Self {
            mlp,
            optimizer: AdamConfig::new().init(),
            lambda,
            normalization,
            config: config.clone(),
            steps,
            device,
            finished: Vec::new(),
        })
    }

    fn lambda(&self) -> f64 {
        match self.lambda {
            LambdaState::Fixed(value) => value,
            LambdaState::Learned { current, .. } => current,
        }
    }

    fn snapshot(&self, backend: crate::backend::Backend) -> Result<NetworkBaseline, LearnError> {
        NetworkBaseline::from_network(
            &self.mlp,
            &self.config.network,
            &self.normalization,
            self.steps,
            backend,
        )
    }

    /// Takes the configured number of Adam steps at transition `t` and
    /// returns the objective `J_t` before each step.
    ///
    /// # Shapes
    /// `parents: [particles, width]`.
    fn train_step(
        &mut self,
        kernel: &dyn Kernel<Elem = f64>,
        value: &dyn Value<Elem = f64>,
        t: usize,
        parents: &[f64],
        seeds: &PhaseSeeds,
    ) -> Result<Vec<f64>, LearnError> {
        let iterations = self.config.iterations_per_step;
        let features = features_tensor(
            &self.config.network,
            &self.normalization,
            t,
            self.steps,
            parents,
            &self.device,
        );

        // A learned lambda gets a fresh parameter and Adam state per step,
        // warm-started from the previous step's value.
        let mut lambda_param = match self.lambda {
            LambdaState::Learned { current, minimum, .. } => Some(LambdaParam {
                raw: Param::from_data(
                    TensorData::new(vec![inverse_softplus(current - minimum) as f32], [1]),
                    &self.device,
                ),
            }),
            LambdaState::Fixed(_) => None,
        };
        let mut lambda_optimizer = AdamConfig::new().init();

        // Losses stay on the device until the step ends, so a GPU backend
        // is not synchronised at every iteration.
        let mut losses = Vec::with_capacity(iterations);
        for iteration in 0..iterations {
            let values = proposal_values(kernel, value, t, parents, 1, iteration as u64, seeds.train)?;
            let lambda = match (&self.lambda, &lambda_param) {
                (LambdaState::Learned { minimum, .. }, Some(param)) => {
                    softplus(param.raw.val(), 1.0).add_scalar(*minimum)
                }
                _ => self.constant(self.lambda()),
            };
            let loss = self.objective(&values, features.clone(), lambda);
            losses.push(loss.clone().detach());
            let total = match self.replay_objective(kernel, value, t, iteration, seeds.replay)? {
                Some(replayed) => loss + replayed,
                None => loss,
            };

            let mut grads = total.backward();
            let network_grads = GradientsParams::from_module(&mut grads, &self.mlp);
            self.mlp = self
                .optimizer
                .step(self.config.learning_rate, self.mlp.clone(), network_grads);
            if let (LambdaState::Learned { learning_rate, .. }, Some(param)) = (&self.lambda, lambda_param.take()) {
                let lambda_grads = GradientsParams::from_module(&mut grads, &param);
                lambda_param = Some(lambda_optimizer.step(*learning_rate, param, lambda_grads));
            }
        }
        let losses = self.read_losses(losses, t)?;

        if let Some(param) = lambda_param {
            let raw = self.read_scalar(param.raw.val(), "lambda parameter")?;
            if let LambdaState::Learned { current, minimum, .. } = &mut self.lambda {
                *current = *minimum + softplus_f64(raw).max(f64::MIN_POSITIVE);
            }
        }
        if self.config.replay_steps > 0 {
            self.finished.push(FinishedStep {
                t,
                parents: parents.to_vec(),
                features,
                lambda: self.lambda(),
            });
        }
        Ok(losses)
    }

    /// Computes the sample `J` of the scores `values - b(features)` at exponent `lambda`.
    ///
    /// # Shapes
    /// `values: [n]`, `features: [n, features]`, `lambda: [1]`; output `[1]`.
    fn objective(&self, values: &[f64], features: Tensor<2>, lambda: Tensor<1>) -> Tensor<1> {
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let n = values.len();
        let values = Tensor::<1>::from_data(TensorData::new(values, [n]), &self.device);
        let baselines = self.mlp.forward(features).mul_scalar(self.normalization.value_scale);
        chernoff_objective(values - baselines, lambda, self.config.delta).0
    }

    /// Computes the mean `J_r` over the finished steps replayed at this iteration,
    /// each on its stored particles with one fresh proposal per particle, or
    /// `None` when replay is off or no step has finished.
    ///
    /// Iteration `i` replays the finished steps `(i k + q) mod m` for
    /// `q < min(k, m)`, where `k` is `replay_steps` and `m` the number of
    /// finished steps, so every finished step is revisited in turn.
    fn replay_objective(
        &self,
        kernel: &dyn Kernel<Elem = f64>,
        value: &dyn Value<Elem = f64>,
        t: usize,
        iteration: usize,
        seed: u64,
    ) -> Result<Option<Tensor<1>>, LearnError> {
        let finished = self.finished.len();
        let count = self.config.replay_steps.min(finished);
        if count == 0 {
            return Ok(None);
        }
        let mut total: Option<Tensor<1>> = None;
        for q in 0..count {
            let step = &self.finished[(iteration * count + q) % finished];
            // Step `step.t` is replayed while training many later steps; the
            // proposal index keeps each replay's streams distinct.
            let proposal = ((t as u64) << 32) + iteration as u64;
            let values = proposal_values(kernel, value, step.t, &step.parents, 1, proposal, seed)?;
            let loss = self.objective(&values, step.features.clone(), self.constant(step.lambda));
            total = Some(match total {
                Some(sum) => sum + loss,
                None => loss,
            });
        }
        Ok(total.map(|sum| sum.div_scalar(count as f64)))
    }

    /// Builds a `[1]` tensor containing `x`, without gradient.
    fn constant(&self, x: f64) -> Tensor<1> {
        Tensor::from_data(TensorData::new(vec![x as f32], [1]), &self.device)
    }

    /// Reads the per-iteration objectives of step `t` back to the host.
    ///
    /// # Errors
    /// [`LearnError::Diverged`] at the first non-finite value.
    fn read_losses(&self, losses: Vec<Tensor<1>>, t: usize) -> Result<Vec<f64>, LearnError> {
        if losses.is_empty() {
            return Ok(Vec::new());
        }
        let losses: Vec<f64> = Tensor::cat(losses, 0)
            .try_into_vec_as::<f32>()
            .map_err(|err| LearnError::TensorRead {
                what: "objective J",
                backend: self.config.backend.name(),
                message: err.to_string(),
            })?
            .into_iter()
            .map(f64::from)
            .collect();
        if let Some((iteration, &value)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) {
            return Err(LearnError::Diverged {
                step: t,
                iteration,
                value,
            });
        }
        Ok(losses)
    }

    fn read_scalar(&self, tensor: Tensor<1>, what: &'static str) -> Result<f64, LearnError> {
        tensor
            .try_into_scalar::<f32>()
            .map(f64::from)
            .map_err(|err| LearnError::TensorRead {
                what,
                backend: self.config.backend.name(),
                message: err.to_string(),
            })
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus_f64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Inverts softplus for `y > 0`: `x = ln(e^y - 1) = y + ln(1 - e^{-y})`.
fn inverse_softplus(y: f64) -> f64 {
    let y = y.max(1e-6);
    y + (-(-y).exp_m1()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_softplus_inverts_softplus() {
        for y in [1e-4, 0.3, 1.0, 5.0, 40.0] {
            let x = inverse_softplus(y);
            assert!((softplus_f64(x) - y).abs() < 1e-9 * y.max(1.0), "{y}: {x}");
        }
    }

    #[test]
    fn phase_seeds_differ() {
        let seeds = PhaseSeeds::new(7);
        let all = [
            seeds.init,
            seeds.pilot,
            seeds.train,
            seeds.calibration,
            seeds.advance,
            seeds.final_calibration,
            seeds.final_advance,
            seeds.replay,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
