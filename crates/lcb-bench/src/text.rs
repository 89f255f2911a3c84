//! Alignment of the masked-diffusion text model: learned values and
//! baselines over token sequences, and per-step RS, LCB, best-of-N and LCB
//! then best-of-N side by side on the same seeds.
//!
//! Values come from a network trained on base trajectories
//! ([`lcb_learn::fit_value`]) or from Monte Carlo rollouts
//! ([`lcb_core::RolloutValue`]). Per-step RS uses the global bound
//! `r_max / alpha` of the reward's range; LCB uses a baseline network with
//! pooled token embeddings, trained by [`lcb_learn::train`] through the
//! one-hot view of token states.

use std::collections::HashMap;
use std::sync::Arc;

use lcb_core::{
    Baseline, Guide, Kernel, LearnedEnvelope, Limits, Method, NoProgress, Problem, Progress, Reward,
    RolloutValue, RunOptions, SampleOutput, Selection, Value, sample,
};
use lcb_learn::{
    Backend, NetworkConfig, NetworkValue, OneHot, OneHotKernel, OneHotValue, TokenBaseline, TokenInput, TokenValue, TrainConfig,
    TrainedBaseline, TrainedValue, ValueConfig,
};
use lcb_models::text::{StepKernel, StepKernelConfig, TextModel, TextReward, WordListScorer};
use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// Weights of the built-in reward: distinct words of the text,
/// case-insensitive, so `r` lies in `[0, 1]`. Common words of the embedded
/// corpus, so that the base model reaches several reward levels.
pub const DEFAULT_REWARD_WORDS: [(&str, f64); 5] =
    [("the", 0.25), ("and", 0.25), ("unto", 0.2), ("lord", 0.15), ("god", 0.15)];

/// Builds the built-in reward on rows of `width` tokens of `model`.
pub fn default_reward(model: &TextModel, width: usize) -> Result<TextReward, BenchError> {
    let weights: HashMap<String, f64> = DEFAULT_REWARD_WORDS.iter().map(|(w, x)| (w.to_string(), *x)).collect();
    let scorer = WordListScorer::new(weights, false)?;
    Ok(TextReward::new(model.tokenizer().clone(), width, Box::new(scorer)))
}

/// Returns the one-hot code of a model's token rows: `seq_len` tokens over
/// the vocabulary and the mask id.
pub fn token_code(model: &TextModel) -> OneHot {
    OneHot {
        len: model.config().shape.seq_len,
        classes: model.tokenizer().mask_id() as usize + 1,
    }
}

/// Identifier of a model, kernel and reward for checkpoints, readable so
/// that a mismatch shows which part differs: a hash of the model's weights,
/// the kernel settings and the reward's description.
pub fn text_model_id(model: &TextModel, kernel: &StepKernelConfig, reward: &str) -> Result<String, BenchError> {
    let weights = model.to_burnpack()?;
    let settings = serde_json::to_string(kernel).unwrap_or_default();
    Ok(format!(
        "text model {}; kernel {settings}; reward {reward}",
        lcb_learn::files::fnv1a64_hex(&weights)
    ))
}

/// Settings of the value and baseline networks for one text problem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextLearnConfig {
    pub value: ValueConfig,
    pub baseline: TrainConfig,
}

impl TextLearnConfig {
    /// Sized for the embedded model on two CPU cores: about a minute a temperature.
    pub fn for_code(code: OneHot, backend: Backend, seed: u64) -> Self {
        let tokens = Some(TokenInput {
            classes: code.classes,
            embedding: 32,
            // Five characters cover a word of the built-in reward with a space on each side.
            window: 5,
        });
        let network = NetworkConfig {
            hidden: vec![64, 64],
            time_frequencies: 3,
            tokens,
        };
        Self {
            value: ValueConfig {
                network: network.clone(),
                trajectories: 1024,
                epochs: 30,
                batch: 256,
                seed,
                backend,
                ..ValueConfig::default()
            },
            baseline: TrainConfig {
                particles: 256,
                iterations_per_step: 20,
                // Embeddings start random and need larger steps than an
                // MLP over one-hot rows to move within one step's iterations.
                learning_rate: 1e-2,
                network,
                seed,
                backend,
                ..TrainConfig::default()
            },
        }
    }
}

