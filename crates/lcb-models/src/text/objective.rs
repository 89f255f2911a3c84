//! The masked-diffusion training objective.
//!
//! For a clean sequence `x_0` of `L` tokens, draw `t ~ U(0, 1)`, mask each
//! token independently with probability `p = (1 - eps) t + eps` (the floor
//! `eps` keeps `1/p` bounded, as in LLaDA), and score the denoiser on the
//! masked positions:
//!
//! ```text
//! loss = (1 / L) sum_{i masked} -ln p_theta(x_0[i] | x_t) / p
//! ```
//!
//! Averaged over `t` and the masks this is the negative ELBO per token, an
//! upper bound on the model's negative log-likelihood per token in nats. A
//! model that predicts the uniform distribution over `V` tokens scores
//! exactly `ln V`, the baseline held-out losses are compared against.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use lcb_core::{Lane, Stream};

use crate::text::corpus::EncodedTexts;
use crate::text::transformer::{Transformer, tokens_tensor};

/// One batch of masked rows, on the CPU.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MaskedBatch {
    /// `[rows, len]`: the clean tokens with masked positions set to the mask id.
    pub inputs: Vec<u32>,
    /// `[rows, len]`: the clean tokens.
    pub targets: Vec<u32>,
    /// `[rows, len]`: `1 / p` at masked positions, 0 elsewhere.
    pub weights: Vec<f32>,
    pub rows: usize,
    pub masked: usize,
}

impl MaskedBatch {
    fn with_capacity(rows: usize, len: usize) -> Self {
        Self {
            inputs: Vec::with_capacity(rows * len),
            targets: Vec::with_capacity(rows * len),
            weights: Vec::with_capacity(rows * len),
            rows: 0,
            masked: 0,
        }
    }

    /// Appends `row` masked at level `t`, drawing one uniform per position.
    fn push(&mut self, row: &[u32], t: f64, min_mask_probability: f64, mask_id: u32, rng: &mut Stream) {
        let p = (1.0 - min_mask_probability) * t + min_mask_probability;
        for &token in row {
            self.targets.push(token);
            if rng.uniform_open() < p {
                self.inputs.push(mask_id);
                self.weights.push((1.0 / p) as f32);
                self.masked += 1;
            } else {
                self.inputs.push(token);
                self.weights.push(0.0);
            }
        }
        self.rows += 1;
    }
}

/// Draws the training batch of optimizer step `step`: `batch` rows drawn
/// uniformly with replacement, each masked at its own `t ~ U(0, 1)`. Every
/// draw comes from streams keyed by `(seed, step, row)`, so a resumed run
/// trains on the same batches as an uninterrupted one.
pub(crate) fn training_batch(
    data: &EncodedTexts,
    len: usize,
    batch: usize,
    step: usize,
    seed: u64,
    min_mask_probability: f64,
    mask_id: u32,
) -> MaskedBatch {
    let mut out = MaskedBatch::with_capacity(batch, len);
    for b in 0..batch {
        let mut rng = Stream::at(seed, b as u64, step, 0, Lane::Select);
        let row = rng.random_index(data.rows);
        let t = rng.uniform_open();
        out.push(data.row(row, len), t, min_mask_probability, mask_id, &mut rng);
    }
    out
}

/// Builds the held-out batches: every row masked `draws` times at stratified levels
/// `t = (k + u) / draws`, from streams that depend on the row and draw only,
/// so every evaluation of a run scores the same masks.
pub(crate) fn heldout_batches(
    data: &EncodedTexts,
    len: usize,
    draws: usize,
    rows_per_batch: usize,
    seed: u64,
    min_mask_probability: f64,
    mask_id: u32,
) -> Vec<MaskedBatch> {
    let mut batches = Vec::new();
    let mut current = MaskedBatch::with_capacity(rows_per_batch, len);
    for row in 0..data.rows {
        for k in 0..draws {
            let mut rng = Stream::at(seed, row as u64, 0, k as u64, Lane::Select);
            let t = (k as f64 + rng.uniform_open()) / draws as f64;
            current.push(data.row(row, len), t, min_mask_probability, mask_id, &mut rng);
            if current.rows == rows_per_batch {
                batches.push(std::mem::replace(&mut current, MaskedBatch::with_capacity(rows_per_batch, len)));
            }
        }
    }
    if current.rows > 0 {
        batches.push(current);
    }
    batches
}

