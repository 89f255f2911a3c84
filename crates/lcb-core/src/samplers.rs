//! Samplers composed from envelope rejection: per-step RS, LCB (learned or
//! analytic envelopes), whole-trajectory RS, best-of-N and LCB then best-of-N.

use std::time::Instant;

use crate::envelope::GlobalBound;
use crate::error::{SampleError, check_alpha};
use crate::logmath::log_sum_exp;
use crate::record::{RunRecord, StepRecord};
use crate::rejection::{Guide, Limits, advance};
use crate::rng::{Lane, Stream};
use crate::stats::mean_and_stderr;
use crate::traits::{StateElem, Envelope, Kernel, Progress, Reward, Value};

/// The pretrained kernel, the reward and the temperature that define the
/// aligned target `p*(x_{0:T}) ~ p(x_{0:T}) exp(r(x_0) / alpha)`.
pub struct Problem<'a, E: StateElem> {
    pub kernel: &'a dyn Kernel<Elem = E>,
    pub reward: &'a dyn Reward<Elem = E>,
    pub alpha: f64,
}

impl<'a, E: StateElem> Problem<'a, E> {
    pub fn new(
        kernel: &'a dyn Kernel<Elem = E>,
        reward: &'a dyn Reward<Elem = E>,
        alpha: f64,
    ) -> Result<Self, SampleError> {
        check_alpha(alpha)?;
        Ok(Self {
            kernel,
            reward,
            alpha,
        })
    }
}

/// How many samples to draw, from which seed, within which limits.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    pub samples: usize,
    pub seed: u64,
    pub limits: Limits,
    pub progress: &'a dyn Progress,
}

/// Samples (`[samples, width]`), their rewards and the run record.
#[derive(Debug, Clone)]
pub struct SampleOutput<E> {
    pub states: Vec<E>,
    pub rewards: Vec<f64>,
    pub record: RunRecord,
}

/// Rule by which best-of-N keeps one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The candidate with the highest reward.
    Max,
    /// One candidate drawn with weights `exp(r / alpha)` (importance resampling).
    Soft,
}

/// A sampling method with the components it needs.
pub enum Method<'a, E: StateElem> {
    /// Envelope rejection at every transition with the given envelope:
    /// per-step RS with a [`GlobalBound`], LCB with a learned or analytic one.
    Stepwise(Guide<'a, E>),
    /// Propose whole base trajectories and accept with
    /// `exp((r(x_0) - r_max) / alpha)`; needs a bounded reward.
    TrajectoryRs {
        /// Trajectories the run may draw before it stops with an error.
        max_trajectories: u64,
    },
    /// `n` candidates per sample, drawn from the base model (no guide) or by
    /// envelope rejection (LCB then best-of-N), and one kept by `selection`.
    BestOfN {
        n: usize,
        selection: Selection,
        guide: Option<Guide<'a, E>>,
    },
}

/// Per-step RS: the envelope is the global bound `r_max / alpha`.
pub fn per_step_rs_guide<'a, E: StateElem>(
    problem: &Problem<'_, E>,
    value: &'a dyn Value<Elem = E>,
    bound: &'a GlobalBound<E>,
) -> Result<Guide<'a, E>, SampleError>
where
    GlobalBound<E>: Envelope<Elem = E>,
{
    if problem.reward.upper_bound().is_none() {
        return Err(SampleError::NoGlobalBound { method: "per-step RS" });
    }
    Ok(Guide {
        value,
        envelope: bound,
    })
}

/// Computes the global bound `B = r_max / alpha` of a problem's reward.
pub fn global_bound<E: StateElem>(problem: &Problem<'_, E>, method: &'static str) -> Result<GlobalBound<E>, SampleError> {
    let r_max = problem
        .reward
        .upper_bound()
        .ok_or(SampleError::NoGlobalBound { method })?;
    GlobalBound::from_reward_bound(r_max, problem.alpha)
}

/// Runs `method` on `problem` and returns its samples and record.
pub fn sample<E: StateElem>(
    name: &str,
    problem: &Problem<'_, E>,
    method: &Method<'_, E>,
    options: &RunOptions<'_>,
) -> Result<SampleOutput<E>, SampleError> {
    let start = Instant::now();
    let mut output = match method {
        Method::Stepwise(guide) => {
            let particles: Vec<u64> = (0..options.samples as u64).collect();
            let chains = run_chains(problem.kernel, Some(*guide), &particles, options, 1)?;
            let rewards = rewards_of(problem, &chains.states)?;
            finish(name, problem, options, chains, rewards)
        }
        Method::TrajectoryRs { max_trajectories } => trajectory_rs(name, problem, *max_trajectories, options)?,
        Method::BestOfN { n, selection, guide } => best_of_n(name, problem, *n, *selection, *guide, options)?,
    };
    output.record.wall_seconds = start.elapsed().as_secs_f64();
    Ok(output)
}