/// A value network and a baseline trained for one text problem.
pub struct TextLearned {
    pub value: TrainedValue,
    pub baseline: TrainedBaseline,
}

/// Builds the terminal value `r / alpha` alone (a rollout with no step left).
fn terminal<'a>(
    kernel: &'a dyn Kernel<Elem = u32>,
    reward: &'a dyn Reward<Elem = u32>,
    alpha: f64,
) -> Result<RolloutValue<'a, u32>, BenchError> {
    Ok(RolloutValue::new(kernel, reward, alpha, 1, 0)?)
}

/// Trains the value network on base trajectories, then the LCB baseline
/// along the aligned trajectory under that value. The baseline's envelope
/// is capped at `r_max / alpha` when the reward is bounded.
pub fn train_text(
    kernel: &dyn Kernel<Elem = u32>,
    reward: &dyn Reward<Elem = u32>,
    alpha: f64,
    code: OneHot,
    config: &TextLearnConfig,
    progress: &dyn Progress,
) -> Result<TextLearned, BenchError> {
    let end = terminal(kernel, reward, alpha)?;
    let one_hot = OneHotKernel::new(kernel, code).map_err(|source| BenchError::Component {
        what: "one-hot view of the text kernel",
        source,
    })?;
    let end_one_hot = OneHotValue { inner: &end, code };
    let value = lcb_learn::fit_value(&one_hot, &end_one_hot, &config.value, progress)?;
    let upper = reward.upper_bound().map(|r| r / alpha);
    // The trainer's states are one-hot rows already, so the value network
    // reads them as they are.
    let network_value = NetworkValue {
        network: &value.network,
        terminal: &end_one_hot,
        upper,
    };
    let baseline_config = TrainConfig {
        envelope_cap: config.baseline.envelope_cap.or(upper),
        ..config.baseline.clone()
    };
    let baseline = lcb_learn::train(&one_hot, &network_value, &baseline_config, progress)?;
    Ok(TextLearned { value, baseline })
}

/// Text sampling methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextMethod {
    /// Per-step RS with the global bound `r_max / alpha`.
    Rs,
    /// Envelope rejection with the learned baseline.
    Lcb,
    /// Best of `n` base samples by reward.
    Bon,
    /// Best of `n` LCB samples by reward.
    LcbBon,
}

impl TextMethod {
    pub const ALL: [TextMethod; 4] = [Self::Rs, Self::Lcb, Self::Bon, Self::LcbBon];

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs => "rs",
            Self::Lcb => "lcb",
            Self::Bon => "bon",
            Self::LcbBon => "lcb-bon",
        }
    }
}

impl std::str::FromStr for TextMethod {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| BenchError::UnknownMethod(s.to_string(), "rs, lcb, bon, lcb-bon".to_string()))
    }
}

/// The components a text run needs.
pub struct TextComponents<'a> {
    pub kernel: &'a dyn Kernel<Elem = u32>,
    pub reward: &'a dyn Reward<Elem = u32>,
    pub alpha: f64,
    /// Soft values for RS and LCB (`V_0 = r / alpha`).
    pub value: Option<&'a dyn Value<Elem = u32>>,
    /// Baseline and `tau_t` for LCB.
    pub baseline: Option<(&'a dyn Baseline<Elem = u32>, &'a [f64])>,
    /// Candidates per sample for the best-of-N methods.
    pub n: usize,
}