/// Per-position cross-entropy `-ln p_theta(target)` of a batch.
///
/// # Shapes
/// Output `[rows, len]`.
fn cross_entropy(network: &Transformer, batch: &MaskedBatch, len: usize, device: &Device) -> Tensor<2> {
    let rows = batch.rows;
    let inputs = tokens_tensor(&batch.inputs, rows, len, device);
    let targets: Vec<i64> = batch.targets.iter().map(|&t| i64::from(t)).collect();
    let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [rows, len, 1]), device);
    let log_probabilities = log_softmax(network.forward(inputs), 2);
    log_probabilities.gather(2, targets).reshape([rows, len]).neg()
}

fn weights_tensor(batch: &MaskedBatch, len: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(batch.weights.clone(), [batch.rows, len]), device)
}

/// Computes the objective of one batch, `sum_{masked} CE / p / (rows L)`, as a scalar
/// tensor that carries gradients on an autodiff device.
pub(crate) fn diffusion_loss(network: &Transformer, batch: &MaskedBatch, len: usize, device: &Device) -> Tensor<1> {
    let ce = cross_entropy(network, batch, len, device);
    let weights = weights_tensor(batch, len, device);
    (ce * weights).sum().div_scalar((batch.rows * len) as f64)
}

/// Held-out scores in nats per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldoutLoss {
    /// The objective (negative ELBO per token), comparable with `ln V`.
    pub loss: f64,
    /// Mean cross-entropy over masked positions, unweighted.
    pub masked_cross_entropy: f64,
}

/// Scores `network` (without autodiff) on the held-out batches.
///
/// # Errors
/// A message when reading the sums back from the device fails.
pub(crate) fn heldout_loss(
    network: &Transformer,
    batches: &[MaskedBatch],
    len: usize,
    device: &Device,
) -> Result<HeldoutLoss, String> {
    let (mut weighted, mut plain, mut rows, mut masked) = (0.0, 0.0, 0usize, 0usize);
    for batch in batches {
        let ce = cross_entropy(network, batch, len, device);
        let weights = weights_tensor(batch, len, device);
        let is_masked = weights.clone().greater_elem(0.0).float();
        let weighted_sum = (ce.clone() * weights).sum();
        let plain_sum = (ce * is_masked).sum();
        weighted += f64::from(weighted_sum.try_into_scalar::<f32>().map_err(|err| err.to_string())?);
        plain += f64::from(plain_sum.try_into_scalar::<f32>().map_err(|err| err.to_string())?);
        rows += batch.rows;
        masked += batch.masked;
    }
    Ok(HeldoutLoss {
        loss: weighted / (rows * len).max(1) as f64,
        masked_cross_entropy: plain / masked.max(1) as f64,
    })
}

/// Uniform index draws for the training batches.
trait RandomIndex {
    fn random_index(&mut self, n: usize) -> usize;
}

impl RandomIndex for Stream {
    fn random_index(&mut self, n: usize) -> usize {
        ((self.uniform_open() * n as f64) as usize).min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_share_follows_the_level() {
        let data = EncodedTexts {
            tokens: vec![1; 64 * 4],
            rows: 4,
            skipped_too_long: 0,
        };
        let batch = heldout_batches(&data, 64, 8, 1000, 3, 1e-3, 9).remove(0);
        assert_eq!(batch.rows, 32);
        // Stratified t has mean 1/2, so about half of the 2048 positions are
        // masked; the binomial standard error is below sqrt(2048) / 2 = 23.
        assert!((batch.masked as f64 - 1024.0).abs() < 5.0 * 23.0, "{} masked", batch.masked);
        for ((input, target), weight) in batch.inputs.iter().zip(&batch.targets).zip(&batch.weights) {
            assert_eq!(*target, 1);
            assert_eq!(*input == 9, *weight > 0.0, "weights sit on masked positions");
            assert!(*weight <= 1000.0 + 1e-3, "1/p stays below 1/eps");
        }
    }

    #[test]
    fn training_batches_repeat_for_a_step() {
        let data = EncodedTexts {
            tokens: (0..8 * 10).map(|i| i % 7).collect(),
            rows: 10,
            skipped_too_long: 0,
        };
        let a = training_batch(&data, 8, 5, 17, 1, 1e-3, 9);
        let b = training_batch(&data, 8, 5, 17, 1, 1e-3, 9);
        let c = training_batch(&data, 8, 5, 18, 1, 1e-3, 9);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
