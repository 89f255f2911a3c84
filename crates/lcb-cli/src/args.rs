//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use lcb_bench::{KernelChoice, MethodName};

#[derive(Debug, Parser)]
#[command(name = "lcb-cli", version, about = "Inference-time alignment of diffusion models with Learnable Chernoff Baselines")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draw samples from the reward-aligned model with one method; write
    /// them as CSV and the run record as JSON.
    Sample(SampleArgs),
    /// Train a learned Chernoff baseline and save it as a checkpoint.
    Train(TrainArgs),
    /// Run the methods side by side on one seed, print a table and write
    /// one JSON report per method.
    Bench(BenchArgs),
    /// Compare RS, LCB, best-of-N, value-guided selection and SMC at matched
    /// computed proposals, for each alpha.
    Compare(CompareArgs),
    /// Measure how RS's and LCB's proposals grow with 1/alpha and with the
    /// dimension, on the paper preset lifted to d dimensions.
    Scaling(ScalingArgs),
    /// Train text denoisers.
    #[command(subcommand)]
    Model(crate::text::ModelCommand),
    /// Generate texts with a text denoiser, one a line.
    Generate(crate::text::GenerateArgs),
}

/// The experiment: a built-in preset or a TOML config file.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Built-in preset: paper-gmm or aniso-4d.
    #[arg(long, default_value = "paper-gmm", conflicts_with = "config")]
    pub preset: String,
    /// TOML file with the mixture, schedule, reward, alpha and delta.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Reverse kernel: exact (the exact posterior, with ground truth) or ddpm.
    #[arg(long, default_value = "exact")]
    pub kernel: KernelChoice,
    /// KL temperature alpha > 0 (default: the preset's or config's; 0.5 for
    /// a text model).
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Tail level delta in (0, 1) of the analytic envelope (default: the preset's or config's).
    #[arg(long, allow_negative_numbers = true)]
    pub delta: Option<f64>,
}

/// Run settings shared by `sample` and `bench`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Candidates per sample for bon, soft-bon and lcb-bon.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores); output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Proposals one prefix may use at one step before the run fails.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_proposals: u64,
    /// Trajectories whole-trajectory RS may draw before the run fails.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_trajectories: u64,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Sampling method: rs, trajectory-rs, lcb-analytic, lcb, bon, soft-bon, lcb-bon, smc,
    /// svdd or svdd-argmax.
    #[arg(long)]
    pub method: MethodName,
    /// Number of samples.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Output file for the samples: CSV (columns x1..xd, reward) for a
    /// mixture, JSON lines of {"text", "reward"} for a text model.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// JSON file for the run record.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Checkpoint folder of a learned baseline (from `lcb-cli train`), for
    /// the lcb and lcb-bon methods.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub text: crate::text::TextModelArgs,
    /// Text model only: Monte Carlo soft values from M base completions per
    /// state, in place of the value network saved with --baseline.
    #[arg(long)]
    pub rollouts: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Backend that trains the network: ndarray, flex (CPU) or wgpu.
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// TOML file with training settings (particles, iterations_per_step,
    /// learning_rate, network, lambda, tau_slack, ...); options below override it.
    #[arg(long)]
    pub train_config: Option<PathBuf>,
    /// Particles of the aligned trajectory.
    #[arg(long)]
    pub particles: Option<usize>,
    /// Gradient steps per transition.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Fix lambda_t to this value instead of learning it.
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Seed of training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Checkpoint folder to write; an existing checkpoint there is kept
    /// unless --force is given.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing checkpoint in --out.
    #[arg(long)]
    pub force: bool,
    /// Text model only: base trajectories the value network is fitted on
    /// (default 1024; each costs one denoiser pass per reverse step).
    #[arg(long)]
    pub value_trajectories: Option<usize>,
    #[command(flatten)]
    pub text: crate::text::TextModelArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Preset to benchmark (paper-gmm or aniso-4d), or `text` for the
    /// language comparison on the text model; use --config for a file.
    /// `bench text` reads --model, --alphas, --samples, --seed, --steps,
    /// --backend and --out, and ignores the mixture options.
    #[arg(value_name = "PRESET", conflicts_with = "config")]
    pub preset: Option<String>,
    /// TOML file with the experiment.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Reverse kernel: exact or ddpm.
    #[arg(long, default_value = "exact")]
    pub kernel: KernelChoice,
    /// Base temperature of the main table (default: the preset's or config's).
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Base tail level delta in (0, 1) (default: the preset's or config's).
    #[arg(long, allow_negative_numbers = true)]
    pub delta: Option<f64>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Samples per method in the main table (default 2000; 512 for `text`).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Samples per run in the grids over alpha, delta and N.
    #[arg(long, default_value_t = 500)]
    pub grid_samples: usize,
    /// Temperatures of the alpha grid, comma separated (default
    /// 1,0.5,0.2,0.1; 1,0.5,0.25 for `text`).
    #[arg(long, value_delimiter = ',')]
    pub alphas: Vec<f64>,
    /// Tail levels of the delta sweep, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.2,0.1,0.05,0.02,0.01")]
    pub deltas: Vec<f64>,
    /// Candidate counts of the N sweep, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    pub ns: Vec<usize>,
    /// Temperatures of the matched-compute comparison, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,0.2")]
    pub compare_alphas: Vec<f64>,
    /// Run only the main table (no grids, comparison or figures).
    #[arg(long)]
    pub main_only: bool,
    /// Leave learned LCB out (no baseline training).
    #[arg(long)]
    pub no_learned: bool,
    /// Backend that trains the learned baselines: ndarray, flex or wgpu.
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Methods of the main table, comma separated (default: every method
    /// the experiment supports).
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<MethodName>,
    /// Folder for the reports, tables and figures.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub text: crate::text::TextModelArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Preset to compare on (paper-gmm or aniso-4d); use --config for a file.
    #[arg(value_name = "PRESET", conflicts_with = "config")]
    pub preset: Option<String>,
    /// TOML file with the experiment.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Reverse kernel: exact or ddpm.
    #[arg(long, default_value = "exact")]
    pub kernel: KernelChoice,
    /// Temperatures to compare at, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,0.2")]
    pub alphas: Vec<f64>,
    /// Tail level delta in (0, 1) of the LCB envelope (default: the preset's or config's).
    #[arg(long)]
    pub delta: Option<f64>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Samples per method.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Folder for compare.md and the JSON records.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ScalingArgs {
    /// Temperatures at d = 2, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,0.5,0.2,0.1,0.05")]
    pub alphas: Vec<f64>,
    /// Dimensions, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16,32,64")]
    pub dims: Vec<usize>,
    /// Temperature of the dimension sweep.
    #[arg(long, default_value_t = 0.2)]
    pub alpha_for_dims: f64,
    /// Samples per point.
    #[arg(long, default_value_t = 300)]
    pub samples: usize,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Folder for scaling.md, scaling.json and scaling.png.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
}