/// Runs `method` for `samples` samples from `seed`.
pub fn run_text(
    components: &TextComponents<'_>,
    method: TextMethod,
    samples: usize,
    seed: u64,
    limits: Limits,
    progress: &dyn Progress,
) -> Result<SampleOutput<u32>, BenchError> {
    if samples == 0 {
        return Err(BenchError::Invalid {
            name: "samples",
            value: "0".into(),
            expected: "at least 1 sample",
        });
    }
    let problem = Problem::new(components.kernel, components.reward, components.alpha)?;
    let options = RunOptions {
        samples,
        seed,
        limits,
        progress,
    };
    let missing = |what: &'static str| BenchError::MissingInput {
        method: method.name().to_string(),
        what,
    };
    let upper = components.reward.upper_bound().map(|r| r / components.alpha);
    let envelope = match (method, components.baseline) {
        (TextMethod::Lcb | TextMethod::LcbBon, Some((baseline, tau))) => {
            Some(LearnedEnvelope::new(baseline, tau.to_vec(), upper)?)
        }
        (TextMethod::Lcb | TextMethod::LcbBon, None) => return Err(missing("a trained baseline (--baseline DIR)")),
        _ => None,
    };
    let output = match method {
        TextMethod::Rs => {
            let value = components.value.ok_or_else(|| missing("a value estimate"))?;
            let bound = lcb_core::global_bound(&problem, "per-step RS")?;
            let guide = Guide {
                value,
                envelope: &bound,
            };
            sample(method.name(), &problem, &Method::Stepwise(guide), &options)?
        }
        TextMethod::Lcb => {
            let value = components.value.ok_or_else(|| missing("a value estimate"))?;
            let envelope = envelope.as_ref().expect("checked above");
            let guide = Guide { value, envelope };
            sample(method.name(), &problem, &Method::Stepwise(guide), &options)?
        }
        TextMethod::Bon | TextMethod::LcbBon => {
            let guide = match &envelope {
                Some(envelope) => Some(Guide {
                    value: components.value.ok_or_else(|| missing("a value estimate"))?,
                    envelope,
                }),
                None => None,
            };
            let method_spec = Method::BestOfN {
                n: components.n,
                selection: Selection::Max,
                guide,
            };
            sample(method.name(), &problem, &method_spec, &options)?
        }
    };
    Ok(output)
}

/// Settings of `bench text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextBenchConfig {
    pub alphas: Vec<f64>,
    /// Samples per method and temperature.
    pub samples: usize,
    /// Reverse steps `N` of the kernel.
    pub steps: usize,
    pub seed: u64,
    /// Completions per state for the Monte Carlo soft values of the trajectory plot.
    pub rollouts: usize,
    /// LCB trajectories drawn in the trajectory plot.
    pub trajectories: usize,
    /// Temperature of the trajectory plot.
    pub trajectory_alpha: f64,
    /// Candidates per sample of LCB then best-of-N, which makes up for
    /// error in the learned values.
    pub best_of: usize,
    pub backend: Backend,
}

impl Default for TextBenchConfig {
    fn default() -> Self {
        Self {
            alphas: vec![1.0, 0.5, 0.25],
            samples: 512,
            steps: 8,
            seed: 0,
            rollouts: 32,
            trajectories: 2,
            trajectory_alpha: 0.25,
            best_of: 4,
            backend: Backend::default(),
        }
    }
}

impl TextBenchConfig {
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |name: &'static str, value: String, expected: &'static str| {
            Err(BenchError::Invalid { name, value, expected })
        };
        if self.alphas.is_empty() || self.alphas.iter().any(|a| !(a.is_finite() && *a > 0.0)) {
            return invalid("alphas", format!("{:?}", self.alphas), "one or more finite temperatures > 0");
        }
        if self.samples == 0 {
            return invalid("samples", "0".into(), "at least 1 sample per method");
        }
        if self.steps == 0 {
            return invalid("steps", "0".into(), "at least 1 reverse step");
        }
        if self.best_of == 0 {
            return invalid("best_of", "0".into(), "at least 1 candidate per sample, such as 4");
        }
        if self.rollouts == 0 {
            return invalid("rollouts", "0".into(), "at least 1 completion per state, such as 32");
        }
        if !(self.trajectory_alpha.is_finite() && self.trajectory_alpha > 0.0) {
            return invalid(
                "trajectory_alpha",
                self.trajectory_alpha.to_string(),
                "a finite temperature > 0",
            );
        }
        Ok(())
    }
}

