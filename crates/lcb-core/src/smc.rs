//! Sequential Monte Carlo (Feynman-Kac steering) with value-based potentials.
//!
//! `S` particles start at the root `x_T`. Each transition `t = T, ..., 1`
//! draws one base proposal `x ~ p_t(.|y)` per particle and multiplies the
//! particle's weight by a potential `exp(L_{t-1} - L_t)`, where the level
//! `L_t` of a path is set by the [`Potential`] (log units). The root's level
//! is `L_T = V^_T(x_T)` and the last level is always `L_0 = r(x_0) / alpha`,
//! so the product of a path's potentials telescopes to
//! `exp(r(x_0) / alpha - V^_T(x_T))`. The final weighted particle set
//! therefore targets the aligned `p*(x_{0:T})` as `S -> inf` for any finite
//! value estimate: `V^` only steers the particles and sets the variance.
//! Every particle starts at the same root, so `V^_T(x_T)` cancels from the
//! normalised weights and from the normaliser estimate.
//!
//! When the effective sample size `ESS = (sum w)^2 / sum w^2` drops below
//! `ess_threshold * S`, the set is resampled and the weights reset to 1.
//! Weights are carried across steps without resampling. The normaliser
//! estimate is the standard SMC one,
//! `Z^ = exp(L_T) * prod over resampling epochs of mean_i w_i`, an unbiased
//! estimate of `Z = E_p[exp(r(x_0) / alpha)]`. Its log, reported as the
//! estimate of `ln Z`, is biased low by about `Var(Z^) / (2 Z^2)`.
//!
//! Randomness: the proposal of particle slot `i` at transition `t` uses the
//! kernel stream `(seed, i, t, 0)`, resampling after transition `t` uses
//! select streams at step `t`, and output `s` is drawn with the select
//! stream `(seed, s, 0, 0)`. The output is the same for any thread count.

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::SampleError;
use crate::logmath::log_mean_exp;
use crate::record::StepRecord;
use crate::rejection::advance;
use crate::rng::{Lane, Stream};
use crate::samplers::{Problem, RunOptions, SampleOutput, record_of, rewards_of};
use crate::traits::{StateElem, Value};

/// Resampling scheme of a weighted particle set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resampling {
    /// `S` independent draws from the normalised weights, the draw of slot
    /// `i` from the select stream `(seed, i, t, 0)`.
    Multinomial,
    /// One uniform `u` from the select stream `(seed, 0, t, 0)` and
    /// ancestors at the weight quantiles `(k + u) / S`. Each particle gets
    /// `S w_i / sum w` copies in expectation, as under multinomial, with a
    /// lower variance.
    #[default]
    Systematic,
}

/// The level `L_t` of a path, whose differences are the incremental log
/// weights `L_{t-1} - L_t`.
///
/// Both potentials start from `L_T = V^_T(x_T)` and end at
/// `L_0 = r(x_0) / alpha`, so both final weighted sets target `p*`. They
/// differ in the intermediate targets
/// `pi_t(x_{t:T}) ~ p(x_{t:T}) exp(L_t)`, and hence in which paths survive
/// resampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Potential {
    /// `L_t = V^_t(x_t)`: incremental weights `exp(V^_{t-1}(x) - V^_t(y))`.
    /// With the exact value, `pi_t` has the aligned marginal `p*_t(x_t)`
    /// at every step.
    #[default]
    Difference,
    /// `L_t = max_{t <= s <= T-1} V^_s(x_s)`, the running maximum of the
    /// values along the path (the root's value is left out, so the first
    /// weight is the same as under `Difference`). Later intermediate weights
    /// are `>= 1` and favour paths that ever reached a high value, so `pi_t` is
    /// not the aligned marginal even with the exact value. The last weight
    /// `exp(r(x_0) / alpha - L_1)` corrects the set back to `p*`.
    Max,
}

/// Settings of an SMC run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmcConfig {
    /// Number of particles `S`, or `None` for one particle per requested sample.
    pub particles: Option<usize>,
    /// Resample after a transition when `ESS / S` is below this fraction
    /// (in `[0, 1]`): 0 never resamples, 1 resamples whenever the weights are
    /// not all equal. The set is never resampled after the last transition,
    /// because outputs are drawn from its weights directly.
    pub ess_threshold: f64,
    /// Scheme used when the ESS falls below the threshold.
    pub resampling: Resampling,
    /// Level whose differences weight the particles.
    pub potential: Potential,
}

