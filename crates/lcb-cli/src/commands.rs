//! Wiring of the subcommands to the library crates.

use std::error::Error;

use lcb_bench::output::{samples_csv, write_atomic, write_record};
use lcb_bench::figures::draw_all;
use lcb_bench::suite::{SuiteSettings, run_suite};
use lcb_bench::suite::OwnedLcb;
use lcb_bench::{BenchError, GmmRunOptions, LearnedLcb, MethodName, run_gmm, table};
use lcb_learn::{Backend, LambdaConfig, TrainConfig};
use lcb_core::{Limits, RunRecord};
use lcb_models::gmm::{GmmConfig, GmmSetup};

use crate::args::{BenchArgs, Cli, Command, CompareArgs, RunArgs, SampleArgs, ScalingArgs, TrainArgs};
use crate::progress::StepBar;

type CliResult = Result<(), Box<dyn Error + Send + Sync>>;

pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Sample(args) => with_threads(args.run.threads, || sample(&args)),
        Command::Train(args) => with_threads(args.threads, || train(&args)),
        Command::Bench(args) => with_threads(args.run.threads, || bench(&args)),
        Command::Compare(args) => with_threads(args.run.threads, || compare(&args)),
        Command::Scaling(args) => with_threads(args.threads, || scaling(&args)),
        Command::Model(crate::text::ModelCommand::Train(args)) => crate::text::model_train(&args),
        Command::Generate(args) => crate::text::generate(&args),
    }
}

fn with_threads(threads: Option<usize>, job: impl FnOnce() -> CliResult + Send) -> CliResult {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            return Err("invalid --threads 0: give at least 1 thread".into());
        }
        builder = builder.num_threads(n);
    }
    builder.build()?.install(job)
}

fn load_config(preset: &str, config: Option<&std::path::Path>) -> Result<GmmConfig, Box<dyn Error + Send + Sync>> {
    Ok(match config {
        Some(path) => GmmConfig::from_file(path)?,
        None => GmmConfig::preset(preset)?,
    })
}

fn build(mut config: GmmConfig, alpha: Option<f64>, delta: Option<f64>) -> Result<GmmSetup, Box<dyn Error + Send + Sync>> {
    if let Some(delta) = delta {
        config.delta = delta;
    }
    let alpha = alpha.unwrap_or(config.alpha);
    Ok(config.build(alpha)?)
}

fn run_options<'a>(
    run: &RunArgs,
    kernel: lcb_bench::KernelChoice,
    samples: usize,
    delta: f64,
    progress: &'a StepBar,
) -> GmmRunOptions<'a> {
    GmmRunOptions {
        kernel,
        samples,
        seed: run.seed,
        n: run.n,
        delta,
        limits: Limits {
            max_proposals_per_prefix: run.max_proposals,
            ..Limits::default()
        },
        max_trajectories: run.max_trajectories,
        progress,
    }
}

/// Rejects mixture options given together with `--model`, which would
/// otherwise be ignored.
fn check_no_mixture_options(model: &crate::args::ModelArgs) -> CliResult {
    let mut conflicting = Vec::new();
    if model.config.is_some() {
        conflicting.push("--config");
    }
    if model.preset != "paper-gmm" {
        conflicting.push("--preset");
    }
    if model.kernel != lcb_bench::KernelChoice::Exact {
        conflicting.push("--kernel");
    }
    if model.delta.is_some() {
        conflicting.push("--delta");
    }
    if conflicting.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} set the mixture model, and --model selects a text model; drop them",
        conflicting.join(", ")
    )
    .into())
}

