//! Shared helpers of the end-to-end tests.

use lcb_bench::{GmmRunOptions, KernelChoice, MethodName, run_gmm};
use lcb_core::{Limits, NoProgress, SampleOutput};
use lcb_models::gmm::GmmSetup;

/// KS p-values below this fail a test. The seeds are fixed, so each test is
/// deterministic. The level is the false-alarm probability of the check
/// when the seed was chosen.
pub const KS_LEVEL: f64 = 1e-3;

/// Runs `method` on the exact kernel with default limits.
pub fn run_exact(setup: &GmmSetup, method: MethodName, samples: usize, seed: u64, n: usize) -> SampleOutput<f64> {
    let options = GmmRunOptions {
        kernel: KernelChoice::Exact,
        samples,
        seed,
        n,
        delta: setup.delta,
        limits: Limits::default(),
        max_trajectories: 100_000_000,
        progress: &NoProgress,
    };
    run_gmm(setup, method, &options, None).expect("run succeeds")
}

/// Asserts that a run matches the exact target: KS of the first coordinate
/// above [`KS_LEVEL`] and the reward mean within 4 standard errors of the
/// exact mean.
pub fn assert_matches_target(output: &SampleOutput<f64>) {
    let r = &output.record;
    let p = r.ks_pvalue.expect("exact target known");
    assert!(p > KS_LEVEL, "{}: KS p-value {p} (D = {:?})", r.method, r.ks_statistic);
    let exact = r.exact_reward_mean.expect("exact target known");
    assert!(
        (r.reward_mean - exact).abs() <= 4.0 * r.reward_stderr,
        "{}: reward mean {} +- {} vs exact {exact}",
        r.method,
        r.reward_mean,
        r.reward_stderr
    );
}
