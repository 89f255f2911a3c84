//! A bidirectional transformer denoiser in the LLaDA family.
//!
//! ```text
//! h_0     = Embedding(tokens)
//! a_l     = h_{l-1} + W_o Attention(RoPE(W_q n), RoPE(W_k n), W_v n),  n = RMSNorm(h_{l-1})
//! h_l     = a_l + W_down (SiLU(W_gate m) * W_up m),                   m = RMSNorm(a_l)
//! logits  = W_head RMSNorm(h_L)
//! ```
//!
//! Attention is full (no causal mask), every linear map has no bias, and the
//! rotary position embedding rotates each head's query and key by position
//! (burn-nn's `RotaryEncoding`, pairs of adjacent features).

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear, RmsNorm, RotaryEncoding, RotaryEncodingConfig, SwiGlu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};
use lcb_core::{Lane, Stream};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::text::error::TextError;

/// Size of the denoiser, independent of the tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelShape {
    /// Sequence length `L` in tokens.
    pub seq_len: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Attention heads; `d_model / heads` must be even for the rotary embedding.
    pub heads: usize,
    pub layers: usize,
    /// Hidden width of the SwiGLU MLP.
    pub mlp_hidden: usize,
    /// Base of the rotary embedding's frequencies.
    pub rope_theta: f64,
    /// `epsilon` of every RMSNorm.
    pub norm_epsilon: f64,
}

impl Default for ModelShape {
    /// Returns the default shape: sequences of 64 tokens, 4 layers of width
    /// 128 with 4 heads and a SwiGLU width of 384 (0.87 M parameters for
    /// the embedded corpus's 73 predicted tokens).
    fn default() -> Self {
        Self {
            seq_len: 64,
            d_model: 128,
            heads: 4,
            layers: 4,
            mlp_hidden: 384,
            rope_theta: 10_000.0,
            norm_epsilon: 1e-5,
        }
    }
}

impl ModelShape {
    pub fn head_dim(&self) -> usize {
        self.d_model / self.heads.max(1)
    }

    /// # Errors
    /// A zero size, a width that does not split into heads of even size, or
    /// a non-positive `rope_theta` or `norm_epsilon`.
    pub fn validate(&self) -> Result<(), TextError> {
        let invalid = |name: &'static str, value: String, expected: &'static str| {
            Err(TextError::InvalidConfig { name, value, expected })
        };
        for (name, value) in [
            ("model.seq_len", self.seq_len),
            ("model.d_model", self.d_model),
            ("model.heads", self.heads),
            ("model.layers", self.layers),
            ("model.mlp_hidden", self.mlp_hidden),
        ] {
            if value == 0 {
                return invalid(name, "0".into(), "a size >= 1");
            }
        }
        if !self.d_model.is_multiple_of(self.heads) || !self.head_dim().is_multiple_of(2) {
            return invalid(
                "model.heads",
                format!("{} heads for d_model {}", self.heads, self.d_model),
                "a head count that splits d_model into heads of even width",
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return invalid("model.rope_theta", self.rope_theta.to_string(), "a finite value > 0, such as 10000");
        }
        if !(self.norm_epsilon.is_finite() && self.norm_epsilon > 0.0) {
            return invalid("model.norm_epsilon", self.norm_epsilon.to_string(), "a finite value > 0, such as 1e-5");
        }
        Ok(())
    }
}

/// Shape of a denoiser for one tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenoiserConfig {
    /// Number of token ids the logits cover. The input embedding has one
    /// more row, for the mask token with id `vocab_size`.
    pub vocab_size: usize,
    pub shape: ModelShape,
}

impl DenoiserConfig {
    /// # Errors
    /// A zero vocabulary or an invalid shape.
    pub fn validate(&self) -> Result<(), TextError> {
        if self.vocab_size == 0 {
            return Err(TextError::InvalidConfig {
                name: "model.vocab_size",
                value: "0".into(),
                expected: "a vocabulary of at least 1 token",
            });
        }
        self.shape.validate()
    }

    /// Number of trained parameters.
    pub fn parameter_count(&self) -> usize {
        let d = self.shape.d_model;
        let per_layer = 4 * d * d + 3 * d * self.shape.mlp_hidden + 2 * d;
        (2 * self.vocab_size + 1) * d + self.shape.layers * per_layer + d
    }
}

/// Multi-head self-attention without biases, with rotary queries and keys.
#[derive(Module, Debug)]
pub(crate) struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    heads: usize,
}

impl SelfAttention {
    /// # Shapes
    /// `x: [batch, len, d_model]`, output `[batch, len, d_model]`.
    fn forward(&self, x: Tensor<3>, rope: &RotaryEncoding) -> Tensor<3> {
        let [batch, len, d_model] = x.dims();
        let head_dim = d_model / self.heads;
        let split = |t: Tensor<3>| t.reshape([batch, len, self.heads, head_dim]).swap_dims(1, 2);

        let q = rope.forward(split(self.query.forward(x.clone())));
        let k = rope.forward(split(self.key.forward(x.clone())));
        let v = split(self.value.forward(x));
        let context = attention(q, k, v, None, None, AttentionModuleOptions::default());
        let merged = context.swap_dims(1, 2).reshape([batch, len, d_model]);
        self.output.forward(merged)
    }
}

