//! Samplers against the closed-form aligned targets of the mixture presets.

use lcb_bench::MethodName;
use lcb_models::gmm::GmmConfig;
use lcb_tests::{KS_LEVEL, assert_matches_target, run_exact};

#[test]
fn per_step_rs_matches_paper_target() {
    for alpha in [1.0, 0.2] {
        let setup = GmmConfig::paper().build(alpha).unwrap();
        let output = run_exact(&setup, MethodName::Rs, 3000, 1, 1);
        assert_matches_target(&output);
        assert_eq!(output.record.tv_clip_estimate, 0.0, "a global bound never clips");
    }
}

#[test]
fn trajectory_rs_matches_paper_target() {
    for alpha in [1.0, 0.2] {
        let setup = GmmConfig::paper().build(alpha).unwrap();
        assert_matches_target(&run_exact(&setup, MethodName::TrajectoryRs, 3000, 2, 1));
    }
}

#[test]
fn base_model_fails_the_same_check() {
    // Negative control: best-of-1 is the untilted model, whose reward mean
    // (about 0.001) is far below the target's at alpha = 0.2.
    let setup = GmmConfig::paper().build(0.2).unwrap();
    let output = run_exact(&setup, MethodName::Bon, 3000, 3, 1);
    let r = &output.record;
    assert!(r.ks_pvalue.unwrap() < KS_LEVEL, "KS p-value {:?}", r.ks_pvalue);
    assert!((r.reward_mean - r.exact_reward_mean.unwrap()).abs() > 4.0 * r.reward_stderr);
}

#[test]
fn analytic_lcb_matches_paper_target() {
    let setup = GmmConfig::paper().build(0.2).unwrap();
    let output = run_exact(&setup, MethodName::LcbAnalytic, 3000, 4, 1);
    assert_matches_target(&output);
    let rs = run_exact(&setup, MethodName::Rs, 500, 4, 1);
    assert!(
        output.record.proposals_per_sample < rs.record.proposals_per_sample,
        "LCB {} vs RS {} proposals per sample",
        output.record.proposals_per_sample,
        rs.record.proposals_per_sample
    );
}

#[test]
fn analytic_lcb_samples_unbounded_linear_reward() {
    // aniso-4d: 3 anisotropic components in 4 dimensions, r = w.x, so no
    // global bound exists and RS cannot run at all.
    for alpha in [1.0, 0.5] {
        let setup = GmmConfig::aniso_4d().build(alpha).unwrap();
        let output = run_exact(&setup, MethodName::LcbAnalytic, 3000, 5, 1);
        assert_matches_target(&output);
        // Coordinates beyond the first, against the target's own CDFs.
        for coordinate in 1..4 {
            let column: Vec<f64> = output.states.chunks_exact(4).map(|x| x[coordinate]).collect();
            let ks = lcb_core::stats::ks_one_sample(&column, |a| setup.target.coordinate_cdf(coordinate, a)).unwrap();
            assert!(ks.pvalue > KS_LEVEL, "alpha {alpha}, coordinate {coordinate}: {ks:?}");
        }
    }
}

#[test]
fn rs_needs_a_bounded_reward() {
    let setup = GmmConfig::aniso_4d().build(1.0).unwrap();
    let options = lcb_bench::GmmRunOptions {
        kernel: lcb_bench::KernelChoice::Exact,
        samples: 10,
        seed: 0,
        n: 1,
        delta: 0.1,
        limits: lcb_core::Limits::default(),
        max_trajectories: 1000,
        progress: &lcb_core::NoProgress,
    };
    let err = lcb_bench::run_gmm(&setup, MethodName::Rs, &options, None).unwrap_err();
    assert!(err.to_string().contains("unbounded"), "{err}");
}
