//! Gaussian mixture data distributions `sum_k pi_k N(mu_k, Sigma_k)`.

use nalgebra::{DMatrix, DVector};

use crate::error::{ModelError, invalid};

/// A validated Gaussian mixture in `d` dimensions with `K` components and
/// full covariances.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    weights: Vec<f64>,
    means: Vec<DVector<f64>>,
    covariances: Vec<DMatrix<f64>>,
}

impl Mixture {
    /// Builds a mixture. Weights must be positive and sum to 1 (within
    /// 1e-6), every mean must have the same dimension `d`, and every
    /// covariance must be a symmetric positive definite `d x d` matrix.
    pub fn new(
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        covariances: Vec<Vec<Vec<f64>>>,
    ) -> Result<Self, ModelError> {
        if weights.is_empty() {
            return Err(invalid("mixture.weights", "a mixture needs at least one component"));
        }
        if means.len() != weights.len() {
            return Err(ModelError::Dimension {
                what: "mixture.means (one mean per weight)".into(),
                expected: weights.len(),
                actual: means.len(),
            });
        }
        if covariances.len() != weights.len() {
            return Err(ModelError::Dimension {
                what: "mixture.covariances (one matrix per weight)".into(),
                expected: weights.len(),
                actual: covariances.len(),
            });
        }
        if let Some((k, w)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w > 0.0)) {
            return Err(invalid(
                format!("mixture.weights[{k}]"),
                format!("weight {w} must be finite and > 0"),
            ));
        }
        let total: f64 = weights.iter().sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(invalid(
                "mixture.weights",
                format!("weights sum to {total}; they must sum to 1"),
            ));
        }
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();

        let d = means[0].len();
        if d == 0 {
            return Err(invalid("mixture.means", "means must have at least one coordinate"));
        }
        let mut mean_vectors = Vec::with_capacity(means.len());
        for (k, mean) in means.iter().enumerate() {
            if mean.len() != d {
                return Err(ModelError::Dimension {
                    what: format!("mixture.means[{k}]"),
                    expected: d,
                    actual: mean.len(),
                });
            }
            if let Some(v) = mean.iter().find(|v| !v.is_finite()) {
                return Err(invalid(format!("mixture.means[{k}]"), format!("value {v} is not finite")));
            }
            mean_vectors.push(DVector::from_column_slice(mean));
        }

        let mut matrices = Vec::with_capacity(covariances.len());
        for (k, rows) in covariances.iter().enumerate() {
            matrices.push(covariance_matrix(k, rows, d)?);
        }
        Ok(Self {
            weights,
            means: mean_vectors,
            covariances: matrices,
        })
    }

    /// Builds a mixture with identity covariances.
    pub fn isotropic(weights: Vec<f64>, means: Vec<Vec<f64>>) -> Result<Self, ModelError> {
        let d = means.first().map_or(0, Vec::len);
        let identity: Vec<Vec<f64>> = (0..d)
            .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect();
        let covariances = vec![identity; means.len()];
        Self::new(weights, means, covariances)
    }

    pub fn dim(&self) -> usize {
        self.means[0].len()
    }

    pub fn components(&self) -> usize {
        self.weights.len()
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    pub fn mean(&self, k: usize) -> &DVector<f64> {
        &self.means[k]
    }

    pub fn covariance(&self, k: usize) -> &DMatrix<f64> {
        &self.covariances[k]
    }
}

fn covariance_matrix(k: usize, rows: &[Vec<f64>], d: usize) -> Result<DMatrix<f64>, ModelError> {
    if rows.len() != d {
        return Err(ModelError::Dimension {
            what: format!("rows of mixture.covariances[{k}]"),
            expected: d,
            actual: rows.len(),
        });
    }
    let mut m = DMatrix::zeros(d, d);
    for (i, row) in rows.iter().enumerate() {
        if row.len() != d {
            return Err(ModelError::Dimension {
                what: format!("row {i} of mixture.covariances[{k}]"),
                expected: d,
                actual: row.len(),
            });
        }
        for (j, &v) in row.iter().enumerate() {
            if !v.is_finite() {
                return Err(invalid(
                    format!("mixture.covariances[{k}][{i}][{j}]"),
                    format!("value {v} is not finite"),
                ));
            }
            m[(i, j)] = v;
        }
    }
    let scale = m.amax().max(1.0);
    for i in 0..d {
        for j in 0..i {
            if (m[(i, j)] - m[(j, i)]).abs() > 1e-9 * scale {
                return Err(ModelError::NotPositiveDefinite {
                    component: k,
                    detail: format!("entries [{i}][{j}] = {} and [{j}][{i}] = {} differ", m[(i, j)], m[(j, i)]),
                });
            }
        }
    }
    let eigenvalues = m.clone().symmetric_eigenvalues();
    let smallest = eigenvalues.min();
    if smallest <= 1e-12 * scale {
        return Err(ModelError::NotPositiveDefinite {
            component: k,
            detail: format!("smallest eigenvalue {smallest:.3e}"),
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indefinite_covariance_is_rejected() {
        let err = Mixture::new(vec![1.0], vec![vec![0.0, 0.0]], vec![vec![vec![1.0, 2.0], vec![2.0, 1.0]]])
            .unwrap_err();
        assert!(err.to_string().contains("not positive definite"), "{err}");
        assert!(err.to_string().contains("eigenvalue"), "{err}");
    }

    #[test]
    fn mismatched_mean_dimension_is_rejected() {
        let err = Mixture::isotropic(vec![0.5, 0.5], vec![vec![0.0, 0.0], vec![1.0]]).unwrap_err();
        assert!(err.to_string().contains("mixture.means[1]"), "{err}");
    }

    #[test]
    fn weights_must_sum_to_one() {
        let err = Mixture::isotropic(vec![0.5, 0.6], vec![vec![0.0], vec![1.0]]).unwrap_err();
        assert!(err.to_string().contains("sum to 1.1"), "{err}");
    }
}
