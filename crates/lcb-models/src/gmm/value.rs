//! Closed-form soft values of linear and step rewards under a noised mixture.
//!
//! Given `x_t` and component `k`, `x_0` is Gaussian with mean
//! `mu0_k(x) = mu_k + A_k (x - m_{t,k})` and covariance `C0_k`, and
//! component `k` has weight `g_k(x)`. Hence, in log units,
//!
//! ```text
//! linear r = w.x:   exp V_t = sum_k g_k exp(w.mu0_k/alpha + w'C0_k w/(2 alpha^2))
//! step r = B 1[x_j < c]:
//!                   exp V_t = 1 + (e^{B/alpha} - 1) sum_k g_k Phi((c - e_j.mu0_k)/sqrt(C0_k[j,j]))
//! ```
//!
//! In both cases the per-component term depends on `x` only through an
//! affine score `u_k(x) = v_k . x + o_k`, which is what makes the maximum
//! over a ball easy to bound (see [`BallBound`]). The values are exact for
//! the exact-posterior kernel and an approximation for the DDPM kernel.

use std::sync::Arc;

use lcb_core::logmath::{log_add_exp, log_sum_exp};
use lcb_core::special::{log_normal_cdf, normal_cdf};
use lcb_core::{BallBound, ComponentResult, Value, check_alpha};

use crate::error::ModelError;
use crate::gmm::diffusion::{Diffusion, quadratic_form};
use crate::gmm::reward::GmmReward;

/// The affine score `u_k(x) = v . x + o` of one component at one time.
#[derive(Debug, Clone)]
struct AffineScore {
    v: Vec<f64>,
    offset: f64,
    v_norm: f64,
}

impl AffineScore {
    #[inline]
    fn at(&self, x: &[f64]) -> f64 {
        self.offset + self.v.iter().zip(x).map(|(v, x)| v * x).sum::<f64>()
    }
}

/// The exact soft value `V_t` of a [`GmmReward`] at temperature `alpha`.
#[derive(Debug, Clone)]
pub struct MixtureValue {
    diffusion: Arc<Diffusion>,
    reward: GmmReward,
    alpha: f64,
    /// `scores[t - 1][k]` for diffusion times `t = 1..=T`.
    scores: Vec<Vec<AffineScore>>,
    log_normalizer: f64,
}