impl Default for SmcConfig {
    fn default() -> Self {
        Self {
            particles: None,
            ess_threshold: 0.5,
            resampling: Resampling::default(),
            potential: Potential::default(),
        }
    }
}

impl SmcConfig {
    /// Checks the particle count and the ESS threshold.
    pub fn validate(&self) -> Result<(), SampleError> {
        if self.particles == Some(0) {
            return Err(SampleError::InvalidParameter {
                name: "particles",
                value: 0.0,
                expected: "at least 1 particle, or unset for one particle per sample",
            });
        }
        if !(0.0..=1.0).contains(&self.ess_threshold) {
            return Err(SampleError::InvalidParameter {
                name: "ess_threshold",
                value: self.ess_threshold,
                expected: "a fraction of the particle count in [0, 1], such as 0.5",
            });
        }
        Ok(())
    }
}

/// The particle set after the last transition, before outputs are drawn.
#[derive(Debug, Clone)]
pub struct WeightedParticles<E> {
    /// Final states `x_0`, `[particles, width]`.
    pub states: Vec<E>,
    /// Unnormalised log weights accumulated since the last resampling,
    /// `[particles]`. A weight-0 particle has `-inf`.
    pub log_weights: Vec<f64>,
    /// `r(x_0)` of each particle in reward units, `[particles]`.
    pub rewards: Vec<f64>,
    /// Estimate of `ln Z = ln E_p[exp(r(x_0) / alpha)]`.
    pub log_normalizer: f64,
    /// Transitions `t` after which the set was resampled, from `T` down.
    pub resampled_after: Vec<usize>,
    /// One record per transition, from `t = T` down to 1, with the ESS after
    /// that transition's reweighting (before any resampling).
    pub per_step: Vec<StepRecord>,
    /// Kernel proposals computed: `S * T`.
    pub computed_proposals: u64,
}

/// Runs SMC with `value` as the twisting estimate and returns the final
/// weighted particle set.
///
/// # Shapes
/// The returned `states` are `[S, width]` with `S` from
/// [`SmcConfig::particles`], or `options.samples` when that is unset.
pub fn run_smc<E: StateElem>(
    problem: &Problem<'_, E>,
    value: &dyn Value<Elem = E>,
    config: &SmcConfig,
    options: &RunOptions<'_>,
) -> Result<WeightedParticles<E>, SampleError> {
    config.validate()?;
    let particles = config.particles.unwrap_or(options.samples);
    if particles == 0 {
        return Err(SampleError::InvalidParameter {
            name: "particles",
            value: 0.0,
            expected: "at least 1 particle: set particles or request at least 1 sample",
        });
    }
    let kernel = problem.kernel;
    let width = kernel.width();
    let steps = kernel.steps();
    if steps == 0 {
        return Err(SampleError::InvalidParameter {
            name: "kernel steps T",
            value: 0.0,
            expected: "at least 1 transition",
        });
    }

    let mut root = vec![E::default(); width];
    kernel.root(&mut root);
    let root_level = root_value(value, steps, &root)?;

    let slots: Vec<u64> = (0..particles as u64).collect();
    let mut states: Vec<E> = root
        .iter()
        .copied()
        .cycle()
        .take(width * particles)
        .collect();
    let mut levels = vec![root_level; particles];
    let mut log_weights = vec![0.0; particles];
    let mut log_normalizer = root_level;
    let mut rewards = Vec::new();
    let mut resampled_after = Vec::new();
    let mut per_step = Vec::with_capacity(steps);

    for t in (1..=steps).rev() {
        let outcome = advance(
            kernel,
            None,
            t,
            &states,
            &slots,
            options.seed,
            &options.limits,
        )?;
        let acceptance_rate = outcome.acceptance_rate();
        states = outcome.children;

        // Levels L_{t-1} of the new states: the reward at the end, values before.
        let new_levels = if t == 1 {
            rewards = rewards_of(problem, &states)?;
            rewards.iter().map(|r| r / problem.alpha).collect()
        } else {
            let values = child_values(value, t, &states, width, options.limits.max_round_rows)?;
            match config.potential {
                Potential::Max if t < steps => {
                    levels.iter().zip(&values).map(|(l, v)| l.max(*v)).collect()
                }
                _ => values,
            }
        };
        reweight(&mut log_weights, &levels, &new_levels);
        levels = new_levels;

        let ess = effective_sample_size(&log_weights).ok_or(SampleError::NonFinite {
            what: "log of the total SMC weight (every particle has weight 0)",
            step: Some(t),
            index: 0,
            value: f64::NEG_INFINITY,
        })?;
        per_step.push(StepRecord {
            step: t,
            computed_proposals: outcome.computed,
            sequential_proposals: outcome.sequential,
            acceptance_rate,
            tv_clip: 0.0,
            ess: Some(ess),
        });

        if t > 1 && ess < config.ess_threshold * particles as f64 {
            log_normalizer += log_mean_exp(&log_weights);
            let ancestors = resample(&log_weights, config.resampling, options.seed, t);
            states = gather_rows(&states, &ancestors, width);
            levels = ancestors.iter().map(|&a| levels[a]).collect();
            log_weights.fill(0.0);
            resampled_after.push(t);
        }
        options.progress.advance(steps - t + 1, steps);
    }
    log_normalizer += log_mean_exp(&log_weights);

    Ok(WeightedParticles {
        states,
        log_weights,
        rewards,
        log_normalizer,
        resampled_after,
        per_step,
        computed_proposals: (particles * steps) as u64,
    })
}