/// Chains run to `x_0`, with the per-step statistics of the run.
struct Chains<E> {
    states: Vec<E>,
    per_step: Vec<StepRecord>,
    computed: u64,
    sequential: u64,
}

/// Runs one chain per particle id from the root down to `x_0`.
/// `progress_share` is the number of such batches a run makes, so that
/// progress counts each batch's steps.
fn run_chains<E: StateElem>(
    kernel: &dyn Kernel<Elem = E>,
    guide: Option<Guide<'_, E>>,
    particles: &[u64],
    options: &RunOptions<'_>,
    progress_share: usize,
) -> Result<Chains<E>, SampleError> {
    let width = kernel.width();
    let steps = kernel.steps();
    let mut root = vec![E::default(); width];
    kernel.root(&mut root);
    let mut states: Vec<E> = root.iter().copied().cycle().take(width * particles.len()).collect();

    let mut per_step = Vec::with_capacity(steps);
    let (mut computed, mut sequential) = (0, 0);
    for t in (1..=steps).rev() {
        let outcome = advance(kernel, guide, t, &states, particles, options.seed, &options.limits)?;
        per_step.push(StepRecord {
            step: t,
            computed_proposals: outcome.computed,
            sequential_proposals: outcome.sequential,
            acceptance_rate: outcome.acceptance_rate(),
            tv_clip: outcome.tv_clip(),
            ess: None,
        });
        computed += outcome.computed;
        sequential += outcome.sequential;
        states = outcome.children;
        options.progress.advance(steps - t + 1, steps * progress_share);
    }
    Ok(Chains {
        states,
        per_step,
        computed,
        sequential,
    })
}

pub(crate) fn rewards_of<E: StateElem>(problem: &Problem<'_, E>, states: &[E]) -> Result<Vec<f64>, SampleError> {
    let width = problem.kernel.width();
    let mut rewards = vec![0.0; states.len() / width.max(1)];
    problem
        .reward
        .rewards(states, &mut rewards)
        .map_err(|source| SampleError::Component {
            what: "reward",
            step: 0,
            source,
        })?;
    if let Some((index, &value)) = rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(SampleError::NonFinite {
            what: "reward r(x_0)",
            step: Some(0),
            index,
            value,
        });
    }
    Ok(rewards)
}

