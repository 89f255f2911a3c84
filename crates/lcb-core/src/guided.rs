//! Per-step value-guided selection in the manner of SVDD.
//!
//! At each transition `t`, every particle `y` draws `M` proposals
//! `x_1, ..., x_M ~ p_t(.|y)` (one kernel call for a chunk of particles) and
//! keeps one of them by its value estimate `V^_{t-1}(x_j)` (log units):
//!
//! * [`GuidedSelection::Sample`] keeps `x_j` with probability
//!   `exp(V^_{t-1}(x_j)) / sum_k exp(V^_{t-1}(x_k))`. This is sampling
//!   importance resampling of the tilted kernel
//!   `p_t(x|y) exp(V^_{t-1}(x) - V^_t(y))`, consistent only as `M -> inf`.
//!   With `w = exp(V^_{t-1})`, the kept child has density
//!   `p_t(x|y) w(x) g(w(x))` with `g(w) = M E[1 / (w + w_2 + ... + w_M)]`
//!   decreasing in `w`, so for finite `M` high-value children are
//!   under-weighted relative to the tilted kernel. The bias of an expectation
//!   shrinks like `1/M`, and no weight is carried to correct it. `M = 1` is
//!   the base model.
//! * [`GuidedSelection::Argmax`] keeps the proposal with the largest
//!   `V^_{t-1}`. It is biased: it does not target `p*` for any `M > 1`. The
//!   kept child depends on `V^` only through the order of the values, so it
//!   ignores the temperature `alpha` altogether, and as `M` grows it
//!   concentrates on the highest-value children (greedy search). For a
//!   Gaussian random walk `x_{t-1} = x_t + sigma z` with the reward `w x_0`,
//!   each kept `z` is the maximum of `M` standard normals whatever `alpha`
//!   is, while under the aligned chain `z ~ N(sigma w / alpha, 1)` (this
//!   module's tests check both).
//!
//! Proposal `j` of particle `i` at transition `t` uses the kernel stream
//! `(seed, i, t, j)` and the selection draw the select stream
//! `(seed, i, t, 0)`, so the output is the same for any thread count.

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::SampleError;
use crate::record::StepRecord;
use crate::rejection::Limits;
use crate::rng::{Lane, Stream};
use crate::samplers::{
    Problem, RunOptions, SampleOutput, categorical_from_logits, record_of, rewards_of,
};
use crate::traits::{Kernel, StateElem, Value};

/// Rule that keeps one of a particle's `M` proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuidedSelection {
    /// The proposal with the largest `V^_{t-1}`, the first one on ties. It
    /// does not target `p*` (see the module docs).
    Argmax,
    /// One proposal drawn with weights `exp(V^_{t-1})`.
    #[default]
    Sample,
}

/// Settings of value-guided selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuidedConfig {
    /// Proposals `M` per particle and transition.
    pub proposals: usize,
    /// Rule that keeps one proposal.
    pub selection: GuidedSelection,
}

impl Default for GuidedConfig {
    fn default() -> Self {
        Self {
            proposals: 16,
            selection: GuidedSelection::default(),
        }
    }
}

impl GuidedConfig {
    /// Checks the proposal count.
    pub fn validate(&self) -> Result<(), SampleError> {
        if self.proposals == 0 {
            return Err(SampleError::InvalidParameter {
                name: "proposals (M per particle and step)",
                value: 0.0,
                expected: "at least 1 proposal",
            });
        }
        Ok(())
    }
}

