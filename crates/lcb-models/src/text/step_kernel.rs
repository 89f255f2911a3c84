//! LLaDA-style reverse steps over any [`Denoiser`].
//!
//! Transition `t` of `T` reads the denoiser's logits for the parent `x_t`,
//! draws a clean token for masked positions of the step's block from
//! `softmax(logits / temperature)`, and commits the scheduled number `k` of
//! them (see [`RevealSchedule`]):
//!
//! - [`Remasking::Random`]: `k` masked positions of the block chosen
//!   uniformly at random;
//! - [`Remasking::LowConfidence`]: the `k` positions whose drawn token has
//!   the highest probability under `softmax(logits)` (temperature 1); the
//!   others stay masked.
//!
//! For alignment the kernel must be the base model's own stochastic kernel,
//! which is the default: temperature 1 with random remasking. Temperature 0
//! is greedy decoding (argmax). With low-confidence remasking it is
//! deterministic, so every proposal of a prefix is the same child and
//! rejection has nothing to choose from.
//!
//! LLaDA draws tokens with the Gumbel-max trick on `logits / temperature`.
//! This kernel draws from the same categorical law by inverting its CDF with
//! one uniform per position, which is cheaper and exact in `f64`.

use std::collections::HashMap;

use lcb_core::{ComponentResult, Kernel, Stream};
use serde::{Deserialize, Serialize};

use crate::text::denoiser::Denoiser;
use crate::text::error::TextError;
use crate::text::finite::reveal_random;
use crate::text::schedule::{RevealSchedule, StepPlan};

/// Rule that picks the masked positions a step commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Remasking {
    /// Positions chosen uniformly at random: the model's own kernel.
    #[default]
    Random,
    /// The positions whose drawn tokens the model is most confident of.
    LowConfidence,
}

impl std::str::FromStr for Remasking {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Self::Random),
            "low-confidence" => Ok(Self::LowConfidence),
            other => Err(TextError::InvalidConfig {
                name: "remasking",
                value: other.to_string(),
                expected: "random or low-confidence",
            }),
        }
    }
}

/// Settings of the step kernel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepKernelConfig {
    /// Number of transitions `N`; `None` uses one per position.
    pub steps: Option<usize>,
    /// Length of the semi-autoregressive blocks; `None` is one block.
    pub block_len: Option<usize>,
    pub remasking: Remasking,
    /// Sampling temperature `>= 0`; 0 is greedy decoding.
    pub temperature: f64,
}

impl Default for StepKernelConfig {
    fn default() -> Self {
        Self {
            steps: None,
            block_len: None,
            remasking: Remasking::Random,
            temperature: 1.0,
        }
    }
}

/// The reverse kernel of a masked-diffusion denoiser, LLaDA style. The root
/// `x_T` is all masks and the chain runs `N` transitions.
///
/// The logits of recent parents are kept (up to [`LOGITS_CACHE_ROWS`]
/// rows), so the rounds of envelope rejection and the iterations of
/// baseline training, which propose again from the same parents, run the
/// denoiser once per parent.
#[derive(Debug, Clone)]
pub struct StepKernel<D> {
    denoiser: D,
    schedule: RevealSchedule,
    remasking: Remasking,
    temperature: f64,
    cache: LogitsCache,
}

/// Maximum number of parent rows whose logits a [`StepKernel`] keeps. The
/// cache is emptied when a call would exceed it.
pub const LOGITS_CACHE_ROWS: usize = 2048;

/// Logits by parent row, shared by the threads that call the kernel.
#[derive(Default)]
struct LogitsCache {
    rows: std::sync::Mutex<HashMap<Vec<u32>, std::sync::Arc<[f32]>>>,
}

impl Clone for LogitsCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for LogitsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogitsCache").finish_non_exhaustive()
    }
}

