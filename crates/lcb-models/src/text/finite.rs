//! The exact finite-language testbed: data is an explicit distribution over
//! a small set of token sequences, so the reverse kernel, the soft values
//! and the aligned target all follow by enumeration.
//!
//! The forward process masks positions chosen independently of the data,
//! so for a partially masked state `y` the posterior of the clean sequence is
//! `p(x_0 | x_t = y) ~ p(x_0) 1[x_0 agrees with y on every unmasked position]`.
//! The exact reverse step draws `x_0` from it and reveals the scheduled
//! number of masked positions of `x_0`, chosen uniformly at random. Hence,
//! with `r_i = r(x_0^{(i)})`,
//!
//! ```text
//! V_t(y) = ln sum_{i ~ y} p_i exp(r_i / alpha) - ln sum_{i ~ y} p_i
//! p*(x_0^{(i)}) = p_i exp(r_i / alpha) / sum_j p_j exp(r_j / alpha)
//! ```

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lcb_core::logmath::log_sum_exp;
use lcb_core::{ComponentResult, Kernel, Reward, Stream, Value, check_alpha};
use rand::RngExt;

use crate::text::error::TextError;
use crate::text::schedule::RevealSchedule;

/// An explicit distribution over token sequences of one length.
#[derive(Debug, Clone, PartialEq)]
pub struct FiniteLanguage {
    len: usize,
    mask_id: u32,
    /// `[count, len]`, row-major.
    sequences: Vec<u32>,
    /// `ln p_i`, normalised.
    log_probabilities: Vec<f64>,
}

impl FiniteLanguage {
    /// Builds the distribution `p_i = weights[i] / sum(weights)` over
    /// `sequences`.
    ///
    /// # Errors
    /// No sequences, sequences of different or zero length, a sequence that
    /// contains `mask_id` or repeats another, a weight count that differs
    /// from the sequence count, or a weight that is not finite and positive.
    pub fn new(sequences: &[Vec<u32>], weights: &[f64], mask_id: u32) -> Result<Self, TextError> {
        let invalid = |message: String| Err(TextError::InvalidLanguage(message));
        let Some(first) = sequences.first() else {
            return invalid("the language has no sequences".into());
        };
        let len = first.len();
        if len == 0 {
            return invalid("sequences must have at least one token".into());
        }
        if weights.len() != sequences.len() {
            return invalid(format!(
                "{} weights for {} sequences",
                weights.len(),
                sequences.len()
            ));
        }
        let mut seen = HashSet::new();
        for (i, sequence) in sequences.iter().enumerate() {
            if sequence.len() != len {
                return invalid(format!(
                    "sequence {i} has {} tokens but sequence 0 has {len}",
                    sequence.len()
                ));
            }
            if sequence.contains(&mask_id) {
                return invalid(format!("sequence {i} contains the mask id {mask_id}"));
            }
            if !seen.insert(sequence.as_slice()) {
                return invalid(format!("sequence {i} repeats an earlier sequence; merge their weights"));
            }
        }
        if let Some((i, w)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w > 0.0)) {
            return invalid(format!("weight {i} is {w}; weights must be finite and > 0"));
        }

