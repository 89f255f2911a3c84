//! The benchmark suite of a mixture experiment: every method at the base
//! `alpha`, grids over `alpha`, `delta` and `N`, the matched-compute
//! comparison and envelope traces along sampled trajectories.

use lcb_core::{
    AnalyticEnvelope, Envelope, GaussianKernel, Limits, Progress, RunRecord, SampleOutput, Value, advance,
};
use lcb_core::{Guide, LearnedEnvelope};
use lcb_models::gmm::GmmSetup;
use serde::Serialize;

use crate::compare::matched_compute;
use crate::error::BenchError;
use crate::gmm::{GmmRunOptions, KernelChoice, LearnedLcb, run_gmm};
use crate::method::MethodName;

/// Grids and sizes of a suite run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteSettings {
    pub kernel: KernelChoice,
    /// Samples per run in the main table.
    pub samples: usize,
    /// Samples per run in the grids (RS at small alpha is expensive).
    pub grid_samples: usize,
    pub seed: u64,
    /// Best-of-N candidates in the main table.
    pub n: usize,
    pub alphas: Vec<f64>,
    pub deltas: Vec<f64>,
    pub ns: Vec<usize>,
    /// Temperatures of the matched-compute comparison.
    pub compare_alphas: Vec<f64>,
    #[serde(skip)]
    pub limits: Limits,
    pub max_trajectories: u64,
}

impl Default for SuiteSettings {
    fn default() -> Self {
        Self {
            kernel: KernelChoice::Exact,
            samples: 2000,
            grid_samples: 500,
            seed: 0,
            n: 8,
            alphas: vec![1.0, 0.5, 0.2, 0.1],
            deltas: vec![0.5, 0.2, 0.1, 0.05, 0.02, 0.01],
            ns: vec![1, 2, 4, 8, 16, 32, 64],
            compare_alphas: vec![1.0, 0.2],
            limits: Limits::default(),
            max_trajectories: 100_000_000,
        }
    }
}

/// One run of the suite with the grid point it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRun {
    /// `main`, `alpha`, `delta`, `n` or `compare`.
    pub grid: &'static str,
    pub alpha: f64,
    pub delta: f64,
    pub n: usize,
    pub record: RunRecord,
    /// Rewards of the samples.
    #[serde(skip)]
    pub rewards: Vec<f64>,
    /// First coordinate of the samples.
    #[serde(skip)]
    pub first_coordinate: Vec<f64>,
}

/// The envelope, the exact soft value and RS's bound along one sampled
/// trajectory: entry `i` belongs to transition `steps[i]` with prefix `y`,
/// envelope `c(y)` and value `V_t(y)`.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub label: String,
    pub steps: Vec<usize>,
    pub envelope: Vec<f64>,
    pub value: Vec<f64>,
    pub global_bound: Option<f64>,
}

/// Everything a suite run produced.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub settings: SuiteSettings,
    pub runs: Vec<SuiteRun>,
    pub traces: Vec<Trace>,
}

/// Builds the experiment at a temperature and a tail level.
pub type SetupAt<'a> = dyn Fn(f64, f64) -> Result<GmmSetup, BenchError> + 'a;

/// Trains (or loads) a learned baseline for an experiment; `None` when
/// learned baselines are not part of the run.
pub type LearnedFor<'a> = dyn Fn(&GmmSetup) -> Result<Option<OwnedLcb>, BenchError> + 'a;

/// A learned baseline owned by the suite.
pub struct OwnedLcb {
    pub baseline: Box<dyn lcb_core::Baseline<Elem = f64>>,
    pub tau: Vec<f64>,
}

/// Creates one progress display per run, given its label.
pub type ProgressFor<'a> = dyn Fn(&str) -> Box<dyn Progress> + 'a;

struct Runner<'a> {
    settings: &'a SuiteSettings,
    progress: &'a ProgressFor<'a>,
    runs: Vec<SuiteRun>,
}

impl Runner<'_> {
    fn run(
        &mut self,
        grid: &'static str,
        setup: &GmmSetup,
        method: MethodName,
        samples: usize,
        n: usize,
        learned: Option<&OwnedLcb>,
    ) -> Result<SampleOutput<f64>, BenchError> {
        let label = format!("{grid} {method} a={} d={} n={n}", setup.alpha, setup.delta);
        let progress = (self.progress)(&label);
        let options = GmmRunOptions {
            kernel: self.settings.kernel,
            samples,
            seed: self.settings.seed,
            n,
            delta: setup.delta,
            limits: self.settings.limits,
            max_trajectories: self.settings.max_trajectories,
            progress: progress.as_ref(),
        };
        let learned = learned.map(|l| LearnedLcb {
            baseline: l.baseline.as_ref(),
            tau: l.tau.clone(),
        });
        let output = run_gmm(setup, method, &options, learned.as_ref())?;
        let d = setup.diffusion.dim();
        self.runs.push(SuiteRun {
            grid,
            alpha: setup.alpha,
            delta: setup.delta,
            n,
            record: output.record.clone(),
            rewards: output.rewards.clone(),
            first_coordinate: output.states.chunks_exact(d).map(|x| x[0]).collect(),
        });
        Ok(output)
    }
}