/// Runs SMC and draws `options.samples` outputs from the final weighted set,
/// each an independent multinomial draw (with replacement) from the
/// normalised weights.
///
/// The record counts every proposal as both computed and sequential
/// (`S * T`), stores the ESS of every transition and the estimate of
/// `ln E_p[exp(r / alpha)]` in `log_normalizer_estimate`. Outputs of one run
/// share ancestors, so they are correlated: their reward standard error
/// understates the run's error when `samples` approaches the ESS.
pub fn sample_smc<E: StateElem>(
    name: &str,
    problem: &Problem<'_, E>,
    value: &dyn Value<Elem = E>,
    config: &SmcConfig,
    options: &RunOptions<'_>,
) -> Result<SampleOutput<E>, SampleError> {
    let start = Instant::now();
    let set = run_smc(problem, value, config, options)?;
    let width = problem.kernel.width();

    let cumulative = cumulative_weights(&set.log_weights);
    let picks: Vec<usize> = (0..options.samples as u64)
        .map(|s| {
            pick_ancestor(
                &cumulative,
                Stream::at(options.seed, s, 0, 0, Lane::Select).uniform_open(),
            )
        })
        .collect();
    let states = gather_rows(&set.states, &picks, width);
    let rewards: Vec<f64> = picks.iter().map(|&a| set.rewards[a]).collect();

    let mut record = record_of(
        name,
        problem,
        options,
        options.samples,
        set.computed_proposals,
        set.computed_proposals,
        set.per_step,
        &rewards,
    );
    record.log_normalizer_estimate = Some(set.log_normalizer);
    record.wall_seconds = start.elapsed().as_secs_f64();
    Ok(SampleOutput {
        states,
        rewards,
        record,
    })
}

/// Computes the effective sample size `(sum w)^2 / sum w^2` of the weights
/// `w = exp(log_weights)`, in `[1, n]`, and exactly `n` when all weights are
/// equal. Returns `None` when every weight is 0 (or the slice is empty).
pub fn effective_sample_size(log_weights: &[f64]) -> Option<f64> {
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    // Scaled so that the largest weight is 1: sum w >= 1 and sum w^2 <= sum w.
    let (sum, sum_sq) = log_weights.iter().fold((0.0, 0.0), |(s, q), &l| {
        let w = (l - max).exp();
        (s + w, q + w * w)
    });
    Some((sum * sum / sum_sq).clamp(1.0, log_weights.len() as f64))
}

/// Evaluates `V^_T` at the root state. It must be finite, because the
/// target's normaliser `exp(V_T(x_T))` is positive.
fn root_value<E: StateElem>(
    value: &dyn Value<Elem = E>,
    steps: usize,
    root: &[E],
) -> Result<f64, SampleError> {
    let mut out = [0.0];
    value
        .log_values(steps, root, &mut out)
        .map_err(|source| SampleError::Component {
            what: "value estimate",
            step: steps,
            source,
        })?;
    if !out[0].is_finite() {
        return Err(SampleError::NonFinite {
            what: "value estimate V^_T of the root",
            step: Some(steps),
            index: 0,
            value: out[0],
        });
    }
    Ok(out[0])
}