        let log_total = log_sum_exp(&weights.iter().map(|w| w.ln()).collect::<Vec<_>>());
        Ok(Self {
            len,
            mask_id,
            sequences: sequences.concat(),
            log_probabilities: weights.iter().map(|w| w.ln() - log_total).collect(),
        })
    }

    /// Length of every sequence.
    pub fn seq_len(&self) -> usize {
        self.len
    }

    /// Number of sequences.
    pub fn count(&self) -> usize {
        self.log_probabilities.len()
    }

    pub fn mask_id(&self) -> u32 {
        self.mask_id
    }

    /// Sequence `i`, `[len]`.
    pub fn sequence(&self, i: usize) -> &[u32] {
        &self.sequences[i * self.len..(i + 1) * self.len]
    }

    /// Returns all sequences, `[count, len]`.
    pub fn sequences(&self) -> &[u32] {
        &self.sequences
    }

    /// Data probabilities `p_i`.
    pub fn probabilities(&self) -> Vec<f64> {
        self.log_probabilities.iter().map(|l| l.exp()).collect()
    }

    /// Index of a clean sequence, if it belongs to the language.
    pub fn index_of(&self, sequence: &[u32]) -> Option<usize> {
        self.sequences.chunks_exact(self.len).position(|row| row == sequence)
    }

    /// Checks whether sequence `i` agrees with `state` on every unmasked position.
    fn agrees(&self, i: usize, state: &[u32]) -> bool {
        self.sequence(i)
            .iter()
            .zip(state)
            .all(|(&x, &y)| y == self.mask_id || x == y)
    }

    /// `ln sum_{i ~ state} exp(log_weights[i])` over the sequences that agree
    /// with `state`; `-inf` when none does.
    fn log_sum_agreeing(&self, state: &[u32], log_weights: &[f64]) -> f64 {
        let terms: Vec<f64> = (0..self.count())
            .filter(|&i| self.agrees(i, state))
            .map(|i| log_weights[i])
            .collect();
        if terms.is_empty() {
            f64::NEG_INFINITY
        } else {
            log_sum_exp(&terms)
        }
    }

    /// Computes the posterior `p(x_0 | x_t = state)` as cumulative probabilities over
    /// the sequences (`[count]`, last entry 1).
    ///
    /// # Errors
    /// [`TextError::Inconsistent`] when no sequence agrees with `state`.
    pub fn posterior_cumulative(&self, state: &[u32]) -> Result<Vec<f64>, TextError> {
        let log_norm = self.log_sum_agreeing(state, &self.log_probabilities);
        if log_norm == f64::NEG_INFINITY {
            return Err(TextError::Inconsistent { state: state.to_vec() });
        }
        let mut total = 0.0;
        let cumulative = (0..self.count())
            .map(|i| {
                if self.agrees(i, state) {
                    total += (self.log_probabilities[i] - log_norm).exp();
                }
                total
            })
            .collect();
        Ok(cumulative)
    }

    /// Computes the rewards `r_i` of every sequence with `reward`, in one batch.
    pub fn rewards(&self, reward: &dyn Reward<Elem = u32>) -> Result<Vec<f64>, TextError> {
        let mut out = vec![0.0; self.count()];
        reward
            .rewards(&self.sequences, &mut out)
            .map_err(|source| TextError::Reward { source })?;
        if let Some((i, r)) = out.iter().enumerate().find(|(_, r)| !r.is_finite()) {
            return Err(TextError::InvalidLanguage(format!(
                "the reward of sequence {i} is {r}; rewards must be finite"
            )));
        }
        Ok(out)
    }

    /// Computes the aligned target `p*_i ~ p_i exp(r_i / alpha)`, normalised.
    ///
    /// # Errors
    /// An invalid `alpha` or a reward count that differs from the sequence count.
    pub fn aligned_target(&self, rewards: &[f64], alpha: f64) -> Result<Vec<f64>, TextError> {
        check_alpha(alpha)?;
        self.check_rewards(rewards)?;
        let log_tilted: Vec<f64> = self
            .log_probabilities
            .iter()
            .zip(rewards)
            .map(|(lp, r)| lp + r / alpha)
            .collect();
        let log_norm = log_sum_exp(&log_tilted);
        Ok(log_tilted.iter().map(|l| (l - log_norm).exp()).collect())
    }

    fn check_rewards(&self, rewards: &[f64]) -> Result<(), TextError> {
        if rewards.len() != self.count() {
            return Err(TextError::InvalidLanguage(format!(
                "{} rewards for {} sequences",
                rewards.len(),
                self.count()
            )));
        }
        Ok(())
    }
}

/// The exact reverse kernel of a [`FiniteLanguage`]: draw `x_0 ~ p(x_0 | x_t)`
/// and reveal the scheduled number of masked positions of it, chosen
/// uniformly at random inside the step's block.
///
/// The root `x_T` is all masks. Every marginal of the chain is the forward
/// marginal, so `x_0` has exactly the language's distribution.
#[derive(Debug, Clone)]
pub struct FiniteLanguageKernel {
    language: Arc<FiniteLanguage>,
    schedule: RevealSchedule,
}

impl FiniteLanguageKernel {
    /// # Errors
    /// A schedule whose length differs from the language's.
    pub fn new(language: Arc<FiniteLanguage>, schedule: RevealSchedule) -> Result<Self, TextError> {
        if schedule.seq_len() != language.seq_len() {
            return Err(TextError::InvalidSchedule(format!(
                "the schedule covers {} positions but the language's sequences have {}",
                schedule.seq_len(),
                language.seq_len()
            )));
        }
        Ok(Self { language, schedule })
    }

