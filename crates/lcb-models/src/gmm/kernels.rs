//! Reverse kernels over a noised Gaussian mixture: the exact posterior and
//! the DDPM score kernel.
//!
//! Both chains have `T + 1` transitions from the root `x_{T+1} = 0`: the
//! first (`t = T + 1`) draws `x_T` from the prior, the rest are reverse steps
//! `t = T, ..., 1`. Chain time `t <= T` is diffusion time `t`.

use std::sync::Arc;

use lcb_core::{ComponentResult, GaussianComponent, GaussianKernel, Kernel, Stream};
use rand_distr::{Distribution, StandardNormal};

use crate::gmm::diffusion::Diffusion;

/// Adds `L z` to `out` for row-major lower-triangular `L` and fresh normals `z`.
#[inline]
fn add_correlated_noise(chol: &[f64], d: usize, rng: &mut Stream, z: &mut [f64], out: &mut [f64]) {
    for v in z.iter_mut() {
        *v = StandardNormal.sample(rng);
    }
    for i in 0..d {
        let row = &chol[i * d..i * d + i + 1];
        out[i] += row.iter().zip(&z[..=i]).map(|(l, z)| l * z).sum::<f64>();
    }
}

/// Picks a component index by inverting cumulative weights at `u`.
#[inline]
fn pick(cumulative: &[f64], u: f64) -> usize {
    cumulative.iter().position(|&c| u < c).unwrap_or(cumulative.len() - 1)
}

/// Turns log weights into cumulative weights, in place.
fn cumulate(log_weights: &mut [f64]) {
    let mut total = 0.0;
    for w in log_weights.iter_mut() {
        total += w.exp();
        *w = total;
    }
}

/// The exact reverse kernel of the forward process for mixture data: per
/// component `k`, `x_{t-1} | x_t ~ N(m_{t-1,k} + G (x_t - m_{t,k}), S_{t-1,k} - a_t S_{t-1,k} S_{t,k}^{-1} S_{t-1,k})`
/// with weight `g_k(x_t)`; its prior is the noised mixture at `T`, so its
/// marginal at every step is exactly the noised mixture.
#[derive(Debug, Clone)]
pub struct ExactKernel {
    diffusion: Arc<Diffusion>,
}

impl ExactKernel {
    pub fn new(diffusion: Arc<Diffusion>) -> Self {
        Self { diffusion }
    }

    fn propose_prior(&self, rngs: &mut [Stream], out: &mut [f64]) {
        let d = self.diffusion.dim();
        let top = self.diffusion.noised(self.diffusion.steps());
        let mut cumulative: Vec<f64> = self.diffusion.mixture().weights().iter().map(|w| w.ln()).collect();
        cumulate(&mut cumulative);
        let mut z = vec![0.0; d];
        for (x, rng) in out.chunks_exact_mut(d).zip(rngs.iter_mut()) {
            let k = pick(&cumulative, rng.uniform_open());
            x.copy_from_slice(&top[k].mean);
            add_correlated_noise(&top[k].chol, d, rng, &mut z, x);
        }
    }
}

impl Kernel for ExactKernel {
    type Elem = f64;

    fn width(&self) -> usize {
        self.diffusion.dim()
    }

    fn steps(&self) -> usize {
        self.diffusion.steps() + 1
    }

    fn root(&self, out: &mut [f64]) {
        out.fill(0.0);
    }

    fn propose(
        &self,
        t: usize,
        parents: &[f64],
        parent_of: &[usize],
        rngs: &mut [Stream],
        out: &mut [f64],
    ) -> ComponentResult {
        if t == self.diffusion.steps() + 1 {
            self.propose_prior(rngs, out);
            return Ok(());
        }
        let d = self.diffusion.dim();
        let k_count = self.diffusion.components();
        let reverse = self.diffusion.reverse(t);
        let mut log_g = vec![0.0; k_count];
        let mut means = vec![0.0; k_count * d];
        let mut z = vec![0.0; d];
        let mut cached = usize::MAX;
        for ((x, rng), &p) in out.chunks_exact_mut(d).zip(rngs.iter_mut()).zip(parent_of) {
            // Requests of one parent come together: compute its responsibilities
            // and component means once.
            if p != cached {
                let y = &parents[p * d..(p + 1) * d];
                self.diffusion.log_responsibilities(t, y, &mut log_g);
                cumulate(&mut log_g);
                for (k, c) in reverse.iter().enumerate() {
                    let mean = &mut means[k * d..(k + 1) * d];
                    for i in 0..d {
                        let row = &c.gain[i * d..(i + 1) * d];
                        mean[i] = c.offset[i] + row.iter().zip(y).map(|(g, y)| g * y).sum::<f64>();
                    }
                }
                cached = p;
            }
            let k = pick(&log_g, rng.uniform_open());
            x.copy_from_slice(&means[k * d..(k + 1) * d]);
            add_correlated_noise(&reverse[k].chol, d, rng, &mut z, x);
        }
        Ok(())
    }
}

