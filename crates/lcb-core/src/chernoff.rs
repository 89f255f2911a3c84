//! The Chernoff threshold `tau` and the training objective `J`.
//!
//! For scores `s = V^_{t-1}(x) - b(y)` over pairs `y` (aligned particles at
//! step `t`) and `x ~ p_t(.|y)`, all in log units:
//!
//! ```text
//! tau(b, lambda)  = ( ln(1/delta) + ln E[exp(lambda s)] ) / lambda
//! J(b, lambda)    = tau(b, lambda) + ln E[exp(-s)]
//! ```
//!
//! Markov's inequality on `exp(lambda s)` gives `P(s > tau) <= delta`, and for
//! `lambda >= 1` the clipped mass `E[(e^{s - tau} - 1)_+]` is at most `delta`
//! too. `J` bounds the log of the expected number of proposals per accepted
//! child when the envelope is `b + tau`. The expectations are replaced by
//! sample means over a batch.

use crate::error::SampleError;
use crate::logmath::log_mean_exp;

/// Checks a tail level: `delta` must lie in `(0, 1)`.
pub fn check_delta(delta: f64) -> Result<(), SampleError> {
    if delta.is_finite() && delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(SampleError::InvalidParameter {
            name: "delta",
            value: delta,
            expected: "a tail probability in (0, 1), such as 0.1",
        })
    }
}

/// Checks a Chernoff exponent: `lambda` must be finite and positive.
pub fn check_lambda(lambda: f64) -> Result<(), SampleError> {
    if lambda.is_finite() && lambda > 0.0 {
        Ok(())
    } else {
        Err(SampleError::InvalidParameter {
            name: "lambda",
            value: lambda,
            expected: "a finite value > 0 (values >= 1 also bound the clipped mass)",
        })
    }
}

fn check_scores(scores: &[f64]) -> Result<(), SampleError> {
    if scores.is_empty() {
        return Err(SampleError::EmptyBatch { what: "Chernoff scores" });
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(SampleError::NonFinite {
            what: "Chernoff score V^_{t-1}(x) - b(y)",
            step: None,
            index,
            value,
        });
    }
    Ok(())
}

/// Computes the sample threshold `tau = (ln(1/delta) + ln mean exp(lambda s)) / lambda`
/// in log units, for scores `s` (`[pairs]`).
pub fn tau(scores: &[f64], lambda: f64, delta: f64) -> Result<f64, SampleError> {
    check_scores(scores)?;
    check_lambda(lambda)?;
    check_delta(delta)?;
    let scaled: Vec<f64> = scores.iter().map(|s| lambda * s).collect();
    Ok(((1.0 / delta).ln() + log_mean_exp(&scaled)) / lambda)
}

/// Computes the sample objective `J = tau + ln mean exp(-s)`: an upper bound on the
/// log of the expected proposal count per accepted child (log units).
pub fn objective(scores: &[f64], lambda: f64, delta: f64) -> Result<f64, SampleError> {
    let threshold = tau(scores, lambda, delta)?;
    let negated: Vec<f64> = scores.iter().map(|s| -s).collect();
    Ok(threshold + log_mean_exp(&negated))
}

/// Finds the `lambda` that minimises the sample `tau` for fixed scores by a
/// golden-section search on `ln lambda` over `[lambda_min, lambda_max]`.
///
/// `tau(lambda)` is convex in `1/lambda` for fixed scores, so the search finds
/// the optimum within the bracket.
pub fn best_lambda(
    scores: &[f64],
    delta: f64,
    lambda_min: f64,
    lambda_max: f64,
) -> Result<f64, SampleError> {
    check_lambda(lambda_min)?;
    check_lambda(lambda_max)?;
    let f = |log_lambda: f64| tau(scores, log_lambda.exp(), delta);
    let (mut lo, mut hi) = (lambda_min.ln(), lambda_max.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (f(a)?, f(b)?);
    for _ in 0..60 {
        if fa < fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - ratio * (hi - lo);
            fa = f(a)?;
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + ratio * (hi - lo);
            fb = f(b)?;
        }
    }
    Ok(((lo + hi) / 2.0).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_of_constant_scores() {
        // With s = c everywhere, tau = c + ln(1/delta) / lambda.
        let scores = [0.7; 10];
        let t = tau(&scores, 2.0, 0.1).unwrap();
        assert!((t - (0.7 + 10f64.ln() / 2.0)).abs() < 1e-12);
    }

    #[test]
    fn tau_of_gaussian_scores_matches_closed_form() {
        // For s ~ N(0, sigma^2): ln E e^{lambda s} = lambda^2 sigma^2 / 2, so
        // tau = ln(1/delta)/lambda + lambda sigma^2 / 2. Use Gauss-Hermite-like
        // symmetric quantiles to stand in for the expectation.
        let sigma = 0.5;
        let n = 20_001;
        let scores: Vec<f64> = (0..n)
            .map(|i| {
                let p = (i as f64 + 0.5) / n as f64;
                sigma * crate::special::normal_quantile(p)
            })
            .collect();
        let lambda = 1.5;
        let expected = 10f64.ln() / lambda + lambda * sigma * sigma / 2.0;
        assert!((tau(&scores, lambda, 0.1).unwrap() - expected).abs() < 2e-3);
    }

    #[test]
    fn objective_rejects_non_finite_scores() {
        let err = objective(&[0.0, f64::NAN], 1.0, 0.1).unwrap_err();
        assert!(err.to_string().contains("NaN"), "{err}");
    }

    #[test]
    fn invalid_delta_is_named() {
        let err = tau(&[0.0], 1.0, 1.5).unwrap_err();
        assert!(err.to_string().contains("delta"), "{err}");
    }

    #[test]
    fn best_lambda_for_gaussian_scores() {
        // tau(lambda) = ln(1/delta)/lambda + lambda sigma^2/2 is minimised at
        // lambda = sqrt(2 ln(1/delta)) / sigma.
        let sigma = 0.5;
        let n = 20_001;
        let scores: Vec<f64> = (0..n)
            .map(|i| sigma * crate::special::normal_quantile((i as f64 + 0.5) / n as f64))
            .collect();
        let best = best_lambda(&scores, 0.1, 0.01, 100.0).unwrap();
        let expected = (2.0 * 10f64.ln()).sqrt() / sigma;
        assert!((best - expected).abs() / expected < 0.02, "{best} vs {expected}");
    }
}
