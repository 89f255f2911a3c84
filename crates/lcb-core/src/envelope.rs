//! Envelopes `c(y)` for envelope rejection: a global bound, a learned
//! baseline plus per-step `tau_t`, and the analytic bound for Gaussian kernels.

use crate::error::{ComponentResult, SampleError};
use crate::traits::{Baseline, Envelope, Kernel, Value};

/// RS with a global bound: `c(y) = B` for every prefix, where `B >= sup V^`.
/// For a reward bounded by `r_max`, `B = r_max / alpha`.
#[derive(Debug, Clone, Copy)]
pub struct GlobalBound<E> {
    pub bound: f64,
    _elem: std::marker::PhantomData<fn() -> E>,
}

impl<E> GlobalBound<E> {
    pub fn new(bound: f64) -> Result<Self, SampleError> {
        if !bound.is_finite() {
            return Err(SampleError::InvalidParameter {
                name: "global bound B",
                value: bound,
                expected: "a finite upper bound on V^ in log units",
            });
        }
        Ok(Self {
            bound,
            _elem: std::marker::PhantomData,
        })
    }

    /// Builds the bound `r_max / alpha` for a reward bounded above by `r_max`.
    pub fn from_reward_bound(r_max: f64, alpha: f64) -> Result<Self, SampleError> {
        crate::error::check_alpha(alpha)?;
        Self::new(r_max / alpha)
    }
}

impl<E> Envelope for GlobalBound<E> {
    type Elem = E;

    fn log_envelopes(&self, _t: usize, _prefixes: &[E], out: &mut [f64]) -> ComponentResult {
        out.fill(self.bound);
        Ok(())
    }
}

/// The LCB envelope `c(y) = min(b(y, t) + tau_t, B)`, with the cap `B` only
/// when a valid global bound is known (the cap never makes it more expensive).
pub struct LearnedEnvelope<'a, E> {
    baseline: &'a dyn Baseline<Elem = E>,
    /// `tau[t - 1]` is `tau_t` for transitions `t = 1..=T`, in log units.
    tau: Vec<f64>,
    cap: Option<f64>,
}

impl<'a, E> LearnedEnvelope<'a, E> {
    /// Builds the envelope from a baseline and `tau_t` for `t = 1..=T`
    /// (`tau[0]` belongs to `t = 1`).
    pub fn new(
        baseline: &'a dyn Baseline<Elem = E>,
        tau: Vec<f64>,
        cap: Option<f64>,
    ) -> Result<Self, SampleError> {
        if let Some((index, &value)) = tau.iter().enumerate().find(|(_, t)| !t.is_finite()) {
            return Err(SampleError::NonFinite {
                what: "tau_t",
                step: Some(index + 1),
                index,
                value,
            });
        }
        Ok(Self { baseline, tau, cap })
    }

    pub fn tau(&self) -> &[f64] {
        &self.tau
    }
}

impl<E: Sync> Envelope for LearnedEnvelope<'_, E> {
    type Elem = E;

    fn log_envelopes(&self, t: usize, prefixes: &[E], out: &mut [f64]) -> ComponentResult {
        let tau = *self.tau.get(t.wrapping_sub(1)).ok_or_else(|| SampleError::MissingStep {
            what: "tau table",
            step: t,
            steps: self.tau.len(),
        })?;
        self.baseline.baselines(t, prefixes, out)?;
        for c in out.iter_mut() {
            *c += tau;
            if let Some(cap) = self.cap {
                *c = c.min(cap);
            }
        }
        Ok(())
    }
}

/// One Gaussian component of a kernel `p_t(.|y)`: weight, mean, and the
/// trace and largest eigenvalue of its covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianComponent {
    pub weight: f64,
    pub mean: Vec<f64>,
    pub trace: f64,
    pub max_eigenvalue: f64,
}

/// A kernel whose step `p_t(.|y)` is a Gaussian mixture given `y`.
pub trait GaussianKernel: Kernel<Elem = f64> {
    /// Writes the components of `p_t(.|parent)` (`parent: [width]`) into `out`.
    fn components(&self, t: usize, parent: &[f64], out: &mut Vec<GaussianComponent>);
}

/// A value whose maximum over a Euclidean ball can be bounded above.
pub trait BallBound: Value<Elem = f64> {
    /// Returns an upper bound on `sup { V^_t(x) : |x - center| <= radius }` in log units.
    fn ball_upper_bound(&self, t: usize, center: &[f64], radius: f64) -> f64;
}

/// The analytic Chernoff envelope for Gaussian kernels.
///
/// For a component `N(m, S)` of `p_t(.|y)`, Gaussian concentration of the
/// norm gives `P(|x - m| > sqrt(tr S) + sqrt(lambda_max(S)) sqrt(2 ln(1/delta'))) <= delta'`.
/// The envelope is the largest ball bound of `V^_{t-1}` over the components
/// kept: components are dropped from the lightest up while their total weight
/// stays within `delta / 2`, and each kept ball uses `delta' = delta / 2`, so
/// the probability that a proposal lands above the envelope is at most `delta`.
pub struct AnalyticEnvelope<'a, K, V> {
    kernel: &'a K,
    value: &'a V,
    delta: f64,
    cap: Option<f64>,
}

impl<'a, K: GaussianKernel, V: BallBound> AnalyticEnvelope<'a, K, V> {
    pub fn new(kernel: &'a K, value: &'a V, delta: f64, cap: Option<f64>) -> Result<Self, SampleError> {
        crate::chernoff::check_delta(delta)?;
        Ok(Self {
            kernel,
            value,
            delta,
            cap,
        })
    }

    fn envelope_of(&self, t: usize, parent: &[f64], components: &mut Vec<GaussianComponent>) -> f64 {
        components.clear();
        self.kernel.components(t, parent, components);
        components.sort_by(|a, b| a.weight.total_cmp(&b.weight));
        let half = self.delta / 2.0;
        let mut dropped = 0.0;
        let radius_factor = (2.0 * (1.0 / half).ln()).sqrt();
        let mut best = f64::NEG_INFINITY;
        for component in components.iter() {
            if dropped + component.weight <= half && component.weight < 1.0 {
                dropped += component.weight;
                continue;
            }
            let radius = component.trace.sqrt() + component.max_eigenvalue.sqrt() * radius_factor;
            best = best.max(self.value.ball_upper_bound(t - 1, &component.mean, radius));
        }
        match self.cap {
            Some(cap) => best.min(cap),
            None => best,
        }
    }
}

impl<K: GaussianKernel, V: BallBound> Envelope for AnalyticEnvelope<'_, K, V> {
    type Elem = f64;

    fn log_envelopes(&self, t: usize, prefixes: &[f64], out: &mut [f64]) -> ComponentResult {
        let width = self.kernel.width();
        let mut components = Vec::new();
        for (c, parent) in out.iter_mut().zip(prefixes.chunks_exact(width)) {
            *c = self.envelope_of(t, parent, &mut components);
        }
        Ok(())
    }
}