/// Evaluates `V^_{t-1}` at the children drawn at transition `t`, in parallel
/// calls of at most `max_rows` rows. `-inf` is allowed (weight 0), but NaN
/// and `+inf` are errors.
///
/// # Shapes
/// `states: [n, width]`; returns `[n]`.
fn child_values<E: StateElem>(
    value: &dyn Value<Elem = E>,
    t: usize,
    states: &[E],
    width: usize,
    max_rows: usize,
) -> Result<Vec<f64>, SampleError> {
    let rows = max_rows.max(1);
    let mut values = vec![0.0; states.len() / width.max(1)];
    values
        .par_chunks_mut(rows)
        .zip(states.par_chunks(rows * width.max(1)))
        .try_for_each(|(out, chunk)| value.log_values(t - 1, chunk, out))
        .map_err(|source| SampleError::Component {
            what: "value estimate",
            step: t - 1,
            source,
        })?;
    if let Some((index, &v)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| v.is_nan() || **v == f64::INFINITY)
    {
        return Err(SampleError::NonFinite {
            what: "value estimate V^_{t-1}(x)",
            step: Some(t),
            index,
            value: v,
        });
    }
    Ok(values)
}

/// Adds the incremental log weights `L_{t-1} - L_t`. A particle of weight 0
/// stays at 0, because its level may be `-inf` and the difference NaN.
fn reweight(log_weights: &mut [f64], levels: &[f64], new_levels: &[f64]) {
    for ((log_w, old), new) in log_weights.iter_mut().zip(levels).zip(new_levels) {
        if *log_w != f64::NEG_INFINITY {
            *log_w += new - old;
        }
    }
}

/// Cumulative sums of the weights scaled so that the largest is 1.
fn cumulative_weights(log_weights: &[f64]) -> Vec<f64> {
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    log_weights
        .iter()
        .map(|&l| {
            total += (l - max).exp();
            total
        })
        .collect()
}

/// Finds the index `i` with `cumulative[i-1] <= u * total < cumulative[i]`, which
/// has probability `w_i / total` for `u ~ U(0,1)` and is never a weight-0
/// index.
fn pick_ancestor(cumulative: &[f64], u: f64) -> usize {
    let total = cumulative[cumulative.len() - 1];
    let index = cumulative.partition_point(|&c| c <= u * total);
    if index < cumulative.len() {
        return index;
    }
    // Rounding put u * total at the total: take the last positive weight.
    (0..cumulative.len())
        .rev()
        .find(|&i| i == 0 || cumulative[i] > cumulative[i - 1])
        .unwrap_or(0)
}

/// Ancestor slot of every particle after resampling at transition `t`.
fn resample(log_weights: &[f64], scheme: Resampling, seed: u64, t: usize) -> Vec<usize> {
    let n = log_weights.len();
    let cumulative = cumulative_weights(log_weights);
    match scheme {
        Resampling::Multinomial => (0..n as u64)
            .map(|i| {
                pick_ancestor(
                    &cumulative,
                    Stream::at(seed, i, t, 0, Lane::Select).uniform_open(),
                )
            })
            .collect(),
        Resampling::Systematic => {
            let u = Stream::at(seed, 0, t, 0, Lane::Select).uniform_open();
            (0..n)
                .map(|k| pick_ancestor(&cumulative, (k as f64 + u) / n as f64))
                .collect()
        }
    }
}

/// Copies the rows `rows[i]` of `states` into a `[rows.len(), width]` batch.
fn gather_rows<E: StateElem>(states: &[E], rows: &[usize], width: usize) -> Vec<E> {
    let mut out = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        out.extend_from_slice(&states[r * width..(r + 1) * width]);
    }
    out
}

/// A model with a closed-form soft value and target, shared by the sampler
/// tests of this crate.
#[cfg(test)]
pub(crate) mod walk {
    use rand_distr::{Distribution, StandardNormal};

    use crate::error::ComponentResult;
    use crate::rng::Stream;
    use crate::traits::{Kernel, Reward, Value};

    /// Gaussian random walk `x_{t-1} = x_t + sigma z` from `x_T = 0` over
    /// `steps` transitions, with the linear reward `r = w x_0`.
    ///
    /// With `beta = w / alpha`, `x_0 | x_t = y` is `N(y, t sigma^2)`, so the
    /// soft value is `V_t(y) = beta y + t beta^2 sigma^2 / 2`, the aligned
    /// target of `x_0` is `N(T sigma^2 beta, T sigma^2)` and
    /// `ln Z = T beta^2 sigma^2 / 2`.
    pub struct Walk {
        pub steps: usize,
        pub sigma: f64,
        pub w: f64,
        pub alpha: f64,
    }