impl MixtureValue {
    pub fn new(diffusion: Arc<Diffusion>, reward: GmmReward, alpha: f64) -> Result<Self, ModelError> {
        check_alpha(alpha)?;
        reward.validate(diffusion.dim())?;
        let d = diffusion.dim();
        let mut scores = Vec::with_capacity(diffusion.steps());
        for t in 1..=diffusion.steps() {
            let row = diffusion
                .noised(t)
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let mu = diffusion.mixture().mean(k);
                    let a = &c.posterior_gain;
                    let (v, offset): (Vec<f64>, f64) = match &reward {
                        GmmReward::Linear { weights } => {
                            let w = nalgebra::DVector::from_column_slice(weights);
                            let aw = a.transpose() * &w;
                            let v: Vec<f64> = aw.iter().map(|x| x / alpha).collect();
                            let am: f64 = aw.iter().zip(&c.mean).map(|(x, m)| x * m).sum();
                            let quad = (w.transpose() * &c.posterior_cov * &w)[(0, 0)];
                            (v, (w.dot(mu) - am) / alpha + quad / (2.0 * alpha * alpha))
                        }
                        GmmReward::Step {
                            coordinate: j,
                            threshold,
                            ..
                        } => {
                            let spread = c.posterior_cov[(*j, *j)].max(1e-300).sqrt();
                            let row: Vec<f64> = (0..d).map(|i| a[(*j, i)]).collect();
                            let am: f64 = row.iter().zip(&c.mean).map(|(x, m)| x * m).sum();
                            let v = row.iter().map(|x| -x / spread).collect();
                            (v, (threshold - mu[*j] + am) / spread)
                        }
                    };
                    let v_norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                    AffineScore { v, offset, v_norm }
                })
                .collect();
            scores.push(row);
        }
        let log_normalizer = log_normalizer(&diffusion, &reward, alpha);
        Ok(Self {
            diffusion,
            reward,
            alpha,
            scores,
            log_normalizer,
        })
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// `ln E_p[exp(r(x_0) / alpha)]` under the data mixture: the value of
    /// the root state.
    pub fn log_normalizer(&self) -> f64 {
        self.log_normalizer
    }

    /// `V_t(x)` for one state at chain time `t` (`t = T + 1` is the root).
    /// `scratch` must hold at least `K` entries.
    pub fn log_value(&self, t: usize, x: &[f64], scratch: &mut [f64]) -> f64 {
        let log_g = &mut scratch[..self.diffusion.components()];
        if t == 0 {
            return self.reward.eval(x) / self.alpha;
        }
        if t > self.diffusion.steps() {
            return self.log_normalizer;
        }
        let scores = &self.scores[t - 1];
        match &self.reward {
            GmmReward::Linear { .. } => {
                self.diffusion.log_responsibilities(t, x, log_g);
                let mut max = f64::NEG_INFINITY;
                for (lg, s) in log_g.iter_mut().zip(scores) {
                    *lg += s.at(x);
                    max = max.max(*lg);
                }
                max + log_g.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
            }
            GmmReward::Step { scale, .. } => {
                // P = sum_k g_k Phi(u_k), summed in linear space relative to
                // the largest component; the log-space sum is the fallback
                // when every Phi(u_k) underflows.
                let d = x.len();
                let mut max = f64::NEG_INFINITY;
                for (lg, c) in log_g.iter_mut().zip(self.diffusion.noised(t)) {
                    *lg = c.log_norm - 0.5 * quadratic_form(&c.precision, &c.mean, x, d);
                    max = max.max(*lg);
                }
                let (mut num, mut den) = (0.0, 0.0);
                for (lg, s) in log_g.iter().zip(scores) {
                    let e = (lg - max).exp();
                    den += e;
                    num += e * normal_cdf(s.at(x));
                }
                let log_p = if num > 1e-280 {
                    (num / den).ln()
                } else {
                    for (lg, s) in log_g.iter_mut().zip(scores) {
                        *lg += log_normal_cdf(s.at(x));
                    }
                    log_sum_exp(log_g) - (max + den.ln())
                };
                step_value(scale / self.alpha, log_p)
            }
        }
    }
}

/// `ln(1 + (e^beta - 1) P)` from `ln P`, stable for large `beta` and tiny `P`.
fn step_value(beta: f64, log_p: f64) -> f64 {
    if beta > 0.0 {
        let log_expm1 = beta + (-(-beta).exp_m1()).ln();
        log_add_exp(0.0, log_expm1 + log_p)
    } else {
        (beta.exp_m1() * log_p.exp()).ln_1p()
    }
}

fn log_normalizer(diffusion: &Diffusion, reward: &GmmReward, alpha: f64) -> f64 {
    let mixture = diffusion.mixture();
    match reward {
        GmmReward::Linear { weights } => {
            let w = nalgebra::DVector::from_column_slice(weights);
            let terms: Vec<f64> = (0..mixture.components())
                .map(|k| {
                    let quad = (w.transpose() * mixture.covariance(k) * &w)[(0, 0)];
                    mixture.weights()[k].ln() + w.dot(mixture.mean(k)) / alpha + quad / (2.0 * alpha * alpha)
                })
                .collect();
            log_sum_exp(&terms)
        }
        GmmReward::Step {
            scale,
            coordinate: j,
            threshold,
        } => {
            let terms: Vec<f64> = (0..mixture.components())
                .map(|k| {
                    let sd = mixture.covariance(k)[(*j, *j)].sqrt();
                    mixture.weights()[k].ln() + log_normal_cdf((threshold - mixture.mean(k)[*j]) / sd)
                })
                .collect();
            step_value(scale / alpha, log_sum_exp(&terms))
        }
    }
}