/// Runs the whole suite. `base_alpha` and `base_delta` set the main table;
/// `learned` adds learned LCB (and LCB then best-of-N with it) wherever LCB runs.
pub fn run_suite(
    setup_at: &SetupAt<'_>,
    base_alpha: f64,
    base_delta: f64,
    settings: &SuiteSettings,
    learned: &LearnedFor<'_>,
    progress: &ProgressFor<'_>,
) -> Result<SuiteReport, BenchError> {
    let mut runner = Runner {
        settings,
        progress,
        runs: Vec::new(),
    };
    let base = setup_at(base_alpha, base_delta)?;
    let bounded = base.reward.reward.bound().is_some();
    let base_learned = learned(&base)?;

    // Main table: every method at the base temperature.
    for method in MethodName::ALL {
        let needs_bound = matches!(method, MethodName::Rs | MethodName::TrajectoryRs);
        if (needs_bound && !bounded) || (method == MethodName::Lcb && base_learned.is_none()) {
            continue;
        }
        runner.run("main", &base, method, settings.samples, settings.n, base_learned.as_ref())?;
    }

    // Proposals and rewards across alpha; best-of-N gets LCB's cost.
    for &alpha in &settings.alphas {
        let setup = setup_at(alpha, base_delta)?;
        let trained = learned(&setup)?;
        if bounded {
            runner.run("alpha", &setup, MethodName::Rs, settings.grid_samples, 1, None)?;
        }
        let lcb_method = if trained.is_some() { MethodName::Lcb } else { MethodName::LcbAnalytic };
        let lcb = runner.run("alpha", &setup, lcb_method, settings.grid_samples, 1, trained.as_ref())?;
        if trained.is_some() {
            runner.run("alpha", &setup, MethodName::LcbAnalytic, settings.grid_samples, 1, None)?;
        }
        let per_step = lcb.record.computed_proposals as f64 / (lcb.record.samples * lcb.record.steps).max(1) as f64;
        let n = per_step.round().max(1.0) as usize;
        runner.run("alpha", &setup, MethodName::Bon, settings.grid_samples, n, None)?;
    }

    // Reward and effective N across delta.
    for &delta in &settings.deltas {
        let setup = setup_at(base_alpha, delta)?;
        runner.run("delta", &setup, MethodName::LcbAnalytic, settings.grid_samples, 1, None)?;
        if let Some(trained) = learned(&setup)? {
            runner.run("delta", &setup, MethodName::Lcb, settings.grid_samples, 1, Some(&trained))?;
        }
    }

    // Best-of-N and LCB then best-of-N across N.
    for &n in &settings.ns {
        runner.run("n", &base, MethodName::Bon, settings.grid_samples, n, None)?;
        runner.run("n", &base, MethodName::LcbBon, settings.grid_samples, n, base_learned.as_ref())?;
    }

    // Matched computed proposals.
    for &alpha in &settings.compare_alphas {
        let setup = setup_at(alpha, base_delta)?;
        let progress = progress(&format!("compare a={alpha}"));
        let options = GmmRunOptions {
            kernel: settings.kernel,
            samples: settings.grid_samples,
            seed: settings.seed,
            n: 1,
            delta: setup.delta,
            limits: settings.limits,
            max_trajectories: settings.max_trajectories,
            progress: progress.as_ref(),
        };
        for record in matched_compute(&setup, &options)? {
            runner.runs.push(SuiteRun {
                grid: "compare",
                alpha,
                delta: setup.delta,
                n: 0,
                record,
                rewards: Vec::new(),
                first_coordinate: Vec::new(),
            });
        }
    }

    let traces = match settings.kernel {
        KernelChoice::Exact => traces(&base.exact, &base, base_learned.as_ref(), settings)?,
        KernelChoice::Ddpm => traces(&base.ddpm, &base, base_learned.as_ref(), settings)?,
    };
    Ok(SuiteReport {
        settings: settings.clone(),
        runs: runner.runs,
        traces,
    })
}