    impl Walk {
        pub fn beta(&self) -> f64 {
            self.w / self.alpha
        }

        pub fn target_mean(&self) -> f64 {
            self.steps as f64 * self.sigma * self.sigma * self.beta()
        }

        pub fn target_sd(&self) -> f64 {
            (self.steps as f64).sqrt() * self.sigma
        }

        pub fn log_normalizer(&self) -> f64 {
            0.5 * self.steps as f64 * (self.beta() * self.sigma).powi(2)
        }

        /// Returns the exact soft value.
        pub fn exact_value(&self) -> LinearValue {
            LinearValue {
                slope: self.beta(),
                drift: 0.5 * (self.beta() * self.sigma).powi(2),
            }
        }
    }

    impl Kernel for Walk {
        type Elem = f64;

        fn width(&self) -> usize {
            1
        }

        fn steps(&self) -> usize {
            self.steps
        }

        fn root(&self, out: &mut [f64]) {
            out[0] = 0.0;
        }

        fn propose(
            &self,
            _t: usize,
            parents: &[f64],
            parent_of: &[usize],
            rngs: &mut [Stream],
            out: &mut [f64],
        ) -> ComponentResult {
            for ((x, &p), rng) in out.iter_mut().zip(parent_of).zip(rngs.iter_mut()) {
                let z: f64 = StandardNormal.sample(rng);
                *x = parents[p] + self.sigma * z;
            }
            Ok(())
        }
    }

    impl Reward for Walk {
        type Elem = f64;

        fn rewards(&self, states: &[f64], out: &mut [f64]) -> ComponentResult {
            for (r, x) in out.iter_mut().zip(states) {
                *r = self.w * x;
            }
            Ok(())
        }

        fn upper_bound(&self) -> Option<f64> {
            None
        }
    }

    /// A value estimate `V^_t(y) = rate * t * y`, whose slope changes with
    /// `t`, so that reading it at the wrong step changes the weights.
    pub struct GrowingSlopeValue {
        pub rate: f64,
    }

    impl Value for GrowingSlopeValue {
        type Elem = f64;

        fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
            for (v, y) in out.iter_mut().zip(states) {
                *v = self.rate * t as f64 * y;
            }
            Ok(())
        }
    }

    /// A value estimate `V^_t(y) = slope * y + t * drift`. It is exact for
    /// the walk with the slope and drift of [`Walk::exact_value`].
    pub struct LinearValue {
        pub slope: f64,
        pub drift: f64,
    }

    impl Value for LinearValue {
        type Elem = f64;

        fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
            for (v, y) in out.iter_mut().zip(states) {
                *v = self.slope * y + t as f64 * self.drift;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::walk::{GrowingSlopeValue, LinearValue, Walk};
    use super::*;
    use crate::rejection::Limits;
    use crate::special::normal_cdf;
    use crate::stats::ks_one_sample;
    use crate::traits::NoProgress;

    /// KS p-values below this fail a test; fixed before any run.
    const KS_LEVEL: f64 = 1e-3;

    /// `beta sigma = 0.4` per step, so `T beta^2 sigma^2 = 1.6`: the target
    /// `N(0.8, 0.4)` sits 1.26 standard deviations from the base `N(0, 0.4)`.
    fn walk() -> Walk {
        Walk {
            steps: 10,
            sigma: 0.2,
            w: 1.0,
            alpha: 0.5,
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

    fn config(
        particles: usize,
        ess_threshold: f64,
        resampling: Resampling,
        potential: Potential,
    ) -> SmcConfig {
        SmcConfig {
            particles: Some(particles),
            ess_threshold,
            resampling,
            potential,
        }
    }

    fn ks_pvalue(samples: &[f64], mean: f64, sd: f64) -> f64 {
        ks_one_sample(samples, |x| normal_cdf((x - mean) / sd))
            .unwrap()
            .pvalue
    }

    fn assert_ess_in_range(per_step: &[StepRecord], particles: usize) {
        for step in per_step {
            let ess = step.ess.expect("SMC records the ESS of every step");
            assert!(
                (1.0..=particles as f64).contains(&ess),
                "ESS {ess} at step {} outside [1, {particles}]",
                step.step
            );
        }
    }

    #[test]
    fn smc_matches_exact_target() {
        // Threshold 0.9 resamples every few steps. With 1000 outputs drawn
        // from 50k particles, the particle-approximation error is small next
        // to the outputs' own sampling error, so the KS test against the
        // exact target applies at about its nominal level.
        let walk = walk();
        let value = walk.exact_value();
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        for resampling in [Resampling::Multinomial, Resampling::Systematic] {
            for potential in [Potential::Difference, Potential::Max] {
                let config = config(50_000, 0.9, resampling, potential);
                let set = run_smc(&problem, &value, &config, &options(1000, 11)).unwrap();
                assert!(
                    !set.resampled_after.is_empty(),
                    "{resampling:?} {potential:?} never resampled"
                );
                assert_ess_in_range(&set.per_step, 50_000);

                let out = sample_smc("smc", &problem, &value, &config, &options(1000, 11)).unwrap();
                let p_target = ks_pvalue(&out.states, walk.target_mean(), walk.target_sd());
                assert!(
                    p_target > KS_LEVEL,
                    "{resampling:?} {potential:?}: KS p = {p_target} against the target"
                );
                let p_base = ks_pvalue(&out.states, 0.0, walk.target_sd());
                assert!(
                    p_base < KS_LEVEL,
                    "{resampling:?} {potential:?}: KS p = {p_base} against the base model"
                );
            }
        }
    }

    #[test]
    fn smc_log_normalizer_within_tolerance() {
        // Two values with the exact slope beta: the exact one, and one with
        // no drift, whose root value is 0, so that ln Z^ comes from the
        // weights alone. Either way each incremental log weight is
        // beta sigma z plus a constant, for a fresh z ~ N(0, 1) that is
        // i.i.d. over particles whatever their states. Resampling after every
        // step makes ln Z^ - ln Z a sum of T independent terms
        // ln(mean of S lognormal weights over their mean), each with variance
        // about v / S, v = exp((beta sigma)^2) - 1 (delta method), and a bias
        // of -v / (2S). Tolerance: 5 standard deviations sqrt(T v / S).
        let walk = walk();
        let exact = walk.exact_value();
        let drift_free = LinearValue {
            slope: walk.beta(),
            drift: 0.0,
        };
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let particles = 50_000;
        let config = config(
            particles,
            1.0,
            Resampling::Multinomial,
            Potential::Difference,
        );

        let v = (walk.beta() * walk.sigma).powi(2).exp_m1();
        let tolerance = 5.0 * (walk.steps as f64 * v / particles as f64).sqrt();
        for (name, value) in [("exact", &exact), ("drift-free", &drift_free)] {
            let set = run_smc(&problem, value, &config, &options(1, 5)).unwrap();

            let expected_resamplings: Vec<usize> = (2..=walk.steps).rev().collect();
            assert_eq!(set.resampled_after, expected_resamplings, "{name} value");
            let error = set.log_normalizer - walk.log_normalizer();
            assert!(
                error.abs() < tolerance,
                "{name} value: ln Z^ - ln Z = {error}, tolerance {tolerance}"
            );
        }
    }

    #[test]
    fn smc_without_resampling_carries_weights() {
        // Never resampling leaves importance sampling of whole paths. With
        // the drift-free value (root value 0) the final log weight is N(0, g)
        // with g = T (beta sigma)^2 = 1.6, and ln Z^ = ln(mean of S such
        // lognormals) has standard deviation about sqrt((e^g - 1) / S) =
        // 0.009; the tolerance is 5 of those.
        // ESS / S tends to 1 / E[w^2] = e^-g = 0.20; the sample mean of w^2
        // has relative sd sqrt((e^{4g} - 1) / S) = 0.11, so a band of a
        // factor 2 either way is over 4 sd (the tail is heavy). Weights
        // reset at every step would leave e^{-g/T} = 0.85 instead.
        let walk = walk();
        let value = LinearValue {
            slope: walk.beta(),
            drift: 0.0,
        };
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let particles = 50_000;
        let config = config(
            particles,
            0.0,
            Resampling::Systematic,
            Potential::Difference,
        );
        let set = run_smc(&problem, &value, &config, &options(1000, 23)).unwrap();

        assert!(set.resampled_after.is_empty());
        assert_ess_in_range(&set.per_step, particles);
        let g = walk.steps as f64 * (walk.beta() * walk.sigma).powi(2);
        let final_ess = set.per_step.last().unwrap().ess.unwrap() / particles as f64;
        assert!(
            final_ess > 0.5 * (-g).exp() && final_ess < 2.0 * (-g).exp(),
            "final ESS / S = {final_ess}, expected about {}",
            (-g).exp()
        );
        let tolerance = 5.0 * (g.exp_m1() / particles as f64).sqrt();
        let error = set.log_normalizer - walk.log_normalizer();
        assert!(
            error.abs() < tolerance,
            "ln Z^ - ln Z = {error}, tolerance {tolerance}"
        );

        let out = sample_smc("smc", &problem, &value, &config, &options(1000, 23)).unwrap();
        let p = ks_pvalue(&out.states, walk.target_mean(), walk.target_sd());
        assert!(p > KS_LEVEL, "KS p = {p} against the target");
    }

    #[test]
    fn first_weights_use_child_step_value() {
        // At t = T the children are x = sigma z and their log weights are
        // V^_{T-1}(x) - V^_T(0) = a z with a = rate (T - 1) sigma = 0.9, so
        // ESS / S tends to (E w)^2 / E[w^2] = exp(-a^2) = 0.44; reading the
        // value at step T would give exp(-1) = 0.37. The sample mean of w^2
        // has relative sd sqrt((e^{4a^2} - 1) / S) = 0.022, and the band is
        // 5 of those.
        let walk = walk();
        let value = GrowingSlopeValue { rate: 0.5 };
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let particles = 50_000;
        let config = config(
            particles,
            0.5,
            Resampling::Systematic,
            Potential::Difference,
        );
        let set = run_smc(&problem, &value, &config, &options(1, 41)).unwrap();

        let a = value.rate * (walk.steps - 1) as f64 * walk.sigma;
        let expected = (-a * a).exp();
        let relative_sd = ((4.0 * a * a).exp_m1() / particles as f64).sqrt();
        let first = set.per_step[0].ess.unwrap() / particles as f64;
        assert_eq!(set.per_step[0].step, walk.steps);
        assert!(
            (first / expected - 1.0).abs() < 5.0 * relative_sd,
            "first-step ESS / S = {first}, expected {expected}"
        );
    }

    #[test]
    fn max_potential_without_resampling_equals_difference() {
        // Without resampling, both potentials telescope to the same final
        // weight exp(r / alpha - V^_T(root)) per path, up to rounding.
        let walk = walk();
        let value = walk.exact_value();
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let difference = config(2000, 0.0, Resampling::Systematic, Potential::Difference);
        let max = config(2000, 0.0, Resampling::Systematic, Potential::Max);
        let a = run_smc(&problem, &value, &difference, &options(1, 3)).unwrap();
        let b = run_smc(&problem, &value, &max, &options(1, 3)).unwrap();

        assert_eq!(a.states, b.states);
        for (x, y) in a.log_weights.iter().zip(&b.log_weights) {
            assert!((x - y).abs() < 1e-9, "log weights {x} and {y} differ");
        }
        assert!((a.log_normalizer - b.log_normalizer).abs() < 1e-9);
        // The intermediate weights do differ: Max only ever raises them.
        let ess_differs = a
            .per_step
            .iter()
            .zip(&b.per_step)
            .any(|(x, y)| x.ess != y.ess);
        assert!(ess_differs);
    }

    #[test]
    fn smc_ess_is_particle_count_under_uniform_weights() {
        let flat = Walk { w: 0.0, ..walk() };
        let value = flat.exact_value();
        let problem = Problem::new(&flat, &flat, flat.alpha).unwrap();
        let config = config(777, 1.0, Resampling::Multinomial, Potential::Difference);
        let set = run_smc(&problem, &value, &config, &options(1, 9)).unwrap();

        for step in &set.per_step {
            assert_eq!(step.ess, Some(777.0), "step {}", step.step);
        }
        assert!(set.resampled_after.is_empty());
        assert_eq!(set.log_normalizer, 0.0);
    }

    #[test]
    fn ess_bounds_and_special_cases() {
        assert_eq!(effective_sample_size(&[0.3; 5]), Some(5.0));
        assert_eq!(
            effective_sample_size(&[2.0, f64::NEG_INFINITY, f64::NEG_INFINITY]),
            Some(1.0)
        );
        assert_eq!(effective_sample_size(&[f64::NEG_INFINITY; 3]), None);
        assert_eq!(effective_sample_size(&[]), None);
        // Two equal weights and one of 0: ESS 2. Large logs must not overflow.
        assert_eq!(
            effective_sample_size(&[900.0, 900.0, f64::NEG_INFINITY]),
            Some(2.0)
        );
        let spread: Vec<f64> = (0..100).map(|i| (i as f64 * 0.37).sin() * 20.0).collect();
        let ess = effective_sample_size(&spread).unwrap();
        assert!((1.0..=100.0).contains(&ess));
    }

    #[test]
    fn smc_corrects_an_inexact_value() {
        // Half the exact slope and no drift: the steering is too weak, but
        // the last weight uses the reward itself, so the target is exact.
        let walk = walk();
        let value = LinearValue {
            slope: 0.5 * walk.beta(),
            drift: 0.0,
        };
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        for potential in [Potential::Difference, Potential::Max] {
            let config = config(50_000, 0.9, Resampling::Systematic, potential);
            let set = run_smc(&problem, &value, &config, &options(1000, 31)).unwrap();
            assert!(
                !set.resampled_after.is_empty(),
                "{potential:?} never resampled"
            );
            let out = sample_smc("smc", &problem, &value, &config, &options(1000, 31)).unwrap();
            assert_ess_in_range(&out.record.per_step, 50_000);
            let p = ks_pvalue(&out.states, walk.target_mean(), walk.target_sd());
            assert!(p > KS_LEVEL, "{potential:?}: KS p = {p} against the target");
        }
    }

    #[test]
    fn smc_record_counts_every_proposal() {
        let walk = walk();
        let value = walk.exact_value();
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let config = config(300, 0.5, Resampling::Systematic, Potential::Difference);
        let out = sample_smc("smc", &problem, &value, &config, &options(120, 2)).unwrap();
        let record = &out.record;

        assert_eq!(out.states.len(), 120);
        assert_eq!(out.rewards.len(), 120);
        for (x, r) in out.states.iter().zip(&out.rewards) {
            assert_eq!(*r, walk.w * x);
        }
        assert_eq!(record.method, "smc");
        assert_eq!(record.samples, 120);
        assert_eq!(record.computed_proposals, 300 * 10);
        assert_eq!(record.sequential_proposals, 300 * 10);
        assert_eq!(record.per_step.len(), 10);
        let steps: Vec<usize> = record.per_step.iter().map(|s| s.step).collect();
        assert_eq!(steps, (1..=10).rev().collect::<Vec<_>>());
        for step in &record.per_step {
            assert_eq!(step.computed_proposals, 300);
            assert_eq!(step.acceptance_rate, 1.0);
            assert_eq!(step.tv_clip, 0.0);
        }
        assert!(record.log_normalizer_estimate.is_some_and(f64::is_finite));
    }

    #[test]
    fn smc_output_independent_of_threads() {
        let walk = walk();
        let value = walk.exact_value();
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let config = config(5000, 0.5, Resampling::Multinomial, Potential::Max);
        let run = |threads: usize, chunk: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut options = options(500, 17);
            options.limits.chunk_prefixes = chunk;
            options.limits.max_round_rows = chunk * 3;
            pool.install(|| sample_smc("smc", &problem, &value, &config, &options).unwrap())
        };
        let single_thread = run(1, 64);
        let four_threads = run(4, 7);
        assert_eq!(single_thread.states, four_threads.states);
        assert_eq!(
            single_thread.record.log_normalizer_estimate,
            four_threads.record.log_normalizer_estimate
        );
    }

    #[test]
    fn smc_rejects_invalid_config() {
        let walk = walk();
        let value = walk.exact_value();
        let problem = Problem::new(&walk, &walk, walk.alpha).unwrap();
        let bad = [
            config(0, 0.5, Resampling::Systematic, Potential::Difference),
            config(10, 1.5, Resampling::Systematic, Potential::Difference),
            config(10, f64::NAN, Resampling::Systematic, Potential::Difference),
        ];
        for config in &bad {
            let result = run_smc(&problem, &value, config, &options(10, 1));
            assert!(
                matches!(result, Err(SampleError::InvalidParameter { .. })),
                "{config:?}"
            );
        }
        let unset = SmcConfig::default();
        let result = run_smc(&problem, &value, &unset, &options(0, 1));
        assert!(matches!(result, Err(SampleError::InvalidParameter { .. })));
    }
}
