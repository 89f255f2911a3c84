//! The baseline network `b_theta(y, t)`: an MLP over normalised state
//! coordinates and time features, scaled to the values' log units.
//!
//! ```text
//! features(y, t) = [ (y - mean) / scale,  t / T,  sin(k pi t / T), cos(k pi t / T) for k = 1..K ]
//! b_theta(y, t)  = value_scale * MLP(features(y, t))
//! ```
//!
//! The normalisation (`mean`, `scale`, `value_scale`, `value_offset`) is
//! fixed before training from a pilot run of the base model, so one network
//! serves every transition whatever the units of the states and values.
//!
//! Over token sequences ([`TokenInput`]), the state is the one-hot row of
//! `len` tokens over `classes` ids, and the MLP reads pooled embeddings in
//! place of the raw row:
//!
//! ```text
//! h_i     = E[y_i] + P_i                              (token and position embeddings, width d)
//! pooled  = mean_i SiLU(W [h_i, ..., h_{i+w-1}] + c)   (windows of w adjacent tokens)
//! b(y, t) = value_scale * MLP([pooled, time features]) + value_offset
//! ```

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor, TensorData};
use lcb_core::{Lane, Stream};
use serde::{Deserialize, Serialize};

use crate::error::LearnError;

/// Shape of the baseline network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Widths of the hidden layers (SiLU activations). Empty gives a linear
    /// model of the features.
    pub hidden: Vec<usize>,
    /// Number `K` of sine/cosine pairs in the time features.
    pub time_frequencies: usize,
    /// Pooled token embeddings for states that are one-hot token rows;
    /// `None` reads the state row directly.
    pub tokens: Option<TokenInput>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            time_frequencies: 3,
            tokens: None,
        }
    }
}

/// The token view of the state: one-hot rows of `len` tokens over `classes`
/// ids, pooled through embeddings of width `embedding` over windows of
/// `window` adjacent tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// Number of token ids, the mask id included.
    pub classes: usize,
    /// Width `d` of the token, position and window embeddings.
    pub embedding: usize,
    /// Tokens per window `w`; a word-level reward needs windows as long as
    /// its words plus the spaces around them.
    pub window: usize,
}

impl NetworkConfig {
    pub fn validate(&self) -> Result<(), LearnError> {
        if let Some(index) = self.hidden.iter().position(|&h| h == 0) {
            return Err(LearnError::InvalidConfig {
                name: "network.hidden",
                value: format!("{:?} (layer {index} has width 0)", self.hidden),
                expected: "hidden layer widths >= 1, such as [64, 64]",
            });
        }
        if let Some(tokens) = &self.tokens {
            if tokens.classes < 2 || tokens.embedding == 0 || tokens.window == 0 {
                return Err(LearnError::InvalidConfig {
                    name: "network.tokens",
                    value: format!(
                        "{} classes, embedding {}, window {}",
                        tokens.classes, tokens.embedding, tokens.window
                    ),
                    expected: "at least 2 classes (the mask id included), an embedding width >= 1 such as 32 \
                               and a window >= 1 such as 5",
                });
            }
        }
        Ok(())
    }

    /// Checks that states of width `width` are whole one-hot token rows,
    /// at least one window long, when the network reads tokens.
    pub fn check_width(&self, width: usize) -> Result<(), LearnError> {
        if let Some(tokens) = &self.tokens {
            if width == 0 || !width.is_multiple_of(tokens.classes) {
                return Err(LearnError::InvalidConfig {
                    name: "network.tokens.classes",
                    value: format!("{} for states of width {width}", tokens.classes),
                    expected: "the vocabulary size of the one-hot code, mask id included, dividing the state width",
                });
            }
            let len = width / tokens.classes;
            if tokens.window > len {
                return Err(LearnError::InvalidConfig {
                    name: "network.tokens.window",
                    value: format!("{} for sequences of {len} tokens", tokens.window),
                    expected: "a window no longer than the sequence",
                });
            }
        }
        Ok(())
    }

    /// Number of input features for states of width `width`: the state row
    /// then the time features.
    pub fn feature_count(&self, width: usize) -> usize {
        width + self.time_feature_count()
    }

    fn time_feature_count(&self) -> usize {
        1 + 2 * self.time_frequencies
    }

    /// Number of inputs of the MLP for states of width `width`.
    fn mlp_inputs(&self, width: usize) -> usize {
        match &self.tokens {
            Some(tokens) => tokens.embedding + self.time_feature_count(),
            None => self.feature_count(width),
        }
    }
}

/// The fixed affine maps around the MLP: per-coordinate state mean and
/// scale, and the scale of the output in log units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// `[width]`
    pub state_mean: Vec<f64>,
    /// `[width]`, every entry finite and > 0.
    pub state_scale: Vec<f64>,
    /// Scale of `b` in log units, finite and > 0.
    pub value_scale: f64,
    /// Constant added to `b` in log units (0 for baselines, whose envelope
    /// absorbs constants into `tau_t`).
    #[serde(default)]
    pub value_offset: f64,
}