    pub fn language(&self) -> &FiniteLanguage {
        &self.language
    }

    pub fn schedule(&self) -> &RevealSchedule {
        &self.schedule
    }
}

impl Kernel for FiniteLanguageKernel {
    type Elem = u32;

    fn width(&self) -> usize {
        self.language.seq_len()
    }

    fn steps(&self) -> usize {
        self.schedule.steps()
    }

    fn root(&self, out: &mut [u32]) {
        out.fill(self.language.mask_id());
    }

    fn propose(
        &self,
        t: usize,
        parents: &[u32],
        parent_of: &[usize],
        rngs: &mut [Stream],
        out: &mut [u32],
    ) -> ComponentResult {
        let len = self.language.seq_len();
        let mask = self.language.mask_id();
        let plan = self.schedule.at(t);
        let mut posteriors: HashMap<usize, Vec<f64>> = HashMap::new();
        let mut masked = Vec::with_capacity(len);

        for ((child, rng), &p) in out.chunks_exact_mut(len).zip(rngs.iter_mut()).zip(parent_of) {
            let parent = &parents[p * len..(p + 1) * len];
            let cumulative = match posteriors.entry(p) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => entry.insert(self.language.posterior_cumulative(parent)?),
            };
            let u = rng.uniform_open();
            let pick = cumulative.iter().position(|&c| u < c).unwrap_or(cumulative.len() - 1);
            let clean = self.language.sequence(pick);

            child.copy_from_slice(parent);
            masked.clear();
            masked.extend(plan.block.clone().filter(|&i| parent[i] == mask));
            reveal_random(&mut masked, plan.count, rng);
            for &i in &masked[..plan.count.min(masked.len())] {
                child[i] = clean[i];
            }
        }
        Ok(())
    }
}

/// Moves `count` positions drawn uniformly without replacement to the front
/// of `positions` (a partial Fisher-Yates shuffle).
pub(crate) fn reveal_random(positions: &mut [usize], count: usize, rng: &mut Stream) {
    let n = positions.len();
    for i in 0..count.min(n) {
        let j = rng.random_range(i..n);
        positions.swap(i, j);
    }
}

/// The exact soft value of a [`FiniteLanguage`] under a reward, in log
/// units: `V_t(y) = ln E[exp(r(x_0) / alpha) | x_t = y]` by enumeration.
///
/// The value depends on the state only, not on `t`; at `t = 0` it is
/// `r(x_0) / alpha` for a sequence of the language.
#[derive(Debug, Clone)]
pub struct FiniteLanguageValue {
    language: Arc<FiniteLanguage>,
    /// `r_i`, reward units.
    rewards: Vec<f64>,
    /// `ln p_i + r_i / alpha`.
    log_tilted: Vec<f64>,
    alpha: f64,
}

impl FiniteLanguageValue {
    /// Evaluates `reward` on every sequence of the language once.
    ///
    /// # Errors
    /// An invalid `alpha`, a failing reward or a non-finite reward.
    pub fn new(language: Arc<FiniteLanguage>, reward: &dyn Reward<Elem = u32>, alpha: f64) -> Result<Self, TextError> {
        let rewards = language.rewards(reward)?;
        Self::from_rewards(language, rewards, alpha)
    }

    /// Builds the value from precomputed rewards `r_i`, one per sequence.
    pub fn from_rewards(language: Arc<FiniteLanguage>, rewards: Vec<f64>, alpha: f64) -> Result<Self, TextError> {
        check_alpha(alpha)?;
        language.check_rewards(&rewards)?;
        if let Some((i, r)) = rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
            return Err(TextError::InvalidLanguage(format!(
                "the reward of sequence {i} is {r}; rewards must be finite"
            )));
        }
        let log_tilted = language
            .log_probabilities
            .iter()
            .zip(&rewards)
            .map(|(lp, r)| lp + r / alpha)
            .collect();
        Ok(Self {
            language,
            rewards,
            log_tilted,
            alpha,
        })
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// `r_i` of every sequence.
    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    /// `V(y)` of one state.
    ///
    /// # Errors
    /// [`TextError::Inconsistent`] when no sequence agrees with `state`.
    pub fn log_value(&self, state: &[u32]) -> Result<f64, TextError> {
        if !state.contains(&self.language.mask_id) {
            // A clean sequence: V_0 = r / alpha exactly, without the rounding
            // of the ratio below.
            return self
                .language
                .index_of(state)
                .map(|i| self.rewards[i] / self.alpha)
                .ok_or_else(|| TextError::Inconsistent { state: state.to_vec() });
        }
        let numerator = self.language.log_sum_agreeing(state, &self.log_tilted);
        let denominator = self.language.log_sum_agreeing(state, &self.language.log_probabilities);
        if denominator == f64::NEG_INFINITY {
            return Err(TextError::Inconsistent { state: state.to_vec() });
        }
        Ok(numerator - denominator)
    }

