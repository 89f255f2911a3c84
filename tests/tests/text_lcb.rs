//! Learned LCB over token sequences on the exact finite-language testbed:
//! the baseline is trained by the same pipeline as for mixtures, through
//! the one-hot view of token states.

use std::sync::Arc;

use lcb_core::special::normal_quantile;
use lcb_core::{
    GlobalBound, Guide, LearnedEnvelope, Limits, Method, NoProgress, Problem, RunOptions, SampleOutput, sample,
};
use lcb_learn::{
    NetworkConfig, OneHot, OneHotKernel, OneHotValue, TokenBaseline, TokenInput, TokenValue, TrainConfig, ValueConfig,
    fit_value,
};
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

/// The finite-language problem of the tests below: ten sequences of six
/// tokens over {a, b, c, d}, reward 1 for texts containing "cd".
struct FiniteProblem {
    tokenizer: CharTokenizer,
    language: Arc<FiniteLanguage>,
    reward: TextReward,
    kernel: FiniteLanguageKernel,
}

fn finite_problem() -> FiniteProblem {
    let tokenizer = CharTokenizer::new(vec!['a', 'b', 'c', 'd']).unwrap();
    let texts = [
        "abcabc", "aabbcc", "abcdda", "dddddd", "cabbad", "bacdab", "ababab", "cdcdcd", "abadca", "dcbaab",
    ];
    let sequences: Vec<Vec<u32>> = texts.iter().map(|t| tokenizer.encode(t, 6).unwrap()).collect();
    let weights = [5.0, 1.0, 2.0, 8.0, 1.0, 3.0, 0.5, 4.0, 2.5, 1.5];
    let language = Arc::new(FiniteLanguage::new(&sequences, &weights, tokenizer.mask_id()).unwrap());
    let reward = TextReward::new(tokenizer.clone(), 6, Box::new(RegexScorer::new("cd", 1.0, 0.0).unwrap()));
    let kernel = FiniteLanguageKernel::new(language.clone(), RevealSchedule::new(6, 3, 6).unwrap()).unwrap();
    FiniteProblem {
        tokenizer,
        language,
        reward,
        kernel,
    }
}