impl Value for MixtureValue {
    type Elem = f64;

    fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
        let d = self.diffusion.dim();
        let mut log_g = vec![0.0; self.diffusion.components()];
        for (v, x) in out.iter_mut().zip(states.chunks_exact(d)) {
            *v = self.log_value(t, x, &mut log_g);
        }
        Ok(())
    }
}

impl BallBound for MixtureValue {
    /// Bounds `V_t` over the ball from per-component bounds: the quadratic
    /// form `q_k(x) = (x - m)' P (x - m)` lies within
    /// `q_k(c) +- 2 R |P (c - m)|` (plus `lambda_max(P) R^2` above), which
    /// bounds each responsibility `g_k`; each affine score is at most
    /// `u_k(c) + R |v_k|`. The value is a `g`-weighted mean of the terms, so
    /// it is also at most the largest term.
    fn ball_upper_bound(&self, t: usize, center: &[f64], radius: f64) -> f64 {
        if t == 0 {
            return match &self.reward {
                GmmReward::Linear { weights } => {
                    let norm = weights.iter().map(|w| w * w).sum::<f64>().sqrt();
                    (self.reward.eval(center) + radius * norm) / self.alpha
                }
                GmmReward::Step {
                    scale,
                    coordinate,
                    threshold,
                } => {
                    if *scale > 0.0 && center[*coordinate] - radius < *threshold {
                        scale / self.alpha
                    } else {
                        0.0
                    }
                }
            };
        }
        if t > self.diffusion.steps() {
            return self.log_normalizer;
        }

        let d = center.len();
        let components = self.diffusion.noised(t);
        let mut log_hi = Vec::with_capacity(components.len());
        let mut log_lo = Vec::with_capacity(components.len());
        for c in components {
            let q = quadratic_form(&c.precision, &c.mean, center, d);
            let dist = c.mean.iter().zip(center).map(|(m, x)| (x - m).powi(2)).sum::<f64>().sqrt();
            let grad = (0..d)
                .map(|i| {
                    (0..d)
                        .map(|j| c.precision[i * d + j] * (center[j] - c.mean[j]))
                        .sum::<f64>()
                        .powi(2)
                })
                .sum::<f64>()
                .sqrt();
            let (eig_min, eig_max) = c.precision_eig;
            let q_lo = (q - 2.0 * radius * grad)
                .max(eig_min * (dist - radius).max(0.0).powi(2))
                .max(0.0);
            let q_hi = (q + 2.0 * radius * grad + eig_max * radius * radius).min(eig_max * (dist + radius).powi(2));
            log_hi.push(c.log_norm - 0.5 * q_lo);
            log_lo.push(c.log_norm - 0.5 * q_hi);
        }

        let scores = &self.scores[t - 1];
        let mut weighted = Vec::with_capacity(components.len());
        let mut largest = f64::NEG_INFINITY;
        for k in 0..components.len() {
            let others: Vec<f64> = (0..components.len()).filter(|&j| j != k).map(|j| log_lo[j]).collect();
            let log_g_hi = log_hi[k] - log_add_exp(log_hi[k], log_sum_exp(&others));
            let u_hi = scores[k].at(center) + radius * scores[k].v_norm;
            let term = match self.reward {
                GmmReward::Linear { .. } => u_hi,
                GmmReward::Step { .. } => log_normal_cdf(u_hi),
            };
            largest = largest.max(term);
            weighted.push(log_g_hi + term);
        }
        let bound = log_sum_exp(&weighted).min(largest);
        match self.reward {
            GmmReward::Linear { .. } => bound,
            GmmReward::Step { scale, .. } if scale > 0.0 => step_value(scale / self.alpha, bound.min(0.0)),
            GmmReward::Step { .. } => 0.0,
        }
    }
}