    /// `ln E_p[exp(r / alpha)]`, the value of the all-mask root.
    pub fn log_normalizer(&self) -> f64 {
        log_sum_exp(&self.log_tilted)
    }

    /// Computes the aligned target `p*_i`.
    pub fn aligned_target(&self) -> Vec<f64> {
        let log_norm = self.log_normalizer();
        self.log_tilted.iter().map(|l| (l - log_norm).exp()).collect()
    }
}

impl Value for FiniteLanguageValue {
    type Elem = u32;

    fn log_values(&self, _t: usize, states: &[u32], out: &mut [f64]) -> ComponentResult {
        for (v, state) in out.iter_mut().zip(states.chunks_exact(self.language.seq_len())) {
            *v = self.log_value(state)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lcb_core::Lane;

    const MASK: u32 = 9;

    fn language() -> Arc<FiniteLanguage> {
        let sequences = vec![vec![1, 2, 3], vec![1, 2, 4], vec![5, 2, 3]];
        Arc::new(FiniteLanguage::new(&sequences, &[1.0, 2.0, 1.0], MASK).unwrap())
    }

    #[test]
    fn posterior_keeps_agreeing_sequences() {
        let language = language();
        let cumulative = language.posterior_cumulative(&[1, MASK, MASK]).unwrap();
        // Sequences 0 and 1 agree, with weights 1 and 2.
        assert!((cumulative[0] - 1.0 / 3.0).abs() < 1e-12);
        assert!((cumulative[1] - 1.0).abs() < 1e-12);
        assert!((cumulative[2] - 1.0).abs() < 1e-12);
        assert!(language.posterior_cumulative(&[7, MASK, MASK]).is_err());
    }

    #[test]
    fn value_is_log_posterior_mean_of_tilt() {
        let language = language();
        let value = FiniteLanguageValue::from_rewards(language.clone(), vec![0.0, 1.0, 2.0], 0.5).unwrap();
        let expected = ((1.0 + 2.0 * 2f64.exp()) / 3.0).ln();
        assert!((value.log_value(&[1, MASK, MASK]).unwrap() - expected).abs() < 1e-12);
        assert!((value.log_value(&[5, 2, 3]).unwrap() - 4.0).abs() < 1e-12, "V_0 = r / alpha");
        let root = value.log_value(&[MASK; 3]).unwrap();
        assert!((root - value.log_normalizer()).abs() < 1e-12);
    }

    #[test]
    fn proposals_keep_unmasked_tokens_and_reveal_scheduled_count() {
        let language = language();
        let schedule = RevealSchedule::single_block(3, 2).unwrap();
        let kernel = FiniteLanguageKernel::new(language.clone(), schedule).unwrap();
        let parents = vec![MASK, 2, 3];
        let n = 200;
        let mut rngs: Vec<Stream> = (0..n).map(|j| Stream::at(1, 0, 1, j, Lane::Kernel)).collect();
        let mut out = vec![0; 3 * n as usize];
        kernel.propose(1, &parents, &vec![0; n as usize], &mut rngs, &mut out).unwrap();
        let mut firsts = HashSet::new();
        for child in out.chunks_exact(3) {
            assert_eq!(&child[1..], &[2, 3]);
            firsts.insert(child[0]);
            assert!(child.iter().all(|&x| x != MASK), "transition 1 reveals the last masks");
            assert!(language.index_of(child).is_some(), "{child:?}");
        }
        assert_eq!(firsts.len(), 2, "both agreeing sequences are drawn");
    }
}