impl Normalization {
    /// Returns the identity map for states of width `width`.
    pub fn identity(width: usize) -> Self {
        Self {
            state_mean: vec![0.0; width],
            state_scale: vec![1.0; width],
            value_scale: 1.0,
            value_offset: 0.0,
        }
    }

    /// Checks widths and that every scale is finite and positive; the error
    /// message names the first bad entry.
    pub fn validate(&self, width: usize) -> Result<(), String> {
        if self.state_mean.len() != width || self.state_scale.len() != width {
            return Err(format!(
                "normalisation has {} means and {} scales for states of width {width}",
                self.state_mean.len(),
                self.state_scale.len()
            ));
        }
        if let Some(m) = self.state_mean.iter().find(|m| !m.is_finite()) {
            return Err(format!("state mean {m} is not finite"));
        }
        if let Some(s) = self.state_scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("state scale {s} is not finite and positive"));
        }
        if !(self.value_scale.is_finite() && self.value_scale > 0.0) {
            return Err(format!("value scale {} is not finite and positive", self.value_scale));
        }
        if !self.value_offset.is_finite() {
            return Err(format!("value offset {} is not finite", self.value_offset));
        }
        Ok(())
    }
}

/// Appends the features of every row of `rows` at transition `t` to `out`.
///
/// # Shapes
/// `rows: [n, width]`; appends `[n, config.feature_count(width)]` values.
pub(crate) fn write_features(
    config: &NetworkConfig,
    normalization: &Normalization,
    t: usize,
    steps: usize,
    rows: &[f64],
    out: &mut Vec<f32>,
) {
    let width = normalization.state_mean.len();
    let phase = t as f64 / steps as f64;
    let mut time = Vec::with_capacity(1 + 2 * config.time_frequencies);
    time.push(phase as f32);
    for k in 1..=config.time_frequencies {
        let angle = std::f64::consts::PI * k as f64 * phase;
        time.push(angle.sin() as f32);
        time.push(angle.cos() as f32);
    }

    for row in rows.chunks_exact(width) {
        for ((y, mean), scale) in row
            .iter()
            .zip(&normalization.state_mean)
            .zip(&normalization.state_scale)
        {
            out.push(((y - mean) / scale) as f32);
        }
        out.extend_from_slice(&time);
    }
}

/// Builds the features tensor `[n, features]` on `device` for the rows at step `t`.
pub(crate) fn features_tensor(
    config: &NetworkConfig,
    normalization: &Normalization,
    t: usize,
    steps: usize,
    rows: &[f64],
    device: &Device,
) -> Tensor<2> {
    let width = normalization.state_mean.len();
    let n = rows.len() / width;
    let mut features = Vec::with_capacity(n * config.feature_count(width));
    write_features(config, normalization, t, steps, rows, &mut features);
    Tensor::from_data(TensorData::new(features, [n, config.feature_count(width)]), device)
}

/// The network inside `b_theta`: optional pooled token embeddings, then
/// the MLP. Its output is in units of `value_scale`.
#[derive(Module, Debug)]
pub(crate) struct Network {
    tokens: Option<PooledEmbedding>,
    mlp: Mlp,
}

impl Network {
    /// Builds the network for states of width `width` on `device`, with
    /// weights drawn from `seed` alone, so every backend starts from the
    /// same numbers.
    pub(crate) fn init(config: &NetworkConfig, width: usize, seed: u64, device: &Device) -> Self {
        let tokens = config
            .tokens
            .map(|tokens| PooledEmbedding::init(tokens, width / tokens.classes, seed, device));
        let mlp = Mlp::init(config, config.mlp_inputs(width), seed, device);
        Self { tokens, mlp }
    }

    /// Computes the raw output, before `value_scale` and `value_offset`.
    ///
    /// # Shapes
    /// `features: [n, features]`, output `[n]`.
    pub(crate) fn forward(&self, features: Tensor<2>) -> Tensor<1> {
        match &self.tokens {
            Some(tokens) => {
                let [n, count] = features.dims();
                let state_width = tokens.len * tokens.classes;
                let state = features.clone().narrow(1, 0, state_width);
                let time = features.narrow(1, state_width, count - state_width);
                let pooled = tokens.forward(state, n);
                self.mlp.forward(Tensor::cat(vec![pooled, time], 1))
            }
            None => self.mlp.forward(features),
        }
    }
}

/// Token and position embeddings pooled over windows of adjacent tokens.
#[derive(Module, Debug)]
pub(crate) struct PooledEmbedding {
    /// `[classes, d]`
    token: Param<Tensor<2>>,
    /// `[len, d]`
    position: Param<Tensor<2>>,
    /// `[w d] -> [d]`, applied to each window `[h_i, ..., h_{i+w-1}]`.
    window: Linear,
    len: usize,
    classes: usize,
    width: usize,
}

