//! Envelope rejection for a batch of prefixes at one transition.
//!
//! For a prefix `y`, envelope `c(y)` and value `V^`, repeat
//! `x ~ p_t(.|y)`, `u ~ U(0,1)` until `ln u < min(0, V^_{t-1}(x) - c(y))`.
//! The accepted child has law proportional to `p_t(x|y) min(1, w(x))` with
//! `w = exp(V^_{t-1} - c)`; when `c(y) >= sup V^_{t-1}` this is exactly the
//! tilted kernel `p_t(x|y) exp(V^_{t-1}(x) - V^_t(y))`.
//!
//! Proposal `j` of particle `i` uses the streams keyed by `(seed, i, t, j)`,
//! so the accepted child is the first accepted `j` whatever the round sizes
//! or thread count.

use rayon::prelude::*;

use crate::error::SampleError;
use crate::logmath::log_add_exp;
use crate::rng::{Lane, Stream};
use crate::traits::{StateElem, Envelope, Kernel, Value};

/// Bounds on the work of envelope rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Proposals one prefix may use at one transition before the run stops
    /// with [`SampleError::EnvelopeExhausted`].
    pub max_proposals_per_prefix: u64,
    /// Largest number of proposals computed in one kernel call.
    pub max_round_rows: usize,
    /// Prefixes handled together by one worker thread.
    pub chunk_prefixes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_proposals_per_prefix: 10_000_000,
            max_round_rows: 16_384,
            chunk_prefixes: 64,
        }
    }
}

/// A value estimate paired with the envelope that guides rejection.
pub struct Guide<'a, E> {
    pub value: &'a dyn Value<Elem = E>,
    pub envelope: &'a dyn Envelope<Elem = E>,
}

impl<E> Clone for Guide<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Guide<'_, E> {}

/// Result of one transition for a batch of prefixes.
#[derive(Debug, Clone)]
pub struct StepOutcome<E> {
    /// Accepted children, `[prefixes, width]`.
    pub children: Vec<E>,
    /// Kernel proposals computed, including those drawn past an acceptance
    /// in the same round.
    pub computed: u64,
    /// Proposals counted up to each prefix's acceptance.
    pub sequential: u64,
    /// Clipping sums pooled over the step's proposals.
    clip: ClipSums,
    /// Number of prefixes.
    pub prefixes: usize,
}

impl<E> StepOutcome<E> {
    /// Accepted children per sequential proposal.
    pub fn acceptance_rate(&self) -> f64 {
        if self.sequential == 0 {
            1.0
        } else {
            self.prefixes as f64 / self.sequential as f64
        }
    }

    /// The clipping-TV estimate of the step, `sum (w_i - 1)_+ / sum w_i`
    /// pooled over every proposal of every prefix. A prefix with clip ratio
    /// `D/W` draws about `1/W` proposals until acceptance, so pooling weighs
    /// each prefix's `D/W` about equally: the estimate tracks the mean of
    /// `D/W` over prefixes, which bounds the step's TV contribution.
    pub fn tv_clip(&self) -> f64 {
        self.clip.ratio()
    }
}

/// Running sums for the clipping ratio, in log space:
/// `ln sum w_i` and `ln sum (w_i - 1)_+`.
#[derive(Debug, Clone, Copy)]
struct ClipSums {
    log_weight: f64,
    log_excess: f64,
}

impl ClipSums {
    const EMPTY: Self = Self {
        log_weight: f64::NEG_INFINITY,
        log_excess: f64::NEG_INFINITY,
    };

    fn add(&mut self, log_w: f64) {
        self.log_weight = log_add_exp(self.log_weight, log_w);
        if log_w > 0.0 {
            // ln(w - 1) = ln w + ln(1 - e^{-ln w})
            let log_excess = log_w + (-(-log_w).exp_m1()).ln();
            self.log_excess = log_add_exp(self.log_excess, log_excess);
        }
    }

    fn merge(&mut self, other: &Self) {
        self.log_weight = log_add_exp(self.log_weight, other.log_weight);
        self.log_excess = log_add_exp(self.log_excess, other.log_excess);
    }

    fn ratio(&self) -> f64 {
        if self.log_excess == f64::NEG_INFINITY {
            0.0
        } else {
            (self.log_excess - self.log_weight).exp()
        }
    }
}

/// Advances every prefix one transition `t` (drawing `x_{t-1}`).
///
/// With a guide, each prefix is advanced by envelope rejection; without one,
/// each takes the kernel's first proposal (the base model).
///
/// # Shapes
/// `parents: [n, width]`, `particles: [n]` (stream ids). The output's
/// `children` is `[n, width]`.
pub fn advance<E: StateElem>(
    kernel: &dyn Kernel<Elem = E>,
    guide: Option<Guide<'_, E>>,
    t: usize,
    parents: &[E],
    particles: &[u64],
    seed: u64,
    limits: &Limits,
) -> Result<StepOutcome<E>, SampleError> {
    let width = kernel.width();
    if parents.len() != particles.len() * width {
        return Err(SampleError::Shape {
            what: "prefix batch (rows x width)",
            expected: particles.len() * width,
            actual: parents.len(),
        });
    }
    let chunk = limits.chunk_prefixes.max(1);
    let outcomes: Vec<StepOutcome<E>> = parents
        .par_chunks(chunk * width.max(1))
        .zip(particles.par_chunks(chunk))
        .map(|(parents, particles)| match guide {
            Some(guide) => advance_chunk(kernel, guide, t, parents, particles, seed, limits),
            None => advance_base(kernel, t, parents, particles, seed),
        })
        .collect::<Result<_, _>>()?;

    let mut total = StepOutcome {
        children: Vec::with_capacity(parents.len()),
        computed: 0,
        sequential: 0,
        clip: ClipSums::EMPTY,
        prefixes: 0,
    };
    for outcome in outcomes {
        total.children.extend_from_slice(&outcome.children);
        total.computed += outcome.computed;
        total.sequential += outcome.sequential;
        total.clip.merge(&outcome.clip);
        total.prefixes += outcome.prefixes;
    }
    Ok(total)
}