/// Runs one chain per requested sample with value-guided selection at
/// every transition, and returns the samples and the run record.
///
/// Every proposal counts as computed and as sequential, `M` per particle and
/// step. The acceptance rate of a step is `1/M`, and the record has no
/// clipping estimate, ESS or normaliser estimate.
///
/// # Shapes
/// The output's `states` are `[options.samples, width]`.
pub fn sample_guided<E: StateElem>(
    name: &str,
    problem: &Problem<'_, E>,
    value: &dyn Value<Elem = E>,
    config: &GuidedConfig,
    options: &RunOptions<'_>,
) -> Result<SampleOutput<E>, SampleError> {
    let start = Instant::now();
    config.validate()?;
    let kernel = problem.kernel;
    let width = kernel.width();
    let steps = kernel.steps();

    let mut root = vec![E::default(); width];
    kernel.root(&mut root);
    let mut states: Vec<E> = root
        .iter()
        .copied()
        .cycle()
        .take(width * options.samples)
        .collect();
    let particles: Vec<u64> = (0..options.samples as u64).collect();

    let proposals_per_step = (options.samples * config.proposals) as u64;
    let mut per_step = Vec::with_capacity(steps);
    for t in (1..=steps).rev() {
        states = select_step(
            kernel,
            value,
            config,
            t,
            &states,
            &particles,
            options.seed,
            &options.limits,
        )?;
        per_step.push(StepRecord {
            step: t,
            computed_proposals: proposals_per_step,
            sequential_proposals: proposals_per_step,
            acceptance_rate: 1.0 / config.proposals as f64,
            tv_clip: 0.0,
            ess: None,
        });
        options.progress.advance(steps - t + 1, steps);
    }

    let rewards = rewards_of(problem, &states)?;
    let total = proposals_per_step * steps as u64;
    let mut record = record_of(
        name,
        problem,
        options,
        options.samples,
        total,
        total,
        per_step,
        &rewards,
    );
    record.wall_seconds = start.elapsed().as_secs_f64();
    Ok(SampleOutput {
        states,
        rewards,
        record,
    })
}

/// Advances every particle one transition `t` by value-guided selection,
/// in parallel chunks whose kernel calls have at most `limits.max_round_rows`
/// rows (at least one particle each).
///
/// # Shapes
/// `parents: [n, width]`, `particles: [n]` (stream ids); returns `[n, width]`.
#[allow(clippy::too_many_arguments)]
fn select_step<E: StateElem>(
    kernel: &dyn Kernel<Elem = E>,
    value: &dyn Value<Elem = E>,
    config: &GuidedConfig,
    t: usize,
    parents: &[E],
    particles: &[u64],
    seed: u64,
    limits: &Limits,
) -> Result<Vec<E>, SampleError> {
    let width = kernel.width();
    let chunk = (limits.max_round_rows / config.proposals).clamp(1, limits.chunk_prefixes.max(1));
    let chunks: Vec<Vec<E>> = parents
        .par_chunks(chunk * width.max(1))
        .zip(particles.par_chunks(chunk))
        .map(|(parents, particles)| {
            select_chunk(kernel, value, config, t, parents, particles, seed)
        })
        .collect::<Result<_, _>>()?;
    Ok(chunks.concat())
}

fn select_chunk<E: StateElem>(
    kernel: &dyn Kernel<Elem = E>,
    value: &dyn Value<Elem = E>,
    config: &GuidedConfig,
    t: usize,
    parents: &[E],
    particles: &[u64],
    seed: u64,
) -> Result<Vec<E>, SampleError> {
    let width = kernel.width();
    let m = config.proposals;
    let rows = particles.len() * m;

    // Rows i*M .. (i+1)*M hold the proposals of particle i.
    let parent_of: Vec<usize> = (0..rows).map(|row| row / m).collect();
    let mut rngs: Vec<Stream> = (0..rows)
        .map(|row| Stream::at(seed, particles[row / m], t, (row % m) as u64, Lane::Kernel))
        .collect();
    let mut proposals = vec![E::default(); rows * width];
    kernel
        .propose(t, parents, &parent_of, &mut rngs, &mut proposals)
        .map_err(|source| SampleError::Component {
            what: "kernel proposal",
            step: t,
            source,
        })?;
    let mut values = vec![0.0; rows];
    value
        .log_values(t - 1, &proposals, &mut values)
        .map_err(|source| SampleError::Component {
            what: "value estimate",
            step: t - 1,
            source,
        })?;

    let mut children = Vec::with_capacity(particles.len() * width);
    for (i, &particle) in particles.iter().enumerate() {
        let group = &values[i * m..(i + 1) * m];
        check_group(group, particle, m, t)?;
        let pick = match config.selection {
            GuidedSelection::Argmax => first_argmax(group),
            GuidedSelection::Sample => {
                let u = Stream::at(seed, particle, t, 0, Lane::Select).uniform_open();
                categorical_from_logits(group, u)
            }
        };
        let row = i * m + pick;
        children.extend_from_slice(&proposals[row * width..(row + 1) * width]);
    }
    Ok(children)
}