/// One method's result at one temperature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextRun {
    pub alpha: f64,
    pub method: String,
    pub rewards: Vec<f64>,
    pub reward_mean: f64,
    pub reward_stderr: f64,
    pub computed_proposals: u64,
    pub sequential_proposals: u64,
    pub wall_seconds: f64,
    /// Two-sample Kolmogorov-Smirnov p-value of these rewards against RS's
    /// at the same temperature (`None` for RS itself).
    pub ks_pvalue_vs_rs: Option<f64>,
    /// A few of the decoded texts.
    pub examples: Vec<String>,
}

/// The soft values and envelopes along one LCB trajectory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextTrajectory {
    /// Step `t` of each point, from `T` down to 1.
    pub steps: Vec<usize>,
    /// Monte Carlo `V_t(y_t)` with the rollout count of the run.
    pub monte_carlo: Vec<f64>,
    /// The learned envelope `min(b(y_t, t) + tau_t, r_max / alpha)`.
    pub envelope: Vec<f64>,
    /// The learned value `v_phi(y_t, t)`.
    pub learned_value: Vec<f64>,
    /// RS's bound `r_max / alpha`.
    pub rs_bound: f64,
    /// The final text.
    pub text: String,
}

/// Everything `bench text` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextBenchReport {
    pub config: TextBenchConfig,
    pub model_id: String,
    pub reward: String,
    pub runs: Vec<TextRun>,
    /// Rewards of base-model samples on the same seed: the untilted reference.
    pub base_rewards: Vec<f64>,
    /// The exact aligned target's reward mean per temperature, estimated
    /// from the base samples with self-normalised weights `exp(r / alpha)`.
    pub targets: Vec<TargetEstimate>,
    pub trajectories: Vec<TextTrajectory>,
    /// Value-network held-out loss against the constant fit, per temperature.
    pub value_fit: Vec<ValueFit>,
    pub wall_seconds: f64,
}

/// The value network's fit at one temperature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueFit {
    pub alpha: f64,
    /// Held-out loss of the kept network.
    pub heldout_loss: Option<f64>,
    /// Held-out loss of the constant fit, the one to beat.
    pub constant_loss: Option<f64>,
}

/// The aligned target's reward mean at one temperature, from weighted base samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetEstimate {
    pub alpha: f64,
    pub reward_mean: f64,
    /// Kish's effective sample size of the weights.
    pub effective_samples: f64,
}

impl TargetEstimate {
    /// Weights base rewards by `exp(r / alpha)`, which makes them samples
    /// of the aligned target's reward law.
    pub fn from_base(rewards: &[f64], alpha: f64) -> Self {
        let max = rewards.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = rewards.iter().map(|r| ((r - max) / alpha).exp()).collect();
        let total: f64 = weights.iter().sum();
        let squares: f64 = weights.iter().map(|w| w * w).sum();
        Self {
            alpha,
            reward_mean: weights.iter().zip(rewards).map(|(w, r)| w * r).sum::<f64>() / total,
            effective_samples: total * total / squares,
        }
    }
}

/// Describes the built-in reward, for reports.
pub fn default_reward_description() -> String {
    let words: Vec<String> = DEFAULT_REWARD_WORDS.iter().map(|(w, x)| format!("{w} {x}")).collect();
    format!("word list ({}), r in [0, 1]", words.join(", "))
}

