//! The exact finite-language kernel against enumeration: its samples follow
//! the data distribution, and per-step RS with exact values follows the
//! aligned target.

use std::sync::Arc;

use lcb_core::special::normal_quantile;
use lcb_core::{GlobalBound, Guide, Limits, Method, NoProgress, Problem, RunOptions, Selection, sample};
use lcb_models::text::{
    CharTokenizer, FiniteLanguage, FiniteLanguageKernel, FiniteLanguageValue, RegexScorer, RevealSchedule, TextReward,
};

/// Sequences of 6 characters over "abcd" (token ids 1..=4, mask id 5),
/// with unequal weights.
fn language() -> (Arc<FiniteLanguage>, CharTokenizer) {
    let tokenizer = CharTokenizer::new(vec!['a', 'b', 'c', 'd']).unwrap();
    let texts = [
        "abcabc", "aabbcc", "abcdda", "dddddd", "cabbad", "bacdab", "ababab", "cdcdcd", "abadca", "dcbaab",
    ];
    let sequences: Vec<Vec<u32>> = texts.iter().map(|t| tokenizer.encode(t, 6).unwrap()).collect();
    let weights = [5.0, 1.0, 2.0, 8.0, 1.0, 3.0, 0.5, 4.0, 2.5, 1.5];
    let language = FiniteLanguage::new(&sequences, &weights, tokenizer.mask_id()).unwrap();
    (Arc::new(language), tokenizer)
}

/// Reward 1 when the text contains "ab", 0 otherwise (r_max = 1).
fn reward(tokenizer: &CharTokenizer) -> TextReward {
    TextReward::new(tokenizer.clone(), 6, Box::new(RegexScorer::new("ab", 1.0, 0.0).unwrap()))
}

/// Every schedule layout the tests run: (steps, block length).
const LAYOUTS: [(usize, usize); 4] = [(6, 6), (3, 6), (4, 3), (2, 3)];

/// Pearson's chi-square statistic of `samples` (rows of the language)
/// against `probabilities`.
fn chi_square(language: &FiniteLanguage, samples: &[u32], probabilities: &[f64]) -> f64 {
    let mut counts = vec![0usize; language.count()];
    for row in samples.chunks_exact(language.seq_len()) {
        let index = language
            .index_of(row)
            .unwrap_or_else(|| panic!("sample {row:?} is not in the language"));
        counts[index] += 1;
    }
    let n = (samples.len() / language.seq_len()) as f64;
    counts
        .iter()
        .zip(probabilities)
        .map(|(&c, &p)| (c as f64 - n * p).powi(2) / (n * p))
        .sum()
}

/// Upper `level` quantile of the chi-square law with `dof` degrees of
/// freedom, by the Wilson-Hilferty approximation (accurate to about 1% at
/// these degrees of freedom and levels).
fn chi_square_critical(dof: usize, level: f64) -> f64 {
    let k = dof as f64;
    let z = normal_quantile(1.0 - level);
    k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

// Each check is a chi-square test on 9 degrees of freedom at level 1e-5,
// so with 20000 samples a correct sampler fails a given check with
// probability 1e-5, while a sampler off by 0.01 in one probability of
// about 0.1 adds about n 0.01^2 / 0.1 = 20 to the statistic's mean.
const SAMPLES: usize = 20_000;
const LEVEL: f64 = 1e-5;

fn options(seed: u64) -> RunOptions<'static> {
    RunOptions {
        samples: SAMPLES,
        seed,
        limits: Limits::default(),
        progress: &NoProgress,
    }
}