/// Rejects NaN and `+inf` values, and a group whose values are all `-inf`
/// (every proposal has weight 0, so the tilted kernel is undefined there).
/// Error indices are proposal rows of the whole step, `particle * M + j`.
fn check_group(group: &[f64], particle: u64, m: usize, t: usize) -> Result<(), SampleError> {
    let first_row = particle as usize * m;
    if let Some((j, &v)) = group
        .iter()
        .enumerate()
        .find(|(_, v)| v.is_nan() || **v == f64::INFINITY)
    {
        return Err(SampleError::NonFinite {
            what: "value estimate V^_{t-1}(x)",
            step: Some(t),
            index: first_row + j,
            value: v,
        });
    }
    if group.iter().all(|&v| v == f64::NEG_INFINITY) {
        return Err(SampleError::NonFinite {
            what: "largest value estimate V^_{t-1} among one particle's proposals",
            step: Some(t),
            index: first_row,
            value: f64::NEG_INFINITY,
        });
    }
    Ok(())
}

/// Index of the first maximum.
fn first_argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (j, &v) in values.iter().enumerate().skip(1) {
        if v > values[best] {
            best = j;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use std::f64::consts::PI;

    use super::*;
    use crate::error::ComponentResult;
    use crate::samplers::{Method, Selection, sample};
    use crate::smc::walk::{GrowingSlopeValue, Walk};
    use crate::special::{normal_cdf, normal_pdf};
    use crate::stats::{ks_one_sample, mean_and_stderr};
    use crate::traits::NoProgress;

    /// KS p-values below this fail a test; fixed before any run.
    const KS_LEVEL: f64 = 1e-3;

    /// `beta sigma = 0.3` per step: the target of `x_0` is `N(0.9, 0.9)`.
    fn walk(alpha: f64) -> Walk {
        Walk {
            steps: 10,
            sigma: 0.3,
            w: 1.0,
            alpha,
        }
    }

    fn options(samples: usize, seed: u64) -> RunOptions<'static> {
        RunOptions {
            samples,
            seed,
            limits: Limits::default(),
            progress: &NoProgress,
        }
    }

    fn run(
        walk: &Walk,
        proposals: usize,
        selection: GuidedSelection,
        samples: usize,
        seed: u64,
    ) -> SampleOutput<f64> {
        let problem = Problem::new(walk, walk, walk.alpha).unwrap();
        let config = GuidedConfig {
            proposals,
            selection,
        };
        sample_guided(
            "guided",
            &problem,
            &walk.exact_value(),
            &config,
            &options(samples, seed),
        )
        .unwrap()
    }

    fn ks_pvalue(samples: &[f64], mean: f64, sd: f64) -> f64 {
        ks_one_sample(samples, |x| normal_cdf((x - mean) / sd))
            .unwrap()
            .pvalue
    }

    fn variance(xs: &[f64]) -> f64 {
        let (mean, _) = mean_and_stderr(xs);
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
    }

    /// `E[z*]` for `M = 2` and weights `exp(s z)`: keeping `z_1` has
    /// probability `sigmoid(s d)`, `d = z_1 - z_2 ~ N(0, 2)`, and
    /// `z_1 = (d + e) / 2` with `e` independent of `d`, so
    /// `E[z*] = E[d sigmoid(s d)] = 2 s E[sigmoid'(s d)]` (Stein's lemma),
    /// integrated here by the trapezoid rule over `d = sqrt(2) u`,
    /// `u ~ N(0, 1)`.
    fn soft_pair_mean(s: f64) -> f64 {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let h = 1e-3;
        let integral: f64 = (-10_000..=10_000)
            .map(|k| {
                let u = k as f64 * h;
                let p = sigmoid(s * 2f64.sqrt() * u);
                normal_pdf(u) * p * (1.0 - p) * h
            })
            .sum();
        2.0 * s * integral
    }

    #[test]
    fn single_proposal_is_base_model() {
        let walk = walk(1.0);
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let base = Method::BestOfN {
            n: 1,
            selection: Selection::Max,
            guide: None,
        };
        let expected = sample("base", &problem, &base, &options(2000, 4)).unwrap();
        for selection in [GuidedSelection::Argmax, GuidedSelection::Sample] {
            let out = run(&walk, 1, selection, 2000, 4);
            assert_eq!(out.states, expected.states, "{selection:?}");
        }
        let p = ks_pvalue(&expected.states, 0.0, walk.target_sd());
        assert!(
            p > KS_LEVEL,
            "KS p = {p} against the base law N(0, T sigma^2)"
        );
    }

    #[test]
    fn sample_selection_matches_its_finite_m_law() {
        // Weights exp(V^_{t-1}(y + sigma z_j)) are proportional to
        // exp(s z_j), s = beta sigma, whatever y is, so the kept increments
        // z* are i.i.d. over steps: E[x_0] = T sigma E[z*], and
        // E[z*^2] = 1 by symmetry, so Var[x_0] = T sigma^2 (1 - E[z*]^2).
        // Tolerances: 5 standard errors of the mean, and 5 of the variance
        // (Var sqrt(2 / (n - 1)), as x_0 is a sum of 10 near-normal terms).
        let walk = walk(1.0);
        let n = 4000;
        let out = run(&walk, 2, GuidedSelection::Sample, n, 8);
        let pair_mean = soft_pair_mean(walk.beta() * walk.sigma);
        let expected_mean = walk.steps as f64 * walk.sigma * pair_mean;
        let expected_var = walk.steps as f64 * walk.sigma.powi(2) * (1.0 - pair_mean.powi(2));

        let (mean, stderr) = mean_and_stderr(&out.states);
        assert!(
            (mean - expected_mean).abs() < 5.0 * stderr,
            "mean {mean}, expected {expected_mean} +- {}",
            5.0 * stderr
        );
        let var = variance(&out.states);
        let var_tolerance = 5.0 * expected_var * (2.0 / (n - 1) as f64).sqrt();
        assert!(
            (var - expected_var).abs() < var_tolerance,
            "variance {var}, expected {expected_var}"
        );
        // That law is not the target: at M = 2 about half the tilt is missing.
        assert!(
            walk.target_mean() - mean > 5.0 * stderr,
            "mean {mean} is not below the target mean {}",
            walk.target_mean()
        );
    }

    #[test]
    fn sample_selection_uses_child_step_value() {
        // With V^_t(y) = rate t y, transition t weighs proposal j by
        // exp(s_t z_j), s_t = rate (t - 1) sigma, so by the argument of the
        // test above E[x_0] = sigma sum_t E[z* | s_t] and
        // Var[x_0] = sigma^2 sum_t (1 - E[z* | s_t]^2). Reading the value at
        // step t instead would move the mean by sigma E[z* | rate T sigma]
        // = 0.11, 10 standard errors of 8000 samples; the tolerance is 5.
        let walk = walk(1.0);
        let value = GrowingSlopeValue { rate: 0.3 };
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let config = GuidedConfig {
            proposals: 2,
            selection: GuidedSelection::Sample,
        };
        let out = sample_guided("guided", &problem, &value, &config, &options(8000, 33)).unwrap();

        let pair_means: Vec<f64> = (1..=walk.steps)
            .map(|t| soft_pair_mean(value.rate * (t - 1) as f64 * walk.sigma))
            .collect();
        let expected_mean = walk.sigma * pair_means.iter().sum::<f64>();
        let (mean, stderr) = mean_and_stderr(&out.states);
        assert!(
            (mean - expected_mean).abs() < 5.0 * stderr,
            "mean {mean}, expected {expected_mean} +- {}",
            5.0 * stderr
        );
    }

    #[test]
    fn sample_selection_approaches_target() {
        // Self-normalised importance sampling biases the kept increment's
        // mean by about -s e^{s^2} / M (s = beta sigma), so x_0's mean by
        // T sigma times that: 0.008 at M = 128, under half the standard error
        // 0.021 of 2000 samples. The KS test cannot see it, and the mean
        // check allows 5 standard errors plus that bias.
        let walk = walk(1.0);
        let m = 128;
        let out = run(&walk, m, GuidedSelection::Sample, 2000, 15);

        let p = ks_pvalue(&out.states, walk.target_mean(), walk.target_sd());
        assert!(p > KS_LEVEL, "KS p = {p} against the target at M = {m}");
        let s = walk.beta() * walk.sigma;
        let bias = walk.steps as f64 * walk.sigma * s * (s * s).exp() / m as f64;
        let (mean, stderr) = mean_and_stderr(&out.states);
        assert!(
            (mean - walk.target_mean()).abs() < 5.0 * stderr + bias,
            "mean {mean}"
        );
    }

    #[test]
    fn argmax_selection_is_biased() {
        // With M = 2 the kept increment is max(z_1, z_2): mean 1/sqrt(pi),
        // variance 1 - 1/pi, so x_0 has mean T sigma / sqrt(pi) = 1.69 and
        // variance 0.61, against the target's 0.9 and 0.9. Tolerances as in
        // the test of sample selection: 5 standard errors.
        let n = 4000;
        let walk = walk(1.0);
        let out = run(&walk, 2, GuidedSelection::Argmax, n, 21);

        // The temperature does not enter: a four times colder target gives
        // the same samples.
        let cold = run(
            &Walk {
                alpha: 0.25,
                ..walk
            },
            2,
            GuidedSelection::Argmax,
            n,
            21,
        );
        assert_eq!(out.states, cold.states);

        let t = walk.steps as f64;
        let expected_mean = t * walk.sigma / PI.sqrt();
        let expected_var = t * walk.sigma.powi(2) * (1.0 - 1.0 / PI);
        let (mean, stderr) = mean_and_stderr(&out.states);
        assert!(
            (mean - expected_mean).abs() < 5.0 * stderr,
            "mean {mean}, expected {expected_mean}"
        );
        let var = variance(&out.states);
        let var_tolerance = 5.0 * expected_var * (2.0 / (n - 1) as f64).sqrt();
        assert!(
            (var - expected_var).abs() < var_tolerance,
            "variance {var}, expected {expected_var}"
        );

        let p = ks_pvalue(&out.states, walk.target_mean(), walk.target_sd());
        assert!(
            p < KS_LEVEL,
            "argmax passed the KS test against the target (p = {p})"
        );

        // More proposals move it further off: the maximum of 16 normals has
        // variance 0.30, so x_0's variance is 0.27, far below the target's
        // 0.9.
        let greedy = run(&walk, 16, GuidedSelection::Argmax, n, 21);
        let greedy_var = variance(&greedy.states);
        assert!(
            greedy_var < 0.5 * walk.target_sd().powi(2),
            "variance {greedy_var} at M = 16"
        );
    }

    #[test]
    fn record_counts_m_per_step() {
        let walk = walk(1.0);
        let out = run(&walk, 5, GuidedSelection::Sample, 70, 2);
        let record = &out.record;

        assert_eq!(out.states.len(), 70);
        for (x, r) in out.states.iter().zip(&out.rewards) {
            assert_eq!(*r, walk.w * x);
        }
        assert_eq!(record.method, "guided");
        assert_eq!(record.samples, 70);
        assert_eq!(record.computed_proposals, 70 * 5 * 10);
        assert_eq!(record.sequential_proposals, 70 * 5 * 10);
        assert_eq!(record.effective_n, 5.0);
        assert_eq!(record.per_step.len(), 10);
        for step in &record.per_step {
            assert_eq!(step.computed_proposals, 350);
            assert_eq!(step.acceptance_rate, 0.2);
            assert_eq!(step.ess, None);
        }
        assert_eq!(record.log_normalizer_estimate, None);
    }

    #[test]
    fn output_independent_of_threads() {
        let walk = walk(1.0);
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let value = walk.exact_value();
        let config = GuidedConfig {
            proposals: 6,
            selection: GuidedSelection::Sample,
        };
        let run_with = |threads: usize, chunk: usize, rows: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut options = options(300, 12);
            options.limits.chunk_prefixes = chunk;
            options.limits.max_round_rows = rows;
            pool.install(|| sample_guided("guided", &problem, &value, &config, &options).unwrap())
        };
        let single_thread = run_with(1, 64, 16_384);
        let four_threads = run_with(4, 5, 20);
        assert_eq!(single_thread.states, four_threads.states);
    }

    #[test]
    fn rejects_zero_proposals() {
        let walk = walk(1.0);
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let config = GuidedConfig {
            proposals: 0,
            selection: GuidedSelection::Sample,
        };
        let result = sample_guided(
            "guided",
            &problem,
            &walk.exact_value(),
            &config,
            &options(10, 1),
        );
        assert!(matches!(result, Err(SampleError::InvalidParameter { .. })));
    }

    #[test]
    fn rejects_all_zero_weights() {
        struct Impossible;
        impl Value for Impossible {
            type Elem = f64;
            fn log_values(&self, _t: usize, _states: &[f64], out: &mut [f64]) -> ComponentResult {
                out.fill(f64::NEG_INFINITY);
                Ok(())
            }
        }
        let walk = walk(1.0);
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        for selection in [GuidedSelection::Argmax, GuidedSelection::Sample] {
            let config = GuidedConfig {
                proposals: 3,
                selection,
            };
            let result = sample_guided("guided", &problem, &Impossible, &config, &options(4, 1));
            assert!(
                matches!(result, Err(SampleError::NonFinite { step: Some(10), .. })),
                "{selection:?}: {result:?}"
            );
        }
    }
}
