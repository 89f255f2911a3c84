//! Numerically stable log-sum-exp and log-mean-exp.

/// `ln sum_i exp(x_i)`, computed around the maximum so that no term
/// overflows. Returns `-inf` for an empty slice or all `-inf` inputs, and
/// `+inf` when any input is `+inf`.
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = xs.iter().map(|&x| (x - max).exp()).sum();
    max + sum.ln()
}

/// `ln( (1/n) sum_i exp(x_i) )`, stable; `-inf` for an empty slice.
pub fn log_mean_exp(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NEG_INFINITY;
    }
    log_sum_exp(xs) - (xs.len() as f64).ln()
}

/// `ln(exp(a) + exp(b))` without overflow.
#[inline]
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    if hi == f64::INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_matches_direct_sum() {
        let xs = [0.1, -2.0, 3.5];
        let direct: f64 = xs.iter().map(|x: &f64| x.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&xs) - direct).abs() < 1e-12);
    }

    #[test]
    fn log_mean_exp_survives_large_inputs() {
        let xs = [1000.0, 1000.0];
        assert!((log_mean_exp(&xs) - 1000.0).abs() < 1e-12);
        let xs = [-1000.0, -1000.0 + 2f64.ln()];
        assert!((log_mean_exp(&xs) - (-1000.0 + 1.5f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn log_add_exp_edge_cases() {
        assert_eq!(log_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert!((log_add_exp(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
        assert!((log_add_exp(800.0, 0.0) - 800.0).abs() < 1e-12);
    }
}
