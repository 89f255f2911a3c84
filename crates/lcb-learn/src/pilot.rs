//! The pilot run that fixes the network's normalisation before training.

use lcb_core::{Kernel, Limits, SampleError, Value, advance};

use crate::error::LearnError;
use crate::network::Normalization;

/// Scales below this are treated as zero spread and replaced by 1.
const MIN_SCALE: f64 = 1e-8;

/// Derives the normalisation from one base-model trajectory per particle.
///
/// The state mean and scale are the per-coordinate mean and standard
/// deviation of the prefixes `x_t`, pooled over `t = T..1`. The value scale
/// is the root mean square over steps of the within-step standard deviation
/// of `V^_{t-1}(x)` over the children `x` of the run. `b` only needs to follow
/// `V^` up to a per-step constant, because `J` and `b + tau` do not change
/// when a constant is added to `b` at one step.
///
/// # Shapes
/// `root: [n, width]`, `particles: [n]`.
pub(crate) fn pilot_normalization(
    kernel: &dyn Kernel<Elem = f64>,
    value: &dyn Value<Elem = f64>,
    root: &[f64],
    particles: &[u64],
    seed: u64,
    limits: &Limits,
) -> Result<Normalization, LearnError> {
    let width = kernel.width();
    let steps = kernel.steps();
    // Sums are taken around the root state to limit cancellation.
    let origin = root[..width].to_vec();
    let mut sum = vec![0.0; width];
    let mut sum_sq = vec![0.0; width];
    let mut rows = 0usize;
    let mut value_variance_sum = 0.0;

    let mut states = root.to_vec();
    for t in (1..=steps).rev() {
        for row in states.chunks_exact(width) {
            for k in 0..width {
                let dy = row[k] - origin[k];
                sum[k] += dy;
                sum_sq[k] += dy * dy;
            }
        }
        rows += particles.len();

        states = advance(kernel, None, t, &states, particles, seed, limits)?.children;
        let mut values = vec![0.0; particles.len()];
        value
            .log_values(t - 1, &states, &mut values)
            .map_err(|source| SampleError::Component {
                what: "value estimate",
                step: t - 1,
                source,
            })?;
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(SampleError::NonFinite {
                what: "value estimate V^_{t-1}(x) in the pilot run",
                step: Some(t),
                index,
                value,
            }
            .into());
        }
        value_variance_sum += variance(&values);
    }

    let mut state_mean = Vec::with_capacity(width);
    let mut state_scale = Vec::with_capacity(width);
    for k in 0..width {
        let mean = sum[k] / rows as f64;
        let var = (sum_sq[k] / rows as f64 - mean * mean).max(0.0);
        state_mean.push(origin[k] + mean);
        state_scale.push(usable_scale(var.sqrt()));
    }
    let value_scale = usable_scale((value_variance_sum / steps as f64).sqrt());
    Ok(Normalization {
        state_mean,
        state_scale,
        value_scale,
        value_offset: 0.0,
    })
}

fn variance(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
}

fn usable_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > MIN_SCALE {
        scale
    } else {
        1.0
    }
}