impl<D: Denoiser> StepKernel<D> {
    /// # Errors
    /// A negative or non-finite temperature, or a step count and block
    /// length that do not fit the denoiser's sequence length.
    pub fn new(denoiser: D, config: &StepKernelConfig) -> Result<Self, TextError> {
        if !(config.temperature.is_finite() && config.temperature >= 0.0) {
            return Err(TextError::InvalidConfig {
                name: "temperature",
                value: config.temperature.to_string(),
                expected: "a finite temperature >= 0 (1 samples the model, 0 is greedy)",
            });
        }
        let len = denoiser.seq_len();
        let schedule = RevealSchedule::new(
            len,
            config.steps.unwrap_or(len),
            config.block_len.unwrap_or(len),
        )?;
        Ok(Self {
            denoiser,
            schedule,
            remasking: config.remasking,
            temperature: config.temperature,
            cache: LogitsCache::default(),
        })
    }

    pub fn denoiser(&self) -> &D {
        &self.denoiser
    }

    pub fn schedule(&self) -> &RevealSchedule {
        &self.schedule
    }

    /// Builds the categorical tables of every masked position of the step's block,
    /// for one parent.
    ///
    /// # Errors
    /// [`TextError::NonFiniteLogits`] when a position has a NaN or `+inf`
    /// logit, or no finite logit outside the mask.
    fn tables(&self, parent: &[u32], logits: &[f32], plan: &StepPlan) -> Result<Vec<PositionTable>, TextError> {
        let vocab = self.denoiser.vocab_size();
        let mask = self.denoiser.mask_id();
        plan.block
            .clone()
            .filter(|&i| parent[i] == mask)
            .map(|i| {
                let table = PositionTable::new(i, &logits[i * vocab..(i + 1) * vocab], mask, self.temperature);
                if table.log_norm.is_finite() {
                    Ok(table)
                } else {
                    Err(TextError::NonFiniteLogits { position: i })
                }
            })
            .collect()
    }
}

/// The sampling law of one masked position.
struct PositionTable {
    position: usize,
    /// Cumulative probabilities of `softmax(logits / temperature)`, or, for
    /// temperature 0, a single entry: the argmax token.
    cumulative: Vec<f64>,
    /// The logits, for the temperature-1 confidence of a drawn token.
    logits: Vec<f64>,
    /// `ln sum exp(logits)` over the tokens that may be drawn.
    log_norm: f64,
}

impl PositionTable {
    fn new(position: usize, logits: &[f32], mask: u32, temperature: f64) -> Self {
        let logits: Vec<f64> = logits
            .iter()
            .enumerate()
            .map(|(id, &l)| if id as u32 == mask { f64::NEG_INFINITY } else { f64::from(l) })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_norm = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();

        let cumulative = if temperature == 0.0 {
            let argmax = logits
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (id, &l)| if l > best.1 { (id, l) } else { best })
                .0;
            vec![argmax as f64]
        } else {
            let mut total = 0.0;
            let mut cumulative: Vec<f64> = logits
                .iter()
                .map(|l| {
                    total += ((l - max) / temperature).exp();
                    total
                })
                .collect();
            for c in &mut cumulative {
                *c /= total;
            }
            cumulative
        };
        Self {
            position,
            cumulative,
            logits,
            log_norm,
        }
    }

    fn draw(&self, rng: &mut Stream) -> u32 {
        if self.cumulative.len() == 1 {
            return self.cumulative[0] as u32;
        }
        let u = rng.uniform_open();
        let id = self.cumulative.partition_point(|&c| c <= u);
        // Rounding can leave the last cumulative entry just below 1; fall
        // back to the last token with positive probability.
        if id < self.cumulative.len() {
            id as u32
        } else {
            let last = self.logits.iter().rposition(|l| l.is_finite()).unwrap_or(0);
            last as u32
        }
    }

    /// Probability of `token` under `softmax(logits)`.
    fn confidence(&self, token: u32) -> f64 {
        (self.logits[token as usize] - self.log_norm).exp()
    }
}