fn advance_base<E: StateElem>(
    kernel: &dyn Kernel<Elem = E>,
    t: usize,
    parents: &[E],
    particles: &[u64],
    seed: u64,
) -> Result<StepOutcome<E>, SampleError> {
    let n = particles.len();
    let parent_of: Vec<usize> = (0..n).collect();
    let mut rngs: Vec<Stream> = particles
        .iter()
        .map(|&p| Stream::at(seed, p, t, 0, Lane::Kernel))
        .collect();
    let mut children = vec![E::default(); parents.len()];
    kernel
        .propose(t, parents, &parent_of, &mut rngs, &mut children)
        .map_err(|source| SampleError::Component {
            what: "kernel proposal",
            step: t,
            source,
        })?;
    Ok(StepOutcome {
        children,
        computed: n as u64,
        sequential: n as u64,
        clip: ClipSums::EMPTY,
        prefixes: n,
    })
}

fn advance_chunk<E: StateElem>(
    kernel: &dyn Kernel<Elem = E>,
    guide: Guide<'_, E>,
    t: usize,
    parents: &[E],
    particles: &[u64],
    seed: u64,
    limits: &Limits,
) -> Result<StepOutcome<E>, SampleError> {
    let width = kernel.width();
    let n = particles.len();

    let mut envelope = vec![0.0; n];
    guide
        .envelope
        .log_envelopes(t, parents, &mut envelope)
        .map_err(|source| SampleError::Component {
            what: "envelope",
            step: t,
            source,
        })?;
    if let Some((index, &value)) = envelope.iter().enumerate().find(|(_, c)| !c.is_finite()) {
        return Err(SampleError::NonFinite {
            what: "envelope c(y)",
            step: Some(t),
            index,
            value,
        });
    }

    let mut children = vec![E::default(); n * width];
    let mut next_proposal = vec![0u64; n];
    let mut clip = ClipSums::EMPTY;
    let mut pending: Vec<usize> = (0..n).collect();
    let (mut computed, mut sequential, mut accepted) = (0u64, 0u64, 0u64);

    let mut parent_of = Vec::new();
    let mut rngs = Vec::new();
    let mut proposals = Vec::new();
    let mut values = Vec::new();

    while !pending.is_empty() {
        // Size the round so that each pending prefix expects about one and a
        // half acceptances at the running acceptance rate.
        let rate = (accepted as f64 + 1.0) / (computed as f64 + 1.0);
        let room = (limits.max_round_rows / pending.len()).max(1);
        // Stay within the per-prefix budget: no prefix draws past it.
        let used = pending.iter().map(|&i| next_proposal[i]).max().unwrap_or(0);
        let room = room.min(limits.max_proposals_per_prefix.saturating_sub(used).max(1) as usize);
        let per_prefix = ((1.5 / rate).ceil() as usize).clamp(1, room);

        parent_of.clear();
        rngs.clear();
        for &i in &pending {
            for k in 0..per_prefix as u64 {
                parent_of.push(i);
                rngs.push(Stream::at(seed, particles[i], t, next_proposal[i] + k, Lane::Kernel));
            }
        }
        let rows = parent_of.len();
        proposals.clear();
        proposals.resize(rows * width, E::default());
        values.clear();
        values.resize(rows, 0.0);
        kernel
            .propose(t, parents, &parent_of, &mut rngs, &mut proposals)
            .map_err(|source| SampleError::Component {
                what: "kernel proposal",
                step: t,
                source,
            })?;
        guide
            .value
            .log_values(t - 1, &proposals, &mut values)
            .map_err(|source| SampleError::Component {
                what: "value estimate",
                step: t - 1,
                source,
            })?;

        for (slot, &i) in pending.iter().enumerate() {
            for k in 0..per_prefix {
                let row = slot * per_prefix + k;
                let value = values[row];
                if value.is_nan() || value == f64::INFINITY {
                    return Err(SampleError::NonFinite {
                        what: "value estimate V^_{t-1}(x)",
                        step: Some(t),
                        index: row,
                        value,
                    });
                }
                let log_w = value - envelope[i];
                clip.add(log_w);
                if next_proposal[i] != u64::MAX {
                    let j = next_proposal[i] + k as u64;
                    let u = Stream::at(seed, particles[i], t, j, Lane::Accept).uniform_open();
                    if u.ln() < log_w.min(0.0) {
                        children[i * width..(i + 1) * width]
                            .copy_from_slice(&proposals[row * width..(row + 1) * width]);
                        sequential += j + 1;
                        accepted += 1;
                        // Marks the prefix done for the rest of this round.
                        next_proposal[i] = u64::MAX;
                    }
                }
            }
        }
        computed += rows as u64;

        let mut still_pending = Vec::with_capacity(pending.len());
        for &i in &pending {
            if next_proposal[i] == u64::MAX {
                continue;
            }
            next_proposal[i] += per_prefix as u64;
            if next_proposal[i] >= limits.max_proposals_per_prefix {
                return Err(SampleError::EnvelopeExhausted {
                    step: t,
                    proposals: next_proposal[i],
                    total_proposals: computed,
                    acceptance_rate: accepted as f64 / computed as f64,
                });
            }
            still_pending.push(i);
        }
        pending = still_pending;
    }

    Ok(StepOutcome {
        children,
        computed,
        sequential,
        clip,
        prefixes: n,
    })
}
