//! The forward-noised mixture and its per-step Gaussian quantities.
//!
//! With `abar_t = prod_{s<=t} a_s`, component `k` of the noised mixture at
//! time `t` is `N(m_{t,k}, S_{t,k})`, `m_{t,k} = sqrt(abar_t) mu_k`,
//! `S_{t,k} = abar_t Sigma_k + (1 - abar_t) I`. Everything a kernel or value
//! needs per `(t, k)` is computed once here and stored as flat row-major
//! arrays for the hot loops.

use std::f64::consts::PI;

use nalgebra::{DMatrix, DVector};

use crate::error::ModelError;
use crate::gmm::mixture::Mixture;
use crate::gmm::schedule::Schedule;

/// Component `k` of the noised mixture at one time `t`.
#[derive(Debug, Clone)]
pub struct NoisedComponent {
    /// `m_{t,k}`, `[d]`.
    pub mean: Vec<f64>,
    /// `S_{t,k}^{-1}`, `[d, d]`.
    pub precision: Vec<f64>,
    /// `ln pi_k - ln det(S)/2 - (d/2) ln(2 pi)`.
    pub log_norm: f64,
    /// Smallest and largest eigenvalues of the precision.
    pub precision_eig: (f64, f64),
    /// Lower Cholesky factor of `S_{t,k}`, `[d, d]`.
    pub chol: Vec<f64>,
    /// Trace and largest eigenvalue of `S_{t,k}`.
    pub trace: f64,
    pub max_eigenvalue: f64,
    /// Gain of the `x_0` posterior, `A = sqrt(abar_t) Sigma_k S^{-1}` (`[d, d]`):
    /// `E[x_0 | x_t, k] = mu_k + A (x_t - m_{t,k})`.
    pub posterior_gain: DMatrix<f64>,
    /// Covariance of the `x_0` posterior, `Sigma_k - abar_t Sigma_k S^{-1} Sigma_k`.
    pub posterior_cov: DMatrix<f64>,
}

/// Component `k` of the exact reverse kernel `p_t(x_{t-1} | x_t)`:
/// mean `offset + gain x_t`, covariance `chol chol'`, weight `g_k(x_t)`.
#[derive(Debug, Clone)]
pub struct ReverseComponent {
    /// `G = sqrt(a_t) S_{t-1,k} S_{t,k}^{-1}`, `[d, d]`.
    pub gain: Vec<f64>,
    /// `m_{t-1,k} - G m_{t,k}`, `[d]`.
    pub offset: Vec<f64>,
    /// Lower Cholesky factor of `S_{t-1,k} - a_t S_{t-1,k} S_{t,k}^{-1} S_{t-1,k}`.
    pub chol: Vec<f64>,
    pub trace: f64,
    pub max_eigenvalue: f64,
}

/// A Gaussian mixture under a forward noising schedule.
#[derive(Debug, Clone)]
pub struct Diffusion {
    mixture: Mixture,
    schedule: Schedule,
    /// `noised[t][k]` for `t = 0..=T`.
    noised: Vec<Vec<NoisedComponent>>,
    /// `reverse[t - 1][k]` for `t = 1..=T`.
    reverse: Vec<Vec<ReverseComponent>>,
}

fn flat(m: &DMatrix<f64>) -> Vec<f64> {
    // nalgebra is column-major; the hot loops use row-major.
    m.transpose().as_slice().to_vec()
}

fn cholesky(m: &DMatrix<f64>, what: &str) -> Result<DMatrix<f64>, ModelError> {
    // Symmetrise first: products of symmetric matrices drift by rounding.
    let sym = (m + m.transpose()) * 0.5;
    sym.cholesky().map(|c| c.l()).ok_or_else(|| ModelError::Invalid {
        field: what.into(),
        message: "the matrix lost positive definiteness in floating point; the schedule's a_t may be too close to 1".into(),
    })
}