fn sample(args: &SampleArgs) -> CliResult {
    if args.text.is_text() {
        check_no_mixture_options(&args.model)?;
        let alpha = args.model.alpha.unwrap_or(TEXT_ALPHA);
        return crate::text::sample_text_command(
            &args.text,
            args.method,
            alpha,
            args.samples,
            args.run.seed,
            args.run.n,
            args.run.max_proposals,
            args.baseline.as_deref(),
            args.rollouts,
            args.out.as_deref(),
            args.report.as_deref(),
        );
    }
    let config = load_config(&args.model.preset, args.model.config.as_deref())?;
    let setup = build(config.clone(), args.model.alpha, args.model.delta)?;
    let bar = StepBar::new(args.method.as_str());
    let options = run_options(&args.run, args.model.kernel, args.samples, setup.delta, &bar);
    let uses_baseline = matches!(args.method, MethodName::Lcb | MethodName::LcbBon);
    if args.baseline.is_some() && !uses_baseline {
        return Err(format!(
            "--baseline applies to lcb and lcb-bon, and method {} does not use it; drop --baseline or pick one of those",
            args.method
        )
        .into());
    }
    let trained = match &args.baseline {
        Some(dir) => Some(lcb_bench::learned::load_gmm(dir, &config, &setup, args.model.kernel)?),
        None => None,
    };
    if let (Some(trained), Some(delta)) = (&trained, args.model.delta) {
        if (trained.config.delta - delta).abs() > 1e-12 {
            return Err(format!(
                "the baseline was calibrated at delta = {}, and its tau_t cannot change with --delta {delta}; \
                 train one with `lcb-cli train --delta {delta}`, or drop --delta",
                trained.config.delta
            )
            .into());
        }
    }
    let learned = trained.as_ref().map(|t| LearnedLcb {
        baseline: &t.network,
        tau: t.tau.clone(),
    });
    let output = run_gmm(&setup, args.method, &options, learned.as_ref())?;
    bar.finish();

    let d = setup.diffusion.dim();
    if let Some(path) = &args.out {
        write_atomic(path, samples_csv(&output.states, d, &output.rewards).as_bytes())?;
    }
    if let Some(path) = &args.report {
        write_record(path, &output.record)?;
    }
    print!("{}", table::markdown(std::slice::from_ref(&output.record)));
    Ok(())
}

/// Methods run by `bench` when none are named: all that need no trained
/// baseline, less per-step and whole-trajectory RS when the reward has no
/// global bound.
fn default_methods(setup: &GmmSetup) -> Vec<MethodName> {
    let bounded = setup.reward.reward.bound().is_some();
    MethodName::ALL
        .into_iter()
        .filter(|m| *m != MethodName::Lcb)
        .filter(|m| bounded || !matches!(m, MethodName::Rs | MethodName::TrajectoryRs))
        .collect()
}

/// Temperature of `train` and `sample` on the text model when `--alpha` is not given.
const TEXT_ALPHA: f64 = 0.5;

