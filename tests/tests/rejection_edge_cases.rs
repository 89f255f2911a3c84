//! Envelope rejection on a one-step Gaussian model where everything is
//! known in closed form: the law of accepted children, the clipped mass,
//! and the errors for bad values and hopeless envelopes.

use lcb_core::special::normal_cdf;
use lcb_core::stats::ks_one_sample;
use lcb_core::{
    ComponentResult, GlobalBound, Guide, Kernel, Limits, Method, NoProgress, Problem, Reward, RunOptions,
    SampleError, Stream, Value, sample,
};
use rand_distr::{Distribution, StandardNormal};

/// One transition from the root 0 to `x_0 ~ N(0, 1)`.
struct OneStep;

impl Kernel for OneStep {
    type Elem = f64;
    fn width(&self) -> usize {
        1
    }
    fn steps(&self) -> usize {
        1
    }
    fn root(&self, out: &mut [f64]) {
        out.fill(0.0);
    }
    fn propose(&self, _t: usize, _p: &[f64], _of: &[usize], rngs: &mut [Stream], out: &mut [f64]) -> ComponentResult {
        for (x, rng) in out.iter_mut().zip(rngs) {
            *x = StandardNormal.sample(rng);
        }
        Ok(())
    }
}

/// `V_0(x) = beta x`, `V_1 = beta^2 / 2`, or a constant bad value.
struct Linear {
    beta: f64,
    bad: Option<f64>,
}

impl Value for Linear {
    type Elem = f64;
    fn log_values(&self, t: usize, states: &[f64], out: &mut [f64]) -> ComponentResult {
        for (v, x) in out.iter_mut().zip(states) {
            *v = match (self.bad, t) {
                (Some(bad), _) => bad,
                (None, 0) => self.beta * x,
                (None, _) => self.beta * self.beta / 2.0,
            };
        }
        Ok(())
    }
}

struct Identity;

impl Reward for Identity {
    type Elem = f64;
    fn rewards(&self, states: &[f64], out: &mut [f64]) -> ComponentResult {
        out.copy_from_slice(states);
        Ok(())
    }
    fn upper_bound(&self) -> Option<f64> {
        None
    }
}

fn run(value: &Linear, envelope: f64, samples: usize, limits: Limits) -> Result<lcb_core::SampleOutput<f64>, SampleError> {
    let problem = Problem::new(&OneStep, &Identity, 1.0)?;
    let bound = GlobalBound::new(envelope)?;
    let guide = Guide { value, envelope: &bound };
    let options = RunOptions {
        samples,
        seed: 17,
        limits,
        progress: &NoProgress,
    };
    sample("clipped", &problem, &Method::Stepwise(guide), &options)
}

#[test]
fn clipped_law_and_clip_estimate_match_closed_form() {
    // With w = exp(x - c) and c = 0.5 the envelope clips every x > c. Then
    // W = E w = e^{1/2 - c} and D = E (w - 1)_+ = e^{1/2 - c} Phi(1 - c) - Phi(-c),
    // so D / W = Phi(0.5) - Phi(-0.5) = 0.3829.
    let c = 0.5;
    let output = run(&Linear { beta: 1.0, bad: None }, c, 20_000, Limits::default()).unwrap();
    let expected = normal_cdf(1.0 - c) - (c - 0.5f64).exp() * normal_cdf(-c);
    // About 40k pooled proposals; the ratio estimator's standard deviation
    // is below 0.005 here, so 0.02 is four of them.
    let estimate = output.record.tv_clip_estimate;
    assert!((estimate - expected).abs() < 0.02, "estimate {estimate} vs {expected}");

    // Accepted x has density ~ phi(x) min(1, e^{x - c}):
    // unnormalised CDF e^{1/2 - c} Phi(min(a, c) - 1) + (Phi(a) - Phi(c))_+.
    let below = (0.5 - c).exp();
    let total = below * normal_cdf(c - 1.0) + 1.0 - normal_cdf(c);
    let cdf = |a: f64| (below * normal_cdf(a.min(c) - 1.0) + (normal_cdf(a) - normal_cdf(c)).max(0.0)) / total;
    let ks = ks_one_sample(&output.states, cdf).unwrap();
    assert!(ks.pvalue > lcb_tests::KS_LEVEL, "{ks:?}");
}

#[test]
fn envelope_above_values_reports_no_clipping() {
    // beta = -1 and c = 10: w = exp(-x - 10) exceeds 1 only for x < -10,
    // which the draws of this run never reach.
    let output = run(&Linear { beta: -1.0, bad: None }, 10.0, 20, Limits::default()).unwrap();
    assert_eq!(output.record.tv_clip_estimate, 0.0);
    let output = run(&Linear { beta: 0.0, bad: None }, 0.0, 2000, Limits::default()).unwrap();
    assert_eq!(output.record.tv_clip_estimate, 0.0);
}

#[test]
fn nan_value_is_named() {
    let err = run(&Linear { beta: 1.0, bad: Some(f64::NAN) }, 1.0, 10, Limits::default()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("NaN"), "{message}");
    assert!(message.contains("value estimate"), "{message}");
    assert!(message.contains("step 1"), "{message}");
}

#[test]
fn infinite_value_is_named() {
    let err = run(&Linear { beta: 1.0, bad: Some(f64::INFINITY) }, 1.0, 10, Limits::default()).unwrap_err();
    assert!(err.to_string().contains("inf"), "{err}");
}

#[test]
fn infinite_envelope_is_rejected() {
    let err = run(&Linear { beta: 1.0, bad: None }, f64::INFINITY, 10, Limits::default()).unwrap_err();
    assert!(err.to_string().contains("global bound"), "{err}");
}

#[test]
fn hopeless_envelope_stops_within_budget() {
    // Acceptance probability e^{-60}: the budget of 5000 proposals per
    // prefix ends the run with the step and the acceptance rate.
    let limits = Limits {
        max_proposals_per_prefix: 5000,
        ..Limits::default()
    };
    let err = run(&Linear { beta: 0.0, bad: None }, 60.0, 4, limits).unwrap_err();
    match &err {
        SampleError::EnvelopeExhausted {
            step, acceptance_rate, ..
        } => {
            assert_eq!(*step, 1);
            assert_eq!(*acceptance_rate, 0.0);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("step 1"), "{err}");
}

#[test]
fn invalid_alpha_is_rejected() {
    for alpha in [0.0, -0.5, f64::INFINITY] {
        let err = Problem::new(&OneStep, &Identity, alpha).err().unwrap();
        assert!(err.to_string().contains("alpha"), "{err}");
    }
}
