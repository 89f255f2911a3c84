//! Goodness-of-fit statistics used to check samplers against exact targets.

use serde::{Deserialize, Serialize};

use crate::special::kolmogorov_survival;

/// Result of a Kolmogorov-Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsTest {
    /// The statistic `D = sup |F_n - F|`.
    pub statistic: f64,
    /// Asymptotic p-value, with Stephens' small-sample correction.
    pub pvalue: f64,
}

/// One-sample KS test of `samples` against a continuous CDF.
///
/// Returns `None` for an empty sample. NaN samples sort last and count as
/// misfits.
pub fn ks_one_sample(samples: &[f64], cdf: impl Fn(f64) -> f64) -> Option<KsTest> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &x) in sorted.iter().enumerate() {
        let f = if x.is_nan() { 2.0 } else { cdf(x) };
        let above = (i + 1) as f64 / n - f;
        let below = f - i as f64 / n;
        d = d.max(above).max(below);
    }
    let en = n.sqrt();
    let pvalue = kolmogorov_survival((en + 0.12 + 0.11 / en) * d);
    Some(KsTest {
        statistic: d,
        pvalue,
    })
}

/// Two-sample KS test between `a` and `b`.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Option<KsTest> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(|x, y| x.total_cmp(y));
    b.sort_by(|x, y| x.total_cmp(y));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut d: f64 = 0.0;
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    let en = (na * nb / (na + nb)).sqrt();
    let pvalue = kolmogorov_survival((en + 0.12 + 0.11 / en) * d);
    Some(KsTest {
        statistic: d,
        pvalue,
    })
}

/// Mean and standard error of the mean (sample standard deviation over
/// `sqrt(n)`); the error is 0 for fewer than two values.
pub fn mean_and_stderr(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::{normal_cdf, normal_quantile};

    #[test]
    fn ks_accepts_quantile_grid_and_rejects_shift() {
        let n = 1000;
        let grid: Vec<f64> = (0..n)
            .map(|i| normal_quantile((i as f64 + 0.5) / n as f64))
            .collect();
        let fit = ks_one_sample(&grid, normal_cdf).unwrap();
        assert!(fit.statistic <= 0.5 / n as f64 + 1e-12);
        assert!(fit.pvalue > 0.99);

        let shifted: Vec<f64> = grid.iter().map(|x| x + 0.3).collect();
        assert!(ks_one_sample(&shifted, normal_cdf).unwrap().pvalue < 1e-6);
    }

    #[test]
    fn two_sample_ks_of_identical_and_disjoint_samples() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(ks_two_sample(&a, &a).unwrap().statistic, 0.0);
        let b: Vec<f64> = (200..300).map(f64::from).collect();
        assert_eq!(ks_two_sample(&a, &b).unwrap().statistic, 1.0);
    }

    #[test]
    fn stderr_of_known_values() {
        let (m, se) = mean_and_stderr(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12);
    }
}