impl<D: Denoiser> StepKernel<D> {
    /// Returns the logits of `rows` parent rows (`[rows, len, vocab]`),
    /// running the denoiser only on rows not in the cache. The logits of a
    /// row do not depend on the step, so the cache is keyed by the row alone.
    fn cached_logits(&self, batch: &[u32], rows: usize, per_row: usize) -> Result<Vec<f32>, lcb_core::ComponentError> {
        let len = self.schedule.seq_len();
        let mut logits = vec![0f32; rows * per_row];
        let mut missing = Vec::new();
        {
            let cache = self.cache.rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (r, row) in batch.chunks_exact(len).enumerate() {
                match cache.get(row) {
                    Some(cached) => logits[r * per_row..(r + 1) * per_row].copy_from_slice(cached),
                    None => missing.push(r),
                }
            }
        }
        if missing.is_empty() {
            return Ok(logits);
        }

        let inputs: Vec<u32> = missing
            .iter()
            .flat_map(|&r| batch[r * len..(r + 1) * len].iter().copied())
            .collect();
        let mut computed = vec![0f32; missing.len() * per_row];
        self.denoiser.logits(&inputs, &mut computed)?;
        let mut cache = self.cache.rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() + missing.len() > LOGITS_CACHE_ROWS {
            cache.clear();
        }
        for (k, &r) in missing.iter().enumerate() {
            let values = &computed[k * per_row..(k + 1) * per_row];
            logits[r * per_row..(r + 1) * per_row].copy_from_slice(values);
            if missing.len() <= LOGITS_CACHE_ROWS {
                cache.insert(batch[r * len..(r + 1) * len].to_vec(), values.into());
            }
        }
        Ok(logits)
    }
}

impl<D: Denoiser> Kernel for StepKernel<D> {
    type Elem = u32;

    fn width(&self) -> usize {
        self.schedule.seq_len()
    }

    fn steps(&self) -> usize {
        self.schedule.steps()
    }

    fn root(&self, out: &mut [u32]) {
        out.fill(self.denoiser.mask_id());
    }

    /// Runs the denoiser once per distinct parent, then draws every request's
    /// child from its own stream.
    fn propose(
        &self,
        t: usize,
        parents: &[u32],
        parent_of: &[usize],
        rngs: &mut [Stream],
        out: &mut [u32],
    ) -> ComponentResult {
        let len = self.schedule.seq_len();
        let vocab = self.denoiser.vocab_size();
        let plan = self.schedule.at(t);

        let mut slot_of: HashMap<usize, usize> = HashMap::new();
        let mut batch = Vec::new();
        for &p in parent_of {
            if !slot_of.contains_key(&p) {
                slot_of.insert(p, slot_of.len());
                batch.extend_from_slice(&parents[p * len..(p + 1) * len]);
            }
        }
        let rows = slot_of.len();
        let logits = self.cached_logits(&batch, rows, len * vocab)?;
        let tables: Vec<Vec<PositionTable>> = (0..rows)
            .map(|s| {
                let parent = &batch[s * len..(s + 1) * len];
                self.tables(parent, &logits[s * len * vocab..(s + 1) * len * vocab], &plan)
            })
            .collect::<Result<_, _>>()?;

        let mut order: Vec<usize> = Vec::with_capacity(len);
        let mut drawn: Vec<(usize, u32, f64)> = Vec::with_capacity(len);
        for ((child, rng), p) in out.chunks_exact_mut(len).zip(rngs.iter_mut()).zip(parent_of) {
            let slot = slot_of[p];
            let positions = &tables[slot];
            child.copy_from_slice(&batch[slot * len..(slot + 1) * len]);
            let count = plan.count.min(positions.len());
            match self.remasking {
                Remasking::Random => {
                    order.clear();
                    order.extend(0..positions.len());
                    reveal_random(&mut order, count, rng);
                    for &k in &order[..count] {
                        child[positions[k].position] = positions[k].draw(rng);
                    }
                }
                Remasking::LowConfidence => {
                    drawn.clear();
                    for table in positions {
                        let token = table.draw(rng);
                        drawn.push((table.position, token, table.confidence(token)));
                    }
                    // Highest confidence first; ties go to the leftmost position.
                    drawn.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
                    for &(position, token, _) in &drawn[..count] {
                        child[position] = token;
                    }
                }
            }
        }
        Ok(())
    }
}