/// Runs the language comparison on `model` with the built-in reward: per
/// temperature, trains the value network and the baseline, then samples
/// with RS and LCB; then draws LCB trajectories at `trajectory_alpha` with
/// Monte Carlo soft values along them.
pub fn run_text_bench(
    model: Arc<TextModel>,
    config: &TextBenchConfig,
    report_progress: &dyn Fn(&str),
) -> Result<TextBenchReport, BenchError> {
    config.validate()?;
    let started = std::time::Instant::now();
    let kernel_config = StepKernelConfig {
        steps: Some(config.steps),
        ..StepKernelConfig::default()
    };
    let code = token_code(&model);
    let kernel = StepKernel::new(model.clone(), &kernel_config)?;
    let reward = default_reward(&model, code.len)?;
    let description = default_reward_description();
    let model_id = text_model_id(&model, &kernel_config, &description)?;

    let mut alphas = config.alphas.clone();
    if !alphas.contains(&config.trajectory_alpha) {
        alphas.push(config.trajectory_alpha);
    }
    report_progress("sampling the base model");
    let base_components = TextComponents {
        kernel: &kernel,
        reward: &reward,
        alpha: 1.0,
        value: None,
        baseline: None,
        n: 1,
    };
    let base = run_text(&base_components, TextMethod::Bon, config.samples, config.seed, Limits::default(), &NoProgress)?;
    let base_rewards = base.rewards;
    let targets = config
        .alphas
        .iter()
        .map(|&alpha| TargetEstimate::from_base(&base_rewards, alpha))
        .collect();

    let mut runs = Vec::new();
    let mut trajectories = Vec::new();
    let mut value_fit = Vec::new();
    for &alpha in &alphas {
        report_progress(&format!("alpha {alpha}: training the value network and the baseline"));
        let learn = TextLearnConfig::for_code(code, config.backend, config.seed);
        let learned = train_text(&kernel, &reward, alpha, code, &learn, &NoProgress)?;
        let history = &learned.value.history;
        value_fit.push(ValueFit {
            alpha,
            heldout_loss: history.kept_heldout_loss(),
            constant_loss: history.heldout_constant_loss,
        });
        let end = terminal(&kernel, &reward, alpha)?;
        let upper = reward.upper_bound().map(|r| r / alpha);
        let value = TokenValue {
            network: &learned.value.network,
            code,
            terminal: &end,
            upper,
        };
        let baseline = TokenBaseline {
            network: &learned.baseline.network,
            code,
        };
        let components = TextComponents {
            kernel: &kernel,
            reward: &reward,
            alpha,
            value: Some(&value),
            baseline: Some((&baseline, &learned.baseline.tau)),
            n: config.best_of,
        };

        if config.alphas.contains(&alpha) {
            let mut rs_rewards: Option<Vec<f64>> = None;
            for method in [TextMethod::Rs, TextMethod::Lcb, TextMethod::LcbBon] {
                report_progress(&format!("alpha {alpha}: sampling with {}", method.name()));
                let output = run_text(&components, method, config.samples, config.seed, Limits::default(), &NoProgress)?;
                // LCB targets RS's law; LCB then best-of-N is meant to differ from it.
                let ks = rs_rewards
                    .as_ref()
                    .filter(|_| method == TextMethod::Lcb)
                    .and_then(|rs| lcb_core::stats::ks_two_sample(rs, &output.rewards))
                    .map(|test| test.pvalue);
                if method == TextMethod::Rs {
                    rs_rewards = Some(output.rewards.clone());
                }
                let examples = reward.decode_rows(&output.states).into_iter().take(5).collect();
                let (mean, stderr) = lcb_core::stats::mean_and_stderr(&output.rewards);
                runs.push(TextRun {
                    alpha,
                    method: method.name().to_string(),
                    rewards: output.rewards.clone(),
                    reward_mean: mean,
                    reward_stderr: stderr,
                    computed_proposals: output.record.computed_proposals,
                    sequential_proposals: output.record.sequential_proposals,
                    wall_seconds: output.record.wall_seconds,
                    ks_pvalue_vs_rs: ks,
                    examples,
                });
            }
        }

        if alpha == config.trajectory_alpha && config.trajectories > 0 {
            report_progress(&format!(
                "alpha {alpha}: Monte Carlo soft values along {} LCB trajectories",
                config.trajectories
            ));
            let rollout = RolloutValue::new(&kernel, &reward, alpha, config.rollouts, config.seed ^ 0x5eed)?;
            let traced = trace_trajectories(
                &components,
                &rollout,
                &baseline,
                &learned.baseline.tau,
                config,
            )?;
            trajectories = traced
                .into_iter()
                .map(|(mut trajectory, row)| {
                    trajectory.text = reward.decode_rows(&row).remove(0);
                    trajectory
                })
                .collect();
        }
    }

    Ok(TextBenchReport {
        config: config.clone(),
        model_id,
        reward: description,
        runs,
        base_rewards,
        targets,
        trajectories,
        value_fit,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Draws LCB trajectories with their states at every step, and evaluates the
/// Monte Carlo soft value, the learned value and the envelope along them.
///
/// Returns each trajectory with its final token row.
fn trace_trajectories(
    components: &TextComponents<'_>,
    rollout: &RolloutValue<'_, u32>,
    baseline: &dyn Baseline<Elem = u32>,
    tau: &[f64],
    config: &TextBenchConfig,
) -> Result<Vec<(TextTrajectory, Vec<u32>)>, BenchError> {
    let kernel = components.kernel;
    let value = components.value.ok_or_else(|| BenchError::MissingInput {
        method: "lcb".into(),
        what: "a value estimate",
    })?;
    let width = kernel.width();
    let steps = kernel.steps();
    let alpha = components.alpha;
    let rs_bound = components.reward.upper_bound().map_or(f64::NAN, |r| r / alpha);
    let envelope = LearnedEnvelope::new(baseline, tau.to_vec(), Some(rs_bound).filter(|b| b.is_finite()))?;
    let guide = Guide {
        value,
        envelope: &envelope,
    };

    let particles: Vec<u64> = (0..config.trajectories as u64).collect();
    let mut root = vec![0u32; width];
    kernel.root(&mut root);
    let mut states: Vec<u32> = root.iter().copied().cycle().take(width * particles.len()).collect();
    let n = particles.len();
    let mut out: Vec<TextTrajectory> = (0..n)
        .map(|_| TextTrajectory {
            steps: Vec::new(),
            monte_carlo: Vec::new(),
            envelope: Vec::new(),
            learned_value: Vec::new(),
            rs_bound,
            text: String::new(),
        })
        .collect();

    let seed = config.seed ^ 0x7ace;
    for t in (1..=steps).rev() {
        let mut mc = vec![0.0; n];
        rollout.log_values(t, &states, &mut mc).map_err(component("Monte Carlo soft value", t))?;
        let mut learned = vec![0.0; n];
        value.log_values(t, &states, &mut learned).map_err(component("learned value", t))?;
        let mut bounds = vec![0.0; n];
        lcb_core::Envelope::log_envelopes(&envelope, t, &states, &mut bounds).map_err(component("envelope", t))?;
        for i in 0..n {
            out[i].steps.push(t);
            out[i].monte_carlo.push(mc[i]);
            out[i].learned_value.push(learned[i]);
            out[i].envelope.push(bounds[i]);
        }
        states = lcb_core::advance(kernel, Some(guide), t, &states, &particles, seed, &Limits::default())?.children;
    }
    Ok(out.into_iter().zip(states.chunks_exact(width).map(<[u32]>::to_vec)).collect())
}

fn component(what: &'static str, step: usize) -> impl Fn(lcb_core::ComponentError) -> BenchError {
    move |source| {
        BenchError::Sample(lcb_core::SampleError::Component {
            what,
            step,
            source,
        })
    }
}

/// Writes `text_rewards.png` (reward distributions of RS and LCB per
/// temperature, proposals in each panel's title) and, when trajectories
/// were traced, `text_trajectories.png`; returns the paths written.
pub fn draw_text_figures(dir: &std::path::Path, report: &TextBenchReport) -> Result<Vec<std::path::PathBuf>, BenchError> {
    use crate::plots::{DistributionPanel, Figure, Layout, Panel, Series, distributions, line_panels};

    let mut written = Vec::new();
    let labels = |method: &str| match method {
        "rs" => "RS",
        "lcb" => "LCB",
        "bon" => "BoN",
        _ => "LCB+BoN",
    };
    let mut panels = Vec::new();
    for &alpha in &report.config.alphas {
        let at: Vec<&TextRun> = report
            .runs
            .iter()
            .filter(|r| r.alpha == alpha && (r.method == "rs" || r.method == "lcb"))
            .collect();
        let proposals: Vec<String> = at
            .iter()
            .map(|r| format!("{} {}", labels(&r.method), r.computed_proposals))
            .collect();
        let mut samples: Vec<(&str, &[f64])> = at.iter().map(|r| (labels(&r.method), r.rewards.as_slice())).collect();
        if !report.base_rewards.is_empty() {
            samples.push(("base model", report.base_rewards.as_slice()));
        }
        panels.push(DistributionPanel {
            title: format!("alpha = {alpha}: proposals {}", proposals.join(", ")),
            samples,
        });
    }
    if !panels.is_empty() {
        let path = dir.join("text_rewards.png");
        let figure = Figure::new(&path, "Reward distributions of RS and LCB on the text model").with_size(1500, 560);
        distributions(&figure, "reward r(x_0)", &panels)?;
        written.push(path);
    }

    if !report.trajectories.is_empty() {
        let mut series = Vec::new();
        for (i, trajectory) in report.trajectories.iter().enumerate() {
            let total = trajectory.steps.first().copied().unwrap_or(0);
            let points = |ys: &[f64]| -> Vec<(f64, f64)> {
                trajectory
                    .steps
                    .iter()
                    .zip(ys)
                    .map(|(&t, &y)| ((total - t) as f64, y))
                    .collect()
            };
            series.push(
                Series::new(format!("trajectory {}: LCB envelope b + tau", i + 1), points(&trajectory.envelope))
                    .with_color(i)
                    .with_markers(),
            );
            series.push(
                Series::new(format!("trajectory {}: Monte Carlo soft value", i + 1), points(&trajectory.monte_carlo))
                    .with_color(i)
                    .dotted()
                    .with_markers(),
            );
            series.push(
                Series::new(format!("trajectory {}: learned value v", i + 1), points(&trajectory.learned_value))
                    .with_color(i)
                    .dashed(),
            );
        }
        if let Some(first) = report.trajectories.first() {
            let hi = first.steps.len().saturating_sub(1) as f64;
            series.push(
                Series::new("RS bound r_max / alpha", vec![(0.0, first.rs_bound), (hi, first.rs_bound)])
                    .with_color(6)
                    .dashed(),
            );
        }
        let panel = Panel::new(
            format!("alpha = {}", report.config.trajectory_alpha),
            "reverse steps taken, T - t (0: all masks)",
            "log units",
            series,
        );
        let path = dir.join("text_trajectories.png");
        let figure = Figure::new(&path, "Learned envelope against Monte Carlo soft values along LCB trajectories")
            .with_size(1100, 700);
        line_panels(&figure, &[panel], Layout::Row)?;
        written.push(path);
    }
    Ok(written)
}

/// Renders the runs of a report as a Markdown table, with each method's
/// proposals as a share of RS's at the same temperature.
pub fn text_table(report: &TextBenchReport) -> String {
    let mut out = String::from(
        "| alpha | method | reward mean | computed proposals | share of RS | sequential proposals | KS p vs RS | seconds |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    if !report.base_rewards.is_empty() {
        let (mean, stderr) = lcb_core::stats::mean_and_stderr(&report.base_rewards);
        out.push_str(&format!("| any | base model | {mean:.3} ± {stderr:.3} | | | | | |\n"));
    }
    for target in &report.targets {
        out.push_str(&format!(
            "| {} | exact target, weighted base samples (ESS {:.0}) | {:.3} | | | | | |\n",
            target.alpha, target.effective_samples, target.reward_mean
        ));
    }
    for run in &report.runs {
        let rs = report
            .runs
            .iter()
            .find(|r| r.alpha == run.alpha && r.method == "rs")
            .map(|r| r.computed_proposals as f64);
        let share = rs.map_or("".to_string(), |rs| format!("{:.1}%", 100.0 * run.computed_proposals as f64 / rs));
        let ks = run.ks_pvalue_vs_rs.map_or("".to_string(), |p| format!("{p:.2}"));
        out.push_str(&format!(
            "| {} | {} | {:.3} ± {:.3} | {} | {} | {} | {} | {:.1} |\n",
            run.alpha,
            run.method,
            run.reward_mean,
            run.reward_stderr,
            run.computed_proposals,
            share,
            run.sequential_proposals,
            ks,
            run.wall_seconds
        ));
    }
    out
}
