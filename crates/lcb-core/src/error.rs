//! Errors of the sampling maths.

use thiserror::Error;

/// An error raised by a model component (kernel, value, baseline, reward)
/// implemented outside this crate, such as a crashed reward command.
pub type ComponentError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result of a model component call.
pub type ComponentResult = Result<(), ComponentError>;

/// Errors of samplers and of the Chernoff maths.
#[derive(Debug, Error)]
pub enum SampleError {
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },

    #[error("{what} is {value} at row {index}{}; every value must be finite, so check the model, reward and alpha that produced it", fmt_step(*.step))]
    NonFinite {
        what: &'static str,
        step: Option<usize>,
        index: usize,
        value: f64,
    },

    #[error("{what} is empty")]
    EmptyBatch { what: &'static str },

    #[error(
        "envelope rejection at step {step} stopped after {proposals} proposals for one prefix \
         without an acceptance (acceptance rate so far {acceptance_rate:.3e} over {total_proposals} proposals at this step); \
         the envelope is far above the value there, so raise the budget (--max-proposals on the command line, \
         Limits::max_proposals_per_prefix in the library), or use a tighter envelope such as a learned baseline"
    )]
    EnvelopeExhausted {
        step: usize,
        proposals: u64,
        total_proposals: u64,
        acceptance_rate: f64,
    },

    #[error(
        "whole-trajectory rejection accepted {accepted} of {requested} samples within its budget of \
         {budget} trajectories; the reward bound is far above typical rewards at this alpha, so \
         raise the budget or use a per-step sampler"
    )]
    TrajectoryBudgetExhausted {
        accepted: usize,
        requested: usize,
        budget: u64,
    },

    #[error("{method} needs a global reward bound, but the reward is unbounded above; use an LCB method instead")]
    NoGlobalBound { method: &'static str },

    #[error("shape mismatch in {what}: expected {expected}, got {actual}")]
    Shape {
        what: &'static str,
        expected: usize,
        actual: usize,
    },

    #[error("{what} failed at step {step}: {source}")]
    Component {
        what: &'static str,
        step: usize,
        #[source]
        source: ComponentError,
    },

    #[error("the {what} has no entry for step {step} (it covers steps 1..={steps})")]
    MissingStep {
        what: &'static str,
        step: usize,
        steps: usize,
    },
}

fn fmt_step(step: Option<usize>) -> String {
    step.map(|s| format!(" at step {s}")).unwrap_or_default()
}

/// Checks `alpha`, the KL temperature: it must be finite and positive.
pub fn check_alpha(alpha: f64) -> Result<(), SampleError> {
    if alpha.is_finite() && alpha > 0.0 {
        Ok(())
    } else {
        Err(SampleError::InvalidParameter {
            name: "alpha",
            value: alpha,
            expected: "a finite temperature > 0, such as 1 or 0.2",
        })
    }
}
