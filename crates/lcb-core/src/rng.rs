//! Counter-based random streams keyed by `(seed, particle, step, proposal, lane)`.
//!
//! Every random draw of a sampler comes from a stream whose key names where
//! it is used, so a run's output does not depend on thread count, batch size
//! or the order in which proposals are computed.

use std::convert::Infallible;

use rand::TryRng;

/// Consumer of randomness that a stream feeds, kept apart so that the kernel's draws
/// and the acceptance test of the same proposal never share numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Lane {
    /// Draws made by the reverse kernel while proposing a child.
    Kernel = 1,
    /// The uniform of the acceptance test.
    Accept = 2,
    /// Draws that select among finished candidates (soft best-of-N, resampling).
    Select = 3,
}

/// Key of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    pub seed: u64,
    pub particle: u64,
    pub step: u64,
    pub proposal: u64,
    pub lane: Lane,
}

/// SplitMix64's output function: a bijective mixer with full avalanche.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// A counter-based generator: the `n`-th output is `mix64(origin + n * gamma)`
/// (SplitMix64), with `origin` derived from the key by chained mixing.
///
/// Implements `rand`'s `TryRng`, so every `rand_distr` distribution samples
/// from it.
#[derive(Debug, Clone)]
pub struct Stream {
    state: u64,
}

impl Stream {
    /// Opens the stream named by `key`.
    #[inline]
    pub fn new(key: StreamKey) -> Self {
        let mut h = mix64(key.seed ^ 0x6c62_272e_07bb_0142);
        h = mix64(h ^ key.particle.wrapping_mul(GOLDEN_GAMMA));
        h = mix64(h ^ key.step.wrapping_add(0x2545_f491_4f6c_dd1d));
        h = mix64(h ^ key.proposal.wrapping_mul(0xd6e8_feb8_6659_fd93));
        h = mix64(h ^ (key.lane as u64).wrapping_mul(0xa076_1d64_78bd_642f));
        Self { state: h }
    }

    /// Opens the stream of one proposal: shorthand for [`Stream::new`].
    #[inline]
    pub fn at(seed: u64, particle: u64, step: usize, proposal: u64, lane: Lane) -> Self {
        Self::new(StreamKey {
            seed,
            particle,
            step: step as u64,
            proposal,
            lane,
        })
    }

    #[inline]
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Draws a uniform number in the open interval `(0, 1)`, safe to take a log of.
    #[inline]
    pub fn uniform_open(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

impl TryRng for Stream {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next() >> 32) as u32)
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_numbers() {
        let mut a = Stream::at(7, 3, 5, 11, Lane::Kernel);
        let mut b = Stream::at(7, 3, 5, 11, Lane::Kernel);
        for _ in 0..16 {
            assert_eq!(a.uniform_open(), b.uniform_open());
        }
    }

    #[test]
    fn neighbouring_keys_differ() {
        let first = Stream::at(7, 3, 5, 11, Lane::Kernel).uniform_open();
        for other in [
            Stream::at(8, 3, 5, 11, Lane::Kernel),
            Stream::at(7, 4, 5, 11, Lane::Kernel),
            Stream::at(7, 3, 6, 11, Lane::Kernel),
            Stream::at(7, 3, 5, 12, Lane::Kernel),
            Stream::at(7, 3, 5, 11, Lane::Accept),
        ] {
            let mut other = other;
            assert_ne!(first, other.uniform_open());
        }
    }

    #[test]
    fn uniform_mean_and_variance() {
        // Over 200k streams (one draw each), the mean of U(0,1) has standard
        // error sqrt(1/12 / n) = 6.5e-4; 5 standard errors is the tolerance.
        let n = 200_000u64;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for i in 0..n {
            let u = Stream::at(1, i, 0, 0, Lane::Accept).uniform_open();
            assert!(u > 0.0);
            assert!(u < 1.0);
            sum += u;
            sum_sq += u * u;
        }
        let mean = sum / n as f64;
        let var = sum_sq / n as f64 - mean * mean;
        assert!((mean - 0.5).abs() < 5.0 * (1.0f64 / 12.0 / n as f64).sqrt());
        assert!((var - 1.0 / 12.0).abs() < 2e-3);
    }
}
