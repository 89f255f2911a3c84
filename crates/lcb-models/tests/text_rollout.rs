//! Monte Carlo rollout values on the exact finite-language testbed, against
//! the values computed by enumeration.

use std::sync::Arc;

use lcb_core::{Kernel, Lane, RolloutValue, Stream, Value};
use lcb_models::text::{CharTokenizer, FiniteLanguage, FiniteLanguageKernel, FiniteLanguageValue, RegexScorer, RevealSchedule, TextReward};

fn language() -> (Arc<FiniteLanguage>, CharTokenizer) {
    let tokenizer = CharTokenizer::new(vec!['a', 'b', 'c', 'd']).unwrap();
    let texts = ["abcabc", "aabbcc", "abcdda", "dddddd", "cabbad", "bacdab", "ababab", "cdcdcd"];
    let sequences: Vec<Vec<u32>> = texts.iter().map(|t| tokenizer.encode(t, 6).unwrap()).collect();
    let weights = [5.0, 1.0, 2.0, 8.0, 1.0, 3.0, 0.5, 4.0];
    let language = FiniteLanguage::new(&sequences, &weights, tokenizer.mask_id()).unwrap();
    (Arc::new(language), tokenizer)
}

#[test]
fn rollout_values_match_enumeration() {
    let (language, tokenizer) = language();
    let reward = TextReward::new(tokenizer.clone(), 6, Box::new(RegexScorer::new("ab", 1.0, 0.0).unwrap()));
    let alpha = 0.5;
    let kernel = FiniteLanguageKernel::new(language.clone(), RevealSchedule::new(6, 3, 6).unwrap()).unwrap();
    let exact = FiniteLanguageValue::new(language.clone(), &reward, alpha).unwrap();
    let rollouts = 4000;
    let estimate = RolloutValue::new(&kernel, &reward, alpha, rollouts, 9).unwrap();

    // States along base trajectories at every step, from the root down.
    let width = kernel.width();
    let mut state = vec![0u32; width];
    kernel.root(&mut state);
    for t in (0..=kernel.steps()).rev() {
        let mut v_exact = [0.0];
        let mut v_rollout = [0.0];
        exact.log_values(t, &state, &mut v_exact).unwrap();
        estimate.log_values(t, &state, &mut v_rollout).unwrap();
        // exp(r/alpha) lies in [1, e^2], so its standard deviation is at most
        // (e^2 - 1)/2 and that of the log-mean at most (e^2 - 1)/(2 sqrt(M))
        // since e^V >= 1: 5 of those is the tolerance (0.25 at M = 4000).
        let tolerance = 5.0 * ((2.0f64).exp() - 1.0) / 2.0 / (rollouts as f64).sqrt();
        assert!(
            (v_rollout[0] - v_exact[0]).abs() < tolerance,
            "t = {t}: rollout {} vs exact {} (tolerance {tolerance})",
            v_rollout[0],
            v_exact[0]
        );
        if t > 0 {
            let mut rngs = vec![Stream::at(3, 0, t, 0, Lane::Kernel)];
            let mut child = vec![0u32; width];
            kernel.propose(t, &state, &[0], &mut rngs, &mut child).unwrap();
            state = child;
        }
    }
}

#[test]
fn rollout_value_is_the_same_in_any_batch() {
    let (language, tokenizer) = language();
    let reward = TextReward::new(tokenizer, 6, Box::new(RegexScorer::new("ab", 1.0, 0.0).unwrap()));
    let kernel = FiniteLanguageKernel::new(language, RevealSchedule::new(6, 3, 6).unwrap()).unwrap();
    let estimate = RolloutValue::new(&kernel, &reward, 1.0, 64, 1).unwrap();
    let mut root = vec![0u32; 6];
    kernel.root(&mut root);
    let mut alone = [0.0];
    estimate.log_values(3, &root, &mut alone).unwrap();
    let pair: Vec<u32> = root.iter().chain(root.iter()).copied().collect();
    let mut both = [0.0; 2];
    estimate.log_values(3, &pair, &mut both).unwrap();
    assert_eq!(alone[0], both[0]);
    assert_eq!(alone[0], both[1]);
}
