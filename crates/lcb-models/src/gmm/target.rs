//! The aligned target `p*(x_0) ~ p(x_0) exp(r(x_0) / alpha)` in closed form.
//!
//! For a linear reward each component is shifted: `N(mu_k + Sigma_k w / alpha, Sigma_k)`
//! with weight `pi_k exp(w.mu_k/alpha + w'Sigma_k w/(2 alpha^2))`. For a step
//! reward `B 1[x_j < c]`, `exp(r/alpha) = e^{B/alpha} 1[x_j < c] + 1[x_j >= c]`,
//! so each component splits into a piece truncated below `c` on coordinate
//! `j` with weight `pi_k e^{B/alpha} Phi_k(c)` and one truncated above with
//! weight `pi_k (1 - Phi_k(c))`.

use lcb_core::logmath::log_sum_exp;
use lcb_core::special::{log_normal_cdf, normal_cdf, normal_quantile};
use lcb_core::{Lane, Stream};
use nalgebra::{DMatrix, DVector};
use rand_distr::{Distribution, StandardNormal};

use crate::gmm::mixture::Mixture;
use crate::gmm::reward::GmmReward;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Truncation {
    None,
    /// `x_j < c`.
    Below { coordinate: usize, threshold: f64 },
    /// `x_j >= c`.
    Above { coordinate: usize, threshold: f64 },
}

#[derive(Debug, Clone)]
struct Piece {
    weight: f64,
    mean: DVector<f64>,
    covariance: DMatrix<f64>,
    chol: DMatrix<f64>,
    truncation: Truncation,
}

/// The exact aligned distribution of `x_0`.
#[derive(Debug, Clone)]
pub struct AlignedTarget {
    pieces: Vec<Piece>,
    reward: GmmReward,
    log_normalizer: f64,
    dim: usize,
}

impl AlignedTarget {
    /// Builds the target of `mixture` tilted by `exp(reward / alpha)`.
    /// `alpha` and the reward must already be validated.
    pub fn new(mixture: &Mixture, reward: &GmmReward, alpha: f64) -> Self {
        let mut log_weights = Vec::new();
        let mut raw = Vec::new();
        for k in 0..mixture.components() {
            let sigma = mixture.covariance(k).clone();
            let mu = mixture.mean(k).clone();
            let log_pi = mixture.weights()[k].ln();
            match reward {
                GmmReward::Linear { weights } => {
                    let w = DVector::from_column_slice(weights);
                    let shift = &sigma * &w / alpha;
                    let quad = (w.transpose() * &sigma * &w)[(0, 0)];
                    log_weights.push(log_pi + w.dot(&mu) / alpha + quad / (2.0 * alpha * alpha));
                    raw.push((mu + shift, sigma, Truncation::None));
                }
                GmmReward::Step {
                    scale,
                    coordinate,
                    threshold,
                } => {
                    let z = (threshold - mu[*coordinate]) / sigma[(*coordinate, *coordinate)].sqrt();
                    log_weights.push(log_pi + scale / alpha + log_normal_cdf(z));
                    raw.push((
                        mu.clone(),
                        sigma.clone(),
                        Truncation::Below {
                            coordinate: *coordinate,
                            threshold: *threshold,
                        },
                    ));
                    log_weights.push(log_pi + log_normal_cdf(-z));
                    raw.push((
                        mu,
                        sigma,
                        Truncation::Above {
                            coordinate: *coordinate,
                            threshold: *threshold,
                        },
                    ));
                }
            }
        }
        let log_normalizer = log_sum_exp(&log_weights);
        let pieces = raw
            .into_iter()
            .zip(&log_weights)
            .map(|((mean, covariance, truncation), lw)| Piece {
                weight: (lw - log_normalizer).exp(),
                chol: covariance.clone().cholesky().expect("validated covariance").l(),
                mean,
                covariance,
                truncation,
            })
            .collect();
        Self {
            pieces,
            reward: reward.clone(),
            log_normalizer,
            dim: mixture.dim(),
        }
    }

    /// `ln E_p[exp(r / alpha)]`.
    pub fn log_normalizer(&self) -> f64 {
        self.log_normalizer
    }

    /// `E_{p*}[r(x_0)]` in reward units.
    pub fn reward_mean(&self) -> f64 {
        self.pieces
            .iter()
            .map(|p| {
                p.weight
                    * match (&self.reward, p.truncation) {
                        (GmmReward::Linear { weights }, _) => {
                            weights.iter().zip(p.mean.iter()).map(|(w, m)| w * m).sum::<f64>()
                        }
                        (GmmReward::Step { scale, .. }, Truncation::Below { .. }) => *scale,
                        _ => 0.0,
                    }
            })
            .sum()
    }

