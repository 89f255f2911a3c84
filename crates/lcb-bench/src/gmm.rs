//! Runs a sampling method on a Gaussian-mixture experiment and scores it
//! against the closed-form aligned target.

use std::fmt;
use std::str::FromStr;

use lcb_core::stats::ks_one_sample;
use lcb_core::{
    AnalyticEnvelope, Baseline, GaussianKernel, Guide, GuidedConfig, GuidedSelection, LearnedEnvelope, Limits,
    Method, Problem, Progress, RunOptions, SampleOutput, Selection, SmcConfig, global_bound, sample, sample_guided,
    sample_smc,
};
use lcb_models::gmm::GmmSetup;

use crate::error::BenchError;
use crate::method::MethodName;

/// Reverse kernel of the mixture that a run samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelChoice {
    /// The exact posterior: samplers can be checked against the target.
    #[default]
    Exact,
    /// The DDPM score kernel, as a trained diffusion model would run.
    Ddpm,
}

impl KernelChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Ddpm => "ddpm",
        }
    }
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KernelChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(Self::Exact),
            "ddpm" => Ok(Self::Ddpm),
            other => Err(format!("unknown kernel {other:?}; available: exact, ddpm")),
        }
    }
}

/// Settings shared by every method of a run.
#[derive(Clone, Copy)]
pub struct GmmRunOptions<'a> {
    pub kernel: KernelChoice,
    pub samples: usize,
    pub seed: u64,
    /// Candidates per sample for the best-of-N methods, proposals per step
    /// for value-guided selection, particles per output sample for SMC.
    pub n: usize,
    /// Tail level of the analytic envelope.
    pub delta: f64,
    pub limits: Limits,
    /// Budget of whole-trajectory RS, in trajectories.
    pub max_trajectories: u64,
    pub progress: &'a dyn Progress,
}

/// A learned baseline and its `tau_t` (`tau[t - 1]` for `t = 1..=T`).
pub struct LearnedLcb<'a> {
    pub baseline: &'a dyn Baseline<Elem = f64>,
    pub tau: Vec<f64>,
}

/// Runs `method` and fills the record's exact fields: the target's reward
/// mean and a KS test of the first coordinate against the target's CDF.
pub fn run_gmm(
    setup: &GmmSetup,
    method: MethodName,
    options: &GmmRunOptions<'_>,
    learned: Option<&LearnedLcb<'_>>,
) -> Result<SampleOutput<f64>, BenchError> {
    if options.samples == 0 {
        return Err(lcb_core::SampleError::InvalidParameter {
            name: "samples",
            value: 0.0,
            expected: "at least 1 sample",
        }
        .into());
    }
    let mut output = match options.kernel {
        KernelChoice::Exact => run_with(&setup.exact, setup, method, options, learned)?,
        KernelChoice::Ddpm => run_with(&setup.ddpm, setup, method, options, learned)?,
    };
    let d = setup.diffusion.dim();
    let first: Vec<f64> = output.states.chunks_exact(d).map(|x| x[0]).collect();
    let ks = ks_one_sample(&first, |a| setup.target.coordinate_cdf(0, a));
    output.record.exact_reward_mean = Some(setup.target.reward_mean());
    output.record.ks_statistic = ks.map(|k| k.statistic);
    output.record.ks_pvalue = ks.map(|k| k.pvalue);
    Ok(output)
}

fn run_with<K: GaussianKernel>(
    kernel: &K,
    setup: &GmmSetup,
    method: MethodName,
    options: &GmmRunOptions<'_>,
    learned: Option<&LearnedLcb<'_>>,
) -> Result<SampleOutput<f64>, BenchError> {
    let problem = Problem::new(kernel, &setup.reward, setup.alpha)?;
    let run = RunOptions {
        samples: options.samples,
        seed: options.seed,
        limits: options.limits,
        progress: options.progress,
    };
    let cap = global_bound(&problem, "cap").ok().map(|b| b.bound);
    let analytic = AnalyticEnvelope::new(kernel, &setup.value, options.delta, cap)?;
    let learned_envelope = learned
        .map(|l| LearnedEnvelope::new(l.baseline, l.tau.clone(), cap))
        .transpose()?;
    let name = method.as_str();

    let output = match method {
        MethodName::Rs => {
            let bound = global_bound(&problem, "per-step RS")?;
            let guide = Guide {
                value: &setup.value,
                envelope: &bound,
            };
            sample(name, &problem, &Method::Stepwise(guide), &run)?
        }
        MethodName::TrajectoryRs => sample(
            name,
            &problem,
            &Method::TrajectoryRs {
                max_trajectories: options.max_trajectories,
            },
            &run,
        )?,
        MethodName::LcbAnalytic => {
            let guide = Guide {
                value: &setup.value,
                envelope: &analytic,
            };
            sample(name, &problem, &Method::Stepwise(guide), &run)?
        }
        MethodName::Lcb => {
            let envelope = learned_envelope.as_ref().ok_or(BenchError::MissingInput {
                method: name.into(),
                what: "a learned baseline (train one with `lcb-cli train`, then pass --baseline DIR)",
            })?;
            let guide = Guide {
                value: &setup.value,
                envelope,
            };
            sample(name, &problem, &Method::Stepwise(guide), &run)?
        }
        MethodName::Bon | MethodName::SoftBon => {
            let selection = if method == MethodName::Bon {
                Selection::Max
            } else {
                Selection::Soft
            };
            let method = Method::BestOfN {
                n: options.n,
                selection,
                guide: None,
            };
            sample(name, &problem, &method, &run)?
        }
        MethodName::LcbBon => {
            let envelope: &dyn lcb_core::Envelope<Elem = f64> = match &learned_envelope {
                Some(e) => e,
                None => &analytic,
            };
            let guide = Guide {
                value: &setup.value,
                envelope,
            };
            let method = Method::BestOfN {
                n: options.n,
                selection: Selection::Max,
                guide: Some(guide),
            };
            sample(name, &problem, &method, &run)?
        }
        MethodName::Smc => {
            let config = SmcConfig {
                particles: Some(options.samples * options.n),
                ..SmcConfig::default()
            };
            sample_smc(name, &problem, &setup.value, &config, &run)?
        }
        MethodName::Svdd | MethodName::SvddArgmax => {
            let selection = if method == MethodName::Svdd {
                GuidedSelection::Sample
            } else {
                GuidedSelection::Argmax
            };
            let config = GuidedConfig {
                proposals: options.n,
                selection,
            };
            sample_guided(name, &problem, &setup.value, &config, &run)?
        }
    };
    Ok(output)
}
