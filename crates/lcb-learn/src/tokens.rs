//! Baselines over token sequences through a one-hot view of the states.
//!
//! A token state `[len]` with ids in `0..classes` (the mask id included) is
//! seen as the `f64` row `[len * classes]` of its one-hot codes. The
//! adapters below present a token kernel and value in that view, so that
//! [`crate::train`] fits a baseline over token sequences with the same
//! objective and pipeline as for continuous states, and [`TokenBaseline`]
//! evaluates the trained network on token prefixes.

use lcb_core::{Baseline, ComponentError, ComponentResult, Kernel, Stream, Value};

use crate::baseline::NetworkBaseline;

/// The one-hot code of token rows of length `len` over `classes` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneHot {
    pub len: usize,
    pub classes: usize,
}

impl OneHot {
    /// Width of an encoded row, `len * classes`.
    pub fn width(&self) -> usize {
        self.len * self.classes
    }

    /// Encodes token rows (`[n, len]`) as one-hot rows (`[n, len * classes]`).
    pub fn encode(&self, tokens: &[u32]) -> Result<Vec<f64>, ComponentError> {
        let mut out = vec![0.0; tokens.len() * self.classes];
        for (i, &token) in tokens.iter().enumerate() {
            let token = token as usize;
            if token >= self.classes {
                return Err(format!(
                    "token id {token} at position {i} is outside the one-hot code's {} classes; \
                     set classes to the vocabulary size including the mask id",
                    self.classes
                )
                .into());
            }
            out[i * self.classes + token] = 1.0;
        }
        Ok(out)
    }

    /// Decodes one-hot rows back to token ids (the largest entry per position).
    pub fn decode(&self, rows: &[f64]) -> Vec<u32> {
        rows.chunks_exact(self.classes)
            .map(|code| {
                code.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(k, _)| k as u32)
            })
            .collect()
    }
}

/// A token kernel seen through the one-hot code.
pub struct OneHotKernel<'a> {
    inner: &'a dyn Kernel<Elem = u32>,
    code: OneHot,
    root: Vec<f64>,
}

impl<'a> OneHotKernel<'a> {
    /// Wraps `inner`, checking that its rows have `code.len` tokens and
    /// that its root state fits the code.
    pub fn new(inner: &'a dyn Kernel<Elem = u32>, code: OneHot) -> Result<Self, ComponentError> {
        if inner.width() != code.len {
            return Err(format!(
                "the kernel's rows have {} tokens but the one-hot code expects {}",
                inner.width(),
                code.len
            )
            .into());
        }
        let mut tokens = vec![0u32; code.len];
        inner.root(&mut tokens);
        let root = code.encode(&tokens)?;
        Ok(Self { inner, code, root })
    }
}

impl Kernel for OneHotKernel<'_> {
    type Elem = f64;

    fn width(&self) -> usize {
        self.code.width()
    }

    fn steps(&self) -> usize {
        self.inner.steps()
    }

    fn root(&self, out: &mut [f64]) {
        out.copy_from_slice(&self.root);
    }

    fn propose(
        &self,
        t: usize,
        parents: &[f64],
        parent_of: &[usize],
        rngs: &mut [Stream],
        out: &mut [f64],
    ) -> ComponentResult {
        let parents = self.code.decode(parents);
        let mut children = vec![0u32; parent_of.len() * self.code.len];
        self.inner.propose(t, &parents, parent_of, rngs, &mut children)?;
        out.copy_from_slice(&self.code.encode(&children)?);
        Ok(())
    }
}

/// A token value seen through the one-hot code.
pub struct OneHotValue<'a> {
    pub inner: &'a dyn Value<Elem = u32>,
    pub code: OneHot,
}

impl Value for OneHotValue<'_> {
    type Elem = f64;

    fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
        self.inner.log_values(t, &self.code.decode(states), out)
    }
}

/// A baseline network trained on one-hot rows, evaluated on token prefixes.
pub struct TokenBaseline<'a> {
    pub network: &'a NetworkBaseline,
    pub code: OneHot,
}

impl Baseline for TokenBaseline<'_> {
    type Elem = u32;

    fn baselines(&self, t: usize, prefixes: &[u32], out: &mut [f64]) -> ComponentResult {
        self.network.baselines(t, &self.code.encode(prefixes)?, out)
    }
}

/// A value network trained on one-hot rows, evaluated on token states:
/// `v_phi` for `t >= 1`, the exact `terminal` value at `t = 0`, capped
/// above by `upper` (such as `r_max / alpha`).
pub struct TokenValue<'a> {
    pub network: &'a NetworkBaseline,
    pub code: OneHot,
    pub terminal: &'a dyn Value<Elem = u32>,
    pub upper: Option<f64>,
}

impl Value for TokenValue<'_> {
    type Elem = u32;

    fn log_values(&self, t: usize, states: &[u32], out: &mut [f64]) -> ComponentResult {
        if t == 0 {
            return self.terminal.log_values(0, states, out);
        }
        crate::value::write_capped(self.network, t, &self.code.encode(states)?, self.upper, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_round_trip() {
        let code = OneHot { len: 3, classes: 4 };
        let tokens = [3, 0, 2, 1, 1, 3];
        let rows = code.encode(&tokens).unwrap();
        assert_eq!(rows.len(), 2 * code.width());
        assert_eq!(rows.iter().sum::<f64>(), 6.0);
        assert_eq!(code.decode(&rows), tokens);
    }

    #[test]
    fn out_of_range_token_is_named() {
        let code = OneHot { len: 2, classes: 3 };
        let err = code.encode(&[0, 7]).unwrap_err();
        assert!(err.to_string().contains("token id 7"), "{err}");
    }
}
