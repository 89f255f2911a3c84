//! Monte Carlo soft values from base-model rollouts.
//!
//! `V^_t(x) = ln (1/M) sum_m exp(r(x_0^(m)) / alpha)`, where `x_0^(m)` are `M`
//! completions of `x` by the base kernel from step `t` down to 0. The
//! estimate is consistent as `M` grows, and biased low for finite `M`, by
//! about `Var(e^{r/alpha}) / (2 M e^{2 V_t})` (Jensen). It needs only
//! sampling access to the kernel, so it works for any model.

use crate::error::{ComponentResult, check_alpha};
use crate::logmath::log_mean_exp;
use crate::rng::{Lane, Stream};
use crate::traits::{Kernel, Reward, StateElem, Value};

/// A value estimate from `rollouts` base completions per state.
///
/// The completions of a state are keyed by a hash of the state's contents,
/// so the same state gets the same estimate in any batch, order or thread.
pub struct RolloutValue<'a, E> {
    kernel: &'a dyn Kernel<Elem = E>,
    reward: &'a dyn Reward<Elem = E>,
    alpha: f64,
    rollouts: usize,
    seed: u64,
}

impl<'a, E: StateElem + Into<f64>> RolloutValue<'a, E> {
    /// Builds the estimate; `rollouts` must be at least 1 and `alpha > 0`.
    pub fn new(
        kernel: &'a dyn Kernel<Elem = E>,
        reward: &'a dyn Reward<Elem = E>,
        alpha: f64,
        rollouts: usize,
        seed: u64,
    ) -> Result<Self, crate::SampleError> {
        check_alpha(alpha)?;
        if rollouts == 0 {
            return Err(crate::SampleError::InvalidParameter {
                name: "rollouts",
                value: 0.0,
                expected: "at least 1 completion per state, such as 16",
            });
        }
        Ok(Self {
            kernel,
            reward,
            alpha,
            rollouts,
            seed,
        })
    }

    /// FNV-1a over the bits of the state's elements.
    fn state_key(state: &[E]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &e in state {
            let v: f64 = e.into();
            for b in v.to_bits().to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

impl<E: StateElem + Into<f64>> Value for RolloutValue<'_, E> {
    type Elem = E;

    /// # Shapes
    /// `states: [n, width]`, `out: [n]`.
    fn log_values(&self, t: usize, states: &[E], out: &mut [f64]) -> ComponentResult {
        let width = self.kernel.width();
        let m = self.rollouts;
        let keys: Vec<u64> = states.chunks_exact(width).map(Self::state_key).collect();

        // Row i * M + j is completion j of state i.
        let mut current: Vec<E> = states
            .chunks_exact(width)
            .flat_map(|row| std::iter::repeat_n(row, m).flatten().copied())
            .collect();
        let rows = keys.len() * m;
        let parent_of: Vec<usize> = (0..rows).collect();
        let mut next = vec![E::default(); current.len()];
        for s in (1..=t).rev() {
            let mut rngs: Vec<Stream> = (0..rows)
                .map(|r| Stream::at(self.seed, keys[r / m], s, (r % m) as u64, Lane::Kernel))
                .collect();
            self.kernel.propose(s, &current, &parent_of, &mut rngs, &mut next)?;
            std::mem::swap(&mut current, &mut next);
        }

        let mut rewards = vec![0.0; rows];
        self.reward.rewards(&current, &mut rewards)?;
        for (v, group) in out.iter_mut().zip(rewards.chunks_exact(m)) {
            let scaled: Vec<f64> = group.iter().map(|r| r / self.alpha).collect();
            *v = log_mean_exp(&scaled);
        }
        Ok(())
    }
}