fn bench(args: &BenchArgs) -> CliResult {
    let preset = args.preset.as_deref().unwrap_or("paper-gmm");
    if preset == "text" {
        return crate::text::bench_text_command(
            &args.text,
            &args.alphas,
            args.samples,
            args.run.seed,
            parse_backend(&args.backend)?,
            &args.out,
        );
    }
    if args.text.is_text() {
        return Err("--model applies to `bench text`; the mixture presets take --config".into());
    }
    let alphas = if args.alphas.is_empty() {
        vec![1.0, 0.5, 0.2, 0.1]
    } else {
        args.alphas.clone()
    };
    let samples = args.samples.unwrap_or(2000);
    let config = load_config(preset, args.config.as_deref())?;
    let base_alpha = args.alpha.unwrap_or(config.alpha);
    let base_delta = args.delta.unwrap_or(config.delta);
    let base = build(config.clone(), Some(base_alpha), Some(base_delta))?;
    if args.main_only {
        return bench_main(args, &base);
    }

    let settings = SuiteSettings {
        kernel: args.kernel,
        samples,
        grid_samples: args.grid_samples,
        seed: args.run.seed,
        n: args.run.n,
        alphas,
        deltas: args.deltas.clone(),
        ns: args.ns.clone(),
        compare_alphas: args.compare_alphas.clone(),
        limits: Limits {
            max_proposals_per_prefix: args.run.max_proposals,
            ..Limits::default()
        },
        max_trajectories: args.run.max_trajectories,
    };
    let setup_at = |alpha: f64, delta: f64| {
        let mut config = config.clone();
        config.delta = delta;
        config.build(alpha).map_err(BenchError::from)
    };
    let train_config = TrainConfig {
        backend: parse_backend(&args.backend)?,
        seed: args.run.seed,
        ..TrainConfig::default()
    };
    let learned = |setup: &GmmSetup| -> Result<Option<OwnedLcb>, BenchError> {
        if args.no_learned {
            return Ok(None);
        }
        let bar = StepBar::new(&format!("train a={} d={}", setup.alpha, setup.delta));
        let trained = lcb_bench::learned::train_gmm(setup, args.kernel, &train_config, &bar)?;
        Ok(Some(OwnedLcb {
            tau: trained.tau.clone(),
            baseline: Box::new(trained.network),
        }))
    };
    let progress = |label: &str| -> Box<dyn lcb_core::Progress> { Box::new(StepBar::new(label)) };
    let report = run_suite(&setup_at, base_alpha, base_delta, &settings, &learned, &progress)?;

    let out = &args.out;
    let name = args.config.as_ref().map_or_else(|| preset.to_string(), |p| p.display().to_string());
    let main: Vec<RunRecord> = report.grid("main").map(|r| r.record.clone()).collect();
    for record in &main {
        write_record(&out.join(format!("{}.json", record.method)), record)?;
    }
    let table = table::markdown(&main);
    write_atomic(&out.join("table.md"), table.as_bytes())?;
    write_atomic(&out.join("runs.csv"), report.csv().as_bytes())?;
    write_atomic(&out.join("runs.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    let summary = report.markdown(&format!("{name}: {} kernel, alpha = {base_alpha}, delta = {base_delta}", args.kernel));
    write_atomic(&out.join("summary.md"), summary.as_bytes())?;
    let figures = draw_all(out, &report, &base)?;

    print!("{table}");
    println!("\nwrote {} runs, summary.md, runs.csv, runs.json and {} figures to {}", report.runs.len(), figures.len(), out.display());
    Ok(())
}

/// The main table alone: the named methods (or all that apply) at the base
/// temperature, with a baseline trained for `lcb` and `lcb-bon` unless
/// `--no-learned` is given.
fn bench_main(args: &BenchArgs, setup: &GmmSetup) -> CliResult {
    let mut methods = if args.methods.is_empty() {
        default_methods(setup)
    } else {
        args.methods.clone()
    };
    let trained = if args.no_learned {
        None
    } else {
        let config = TrainConfig {
            backend: parse_backend(&args.backend)?,
            seed: args.run.seed,
            ..TrainConfig::default()
        };
        let bar = StepBar::new("train");
        Some(lcb_bench::learned::train_gmm(setup, args.kernel, &config, &bar)?)
    };
    if trained.is_some() && args.methods.is_empty() {
        let position = methods.iter().position(|m| *m == MethodName::LcbAnalytic).map_or(0, |p| p + 1);
        methods.insert(position, MethodName::Lcb);
    }
    let learned = trained.as_ref().map(|t| LearnedLcb {
        baseline: &t.network,
        tau: t.tau.clone(),
    });

    let mut records = Vec::new();
    for method in methods {
        let bar = StepBar::new(method.as_str());
        let options = run_options(&args.run, args.kernel, args.samples.unwrap_or(2000), setup.delta, &bar);
        let output = run_gmm(setup, method, &options, learned.as_ref())?;
        bar.finish();
        write_record(&args.out.join(format!("{method}.json")), &output.record)?;
        records.push(output.record);
    }
    let table = table::markdown(&records);
    write_atomic(&args.out.join("table.md"), table.as_bytes())?;
    print!("{table}");
    println!("\nwrote {} reports and table.md to {}", records.len(), args.out.display());
    Ok(())
}

fn compare(args: &CompareArgs) -> CliResult {
    let preset = args.preset.as_deref().unwrap_or("paper-gmm");
    let config = load_config(preset, args.config.as_deref())?;
    let name = args
        .config
        .as_ref()
        .map_or_else(|| preset.to_string(), |p| p.display().to_string());

    let mut text = String::new();
    let mut all = Vec::new();
    for &alpha in &args.alphas {
        let setup = build(config.clone(), Some(alpha), args.delta)?;
        let bar = StepBar::new(&format!("alpha {alpha}"));
        let options = run_options(&args.run, args.kernel, args.samples, setup.delta, &bar);
        let records = lcb_bench::compare::matched_compute(&setup, &options)?;
        bar.finish();
        let title = format!("{name}, {} kernel, alpha = {alpha}, delta = {}", args.kernel, setup.delta);
        text.push_str(&lcb_bench::compare::markdown(&title, &records));
        text.push('\n');
        all.extend(records);
    }
    write_atomic(&args.out.join("compare.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(&all)?;
    write_atomic(&args.out.join("compare.json"), json.as_bytes())?;
    print!("{text}");
    Ok(())
}

fn scaling(args: &ScalingArgs) -> CliResult {
    use lcb_bench::scaling;

    let points = scaling::run_scaling(&args.alphas, &args.dims, args.alpha_for_dims, args.samples, args.seed)?;
    let table = scaling::markdown(&points);
    write_atomic(&args.out.join("scaling.md"), table.as_bytes())?;
    write_atomic(&args.out.join("scaling.json"), serde_json::to_string_pretty(&points)?.as_bytes())?;
    scaling::plot(&args.out.join("scaling.png"), &points, args.alpha_for_dims)?;
    print!("{table}");
    Ok(())
}

fn parse_backend(name: &str) -> Result<Backend, Box<dyn Error + Send + Sync>> {
    match name {
        "ndarray" => Ok(Backend::Ndarray),
        "flex" => Ok(Backend::Flex),
        "wgpu" => Ok(Backend::Wgpu),
        other => Err(format!("unknown backend {other:?}; available: ndarray, flex, wgpu").into()),
    }
}

fn train(args: &TrainArgs) -> CliResult {
    let manifest = args.out.join(lcb_learn::checkpoint::MANIFEST_FILE);
    if manifest.exists() && !args.force {
        return Err(format!(
            "{} already contains a checkpoint; pass --force to replace it, or choose another --out",
            args.out.display()
        )
        .into());
    }
    if !args.text.is_text() && args.value_trajectories.is_some() {
        return Err("--value-trajectories applies to text models (--model); mixtures use their exact values".into());
    }
    if args.text.is_text() {
        check_no_mixture_options(&args.model)?;
        let overrides = crate::text::TrainOverrides {
            particles: args.particles,
            iterations: args.iterations,
            learning_rate: args.learning_rate,
            value_trajectories: args.value_trajectories,
        };
        return crate::text::train_text_command(
            &args.text,
            args.model.alpha.unwrap_or(TEXT_ALPHA),
            parse_backend(&args.backend)?,
            args.seed,
            &overrides,
            &args.out,
        );
    }
    let config = load_config(&args.model.preset, args.model.config.as_deref())?;
    let setup = build(config.clone(), args.model.alpha, args.model.delta)?;

    let mut train_config = match &args.train_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str::<TrainConfig>(&text).map_err(|e| format!("invalid training config {}: {e}", path.display()))?
        }
        None => TrainConfig::default(),
    };
    train_config.backend = parse_backend(&args.backend)?;
    train_config.seed = args.seed;
    if let Some(particles) = args.particles {
        train_config.particles = particles;
    }
    if let Some(iterations) = args.iterations {
        train_config.iterations_per_step = iterations;
    }
    if let Some(rate) = args.learning_rate {
        train_config.learning_rate = rate;
    }
    if let Some(value) = args.lambda {
        train_config.lambda = LambdaConfig::Fixed { value };
    }

    let bar = StepBar::new("train");
    let trained = lcb_bench::learned::train_gmm(&setup, args.model.kernel, &train_config, &bar)?;
    drop(bar);
    lcb_bench::learned::save_gmm(&args.out, &trained, &config, &setup, args.model.kernel)?;
    let history = serde_json::to_string_pretty(&trained.history)?;
    write_atomic(&args.out.join("training_log.json"), history.as_bytes())?;

    println!("| step | final loss J | lambda_t | tau_t (training) | tau_t (final pass) | acceptance | proposals |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (log, calibrated) in trained.history.steps.iter().zip(&trained.history.final_pass) {
        println!(
            "| {} | {:.4} | {:.3} | {:.4} | {:.4} | {:.3} | {} |",
            log.step,
            log.losses.last().copied().unwrap_or(f64::NAN),
            log.lambda,
            log.tau,
            calibrated.tau,
            calibrated.accept_rate,
            calibrated.proposals,
        );
    }
    println!(
        "\ntrained on {} in {:.1} s; checkpoint written to {}",
        train_config.backend.name(),
        trained.history.wall_seconds,
        args.out.display()
    );
    Ok(())
}