impl Diffusion {
    pub fn new(mixture: Mixture, schedule: Schedule) -> Result<Self, ModelError> {
        let d = mixture.dim();
        let identity = DMatrix::<f64>::identity(d, d);
        let steps = schedule.steps();

        let mut noised = Vec::with_capacity(steps + 1);
        for t in 0..=steps {
            let abar = schedule.abar(t);
            let mut row = Vec::with_capacity(mixture.components());
            for k in 0..mixture.components() {
                let sigma = mixture.covariance(k);
                let cov = sigma * abar + &identity * (1.0 - abar);
                let chol = cholesky(&cov, &format!("noised covariance S_({t},{k})"))?;
                let precision = cov.clone().try_inverse().ok_or_else(|| ModelError::NotPositiveDefinite {
                    component: k,
                    detail: format!("noised covariance at t = {t} is singular"),
                })?;
                let log_det = 2.0 * chol.diagonal().iter().map(|v| v.ln()).sum::<f64>();
                let eig = cov.clone().symmetric_eigenvalues();
                let gain = sigma * &precision * abar.sqrt();
                let posterior_cov = sigma - sigma * &precision * sigma * abar;
                row.push(NoisedComponent {
                    mean: (mixture.mean(k) * abar.sqrt()).as_slice().to_vec(),
                    precision: flat(&precision),
                    log_norm: mixture.weights()[k].ln() - 0.5 * log_det - 0.5 * d as f64 * (2.0 * PI).ln(),
                    precision_eig: (1.0 / eig.max(), 1.0 / eig.min()),
                    chol: flat(&chol),
                    trace: cov.trace(),
                    max_eigenvalue: eig.max(),
                    posterior_gain: gain,
                    posterior_cov: (&posterior_cov + posterior_cov.transpose()) * 0.5,
                });
            }
            noised.push(row);
        }

        let mut reverse = Vec::with_capacity(steps);
        for t in 1..=steps {
            let a = schedule.a(t);
            let mut row = Vec::with_capacity(mixture.components());
            for k in 0..mixture.components() {
                let prev = covariance_at(&mixture, &schedule, t - 1, k);
                let now_precision = covariance_at(&mixture, &schedule, t, k)
                    .try_inverse()
                    .expect("noised covariance was inverted above");
                let gain = &prev * &now_precision * a.sqrt();
                let cov = &prev - &prev * &now_precision * &prev * a;
                let chol = cholesky(&cov, &format!("reverse covariance at t = {t}, component {k}"))?;
                let prev_mean = DVector::from_column_slice(&noised[t - 1][k].mean);
                let now_mean = DVector::from_column_slice(&noised[t][k].mean);
                let offset = prev_mean - &gain * now_mean;
                let eig = ((&cov + cov.transpose()) * 0.5).symmetric_eigenvalues();
                row.push(ReverseComponent {
                    gain: flat(&gain),
                    offset: offset.as_slice().to_vec(),
                    chol: flat(&chol),
                    trace: cov.trace(),
                    max_eigenvalue: eig.max().max(0.0),
                });
            }
            reverse.push(row);
        }

        Ok(Self {
            mixture,
            schedule,
            noised,
            reverse,
        })
    }

    pub fn dim(&self) -> usize {
        self.mixture.dim()
    }

    pub fn components(&self) -> usize {
        self.mixture.components()
    }

    /// Diffusion steps `T` (the chains of the kernels have `T + 1`
    /// transitions: the prior draw, then `T` reverse steps).
    pub fn steps(&self) -> usize {
        self.schedule.steps()
    }

    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn noised(&self, t: usize) -> &[NoisedComponent] {
        &self.noised[t]
    }

    pub fn reverse(&self, t: usize) -> &[ReverseComponent] {
        &self.reverse[t - 1]
    }

    /// Writes `ln g_k(x)` at time `t`, the log responsibilities of the
    /// noised components (`out: [K]`), and returns `ln p_t(x)`.
    #[inline]
    pub fn log_responsibilities(&self, t: usize, x: &[f64], out: &mut [f64]) -> f64 {
        let d = x.len();
        let mut max = f64::NEG_INFINITY;
        for (o, c) in out.iter_mut().zip(&self.noised[t]) {
            *o = c.log_norm - 0.5 * quadratic_form(&c.precision, &c.mean, x, d);
            max = max.max(*o);
        }
        let total = max + out.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        for o in out.iter_mut() {
            *o -= total;
        }
        total
    }
}

fn covariance_at(mixture: &Mixture, schedule: &Schedule, t: usize, k: usize) -> DMatrix<f64> {
    let d = mixture.dim();
    let abar = schedule.abar(t);
    mixture.covariance(k) * abar + DMatrix::<f64>::identity(d, d) * (1.0 - abar)
}

/// `(x - m)' P (x - m)` for row-major `P` (`[d, d]`).
#[inline]
pub(crate) fn quadratic_form(precision: &[f64], mean: &[f64], x: &[f64], d: usize) -> f64 {
    let mut q = 0.0;
    for i in 0..d {
        let di = x[i] - mean[i];
        let row = &precision[i * d..(i + 1) * d];
        let mut s = 0.0;
        for j in 0..d {
            s += row[j] * (x[j] - mean[j]);
        }
        q += di * s;
    }
    q
}
