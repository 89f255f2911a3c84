//! Learned LCB over token sequences on the exact finite-language testbed:
//! the baseline is trained by the same pipeline as for mixtures, through
//! the one-hot view of token states.

use std::sync::Arc;

use lcb_core::special::normal_quantile;
use lcb_core::{
    GlobalBound, Guide, LearnedEnvelope, Limits, Method, NoProgress, Problem, RunOptions, SampleOutput, sample,
};
use lcb_learn::{OneHot, OneHotKernel, OneHotValue, TokenBaseline, TrainConfig};
use lcb_models::text::{
    CharTokenizer, FiniteLanguage, FiniteLanguageKernel, FiniteLanguageValue, RegexScorer, RevealSchedule, TextReward,
};

/// Pearson's chi-square statistic of `samples` against `probabilities`.
fn chi_square(language: &FiniteLanguage, samples: &[u32], probabilities: &[f64]) -> f64 {
    let mut counts = vec![0usize; language.count()];
    for row in samples.chunks_exact(language.seq_len()) {
        counts[language.index_of(row).expect("sample is in the language")] += 1;
    }
    let n = (samples.len() / language.seq_len()) as f64;
    counts
        .iter()
        .zip(probabilities)
        .map(|(&c, &p)| (c as f64 - n * p).powi(2) / (n * p))
        .sum()
}

/// Upper `level` quantile of chi-square with `dof` degrees of freedom
/// (Wilson-Hilferty).
fn chi_square_critical(dof: usize, level: f64) -> f64 {
    let k = dof as f64;
    let z = normal_quantile(1.0 - level);
    k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

#[test]
fn learned_token_lcb_matches_target_with_fewer_proposals() {
    let tokenizer = CharTokenizer::new(vec!['a', 'b', 'c', 'd']).unwrap();
    let texts = [
        "abcabc", "aabbcc", "abcdda", "dddddd", "cabbad", "bacdab", "ababab", "cdcdcd", "abadca", "dcbaab",
    ];
    let sequences: Vec<Vec<u32>> = texts.iter().map(|t| tokenizer.encode(t, 6).unwrap()).collect();
    let weights = [5.0, 1.0, 2.0, 8.0, 1.0, 3.0, 0.5, 4.0, 2.5, 1.5];
    let language = Arc::new(FiniteLanguage::new(&sequences, &weights, tokenizer.mask_id()).unwrap());
    // Reward 1 when the text contains "cd" (3 of the 10 sequences): at
    // alpha = 0.25, RS pays up to e^{r_max / alpha} = e^4 proposals a step
    // for prefixes that cannot reach one of them.
    let reward = TextReward::new(tokenizer.clone(), 6, Box::new(RegexScorer::new("cd", 1.0, 0.0).unwrap()));
    let alpha = 0.25;
    let kernel = FiniteLanguageKernel::new(language.clone(), RevealSchedule::new(6, 3, 6).unwrap()).unwrap();
    let value = FiniteLanguageValue::new(language.clone(), &reward, alpha).unwrap();
    let target = value.aligned_target();

    let code = OneHot {
        len: 6,
        // Token ids run from 0 to the mask id.
        classes: tokenizer.mask_id() as usize + 1,
    };
    let cap = 1.0 / alpha;
    let config = TrainConfig {
        envelope_cap: Some(cap),
        ..TrainConfig::default()
    };
    let trained = lcb_learn::train(
        &OneHotKernel::new(&kernel, code).unwrap(),
        &OneHotValue { inner: &value, code },
        &config,
        &NoProgress,
    )
    .unwrap();

    let baseline = TokenBaseline {
        network: &trained.network,
        code,
    };
    let envelope = LearnedEnvelope::new(&baseline, trained.tau.clone(), Some(cap)).unwrap();
    let bound = GlobalBound::new(cap).unwrap();
    let problem = Problem::new(&kernel, &reward, alpha).unwrap();
    let options = RunOptions {
        samples: 20_000,
        seed: 5,
        limits: Limits::default(),
        progress: &NoProgress,
    };
    let run = |envelope: &dyn lcb_core::Envelope<Elem = u32>| -> SampleOutput<u32> {
        let guide = Guide { value: &value, envelope };
        sample("run", &problem, &Method::Stepwise(guide), &options).unwrap()
    };
    let lcb = run(&envelope);
    let rs = run(&bound);

    // Chi-square on 9 degrees of freedom at level 1e-5 with 20000 samples:
    // an envelope that clipped 0.01 of one sequence's probability near 0.1
    // would add about 20 to the statistic's mean.
    let critical = chi_square_critical(language.count() - 1, 1e-5);
    let statistic = chi_square(&language, &lcb.states, &target);
    assert!(statistic < critical, "LCB chi-square {statistic} >= {critical}");
    assert!(
        lcb.record.computed_proposals < rs.record.computed_proposals,
        "LCB computed {} proposals, RS {}",
        lcb.record.computed_proposals,
        rs.record.computed_proposals
    );
    eprintln!(
        "LCB {} computed / {} sequential, RS {} / {}",
        lcb.record.computed_proposals,
        lcb.record.sequential_proposals,
        rs.record.computed_proposals,
        rs.record.sequential_proposals
    );
}
