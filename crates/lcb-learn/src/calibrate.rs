//! Fresh proposals and their values, calibration of `tau_t`, and the LCB step
//! that advances the aligned particles.

use lcb_core::{Guide, Kernel, Lane, LearnedEnvelope, Limits, SampleError, StepOutcome, Stream, Value, advance};
use rayon::prelude::*;

use crate::baseline::NetworkBaseline;
use crate::error::LearnError;

/// Requests handled by one worker in [`proposal_values`].
const CHUNK_REQUESTS: usize = 256;

/// Draws `proposals` children `x ~ p_t(.|y_i)` for every parent `y_i` and
/// returns `V^_{t-1}(x)`, particle-major: entry `i * proposals + j` belongs
/// to parent `i` and uses the stream `(seed, i, t, first_proposal + j)`.
///
/// # Shapes
/// `parents: [n, width]`, output `[n * proposals]`.
pub(crate) fn proposal_values(
    kernel: &dyn Kernel<Elem = f64>,
    value: &dyn Value<Elem = f64>,
    t: usize,
    parents: &[f64],
    proposals: usize,
    first_proposal: u64,
    seed: u64,
) -> Result<Vec<f64>, LearnError> {
    let width = kernel.width();
    let requests = parents.len() / width * proposals;
    let chunks: Vec<Vec<f64>> = (0..requests)
        .collect::<Vec<_>>()
        .par_chunks(CHUNK_REQUESTS)
        .map(|chunk| {
            let parent_of: Vec<usize> = chunk.iter().map(|r| r / proposals).collect();
            let mut rngs: Vec<Stream> = chunk
                .iter()
                .map(|r| {
                    let particle = (r / proposals) as u64;
                    let proposal = first_proposal + (r % proposals) as u64;
                    Stream::at(seed, particle, t, proposal, Lane::Kernel)
                })
                .collect();
            let mut children = vec![0.0; chunk.len() * width];
            kernel
                .propose(t, parents, &parent_of, &mut rngs, &mut children)
                .map_err(|source| SampleError::Component {
                    what: "kernel proposal",
                    step: t,
                    source,
                })?;
            let mut values = vec![0.0; chunk.len()];
            value
                .log_values(t - 1, &children, &mut values)
                .map_err(|source| SampleError::Component {
                    what: "value estimate",
                    step: t - 1,
                    source,
                })?;
            Ok(values)
        })
        .collect::<Result<_, LearnError>>()?;

    let values: Vec<f64> = chunks.concat();
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(SampleError::NonFinite {
            what: "value estimate V^_{t-1}(x)",
            step: Some(t),
            index,
            value,
        }
        .into());
    }
    Ok(values)
}

/// Source of the calibration batches of `tau_t`: kernel, value, baseline and streams.
pub(crate) struct CalibrationBatch<'a> {
    pub kernel: &'a dyn Kernel<Elem = f64>,
    pub value: &'a dyn Value<Elem = f64>,
    pub baseline: &'a NetworkBaseline,
    /// Fresh proposals per particle.
    pub proposals: usize,
    pub seed: u64,
}

impl CalibrationBatch<'_> {
    /// Computes the scores `s = V^_{t-1}(x) - b(y, t)` of a fresh batch of pairs.
    ///
    /// # Shapes
    /// `parents: [n, width]`, output `[n * proposals]`.
    pub(crate) fn scores(&self, t: usize, parents: &[f64]) -> Result<Vec<f64>, LearnError> {
        let values = proposal_values(self.kernel, self.value, t, parents, self.proposals, 0, self.seed)?;
        let baselines = self.baseline.evaluate(t, parents)?;
        Ok(values
            .iter()
            .enumerate()
            .map(|(k, v)| v - baselines[k / self.proposals])
            .collect())
    }

    /// Computes the sample threshold `tau_t = (ln(1/delta) + ln mean exp(lambda s)) / lambda + slack`
    /// on a fresh batch, in log units.
    pub(crate) fn tau(
        &self,
        t: usize,
        parents: &[f64],
        lambda: f64,
        delta: f64,
        slack: f64,
    ) -> Result<f64, LearnError> {
        let scores = self.scores(t, parents)?;
        Ok(lcb_core::chernoff::tau(&scores, lambda, delta)? + slack)
    }
}

/// Advances every particle through transition `t` by envelope rejection with
/// the LCB envelope `min(b(y, t) + tau_t, cap)`.
///
/// # Shapes
/// `parents: [n, width]`, `particles: [n]`; the outcome's children are `[n, width]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn advance_particles(
    kernel: &dyn Kernel<Elem = f64>,
    value: &dyn Value<Elem = f64>,
    baseline: &NetworkBaseline,
    t: usize,
    tau_t: f64,
    cap: Option<f64>,
    parents: &[f64],
    particles: &[u64],
    seed: u64,
    limits: &Limits,
) -> Result<StepOutcome<f64>, LearnError> {
    let mut tau = vec![0.0; kernel.steps()];
    tau[t - 1] = tau_t;
    let envelope = LearnedEnvelope::new(baseline, tau, cap)?;
    let guide = Guide {
        value,
        envelope: &envelope,
    };
    Ok(advance(kernel, Some(guide), t, parents, particles, seed, limits)?)
}