/// `W_down (SiLU(W_gate x) * W_up x)`.
#[derive(Module, Debug)]
pub(crate) struct SwiGluMlp {
    gated: SwiGlu,
    down: Linear,
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub(crate) struct Block {
    attention_norm: RmsNorm,
    attention: SelfAttention,
    mlp_norm: RmsNorm,
    mlp: SwiGluMlp,
}

/// The denoiser network. Its logits cover `vocab_size` token ids.
#[derive(Module, Debug)]
pub struct Transformer {
    embedding: Embedding,
    blocks: Vec<Block>,
    final_norm: RmsNorm,
    head: Linear,
    /// Precomputed rotations; not a parameter, so not saved.
    rope: RotaryEncoding,
}

impl Transformer {
    /// Builds the network on `device` with weights drawn from `seed` alone,
    /// so every backend starts from the same numbers.
    ///
    /// Linear maps draw from `U(-k, k)` with `k = 1 / sqrt(fan_in)` (the
    /// PyTorch default), the embedding (`[vocab_size + 1, d_model]`, the
    /// last row for the mask) from `N(0, 1)`, and every RMSNorm gain starts at 1.
    ///
    /// # Panics
    /// If `config` fails [`DenoiserConfig::validate`].
    pub fn init(config: &DenoiserConfig, seed: u64, device: &Device) -> Self {
        config.validate().expect("the denoiser config must be valid");
        let mut init = Initializer { seed, next: 0, device };
        let shape = &config.shape;
        let d = shape.d_model;
        let norm = |device: &Device| RmsNorm {
            gamma: Param::from_data(TensorData::new(vec![1f32; d], [d]), device),
            epsilon: shape.norm_epsilon,
        };

        let embedding = Embedding {
            weight: init.normal(config.vocab_size + 1, d),
        };
        let blocks = (0..shape.layers)
            .map(|_| Block {
                attention_norm: norm(device),
                attention: SelfAttention {
                    query: init.linear(d, d),
                    key: init.linear(d, d),
                    value: init.linear(d, d),
                    output: init.linear(d, d),
                    heads: shape.heads,
                },
                mlp_norm: norm(device),
                mlp: SwiGluMlp {
                    gated: SwiGlu {
                        linear_inner: init.linear(d, shape.mlp_hidden),
                        linear_outer: init.linear(d, shape.mlp_hidden),
                    },
                    down: init.linear(shape.mlp_hidden, d),
                },
            })
            .collect();
        let final_norm = norm(device);
        let head = init.linear(d, config.vocab_size);
        let rope = RotaryEncodingConfig::new(shape.seq_len, shape.head_dim())
            .with_theta(shape.rope_theta as f32)
            .init(device);
        Self {
            embedding,
            blocks,
            final_norm,
            head,
            rope,
        }
    }

    /// Per-position logits.
    ///
    /// # Shapes
    /// `tokens: [batch, len]` with `len <= seq_len`, output `[batch, len, vocab_size]`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let mut x = self.embedding.forward(tokens);
        for block in &self.blocks {
            let attended = block.attention.forward(block.attention_norm.forward(x.clone()), &self.rope);
            x = x + attended;
            let normed = block.mlp_norm.forward(x.clone());
            x = x + block.mlp.down.forward(block.mlp.gated.forward(normed));
        }
        self.head.forward(self.final_norm.forward(x))
    }
}

/// Draws initial weights from counter-based streams, one per tensor.
struct Initializer<'a> {
    seed: u64,
    next: u64,
    device: &'a Device,
}

impl Initializer<'_> {
    fn stream(&mut self) -> Stream {
        self.next += 1;
        Stream::at(self.seed, self.next, 0, 0, Lane::Kernel)
    }

    /// Draws a bias-free linear map, stored as burn does, `[fan_in, fan_out]`.
    fn linear(&mut self, fan_in: usize, fan_out: usize) -> Linear {
        let bound = 1.0 / (fan_in as f64).sqrt();
        let mut stream = self.stream();
        let weight: Vec<f32> = (0..fan_in * fan_out)
            .map(|_| (bound * (2.0 * stream.uniform_open() - 1.0)) as f32)
            .collect();
        Linear {
            weight: Param::from_data(TensorData::new(weight, [fan_in, fan_out]), self.device),
            bias: None,
        }
    }

    fn normal(&mut self, rows: usize, cols: usize) -> Param<Tensor<2>> {
        let mut stream = self.stream();
        let values: Vec<f32> = (0..rows * cols)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut stream);
                z as f32
            })
            .collect();
        Param::from_data(TensorData::new(values, [rows, cols]), self.device)
    }
}

/// Uploads token ids as an int tensor `[rows, len]`.
pub(crate) fn tokens_tensor(tokens: &[u32], rows: usize, len: usize, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
    Tensor::from_data(TensorData::new(ids, [rows, len]), device)
}
