//! Batch-first interfaces of the model components a sampler composes.
//!
//! States are rows of a flat slice: a batch of `n` states of width `w` is a
//! `[n, w]` row-major slice of the kernel's element type (`f64` coordinates
//! for continuous diffusions, token ids for masked diffusion). The chain runs
//! transitions `t = T, ..., 1`, each drawing `x_{t-1}` from `p_t(.|x_t)`,
//! starting at a fixed root state `x_T` (for a continuous diffusion the first
//! transition draws from the prior).

use crate::error::ComponentResult;
use crate::rng::Stream;

/// Element type of a state row: `f64` coordinates, `u32` token ids.
pub trait StateElem: Copy + Default + Send + Sync + std::fmt::Debug + 'static {}

impl<T: Copy + Default + Send + Sync + std::fmt::Debug + 'static> StateElem for T {}

/// A reverse kernel `p_t(x_{t-1} | x_t)`, sampled in batches.
pub trait Kernel: Sync {
    /// Element type of a state row.
    type Elem: StateElem;

    /// Width of one state row.
    fn width(&self) -> usize;

    /// Number of transitions `T`.
    fn steps(&self) -> usize;

    /// Writes the root state `x_T` (`[width]`).
    fn root(&self, out: &mut [Self::Elem]);

    /// Proposes one child `x_{t-1} ~ p_t(.|parent)` per request.
    ///
    /// # Shapes
    /// `parents: [n_parents, width]`, `parent_of: [n_requests]` (row of each
    /// request's parent), `rngs: [n_requests]` (the stream of each request,
    /// which must be the only randomness used for it), `out: [n_requests, width]`.
    ///
    /// Many requests may share a parent, so a neural kernel can run one
    /// forward pass per distinct parent.
    fn propose(
        &self,
        t: usize,
        parents: &[Self::Elem],
        parent_of: &[usize],
        rngs: &mut [Stream],
        out: &mut [Self::Elem],
    ) -> ComponentResult;
}

/// A soft value estimate `V^_t(x)` in log units (`V_0 = r / alpha`).
pub trait Value: Sync {
    type Elem;

    /// Writes `V^_t` of each state.
    ///
    /// # Shapes
    /// `states: [n, width]`, `out: [n]`.
    fn log_values(&self, t: usize, states: &[Self::Elem], out: &mut [f64]) -> ComponentResult;
}

/// A learned or analytic baseline `b(y, t)` in log units.
pub trait Baseline: Sync {
    type Elem;

    /// Writes `b(y, t)` for each prefix `y` at transition `t`.
    ///
    /// # Shapes
    /// `prefixes: [n, width]`, `out: [n]`.
    fn baselines(&self, t: usize, prefixes: &[Self::Elem], out: &mut [f64]) -> ComponentResult;
}

/// A reward `r(x_0)` in reward units.
pub trait Reward: Sync {
    type Elem;

    /// Writes `r(x_0)` for each final state.
    ///
    /// # Shapes
    /// `states: [n, width]`, `out: [n]`.
    fn rewards(&self, states: &[Self::Elem], out: &mut [f64]) -> ComponentResult;

    /// `r_max`, an upper bound on the reward, if one exists.
    fn upper_bound(&self) -> Option<f64>;
}

/// An envelope `c(y)` in log units for envelope rejection at transition `t`.
pub trait Envelope: Sync {
    type Elem;

    /// Writes `c(y)` for each prefix.
    ///
    /// # Shapes
    /// `prefixes: [n, width]`, `out: [n]`.
    fn log_envelopes(&self, t: usize, prefixes: &[Self::Elem], out: &mut [f64]) -> ComponentResult;
}

/// Progress of a long run, reported once per finished transition.
pub trait Progress: Sync {
    /// Called after transition `t` finished; `done` of `total` transitions
    /// of this run are complete.
    fn advance(&self, done: usize, total: usize);
}

/// A [`Progress`] that ignores every report.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _done: usize, _total: usize) {}
}