/// Trains a baseline with `config` on the finite-language problem at
/// `alpha = 0.25`, then checks that learned LCB matches the enumerated
/// target and computes fewer proposals than per-step RS.
fn check_learned_lcb(config: TrainConfig, seed: u64) {
    let FiniteProblem {
        tokenizer,
        language,
        reward,
        kernel,
    } = finite_problem();
    let alpha = 0.25;
    let value = FiniteLanguageValue::new(language.clone(), &reward, alpha).unwrap();
    let target = value.aligned_target();
    let code = OneHot {
        len: 6,
        // Token ids run from 0 to the mask id.
        classes: tokenizer.mask_id() as usize + 1,
    };
    // Reward 1 for texts with "cd" (3 of the 10 sequences): at alpha = 0.25,
    // RS pays up to e^{r_max / alpha} = e^4 proposals a step for prefixes
    // that cannot reach one of them.
    let cap = 1.0 / alpha;
    let config = TrainConfig {
        envelope_cap: Some(cap),
        ..config
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
        seed,
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

#[test]
fn one_hot_mlp_lcb_matches_target() {
    check_learned_lcb(TrainConfig::default(), 5);
}

#[test]
fn pooled_embedding_lcb_matches_target() {
    let classes = finite_problem().tokenizer.mask_id() as usize + 1;
    let config = TrainConfig {
        particles: 512,
        // Embeddings start random and need larger steps than an MLP over
        // one-hot rows to move within one step's iterations.
        learning_rate: 1e-2,
        network: NetworkConfig {
            hidden: vec![32],
            time_frequencies: 2,
            tokens: Some(TokenInput {
                classes,
                embedding: 16,
                window: 3,
            }),
        },
        ..TrainConfig::default()
    };
    check_learned_lcb(config, 9);
}

#[test]
fn value_network_learns_exact_values() {
    let FiniteProblem {
        tokenizer,
        language,
        reward,
        kernel,
    } = finite_problem();
    let alpha = 0.25;
    let exact = FiniteLanguageValue::new(language.clone(), &reward, alpha).unwrap();
    let code = OneHot {
        len: 6,
        classes: tokenizer.mask_id() as usize + 1,
    };
    let config = ValueConfig {
        network: NetworkConfig {
            hidden: vec![32],
            time_frequencies: 2,
            tokens: Some(TokenInput {
                classes: code.classes,
                embedding: 16,
                window: 3,
            }),
        },
        trajectories: 1024,
        epochs: 40,
        ..ValueConfig::default()
    };
    let one_hot = OneHotKernel::new(&kernel, code).unwrap();
    let fitted = fit_value(&one_hot, &OneHotValue { inner: &exact, code }, &config, &NoProgress).unwrap();
    let history = &fitted.history;
    let constant = history.heldout_constant_loss.unwrap();
    let last = history.kept_heldout_loss().unwrap();
    assert!(last < constant, "held-out loss {last} is not below the constant fit's {constant}");

    // Compare v_phi with the exact V_t on fresh base states at every step:
    // the fit must explain most of the spread of V_t around its mean.
    let learned = TokenValue {
        network: &fitted.network,
        code,
        terminal: &exact,
        upper: Some(1.0 / alpha),
    };
    let n = 400;
    let particles: Vec<u64> = (0..n as u64).collect();
    let mut states = vec![tokenizer.mask_id(); 6 * n];
    let (mut error, mut spread) = (0.0, 0.0);
    for t in (1..=3).rev() {
        states = lcb_core::advance(&kernel, None, t, &states, &particles, 77, &Limits::default())
            .unwrap()
            .children;
        if t == 1 {
            break;
        }
        let mut want = vec![0.0; n];
        let mut got = vec![0.0; n];
        lcb_core::Value::log_values(&exact, t - 1, &states, &mut want).unwrap();
        lcb_core::Value::log_values(&learned, t - 1, &states, &mut got).unwrap();
        let mean = want.iter().sum::<f64>() / n as f64;
        error += want.iter().zip(&got).map(|(w, g)| (w - g).powi(2)).sum::<f64>();
        spread += want.iter().map(|w| (w - mean).powi(2)).sum::<f64>();
    }
    assert!(
        error < 0.25 * spread,
        "squared error {error:.3} of the value network is not below a quarter of the spread {spread:.3}"
    );
}

/// Pearson's chi-square test of homogeneity of two samples over their
/// distinct values; returns the statistic and its degrees of freedom.
fn homogeneity(a: &[f64], b: &[f64]) -> (f64, usize) {
    let mut levels: Vec<f64> = a.iter().chain(b).copied().collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let count = |xs: &[f64], level: f64| xs.iter().filter(|&&x| x == level).count() as f64;
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let mut statistic = 0.0;
    for &level in &levels {
        let (ca, cb) = (count(a, level), count(b, level));
        let pooled = (ca + cb) / (na + nb);
        statistic += (ca - na * pooled).powi(2) / (na * pooled) + (cb - nb * pooled).powi(2) / (nb * pooled);
    }
    (statistic, levels.len().saturating_sub(1))
}

#[test]
fn neural_rs_and_lcb_rewards_agree() {
    use lcb_models::text::{Backend, DenoiserConfig, ModelShape, StepKernel, StepKernelConfig, TextModel, Transformer};

    // A small untrained transformer: its random logits make a non-uniform
    // base model over six characters of {a, b, c} and the end-of-text token.
    let tokenizer = CharTokenizer::new(vec!['a', 'b', 'c']).unwrap();
    let config = DenoiserConfig {
        vocab_size: tokenizer.vocab_size(),
        shape: ModelShape {
            seq_len: 6,
            d_model: 16,
            heads: 2,
            layers: 1,
            mlp_hidden: 32,
            ..ModelShape::default()
        },
    };
    let device = Backend::Flex.device().unwrap();
    let network = Transformer::init(&config, 11, &device);
    let model = TextModel::from_network(tokenizer.clone(), config, &network, Backend::Flex).unwrap();
    let kernel = StepKernel::new(
        &model,
        &StepKernelConfig {
            steps: Some(3),
            ..StepKernelConfig::default()
        },
    )
    .unwrap();
    let reward = TextReward::new(tokenizer.clone(), 6, Box::new(RegexScorer::new("ab", 1.0, 0.0).unwrap()));
    let alpha = 0.5;
    let rollout = lcb_core::RolloutValue::new(&kernel, &reward, alpha, 8, 3).unwrap();
    let code = OneHot {
        len: 6,
        classes: tokenizer.mask_id() as usize + 1,
    };
    let cap = 1.0 / alpha;
    let train_config = TrainConfig {
        envelope_cap: Some(cap),
        particles: 256,
        iterations_per_step: 20,
        learning_rate: 1e-2,
        network: NetworkConfig {
            hidden: vec![32],
            time_frequencies: 2,
            tokens: Some(TokenInput {
                classes: code.classes,
                embedding: 16,
                window: 3,
            }),
        },
        ..TrainConfig::default()
    };
    let trained = lcb_learn::train(
        &OneHotKernel::new(&kernel, code).unwrap(),
        &OneHotValue { inner: &rollout, code },
        &train_config,
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
    let run = |envelope: &dyn lcb_core::Envelope<Elem = u32>, seed: u64| -> SampleOutput<u32> {
        let options = RunOptions {
            samples: 1500,
            seed,
            limits: Limits::default(),
            progress: &NoProgress,
        };
        let guide = Guide {
            value: &rollout,
            envelope,
        };
        sample("run", &problem, &Method::Stepwise(guide), &options).unwrap()
    };
    let rs = run(&bound, 21);
    let lcb = run(&envelope, 22);
    let base_mean = {
        let options = RunOptions {
            samples: 1500,
            seed: 23,
            limits: Limits::default(),
            progress: &NoProgress,
        };
        let base = sample(
            "base",
            &problem,
            &Method::BestOfN {
                n: 1,
                selection: lcb_core::Selection::Max,
                guide: None,
            },
            &options,
        )
        .unwrap();
        base.rewards.iter().sum::<f64>() / base.rewards.len() as f64
    };

    // Both samplers target the same law, the kernel tilted by the same
    // rollout values, so their rewards agree. The test has power because
    // the tilt moves the reward mean away from the base model's.
    let (statistic, dof) = homogeneity(&rs.rewards, &lcb.rewards);
    let critical = chi_square_critical(dof.max(1), 1e-4);
    assert!(statistic < critical, "RS and LCB rewards differ: chi-square {statistic} >= {critical}");
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    eprintln!(
        "reward means: base {base_mean:.3}, RS {:.3}, LCB {:.3}; proposals RS {} LCB {}",
        mean(&rs.rewards),
        mean(&lcb.rewards),
        rs.record.computed_proposals,
        lcb.record.computed_proposals
    );
    assert!(
        mean(&rs.rewards) > base_mean + 0.05,
        "the tilt did not raise the reward: RS {} vs base {base_mean}",
        mean(&rs.rewards)
    );
}

