//! How many positions each reverse step of a masked diffusion unmasks.
//!
//! A sequence of `len` positions starts fully masked and is filled in `T`
//! transitions `t = T, ..., 1`. With semi-autoregressive blocks of
//! `block_len` positions, the blocks are filled left to right, each in
//! `T / blocks` transitions. Inside a block, its `block_len` positions are
//! split as evenly as possible, and the earlier transitions take the
//! remainder (as in LLaDA's `get_num_transfer_tokens`).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::text::error::TextError;

/// The unmasking plan of one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    /// Number of masked positions the transition commits.
    pub count: usize,
    /// Positions of the block the transition may commit in.
    pub block: Range<usize>,
}

/// The number of tokens committed at every transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealSchedule {
    len: usize,
    steps: usize,
    block_len: usize,
}

impl RevealSchedule {
    /// Creates a schedule over `len` positions in `steps` transitions and blocks of
    /// `block_len` positions.
    ///
    /// # Errors
    /// `len`, `steps` or `block_len` is zero, `block_len` does not divide
    /// `len`, the number of blocks does not divide `steps`, or a block would
    /// get more transitions than it has positions (a transition that commits
    /// nothing).
    pub fn new(len: usize, steps: usize, block_len: usize) -> Result<Self, TextError> {
        let invalid = |message: String| Err(TextError::InvalidSchedule(message));
        if len == 0 || steps == 0 || block_len == 0 {
            return invalid(format!(
                "sequence length {len}, steps {steps} and block length {block_len} must all be >= 1"
            ));
        }
        if !len.is_multiple_of(block_len) {
            return invalid(format!(
                "block length {block_len} does not divide the sequence length {len}"
            ));
        }
        let blocks = len / block_len;
        if !steps.is_multiple_of(blocks) {
            return invalid(format!(
                "{steps} steps cannot be split evenly over {blocks} blocks of {block_len} positions; \
                 use a multiple of {blocks} steps"
            ));
        }
        if steps / blocks > block_len {
            return invalid(format!(
                "{} steps per block exceed the block length {block_len}, so some steps would commit nothing; \
                 use at most {} steps",
                steps / blocks,
                blocks * block_len
            ));
        }
        Ok(Self { len, steps, block_len })
    }

    /// Creates a schedule without blocks: all `len` positions in one block.
    pub fn single_block(len: usize, steps: usize) -> Result<Self, TextError> {
        Self::new(len, steps, len.max(1))
    }

    /// Sequence length.
    pub fn seq_len(&self) -> usize {
        self.len
    }

    /// Number of transitions `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn block_len(&self) -> usize {
        self.block_len
    }

    pub fn blocks(&self) -> usize {
        self.len / self.block_len
    }

    /// Returns the plan of transition `t` in `1..=T`.
    ///
    /// # Panics
    /// If `t` is outside `1..=T`.
    pub fn at(&self, t: usize) -> StepPlan {
        assert!(
            (1..=self.steps).contains(&t),
            "transition {t} is outside 1..={}",
            self.steps
        );
        let index = self.steps - t;
        let per_block = self.steps / self.blocks();
        let block = index / per_block;
        let within = index % per_block;
        let count = self.block_len / per_block + usize::from(within < self.block_len % per_block);
        StepPlan {
            count,
            block: block * self.block_len..(block + 1) * self.block_len,
        }
    }

    /// Number of masked positions of `x_t` on the forward marginal: the
    /// positions that transitions `t, ..., 1` still have to commit
    /// (`len` at `t = T`, `0` at `t = 0`).
    pub fn masked_at(&self, t: usize) -> usize {
        (1..=t.min(self.steps)).map(|s| self.at(s).count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_split_evenly_with_remainder_first() {
        let schedule = RevealSchedule::single_block(10, 4).unwrap();
        let counts: Vec<usize> = (1..=4).rev().map(|t| schedule.at(t).count).collect();
        assert_eq!(counts, vec![3, 3, 2, 2]);
        assert_eq!(schedule.masked_at(4), 10);
        assert_eq!(schedule.masked_at(2), 4);
        assert_eq!(schedule.masked_at(0), 0);
    }

    #[test]
    fn blocks_are_filled_left_to_right() {
        let schedule = RevealSchedule::new(8, 4, 4).unwrap();
        let plans: Vec<StepPlan> = (1..=4).rev().map(|t| schedule.at(t)).collect();
        assert_eq!(plans[0], StepPlan { count: 2, block: 0..4 });
        assert_eq!(plans[1], StepPlan { count: 2, block: 0..4 });
        assert_eq!(plans[2], StepPlan { count: 2, block: 4..8 });
        assert_eq!(plans[3], StepPlan { count: 2, block: 4..8 });
    }

    #[test]
    fn invalid_layouts_are_rejected() {
        assert!(RevealSchedule::new(8, 4, 3).is_err(), "block length must divide the length");
        assert!(RevealSchedule::new(8, 3, 4).is_err(), "blocks must divide the steps");
        assert!(RevealSchedule::new(8, 10, 8).is_err(), "a step must commit a token");
        assert!(RevealSchedule::new(0, 1, 1).is_err());
    }
}
