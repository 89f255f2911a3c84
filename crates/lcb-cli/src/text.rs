//! `model train` and `generate`: the text denoiser's command-line glue.

use std::error::Error;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lcb_core::NoProgress;
use lcb_models::text::{
    Backend, Corpus, GenerateOptions, Remasking, StepKernelConfig, TextModel, TrainConfig, TrainEvent, train,
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
    #[arg(long, default_value_t = 1.0)]
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
