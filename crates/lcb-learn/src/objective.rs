//! The Chernoff objective `J` on burn tensors, differentiable in the baseline
//! and in `lambda`.
//!
//! For scores `s = V^_{t-1}(x) - b(y, t)` (log units) over a batch of pairs:
//!
//! ```text
//! tau(b, lambda) = ( ln(1/delta) + ln mean exp(lambda s) ) / lambda
//! J(b, lambda)   = tau(b, lambda) + ln mean exp(-s)
//! ```
//!
//! `J` bounds the log of the expected number of proposals per accepted child
//! under the envelope `b + tau`. `lcb_core::chernoff` holds the `f64`
//! reference of the same formulas.

use burn::tensor::Tensor;

/// `ln mean exp(x)` over a batch, computed around the detached maximum so
/// that no term overflows. Subtracting a constant leaves the gradient exact.
///
/// # Shapes
/// `x: [n]`, output `[1]`.
pub(crate) fn log_mean_exp(x: Tensor<1>) -> Tensor<1> {
    let max = x.clone().max().detach();
    (x - max.clone()).exp().mean().log() + max
}

/// Computes the sample `J` and `tau` for `scores` at exponent `lambda` and tail level `delta`.
///
/// # Shapes
/// `scores: [n]`, `lambda: [1]`; both outputs are `[1]`.
pub(crate) fn chernoff_objective(scores: Tensor<1>, lambda: Tensor<1>, delta: f64) -> (Tensor<1>, Tensor<1>) {
    let log_inverse_delta = (1.0 / delta).ln();
    let scaled = scores.clone() * lambda.clone();
    let tau = (log_mean_exp(scaled) + log_inverse_delta) / lambda;
    let loss = tau.clone() + log_mean_exp(-scores);
    (loss, tau)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn scores() -> Vec<f64> {
        // Spread over a wide range so that the maximum shift matters.
        (0..50).map(|i| ((i * 37) % 50) as f64 * 0.8 - 20.0).collect()
    }

    fn tensor(values: &[f64], device: &Device) -> Tensor<1> {
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let n = values.len();
        Tensor::from_data(TensorData::new(values, [n]), device)
    }

    #[test]
    fn objective_matches_the_f64_reference() {
        let device = Device::flex();
        let s = scores();
        let lambda = 1.7;
        let (loss, tau) = chernoff_objective(tensor(&s, &device), tensor(&[lambda], &device), 0.1);
        let loss: f32 = loss.into_scalar();
        let tau: f32 = tau.into_scalar();
        let expected_loss = lcb_core::chernoff::objective(&s, lambda, 0.1).unwrap();
        let expected_tau = lcb_core::chernoff::tau(&s, lambda, 0.1).unwrap();
        // f32 arithmetic on values of magnitude ~20: relative error ~1e-6.
        assert!((loss as f64 - expected_loss).abs() < 1e-4, "{loss} vs {expected_loss}");
        assert!((tau as f64 - expected_tau).abs() < 1e-4, "{tau} vs {expected_tau}");
    }

    #[test]
    fn lambda_gradient_matches_finite_difference() {
        let device = Device::flex().autodiff();
        let s = scores();
        let lambda = 0.9;
        let lambda_tensor = tensor(&[lambda], &device).require_grad();
        let (loss, _) = chernoff_objective(tensor(&s, &device), lambda_tensor.clone(), 0.1);
        let grads = loss.backward();
        let gradient: f32 = lambda_tensor.grad(&grads).unwrap().into_scalar();

        let h = 1e-5;
        let plus = lcb_core::chernoff::objective(&s, lambda + h, 0.1).unwrap();
        let minus = lcb_core::chernoff::objective(&s, lambda - h, 0.1).unwrap();
        let expected = (plus - minus) / (2.0 * h);
        assert!(
            (gradient as f64 - expected).abs() < 1e-3 * expected.abs().max(1.0),
            "{gradient} vs {expected}"
        );
    }

    #[test]
    fn score_gradients_sum_to_zero() {
        // J is invariant to shifting every score by a constant, so its
        // gradient with respect to the scores sums to zero.
        let device = Device::flex().autodiff();
        let s = tensor(&scores(), &device).require_grad();
        let (loss, _) = chernoff_objective(s.clone(), tensor(&[2.0], &device), 0.05);
        let grads = loss.backward();
        let total: f32 = s.grad(&grads).unwrap().sum().into_scalar();
        assert!(total.abs() < 1e-5, "{total}");
    }
}