#[test]
fn exact_kernel_reproduces_data_distribution() {
    let (language, tokenizer) = language();
    let reward = reward(&tokenizer);
    let critical = chi_square_critical(language.count() - 1, LEVEL);
    for (seed, (steps, block)) in LAYOUTS.into_iter().enumerate() {
        let schedule = RevealSchedule::new(6, steps, block).unwrap();
        let kernel = FiniteLanguageKernel::new(language.clone(), schedule).unwrap();
        let problem = Problem::new(&kernel, &reward, 1.0).unwrap();
        let base = Method::BestOfN {
            n: 1,
            selection: Selection::Max,
            guide: None,
        };
        let output = sample("base", &problem, &base, &options(seed as u64)).unwrap();
        let statistic = chi_square(&language, &output.states, &language.probabilities());
        assert!(
            statistic < critical,
            "{steps} steps, blocks of {block}: chi-square {statistic:.1} >= {critical:.1}"
        );
    }
}

#[test]
fn per_step_rs_reproduces_aligned_target() {
    let (language, tokenizer) = language();
    let reward = reward(&tokenizer);
    let critical = chi_square_critical(language.count() - 1, LEVEL);
    for alpha in [1.0, 0.25] {
        let value = FiniteLanguageValue::new(language.clone(), &reward, alpha).unwrap();
        let target = value.aligned_target();
        let bound = GlobalBound::from_reward_bound(1.0, alpha).unwrap();
        for (seed, (steps, block)) in LAYOUTS.into_iter().enumerate() {
            let schedule = RevealSchedule::new(6, steps, block).unwrap();
            let kernel = FiniteLanguageKernel::new(language.clone(), schedule).unwrap();
            let problem = Problem::new(&kernel, &reward, alpha).unwrap();
            let rs = Method::Stepwise(Guide {
                value: &value,
                envelope: &bound,
            });
            let output = sample("rs", &problem, &rs, &options(100 + seed as u64)).unwrap();
            let statistic = chi_square(&language, &output.states, &target);
            assert!(
                statistic < critical,
                "alpha {alpha}, {steps} steps, blocks of {block}: chi-square {statistic:.1} >= {critical:.1}"
            );
            // The bound B = r_max / alpha is never exceeded; a value equal to
            // B can come out one rounding error above it.
            let clip = output.record.tv_clip_estimate;
            assert!(clip < 1e-12, "the global bound clipped {clip}");
        }
    }
}

#[test]
fn base_samples_fail_the_aligned_target() {
    // Negative control: at alpha = 0.25 the tilt e^4 moves much mass, so
    // untilted samples must fail the same test.
    let (language, tokenizer) = language();
    let reward = reward(&tokenizer);
    let value = FiniteLanguageValue::new(language.clone(), &reward, 0.25).unwrap();
    let kernel = FiniteLanguageKernel::new(language.clone(), RevealSchedule::single_block(6, 6).unwrap()).unwrap();
    let problem = Problem::new(&kernel, &reward, 0.25).unwrap();
    let base = Method::BestOfN {
        n: 1,
        selection: Selection::Max,
        guide: None,
    };
    let output = sample("base", &problem, &base, &options(7)).unwrap();
    let statistic = chi_square(&language, &output.states, &value.aligned_target());
    assert!(statistic > 10.0 * chi_square_critical(language.count() - 1, LEVEL), "chi-square {statistic:.1}");
}

#[test]
fn value_matches_aligned_target_normalizer() {
    // V at the all-mask root is ln E_p[exp(r / alpha)], and the aligned
    // target is p exp(r / alpha) divided by exp(V_root).
    let (language, tokenizer) = language();
    let reward = reward(&tokenizer);
    let alpha = 0.5;
    let value = FiniteLanguageValue::new(language.clone(), &reward, alpha).unwrap();
    let root = vec![tokenizer.mask_id(); 6];
    let v_root = value.log_value(&root).unwrap();
    let p = language.probabilities();
    let expected: f64 = p.iter().zip(value.rewards()).map(|(p, r)| p * (r / alpha).exp()).sum();
    assert!((v_root - expected.ln()).abs() < 1e-12);
    let target = language.aligned_target(value.rewards(), alpha).unwrap();
    for ((t, p), r) in target.iter().zip(&p).zip(value.rewards()) {
        assert!((t - p * (r / alpha - v_root).exp()).abs() < 1e-12);
    }
}