impl GaussianKernel for ExactKernel {
    fn components(&self, t: usize, parent: &[f64], out: &mut Vec<GaussianComponent>) {
        let d = self.diffusion.dim();
        if t == self.diffusion.steps() + 1 {
            let top = self.diffusion.noised(self.diffusion.steps());
            for (c, &w) in top.iter().zip(self.diffusion.mixture().weights()) {
                out.push(GaussianComponent {
                    weight: w,
                    mean: c.mean.clone(),
                    trace: c.trace,
                    max_eigenvalue: c.max_eigenvalue,
                });
            }
            return;
        }
        let mut log_g = vec![0.0; self.diffusion.components()];
        self.diffusion.log_responsibilities(t, parent, &mut log_g);
        for (c, lg) in self.diffusion.reverse(t).iter().zip(&log_g) {
            let mean = (0..d)
                .map(|i| c.offset[i] + (0..d).map(|j| c.gain[i * d + j] * parent[j]).sum::<f64>())
                .collect();
            out.push(GaussianComponent {
                weight: lg.exp(),
                mean,
                trace: c.trace,
                max_eigenvalue: c.max_eigenvalue,
            });
        }
    }
}

/// The DDPM ancestral kernel a trained score model would run:
/// `x_{t-1} = (x_t + (1 - a_t) score_t(x_t)) / sqrt(a_t) + sqrt(1 - a_t) z`,
/// with the exact score of the noised mixture and the prior `N(0, I)`.
#[derive(Debug, Clone)]
pub struct DdpmKernel {
    diffusion: Arc<Diffusion>,
}

impl DdpmKernel {
    pub fn new(diffusion: Arc<Diffusion>) -> Self {
        Self { diffusion }
    }

    /// Writes the mean `(y + (1 - a_t) score_t(y)) / sqrt(a_t)` into `mean`.
    fn step_mean(&self, t: usize, y: &[f64], log_g: &mut [f64], mean: &mut [f64]) {
        let d = y.len();
        let a = self.diffusion.schedule().a(t);
        self.diffusion.log_responsibilities(t, y, log_g);
        mean.copy_from_slice(y);
        for (c, lg) in self.diffusion.noised(t).iter().zip(log_g.iter()) {
            let g = lg.exp();
            for i in 0..d {
                let row = &c.precision[i * d..(i + 1) * d];
                let s: f64 = (0..d).map(|j| row[j] * (y[j] - c.mean[j])).sum();
                mean[i] -= (1.0 - a) * g * s;
            }
        }
        let scale = 1.0 / a.sqrt();
        for m in mean.iter_mut() {
            *m *= scale;
        }
    }
}

impl Kernel for DdpmKernel {
    type Elem = f64;

    fn width(&self) -> usize {
        self.diffusion.dim()
    }

    fn steps(&self) -> usize {
        self.diffusion.steps() + 1
    }

    fn root(&self, out: &mut [f64]) {
        out.fill(0.0);
    }

    fn propose(
        &self,
        t: usize,
        parents: &[f64],
        parent_of: &[usize],
        rngs: &mut [Stream],
        out: &mut [f64],
    ) -> ComponentResult {
        let d = self.diffusion.dim();
        if t == self.diffusion.steps() + 1 {
            for (x, rng) in out.chunks_exact_mut(d).zip(rngs.iter_mut()) {
                for v in x.iter_mut() {
                    *v = StandardNormal.sample(rng);
                }
            }
            return Ok(());
        }
        let sigma = (1.0 - self.diffusion.schedule().a(t)).sqrt();
        let mut log_g = vec![0.0; self.diffusion.components()];
        let mut mean = vec![0.0; d];
        let mut cached = usize::MAX;
        for ((x, rng), &p) in out.chunks_exact_mut(d).zip(rngs.iter_mut()).zip(parent_of) {
            if p != cached {
                self.step_mean(t, &parents[p * d..(p + 1) * d], &mut log_g, &mut mean);
                cached = p;
            }
            for (v, m) in x.iter_mut().zip(&mean) {
                let z: f64 = StandardNormal.sample(rng);
                *v = m + sigma * z;
            }
        }
        Ok(())
    }
}

impl GaussianKernel for DdpmKernel {
    fn components(&self, t: usize, parent: &[f64], out: &mut Vec<GaussianComponent>) {
        let d = self.diffusion.dim();
        if t == self.diffusion.steps() + 1 {
            out.push(GaussianComponent {
                weight: 1.0,
                mean: vec![0.0; d],
                trace: d as f64,
                max_eigenvalue: 1.0,
            });
            return;
        }
        let variance = 1.0 - self.diffusion.schedule().a(t);
        let mut log_g = vec![0.0; self.diffusion.components()];
        let mut mean = vec![0.0; d];
        self.step_mean(t, parent, &mut log_g, &mut mean);
        out.push(GaussianComponent {
            weight: 1.0,
            mean,
            trace: d as f64 * variance,
            max_eigenvalue: variance,
        });
    }
}
