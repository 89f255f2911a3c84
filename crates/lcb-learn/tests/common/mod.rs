//! A Gaussian random walk with closed-form soft values, for training tests.
//!
//! The chain starts at `x_T = 0` in `width` dimensions and each transition
//! adds independent noise: `x_{t-1} = x_t + sigma z`, `z ~ N(0, I)`. Given
//! `x_t = y`, the first coordinate of `x_0` is `N(y_0, t sigma^2)`, so for
//! rewards of the first coordinate the soft value has a closed form:
//!
//! * linear reward `r = w x_0`:
//!   `V_t(y) = w y_0 / alpha + t w^2 sigma^2 / (2 alpha^2)`;
//! * step reward `r = B 1[x_0 > c]`:
//!   `V_t(y) = ln(1 + (e^{B/alpha} - 1) Phi((y_0 - c) / (sigma sqrt t)))`,
//!   with `V_0(x) = B 1[x_0 > c] / alpha`.

#![allow(dead_code)]

use lcb_core::special::normal_cdf;
use lcb_core::{ComponentResult, Kernel, Lane, Reward, Stream, Value};
use rand_distr::{Distribution, StandardNormal};

pub struct RandomWalk {
    pub width: usize,
    pub steps: usize,
    pub sigma: f64,
}

impl Kernel for RandomWalk {
    type Elem = f64;

    fn width(&self) -> usize {
        self.width
    }

    fn steps(&self) -> usize {
        self.steps
    }

    fn root(&self, out: &mut [f64]) {
        out.fill(0.0);
    }

    fn propose(
        &self,
        _t: usize,
        parents: &[f64],
        parent_of: &[usize],
        rngs: &mut [Stream],
        out: &mut [f64],
    ) -> ComponentResult {
        let w = self.width;
        for ((child, &parent), rng) in out.chunks_exact_mut(w).zip(parent_of).zip(rngs.iter_mut()) {
            for (k, x) in child.iter_mut().enumerate() {
                let z: f64 = StandardNormal.sample(rng);
                *x = parents[parent * w + k] + self.sigma * z;
            }
        }
        Ok(())
    }
}

/// Soft value of the linear reward `r = w x_0` (first coordinate).
pub struct LinearValue {
    pub width: usize,
    pub w: f64,
    pub sigma: f64,
    pub alpha: f64,
}

impl LinearValue {
    pub fn at(&self, t: usize, y0: f64) -> f64 {
        self.w * y0 / self.alpha + t as f64 * (self.w * self.sigma / self.alpha).powi(2) / 2.0
    }
}

impl Value for LinearValue {
    type Elem = f64;

    fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
        for (v, row) in out.iter_mut().zip(states.chunks_exact(self.width)) {
            *v = self.at(t, row[0]);
        }
        Ok(())
    }
}

/// Soft value of the step reward `r = B 1[x_0 > c]` (first coordinate).
pub struct StepValue {
    pub width: usize,
    pub threshold: f64,
    pub bonus: f64,
    pub sigma: f64,
    pub alpha: f64,
}

impl StepValue {
    pub fn at(&self, t: usize, y0: f64) -> f64 {
        let tilt = self.bonus / self.alpha;
        if t == 0 {
            return if y0 > self.threshold { tilt } else { 0.0 };
        }
        let p = normal_cdf((y0 - self.threshold) / (self.sigma * (t as f64).sqrt()));
        (1.0 + tilt.exp_m1() * p).ln()
    }

    /// Returns `E*[r]` under the aligned target at temperature `alpha`.
    pub fn aligned_reward_mean(&self, steps: usize) -> f64 {
        let p = normal_cdf(-self.threshold / (self.sigma * (steps as f64).sqrt()));
        let tilted = (self.bonus / self.alpha).exp() * p;
        self.bonus * tilted / (tilted + 1.0 - p)
    }
}

impl Value for StepValue {
    type Elem = f64;

    fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
        for (v, row) in out.iter_mut().zip(states.chunks_exact(self.width)) {
            *v = self.at(t, row[0]);
        }
        Ok(())
    }
}

impl Reward for StepValue {
    type Elem = f64;

    fn rewards(&self, states: &[f64], out: &mut [f64]) -> ComponentResult {
        for (r, row) in out.iter_mut().zip(states.chunks_exact(self.width)) {
            *r = if row[0] > self.threshold { self.bonus } else { 0.0 };
        }
        Ok(())
    }

    fn upper_bound(&self) -> Option<f64> {
        Some(self.bonus)
    }
}

/// Draws a standard normal from the stream keyed by `(seed, index)`.
pub fn normal(seed: u64, index: u64) -> f64 {
    StandardNormal.sample(&mut Stream::at(seed, index, 0, 0, Lane::Kernel))
}

/// Computes `E f(Z)` for `Z ~ N(0, 1)` by Simpson's rule on `[-12, 12]` with
/// `n` (even) intervals. The density beyond 12 is below 1e-31.
pub fn normal_expectation(n: usize, f: impl Fn(f64) -> f64) -> f64 {
    let h = 24.0 / n as f64;
    let integrand = |i: usize| {
        let z = -12.0 + i as f64 * h;
        f(z) * lcb_core::special::normal_pdf(z)
    };
    let inner: f64 = (1..n).map(|i| if i % 2 == 1 { 4.0 } else { 2.0 } * integrand(i)).sum();
    (integrand(0) + inner + integrand(n)) * h / 3.0
}