    /// Draws `n` exact samples (`[n, d]`), sample `i` from the streams of particle `i`.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f64> {
        let d = self.dim;
        let mut out = vec![0.0; n * d];
        for (i, x) in out.chunks_exact_mut(d).enumerate() {
            let mut rng = Stream::at(seed, i as u64, 0, 0, Lane::Kernel);
            let u = rng.uniform_open();
            let mut cumulative = 0.0;
            let mut piece = &self.pieces[self.pieces.len() - 1];
            for p in &self.pieces {
                cumulative += p.weight;
                if u < cumulative {
                    piece = p;
                    break;
                }
            }
            sample_piece(piece, &mut rng, x);
        }
        out
    }

    /// CDF of coordinate `i` of `x_0` under the target.
    pub fn coordinate_cdf(&self, i: usize, a: f64) -> f64 {
        self.pieces.iter().map(|p| p.weight * piece_cdf(p, i, a)).sum()
    }
}

fn sample_piece(piece: &Piece, rng: &mut Stream, x: &mut [f64]) {
    let d = x.len();
    let y: DVector<f64> = &piece.chol * DVector::from_fn(d, |_, _| StandardNormal.sample(rng));
    match piece.truncation {
        Truncation::None => {
            for i in 0..d {
                x[i] = piece.mean[i] + y[i];
            }
        }
        Truncation::Below { coordinate: j, threshold } | Truncation::Above { coordinate: j, threshold } => {
            let sd = piece.covariance[(j, j)].sqrt();
            let z = (threshold - piece.mean[j]) / sd;
            let u = rng.uniform_open();
            // Inverse-CDF draw of the truncated coordinate, using the tail on
            // the truncated side so deep tails keep their precision.
            let xj = match piece.truncation {
                Truncation::Below { .. } => piece.mean[j] + sd * normal_quantile(u * normal_cdf(z)),
                _ => piece.mean[j] - sd * normal_quantile(u * normal_cdf(-z)),
            };
            // x = mu + Sigma_{.j} (x_j - mu_j) / Sigma_jj + (y - Sigma_{.j} y_j / Sigma_jj):
            // the residual is independent of y_j and has the conditional covariance.
            let sjj = piece.covariance[(j, j)];
            for i in 0..d {
                let beta = piece.covariance[(i, j)] / sjj;
                x[i] = piece.mean[i] + beta * (xj - piece.mean[j]) + (y[i] - beta * y[j]);
            }
            x[j] = xj;
        }
    }
}

/// Nodes of the midpoint rule for the truncated-piece CDF.
const CDF_NODES: usize = 512;

fn piece_cdf(piece: &Piece, i: usize, a: f64) -> f64 {
    let sd_i = piece.covariance[(i, i)].sqrt();
    match piece.truncation {
        Truncation::None => normal_cdf((a - piece.mean[i]) / sd_i),
        Truncation::Below { coordinate: j, threshold } | Truncation::Above { coordinate: j, threshold } => {
            let below = matches!(piece.truncation, Truncation::Below { .. });
            let sd_j = piece.covariance[(j, j)].sqrt();
            let z = (threshold - piece.mean[j]) / sd_j;
            if i == j {
                let za = (a - piece.mean[j]) / sd_j;
                return if below {
                    if za >= z { 1.0 } else { (log_normal_cdf(za) - log_normal_cdf(z)).exp() }
                } else if za <= z {
                    0.0
                } else {
                    1.0 - (log_normal_cdf(-za) - log_normal_cdf(-z)).exp()
                };
            }
            // P(x_i <= a | truncation) = int_0^1 Phi((a - E[x_i | x_j(v)]) / sd) dv,
            // with x_j(v) the truncated coordinate's quantile at v.
            let beta = piece.covariance[(i, j)] / piece.covariance[(j, j)];
            let sd_cond = (piece.covariance[(i, i)] - beta * piece.covariance[(i, j)]).max(0.0).sqrt();
            let tail = if below { normal_cdf(z) } else { normal_cdf(-z) };
            let mut sum = 0.0;
            for n in 0..CDF_NODES {
                let v = (n as f64 + 0.5) / CDF_NODES as f64;
                let q = normal_quantile(v * tail);
                let xj = if below { piece.mean[j] + sd_j * q } else { piece.mean[j] - sd_j * q };
                let m = piece.mean[i] + beta * (xj - piece.mean[j]);
                sum += if sd_cond > 0.0 {
                    normal_cdf((a - m) / sd_cond)
                } else if a >= m {
                    1.0
                } else {
                    0.0
                };
            }
            sum / CDF_NODES as f64
        }
    }
}
