//! `model train` and `generate`: the text denoiser's command-line glue.

use std::error::Error;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lcb_core::NoProgress;
use std::sync::Arc;

use lcb_bench::text::{
    TextBenchConfig, TextComponents, TextLearnConfig, TextMethod, default_reward, default_reward_description,
    draw_text_figures, run_text, run_text_bench, text_model_id, text_table, token_code, train_text,
};
use lcb_learn::{TokenBaseline, TokenValue};
use lcb_models::text::{
    Backend, Corpus, GenerateOptions, Remasking, StepKernel, StepKernelConfig, TextModel, TextReward, TextRewardSpec,
    TrainConfig, TrainEvent, train,
};

type CliResult = Result<(), Box<dyn Error + Send + Sync>>;

/// Subcommands of `model`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Train a text denoiser with the masked-diffusion objective; rerun with
    /// --resume to continue an interrupted run from its last checkpoint.
    Train(ModelTrainArgs),
}

#[derive(Debug, Args)]
pub struct ModelTrainArgs {
    /// UTF-8 text file with one training text a line (default: the embedded
    /// corpus of short King James Bible sentences).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Directory for checkpoints (checkpoint.json, weights, optimizer state) and loss.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML or JSON file with training settings (steps, batch_size,
    /// learning_rate, [model] shape, ...); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of optimizer steps (default 1000).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Texts per optimizer step (default 64).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate of AdamW (default 2e-3).
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Seed of the initial weights, the held-out split, and every batch and mask.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training backend: flex (default), ndarray or wgpu.
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Continue the checkpoint in --out (same settings and corpus) instead of refusing to overwrite it.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Checkpoint directory written by `model train` (default: the embedded model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Number of texts to generate, printed one a line.
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Seed of the sampling streams; the output does not depend on thread count.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Reverse steps N (default: one per position).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Length of semi-autoregressive blocks in tokens (default: one block).
    #[arg(long)]
    pub block_len: Option<usize>,
    /// Remasking rule: random (the model's own kernel) or low-confidence.
    #[arg(long, default_value = "random")]
    pub remasking: Remasking,
    /// Sampling temperature >= 0; 1 samples the model, 0 is greedy decoding.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temperature: f64,
    /// Backend that runs the model: flex (default), ndarray or wgpu.
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
}

/// Runs `model train`.
pub fn model_train(args: &ModelTrainArgs) -> CliResult {
    let mut config = match &args.config {
        Some(path) => TrainConfig::from_file(path)?,
        None => TrainConfig::default(),
    };
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    if let Some(batch_size) = args.batch_size {
        config.batch_size = batch_size;
    }
    if let Some(learning_rate) = args.learning_rate {
        config.learning_rate = learning_rate;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(backend) = args.backend {
        config.backend = backend;
    }
    let corpus = match &args.corpus {
        Some(path) => Corpus::from_file(path)?,
        None => Corpus::embedded(),
    };

    let bar = ProgressBar::new(config.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] step {pos}/{len} {elapsed}<{eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("training");
    let summary = train(&corpus, &args.out, &config, args.resume, &mut |event| {
        match event {
            TrainEvent::Started {
                step,
                total,
                parameters,
                corpus,
            } => {
                bar.set_position(*step as u64);
                bar.suspend(|| {
                    eprintln!(
                        "{} from step {step} of {total}: {parameters} parameters, {} training and {} held-out texts \
                         ({} longer than the sequence length skipped)",
                        if *step == 0 { "training" } else { "resuming" },
                        corpus.train_texts,
                        corpus.heldout_texts,
                        corpus.skipped_too_long
                    )
                });
            }
            TrainEvent::Step { step, loss, .. } => {
                bar.set_position(*step as u64);
                bar.set_message(format!("loss {loss:.3}"));
            }
            TrainEvent::Evaluated(record) => {
                let heldout = record
                    .heldout_loss
                    .map_or_else(|| "n/a".to_string(), |loss| format!("{loss:.4}"));
                bar.suspend(|| {
                    eprintln!(
                        "step {:>6}: train loss {:.4}, held-out loss {heldout} nats/token",
                        record.step, record.train_loss
                    )
                });
            }
            TrainEvent::Checkpointed { .. } => {}
        }
        ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();

    let heldout = summary
        .last
        .as_ref()
        .and_then(|r| r.heldout_loss)
        .map_or_else(|| "n/a (no held-out texts)".to_string(), |loss| format!("{loss:.4}"));
    let wall = summary.last.as_ref().map_or(0.0, |r| r.elapsed_seconds);
    println!(
        "trained {} of {} steps ({:.1} s in this run, {wall:.1} s in all); held-out loss {heldout} nats/token \
         vs {:.4} for the uniform model (ln V)",
        summary.steps_done, summary.total_steps, summary.session_seconds, summary.uniform_loss
    );
    println!("checkpoint: {}", summary.checkpoint.display());
    Ok(())
}

/// Runs `generate`: prints one text a line.
pub fn generate(args: &GenerateArgs) -> CliResult {
    let model = match &args.model {
        Some(dir) => TextModel::load(dir, args.backend)?,
        None => TextModel::embedded(args.backend)?,
    };
    let options = GenerateOptions {
        samples: args.samples,
        seed: args.seed,
        kernel: StepKernelConfig {
            steps: args.steps,
            block_len: args.block_len,
            remasking: args.remasking,
            temperature: args.temperature,
        },
    };
    let texts = lcb_models::text::generate(&model, &options, &NoProgress)?;
    let mut out = std::io::stdout().lock();
    for text in texts {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

/// Text-model options shared by `train`, `sample` and `bench text`.
#[derive(Debug, Clone, Args)]
pub struct TextModelArgs {
    /// Masked-diffusion text model: a checkpoint directory written by
    /// `model train`, or `embedded` for the shipped default model. It
    /// switches `train` and `sample` from the mixture to the text model, and
    /// picks the model of `bench text` (default: embedded).
    #[arg(long)]
    pub model: Option<String>,
    /// Text reward: `default` (the built-in word list), `regex:PATTERN`
    /// (1 when it matches, else 0), `word-list:FILE` (`word weight` lines) or
    /// `command:PROGRAM` (JSON lines over stdin and stdout).
    #[arg(long, default_value = "default", conflicts_with = "reward_config")]
    pub reward: String,
    /// TOML or JSON file with the reward (`kind = "regex" | "word-list" |
    /// "length" | "command"` and its fields).
    #[arg(long)]
    pub reward_config: Option<PathBuf>,
    /// `r_max` of a `command:` reward, which per-step RS and the envelope
    /// cap need. Other rewards know their own bound.
    #[arg(long, allow_negative_numbers = true)]
    pub reward_upper_bound: Option<f64>,
    /// Reverse steps N of the text kernel (default 8).
    #[arg(long)]
    pub steps: Option<usize>,
}

impl TextModelArgs {
    pub fn is_text(&self) -> bool {
        self.model.is_some()
    }

    fn kernel_config(&self) -> Result<StepKernelConfig, Box<dyn Error + Send + Sync>> {
        let steps = self.steps.unwrap_or(8);
        if steps == 0 {
            return Err("invalid --steps 0: give at least 1 reverse step, such as 8".into());
        }
        Ok(StepKernelConfig {
            steps: Some(steps),
            ..StepKernelConfig::default()
        })
    }

    fn load_model(&self, backend: Backend) -> Result<Arc<TextModel>, Box<dyn Error + Send + Sync>> {
        let model = match self.model.as_deref() {
            None | Some("embedded") => TextModel::embedded(backend)?,
            Some(dir) => TextModel::load(std::path::Path::new(dir), backend)?,
        };
        Ok(Arc::new(model))
    }

    /// Builds the reward and a description that identifies it.
    fn reward(&self, model: &TextModel, width: usize) -> Result<(TextReward, String), Box<dyn Error + Send + Sync>> {
        if let Some(path) = &self.reward_config {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read the reward config {}: {err}", path.display()))?;
            let spec: TextRewardSpec = if path.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text).map_err(|err| format!("invalid reward config {}: {err}", path.display()))?
            } else {
                toml::from_str(&text).map_err(|err| format!("invalid reward config {}: {err}", path.display()))?
            };
            let description = serde_json::to_string(&spec)?;
            return Ok((TextReward::new(model.tokenizer().clone(), width, spec.build()?), description));
        }
        let spec = self.reward.as_str();
        if self.reward_upper_bound.is_some() && !spec.starts_with("command:") {
            return Err(format!(
                "--reward-upper-bound applies to command: rewards, and {spec:?} knows its own bound; drop it"
            )
            .into());
        }
        if spec == "default" {
            return Ok((default_reward(model, width)?, default_reward_description()));
        }
        let (kind, rest) = spec.split_once(':').ok_or_else(|| {
            format!("invalid --reward {spec:?}: expected default, regex:PATTERN, word-list:FILE or command:PROGRAM")
        })?;
        let spec = match kind {
            "regex" => TextRewardSpec::Regex {
                pattern: rest.to_string(),
                matched: 1.0,
                unmatched: 0.0,
            },
            "word-list" => TextRewardSpec::WordList {
                path: PathBuf::from(rest),
                case_sensitive: false,
            },
            "command" if rest.contains(char::is_whitespace) && !std::path::Path::new(rest).exists() => {
                return Err(format!(
                    "the reward command {rest:?} is run directly, without a shell, so `--reward command:` \
                     cannot pass arguments: put them in `args` of a --reward-config file"
                )
                .into());
            }
            "command" => TextRewardSpec::Command {
                program: PathBuf::from(rest),
                args: Vec::new(),
                timeout_seconds: 30.0,
                batch_size: 256,
                upper_bound: self.reward_upper_bound,
            },
            other => {
                return Err(format!(
                    "invalid --reward kind {other:?}: expected default, regex:PATTERN, word-list:FILE or command:PROGRAM"
                )
                .into());
            }
        };
        let description = serde_json::to_string(&spec)?;
        Ok((TextReward::new(model.tokenizer().clone(), width, spec.build()?), description))
    }
}

/// Runs `train --model`: fits the value network, then the token baseline,
/// and saves both into `out`.
pub fn train_text_command(
    text: &TextModelArgs,
    alpha: f64,
    backend: Backend,
    seed: u64,
    overrides: &TrainOverrides,
    out: &std::path::Path,
) -> CliResult {
    let model = text.load_model(Backend::Flex)?;
    let code = token_code(&model);
    let kernel_config = text.kernel_config()?;
    let kernel = StepKernel::new(model.clone(), &kernel_config)?;
    let (reward, description) = text.reward(&model, code.len)?;
    let model_id = text_model_id(&model, &kernel_config, &description)?;

    let mut config = TextLearnConfig::for_code(code, backend, seed);
    if let Some(particles) = overrides.particles {
        config.baseline.particles = particles;
    }
    if let Some(iterations) = overrides.iterations {
        config.baseline.iterations_per_step = iterations;
    }
    if let Some(rate) = overrides.learning_rate {
        config.baseline.learning_rate = rate;
    }
    if let Some(trajectories) = overrides.value_trajectories {
        config.value.trajectories = trajectories;
    }
    let bar = crate::progress::StepBar::new("value, then baseline");
    let learned = train_text(&kernel, &reward, alpha, code, &config, &bar)?;
    bar.finish();

    let info = lcb_learn::CheckpointInfo {
        model_id: model_id.clone(),
        alpha,
    };
    learned.value.save(out, &model_id, alpha)?;
    let manifest = learned.baseline.save(out, &info)?;
    let history = &learned.value.history;
    println!(
        "value network: held-out loss {:.4} against {:.4} for the constant fit ({} pairs, {:.1} s)",
        history.kept_heldout_loss().unwrap_or(f64::NAN),
        history.heldout_constant_loss.unwrap_or(f64::NAN),
        history.pairs,
        history.wall_seconds
    );
    println!("| step t | tau_t | accept rate | proposals |");
    println!("|---:|---:|---:|---:|");
    for log in &learned.baseline.history.final_pass {
        println!("| {} | {:.3} | {:.3} | {} |", log.step, log.tau, log.accept_rate, log.proposals);
    }
    println!("checkpoint: {}", manifest.display());
    Ok(())
}

/// Baseline-training flags of `train` that also apply to text.
pub struct TrainOverrides {
    pub particles: Option<usize>,
    pub iterations: Option<usize>,
    pub learning_rate: Option<f64>,
    pub value_trajectories: Option<usize>,
}

/// Runs `sample --model`: draws texts with one method and prints a summary;
/// `--out` gets one JSON line per text with its reward.
#[allow(clippy::too_many_arguments)]
pub fn sample_text_command(
    text: &TextModelArgs,
    method: lcb_bench::MethodName,
    alpha: f64,
    samples: usize,
    seed: u64,
    n: usize,
    max_proposals: u64,
    baseline_dir: Option<&std::path::Path>,
    rollouts: Option<usize>,
    out: Option<&std::path::Path>,
    report: Option<&std::path::Path>,
) -> CliResult {
    use lcb_bench::MethodName;
    let method = match method {
        MethodName::Rs => TextMethod::Rs,
        MethodName::Lcb => TextMethod::Lcb,
        MethodName::Bon => TextMethod::Bon,
        MethodName::LcbBon => TextMethod::LcbBon,
        other => {
            return Err(format!(
                "method {} is not available for the text model: use rs, lcb, bon or lcb-bon",
                other.as_str()
            )
            .into());
        }
    };
    let model = text.load_model(Backend::Flex)?;
    let code = token_code(&model);
    let kernel_config = text.kernel_config()?;
    let kernel = StepKernel::new(model.clone(), &kernel_config)?;
    let (reward, description) = text.reward(&model, code.len)?;
    let model_id = text_model_id(&model, &kernel_config, &description)?;
    let steps = lcb_core::Kernel::steps(&kernel);
    let end = lcb_core::RolloutValue::new(&kernel, &reward, alpha, 1, 0)?;
    let upper = lcb_core::Reward::upper_bound(&reward).map(|r| r / alpha);

    if upper.is_none() && matches!(method, TextMethod::Rs) {
        return Err(format!(
            "per-step RS needs the reward's upper bound r_max, and {description} has none: pass \
             --reward-upper-bound R for a command reward, or use lcb, bon or lcb-bon"
        )
        .into());
    }
    let loaded = match baseline_dir {
        Some(dir) => {
            let expected = lcb_learn::CheckpointExpectations {
                model_id: model_id.clone(),
                alpha,
                width: code.width(),
                steps,
            };
            let baseline = lcb_learn::TrainedBaseline::load(dir, &expected)?;
            // Monte Carlo values, when asked for, replace the value network.
            let value = match rollouts {
                Some(_) => None,
                None => Some(lcb_learn::TrainedValue::load(dir, &model_id, alpha, code.width(), steps)?),
            };
            Some((baseline, value))
        }
        None => None,
    };
    if loaded.is_none() && matches!(method, TextMethod::Lcb | TextMethod::LcbBon) {
        return Err(format!(
            "method {} needs a trained baseline: train one with `lcb-cli train --model ...` and pass --baseline DIR",
            method.name()
        )
        .into());
    }
    let rollout = match rollouts {
        Some(m) => Some(lcb_core::RolloutValue::new(&kernel, &reward, alpha, m, seed ^ 0x5eed)?),
        None => None,
    };
    let network_value = loaded
        .as_ref()
        .and_then(|(_, value)| value.as_ref())
        .map(|value| TokenValue {
            network: &value.network,
            code,
            terminal: &end,
            upper,
        });
    let value: Option<&dyn lcb_core::Value<Elem = u32>> = match (&rollout, &network_value) {
        (Some(rollout), _) => Some(rollout),
        (None, Some(network)) => Some(network),
        (None, None) => None,
    };
    if value.is_none() && method == TextMethod::Rs {
        return Err("method rs needs soft values: pass --baseline DIR from `lcb-cli train --model` (its value \
                    network) or --rollouts M for Monte Carlo values"
            .into());
    }
    let token_baseline = loaded.as_ref().map(|(baseline, _)| TokenBaseline {
        network: &baseline.network,
        code,
    });
    let components = TextComponents {
        kernel: &kernel,
        reward: &reward,
        alpha,
        value,
        baseline: match (&token_baseline, &loaded) {
            (Some(b), Some((trained, _))) => Some((b as &dyn lcb_core::Baseline<Elem = u32>, trained.tau.as_slice())),
            _ => None,
        },
        n,
    };
    let bar = crate::progress::StepBar::new(method.name());
    let limits = lcb_core::Limits {
        max_proposals_per_prefix: max_proposals,
        ..lcb_core::Limits::default()
    };
    let output = run_text(&components, method, samples, seed, limits, &bar)?;
    bar.finish();
    let texts = reward.decode_rows(&output.states);
    if let Some(path) = out {
        let mut lines = String::new();
        for (text, r) in texts.iter().zip(&output.rewards) {
            // Adding 0.0 turns a -0.0 from a scorer into 0.
            lines.push_str(&serde_json::json!({ "text": text, "reward": r + 0.0 }).to_string());
            lines.push('\n');
        }
        lcb_bench::output::write_atomic(path, lines.as_bytes())?;
    }
    let mut record = output.record.clone();
    record.alpha = alpha;
    if let Some(path) = report {
        // The run record, plus the settings that trace it back to its inputs.
        let mut json = serde_json::to_value(&record)?;
        if let Some(fields) = json.as_object_mut() {
            fields.insert("model_id".into(), model_id.clone().into());
            fields.insert("n".into(), n.into());
            fields.insert(
                "baseline".into(),
                baseline_dir.map(|dir| dir.display().to_string()).into(),
            );
            fields.insert("rollouts".into(), rollouts.into());
        }
        let mut text = serde_json::to_string_pretty(&json)?;
        text.push('\n');
        lcb_bench::output::write_atomic(path, text.as_bytes())?;
    }
    for text in texts.iter().take(5) {
        println!("{text}");
    }
    print!("{}", lcb_bench::table::markdown(std::slice::from_ref(&record)));
    Ok(())
}

/// Runs `bench text`: the language comparison on a text model with the built-in reward.
pub fn bench_text_command(
    text: &TextModelArgs,
    alphas: &[f64],
    samples: Option<usize>,
    seed: u64,
    backend: Backend,
    out: &std::path::Path,
) -> CliResult {
    let model = text.load_model(Backend::Flex)?;
    let mut config = TextBenchConfig {
        seed,
        backend,
        ..TextBenchConfig::default()
    };
    if !alphas.is_empty() {
        config.alphas = alphas.to_vec();
        if !alphas.contains(&config.trajectory_alpha) {
            config.trajectory_alpha = alphas[alphas.len() - 1];
        }
    }
    if let Some(samples) = samples {
        config.samples = samples;
    }
    if let Some(steps) = text.steps {
        config.steps = steps;
    }

    let started = std::time::Instant::now();
    let report = run_text_bench(model, &config, &|message| {
        eprintln!("[{:>6.1} s] {message}", started.elapsed().as_secs_f64());
    })?;

    std::fs::create_dir_all(out).map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    let figures = draw_text_figures(out, &report)?;
    let mut summary = format!("Reward: {}\n\n{}\n", report.reward, text_table(&report));
    for fit in &report.value_fit {
        summary.push_str(&format!(
            "Value network at alpha {}: held-out loss {:.4} against {:.4} for the constant fit.\n",
            fit.alpha,
            fit.heldout_loss.unwrap_or(f64::NAN),
            fit.constant_loss.unwrap_or(f64::NAN)
        ));
    }
    lcb_bench::output::write_atomic(&out.join("text_summary.md"), summary.as_bytes())?;
    lcb_bench::output::write_atomic(&out.join("text_report.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    print!("{summary}");
    for figure in figures {
        println!("wrote {}", figure.display());
    }
    println!("wrote {} and {}", out.join("text_summary.md").display(), out.join("text_report.json").display());
    Ok(())
}
