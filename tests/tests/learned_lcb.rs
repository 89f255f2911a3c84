//! Learned LCB on the paper preset against the exact aligned target.

use lcb_bench::learned::train_gmm;
use lcb_bench::{GmmRunOptions, KernelChoice, LearnedLcb, MethodName, run_gmm};
use lcb_core::{Limits, NoProgress};
use lcb_learn::TrainConfig;
use lcb_models::gmm::GmmConfig;
use lcb_tests::{assert_matches_target, run_exact};

#[test]
fn learned_lcb_matches_paper_target_with_fewer_proposals() {
    // alpha = 0.2, delta = 0.1 on the exact-posterior kernel, with the
    // default training settings on the flex backend.
    let setup = GmmConfig::paper().build(0.2).unwrap();
    let trained = train_gmm(&setup, KernelChoice::Exact, &TrainConfig::default(), &NoProgress).unwrap();
    let learned = LearnedLcb {
        baseline: &trained.network,
        tau: trained.tau.clone(),
    };
    let options = GmmRunOptions {
        kernel: KernelChoice::Exact,
        samples: 3000,
        seed: 11,
        n: 1,
        delta: setup.delta,
        limits: Limits::default(),
        max_trajectories: 0,
        progress: &NoProgress,
    };
    let lcb = run_gmm(&setup, MethodName::Lcb, &options, Some(&learned)).unwrap();
    assert_matches_target(&lcb);

    let rs = run_exact(&setup, MethodName::Rs, 3000, 11, 1);
    assert!(
        lcb.record.computed_proposals < rs.record.computed_proposals,
        "LCB computed {} proposals, RS {}",
        lcb.record.computed_proposals,
        rs.record.computed_proposals
    );
}