impl PooledEmbedding {
    fn init(input: TokenInput, len: usize, seed: u64, device: &Device) -> Self {
        let d = input.embedding;
        let draw = |stream: u64, count: usize, bound: f64| -> Vec<f32> {
            let mut stream = Stream::at(seed, 1_000 + stream, 0, 0, Lane::Kernel);
            (0..count)
                .map(|_| (bound * (2.0 * stream.uniform_open() - 1.0)) as f32)
                .collect()
        };
        let token = Param::from_data(TensorData::new(draw(0, input.classes * d, 1.0), [input.classes, d]), device);
        let position = Param::from_data(TensorData::new(draw(1, len * d, 1.0), [len, d]), device);
        let w = input.window;
        let bound = 1.0 / ((w * d) as f64).sqrt();
        let window = linear_from(draw(2, w * d * d, bound), draw(3, d, bound), w * d, d, device);
        Self {
            token,
            position,
            window,
            len,
            classes: input.classes,
            width: w,
        }
    }

    /// # Shapes
    /// `one_hot: [n, len * classes]`, output `[n, d]`.
    fn forward(&self, one_hot: Tensor<2>, n: usize) -> Tensor<2> {
        let [_, d] = self.token.dims();
        let len = self.len;
        let rows = one_hot.reshape([n * len, self.classes]);
        let embedded = rows.matmul(self.token.val()).reshape([n, len, d]);
        let h = embedded + self.position.val().unsqueeze::<3>();
        // Window i is [h_i, ..., h_{i+w-1}]: w shifted views side by side.
        let starts = len - self.width + 1;
        let shifted = (0..self.width).map(|k| h.clone().narrow(1, k, starts)).collect();
        let windows = Tensor::cat(shifted, 2);
        silu(self.window.forward(windows)).mean_dim(1).reshape([n, d])
    }
}

/// The MLP of the network.
#[derive(Module, Debug)]
pub(crate) struct Mlp {
    hidden: Vec<Linear>,
    output: Linear,
}

impl Mlp {
    /// Builds the MLP on `device` with weights drawn from `seed` alone.
    ///
    /// Hidden layers draw weights and biases from `U(-k, k)` with
    /// `k = 1 / sqrt(fan_in)`. The output layer starts at zero, so the
    /// untrained baseline is the constant 0 and its envelope is `tau_t` alone.
    fn init(config: &NetworkConfig, inputs: usize, seed: u64, device: &Device) -> Self {
        let mut fan_in = inputs;
        let mut hidden = Vec::with_capacity(config.hidden.len());
        for (layer, &width) in config.hidden.iter().enumerate() {
            let bound = 1.0 / (fan_in as f64).sqrt();
            let mut stream = Stream::at(seed, layer as u64, 0, 0, Lane::Kernel);
            let mut draw = |count: usize| -> Vec<f32> {
                (0..count)
                    .map(|_| (bound * (2.0 * stream.uniform_open() - 1.0)) as f32)
                    .collect()
            };
            let weight = draw(fan_in * width);
            let bias = draw(width);
            hidden.push(linear_from(weight, bias, fan_in, width, device));
            fan_in = width;
        }
        let output = linear_from(vec![0.0; fan_in], vec![0.0], fan_in, 1, device);
        Self { hidden, output }
    }

    /// # Shapes
    /// `features: [n, inputs]`, output `[n]`.
    fn forward(&self, features: Tensor<2>) -> Tensor<1> {
        let mut x = features;
        for layer in &self.hidden {
            x = silu(layer.forward(x));
        }
        let [n, _] = x.dims();
        self.output.forward(x).reshape([n])
    }
}

fn linear_from(weight: Vec<f32>, bias: Vec<f32>, inputs: usize, outputs: usize, device: &Device) -> Linear {
    Linear {
        weight: Param::from_data(TensorData::new(weight, [inputs, outputs]), device),
        bias: Some(Param::from_data(TensorData::new(bias, [outputs]), device)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_hold_normalised_state_then_time() {
        let config = NetworkConfig {
            hidden: vec![],
            time_frequencies: 1,
            tokens: None,
        };
        let normalization = Normalization {
            state_mean: vec![1.0, -2.0],
            state_scale: vec![2.0, 4.0],
            value_scale: 1.0,
            value_offset: 0.0,
        };
        let mut out = Vec::new();
        write_features(&config, &normalization, 5, 10, &[3.0, 2.0, 1.0, -2.0], &mut out);
        // Row 1: (3-1)/2, (2+2)/4; then t/T = 0.5, sin(pi/2), cos(pi/2).
        let expected = [1.0, 1.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.0];
        assert_eq!(out.len(), expected.len());
        for (got, want) in out.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn zero_width_hidden_layer_is_rejected() {
        let config = NetworkConfig {
            hidden: vec![8, 0],
            time_frequencies: 2,
            tokens: None,
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("layer 1"), "{err}");
    }

    #[test]
    fn normalisation_rejects_zero_scale() {
        let mut normalization = Normalization::identity(2);
        normalization.state_scale[1] = 0.0;
        assert!(normalization.validate(2).unwrap_err().contains("state scale 0"));
        assert!(Normalization::identity(2).validate(3).is_err());
    }
}