/// Follows two LCB trajectories and records, at each transition, the
/// envelope of the prefix against its exact soft value. The learned
/// envelope is traced when there is one, the analytic one otherwise.
fn traces<K: GaussianKernel>(
    kernel: &K,
    setup: &GmmSetup,
    learned: Option<&OwnedLcb>,
    settings: &SuiteSettings,
) -> Result<Vec<Trace>, BenchError> {
    let bound = setup.reward.reward.bound().map(|r| r / setup.alpha);
    let analytic = AnalyticEnvelope::new(kernel, &setup.value, setup.delta, bound)?;
    let learned_envelope = learned
        .map(|l| LearnedEnvelope::new(l.baseline.as_ref(), l.tau.clone(), bound))
        .transpose()?;
    let (envelope, name): (&dyn Envelope<Elem = f64>, &str) = match &learned_envelope {
        Some(e) => (e, "learned"),
        None => (&analytic, "analytic"),
    };
    let guide = Guide {
        value: &setup.value,
        envelope,
    };

    let width = lcb_core::Kernel::width(kernel);
    let particles = [0u64, 1];
    let mut root = vec![0.0; width];
    lcb_core::Kernel::root(kernel, &mut root);
    let mut states: Vec<f64> = root.iter().copied().cycle().take(width * particles.len()).collect();
    let mut traces: Vec<Trace> = particles
        .iter()
        .map(|p| Trace {
            label: format!("{name} envelope, trajectory {}", p + 1),
            steps: Vec::new(),
            envelope: Vec::new(),
            value: Vec::new(),
            global_bound: bound,
        })
        .collect();
    for t in (1..=lcb_core::Kernel::steps(kernel)).rev() {
        let mut c = vec![0.0; particles.len()];
        let mut v = vec![0.0; particles.len()];
        envelope
            .log_envelopes(t, &states, &mut c)
            .map_err(|source| lcb_core::SampleError::Component { what: "envelope", step: t, source })?;
        setup
            .value
            .log_values(t, &states, &mut v)
            .map_err(|source| lcb_core::SampleError::Component { what: "value", step: t, source })?;
        for (i, trace) in traces.iter_mut().enumerate() {
            trace.steps.push(t);
            trace.envelope.push(c[i]);
            trace.value.push(v[i]);
        }
        states = advance(kernel, Some(guide), t, &states, &particles, settings.seed, &settings.limits)?.children;
    }
    Ok(traces)
}

impl SuiteReport {
    /// Runs of one grid, in order.
    pub fn grid(&self, grid: &str) -> impl Iterator<Item = &SuiteRun> {
        self.runs.iter().filter(move |r| r.grid == grid)
    }

    /// One CSV row per run with the grid point and the record's main fields.
    pub fn csv(&self) -> String {
        let mut text = String::from(
            "grid,method,alpha,delta,n,samples,steps,computed_proposals,sequential_proposals,\
             proposals_per_sample,effective_n,reward_mean,reward_stderr,exact_reward_mean,ks_statistic,\
             ks_pvalue,tv_clip_estimate,wall_seconds\n",
        );
        let optional = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
        for run in &self.runs {
            let r = &run.record;
            text.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                run.grid,
                r.method.replace(',', ";"),
                run.alpha,
                run.delta,
                run.n,
                r.samples,
                r.steps,
                r.computed_proposals,
                r.sequential_proposals,
                r.proposals_per_sample,
                r.effective_n,
                r.reward_mean,
                r.reward_stderr,
                optional(r.exact_reward_mean),
                optional(r.ks_statistic),
                optional(r.ks_pvalue),
                r.tv_clip_estimate,
                r.wall_seconds,
            ));
        }
        text
    }

    /// Formats the markdown summary: one table per grid.
    pub fn markdown(&self, title: &str) -> String {
        let mut text = format!("# {title}\n\n");
        let sections = [
            ("main", "Every method at the base temperature"),
            ("alpha", "Across alpha"),
            ("delta", "Across delta"),
            ("n", "Across N"),
        ];
        for (grid, heading) in sections {
            let records: Vec<RunRecord> = self
                .grid(grid)
                .map(|r| {
                    let mut record = r.record.clone();
                    record.method = match grid {
                        "alpha" => format!("{} (alpha {})", record.method, r.alpha),
                        "delta" => format!("{} (delta {})", record.method, r.delta),
                        "n" => format!("{} (N {})", record.method, r.n),
                        _ => record.method,
                    };
                    record
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            text.push_str(&format!("## {heading}\n\n"));
            text.push_str(&crate::table::markdown(&records));
            text.push('\n');
        }
        let alphas: Vec<f64> = self.settings.compare_alphas.clone();
        if !alphas.is_empty() {
            text.push_str("## At matched computed proposals\n\n");
            for alpha in alphas {
                let records: Vec<RunRecord> = self
                    .grid("compare")
                    .filter(|r| r.alpha == alpha)
                    .map(|r| r.record.clone())
                    .collect();
                text.push_str(&crate::compare::markdown(&format!("alpha = {alpha}"), &records));
                text.push('\n');
            }
        }
        text
    }
}