fn finish<E: StateElem>(
    name: &str,
    problem: &Problem<'_, E>,
    options: &RunOptions<'_>,
    chains: Chains<E>,
    rewards: Vec<f64>,
) -> SampleOutput<E> {
    let record = record_of(
        name,
        problem,
        options,
        rewards.len(),
        chains.computed,
        chains.sequential,
        chains.per_step,
        &rewards,
    );
    SampleOutput {
        states: chains.states,
        rewards,
        record,
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn record_of<E: StateElem>(
    name: &str,
    problem: &Problem<'_, E>,
    options: &RunOptions<'_>,
    samples: usize,
    computed: u64,
    sequential: u64,
    per_step: Vec<StepRecord>,
    rewards: &[f64],
) -> RunRecord {
    let steps = problem.kernel.steps();
    let (reward_mean, reward_stderr) = mean_and_stderr(rewards);
    let proposals_per_sample = sequential as f64 / samples.max(1) as f64;
    RunRecord {
        method: name.to_string(),
        samples,
        steps,
        alpha: problem.alpha,
        seed: options.seed,
        computed_proposals: computed,
        sequential_proposals: sequential,
        proposals_per_sample,
        effective_n: proposals_per_sample / steps.max(1) as f64,
        reward_mean,
        reward_stderr,
        tv_clip_estimate: per_step.iter().map(|s| s.tv_clip).sum(),
        wall_seconds: 0.0,
        exact_reward_mean: None,
        ks_statistic: None,
        ks_pvalue: None,
        log_normalizer_estimate: None,
        per_step,
    }
}

/// Whole-trajectory RS: base trajectories `a = 0, 1, ...` (particle ids),
/// each accepted with probability `exp((r(x_0) - r_max) / alpha)`. The
/// accepted trajectories, in order, are the samples; exact under the true
/// reward with no values at all.
fn trajectory_rs<E: StateElem>(
    name: &str,
    problem: &Problem<'_, E>,
    max_trajectories: u64,
    options: &RunOptions<'_>,
) -> Result<SampleOutput<E>, SampleError> {
    let r_max = problem
        .reward
        .upper_bound()
        .ok_or(SampleError::NoGlobalBound {
            method: "whole-trajectory RS",
        })?;
    let width = problem.kernel.width();
    let steps = problem.kernel.steps();

    let mut states = Vec::with_capacity(options.samples * width);
    let mut rewards = Vec::with_capacity(options.samples);
    let mut drawn = 0u64;
    let mut computed = 0u64;
    let mut last_needed = 0u64;
    while rewards.len() < options.samples {
        if drawn >= max_trajectories {
            return Err(SampleError::TrajectoryBudgetExhausted {
                accepted: rewards.len(),
                requested: options.samples,
                budget: max_trajectories,
            });
        }
        // Size the batch from the running acceptance rate.
        let missing = (options.samples - rewards.len()) as f64;
        let rate = (rewards.len() as f64 + 1.0) / (drawn as f64 + 1.0);
        let batch = ((1.2 * missing / rate).ceil() as u64)
            .clamp(64, 1 << 18)
            .min(max_trajectories - drawn);
        let particles: Vec<u64> = (drawn..drawn + batch).collect();
        let chains = run_chains(problem.kernel, None, &particles, options, 1)?;
        computed += chains.computed;
        let batch_rewards = rewards_of(problem, &chains.states)?;
        for (k, &r) in batch_rewards.iter().enumerate() {
            if rewards.len() == options.samples {
                break;
            }
            let a = drawn + k as u64;
            let u = Stream::at(options.seed, a, 0, 0, Lane::Accept).uniform_open();
            if u.ln() < ((r - r_max) / problem.alpha).min(0.0) {
                states.extend_from_slice(&chains.states[k * width..(k + 1) * width]);
                rewards.push(r);
                last_needed = a + 1;
            }
        }
        drawn += batch;
    }

    let sequential = last_needed * steps as u64;
    let per_step = (1..=steps)
        .rev()
        .map(|t| StepRecord {
            step: t,
            computed_proposals: computed / steps as u64,
            sequential_proposals: last_needed,
            acceptance_rate: if t == 1 {
                options.samples as f64 / last_needed.max(1) as f64
            } else {
                1.0
            },
            tv_clip: 0.0,
            ess: None,
        })
        .collect();
    let record = record_of(name, problem, options, rewards.len(), computed, sequential, per_step, &rewards);
    Ok(SampleOutput {
        states,
        rewards,
        record,
    })
}

/// Best-of-N: candidates `s * n + m` for `m < n` belong to sample `s`.
fn best_of_n<E: StateElem>(
    name: &str,
    problem: &Problem<'_, E>,
    n: usize,
    selection: Selection,
    guide: Option<Guide<'_, E>>,
    options: &RunOptions<'_>,
) -> Result<SampleOutput<E>, SampleError> {
    if n == 0 {
        return Err(SampleError::InvalidParameter {
            name: "N (best-of-N candidates)",
            value: 0.0,
            expected: "at least 1 candidate per sample",
        });
    }
    let width = problem.kernel.width();
    let particles: Vec<u64> = (0..(options.samples * n) as u64).collect();
    let chains = run_chains(problem.kernel, guide, &particles, options, 1)?;
    let candidate_rewards = rewards_of(problem, &chains.states)?;

    let mut states = Vec::with_capacity(options.samples * width);
    let mut rewards = Vec::with_capacity(options.samples);
    for s in 0..options.samples {
        let group = &candidate_rewards[s * n..(s + 1) * n];
        let pick = match selection {
            Selection::Max => group
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(m, _)| m)
                .unwrap_or(0),
            Selection::Soft => {
                let logits: Vec<f64> = group.iter().map(|r| r / problem.alpha).collect();
                let u = Stream::at(options.seed, s as u64, 0, 0, Lane::Select).uniform_open();
                categorical_from_logits(&logits, u)
            }
        };
        let row = s * n + pick;
        states.extend_from_slice(&chains.states[row * width..(row + 1) * width]);
        rewards.push(group[pick]);
    }

    let record = record_of(
        name,
        problem,
        options,
        options.samples,
        chains.computed,
        chains.sequential,
        chains.per_step,
        &rewards,
    );
    Ok(SampleOutput {
        states,
        rewards,
        record,
    })
}

/// Draws an index with probabilities `softmax(logits)` by inverting the CDF at `u`.
pub fn categorical_from_logits(logits: &[f64], u: f64) -> usize {
    let total = log_sum_exp(logits);
    let mut cumulative = 0.0;
    for (i, &l) in logits.iter().enumerate() {
        cumulative += (l - total).exp();
        if u < cumulative {
            return i;
        }
    }
    logits.len() - 1
}
