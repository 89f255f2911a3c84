//! The LLaDA-style step kernel: it commits the scheduled number of tokens at
//! every step in every remasking mode and block layout, runs the denoiser
//! once per distinct parent, and samples the denoiser's own marginals.

use std::sync::atomic::{AtomicUsize, Ordering};

use lcb_core::{ComponentResult, Kernel, Lane, Stream};
use lcb_models::text::{
    Backend, CharTokenizer, Denoiser, DenoiserConfig, GenerateOptions, ModelShape, Remasking, StepKernel,
    StepKernelConfig, TextModel, Transformer, generate,
};

const LEN: usize = 12;
const VOCAB: usize = 6;
const MASK: u32 = 6;

/// A denoiser whose logits are a fixed hash of the whole row, the position
/// and the token, so that they depend on context. It counts the rows it
/// scores.
#[derive(Default)]
struct HashDenoiser {
    rows_scored: AtomicUsize,
    calls: AtomicUsize,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Denoiser for HashDenoiser {
    fn vocab_size(&self) -> usize {
        VOCAB
    }

    fn mask_id(&self) -> u32 {
        MASK
    }

    fn seq_len(&self) -> usize {
        LEN
    }

    fn logits(&self, tokens: &[u32], out: &mut [f32]) -> ComponentResult {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.rows_scored.fetch_add(tokens.len() / LEN, Ordering::Relaxed);
        for (row, logits) in tokens.chunks_exact(LEN).zip(out.chunks_exact_mut(LEN * VOCAB)) {
            let row_hash = row.iter().fold(0u64, |h, &t| mix(h ^ u64::from(t)));
            for (k, logit) in logits.iter_mut().enumerate() {
                *logit = (mix(row_hash ^ k as u64) % 1000) as f32 / 250.0;
            }
        }
        Ok(())
    }
}

/// Every (steps, block length) layout of 12 positions the test covers.
const LAYOUTS: [(usize, Option<usize>); 6] = [
    (12, None),
    (5, None),
    (1, None),
    (6, Some(4)),
    (3, Some(4)),
    (12, Some(2)),
];

#[test]
fn step_kernel_commits_scheduled_tokens() {
    for remasking in [Remasking::Random, Remasking::LowConfidence] {
        for temperature in [1.0, 0.7, 0.0] {
            for (steps, block_len) in LAYOUTS {
                let config = StepKernelConfig {
                    steps: Some(steps),
                    block_len,
                    remasking,
                    temperature,
                };
                let case = format!("{remasking:?}, temperature {temperature}, {steps} steps, blocks {block_len:?}");
                check_schedule(&config, &case);
            }
        }
    }
}

/// Runs 4 parents with 3 requests each through every transition, checking
/// each child against its parent and the schedule.
fn check_schedule(config: &StepKernelConfig, case: &str) {
    let denoiser = HashDenoiser::default();
    let kernel = StepKernel::new(&denoiser, config).unwrap();
    let schedule = *kernel.schedule();
    let parents_count = 4;
    let per_parent = 3;
    let mut parents = vec![MASK; parents_count * LEN];

    for t in (1..=kernel.steps()).rev() {
        let plan = schedule.at(t);
        let parent_of: Vec<usize> = (0..parents_count).flat_map(|p| std::iter::repeat_n(p, per_parent)).collect();
        let mut rngs: Vec<Stream> = (0..parent_of.len())
            .map(|j| Stream::at(9, j as u64, t, 0, Lane::Kernel))
            .collect();
        let mut children = vec![0; parent_of.len() * LEN];
        let rows_before = denoiser.rows_scored.load(Ordering::Relaxed);
        kernel.propose(t, &parents, &parent_of, &mut rngs, &mut children).unwrap();
        assert_eq!(
            denoiser.rows_scored.load(Ordering::Relaxed) - rows_before,
            parents_count,
            "{case}, t {t}: one forward row per distinct parent"
        );

        for (child, &p) in children.chunks_exact(LEN).zip(&parent_of) {
            let parent = &parents[p * LEN..(p + 1) * LEN];
            let mut committed = 0;
            for (i, (&c, &y)) in child.iter().zip(parent).enumerate() {
                if y != MASK {
                    assert_eq!(c, y, "{case}, t {t}: unmasked token at {i} changed");
                } else if c != MASK {
                    assert!(plan.block.contains(&i), "{case}, t {t}: position {i} outside block {:?}", plan.block);
                    assert!((c as usize) < VOCAB, "{case}, t {t}: drew token {c}");
                    committed += 1;
                }
            }
            assert_eq!(committed, plan.count, "{case}, t {t}: committed {committed} tokens, scheduled {}", plan.count);
            let masked = child.iter().filter(|&&c| c == MASK).count();
            assert_eq!(masked, schedule.masked_at(t - 1), "{case}, t {t}: masks left in x_(t-1)");
        }

        // Children of request 0 of each parent become the next parents.
        let next: Vec<u32> = (0..parents_count)
            .flat_map(|p| children[p * per_parent * LEN..(p * per_parent + 1) * LEN].to_vec())
            .collect();
        parents = next;
    }
    assert!(parents.iter().all(|&c| c != MASK), "{case}: x_0 has no masks");
}

#[test]
fn greedy_low_confidence_is_deterministic() {
    let denoiser = HashDenoiser::default();
    let config = StepKernelConfig {
        steps: Some(4),
        block_len: None,
        remasking: Remasking::LowConfidence,
        temperature: 0.0,
    };
    let kernel = StepKernel::new(&denoiser, &config).unwrap();
    let parent = vec![MASK; LEN];
    let mut rngs: Vec<Stream> = (0..16).map(|j| Stream::at(1, 0, 4, j, Lane::Kernel)).collect();
    let mut children = vec![0; 16 * LEN];
    kernel.propose(4, &parent, &[0; 16], &mut rngs, &mut children).unwrap();
    let first = &children[..LEN];
    assert!(children.chunks_exact(LEN).all(|c| c == first), "every proposal is the same child");
}

/// A denoiser with the same logits at every position whatever the context.
struct FixedDenoiser {
    logits: [f32; 3],
}

impl Denoiser for FixedDenoiser {
    fn vocab_size(&self) -> usize {
        3
    }

    fn mask_id(&self) -> u32 {
        3
    }

    fn seq_len(&self) -> usize {
        4
    }

    fn logits(&self, tokens: &[u32], out: &mut [f32]) -> ComponentResult {
        for (logits, _) in out.chunks_exact_mut(3).zip(tokens) {
            logits.copy_from_slice(&self.logits);
        }
        Ok(())
    }
}

#[test]
fn random_remasking_samples_model_marginals() {
    // With context-free logits, each position of x_0 must follow
    // softmax(logits / temperature). Each of the 4 positions of 5000 chains
    // gets a chi-square test on 2 degrees of freedom at level 1e-6, whose
    // critical value -2 ln(level) is exact for 2 degrees of freedom.
    for temperature in [1.0, 0.5] {
        let denoiser = FixedDenoiser { logits: [0.0, 1.0, -0.5] };
        let config = StepKernelConfig {
            steps: Some(2),
            block_len: None,
            remasking: Remasking::Random,
            temperature,
        };
        let options = GenerateOptions {
            samples: 5000,
            seed: 3,
            kernel: config,
        };
        let tokens = lcb_models::text::generate_tokens(&denoiser, &options, &lcb_core::NoProgress).unwrap();
        let weights: Vec<f64> = denoiser.logits.iter().map(|&l| (f64::from(l) / temperature).exp()).collect();
        let total: f64 = weights.iter().sum();
        let critical = -2.0 * 1e-6f64.ln();
        for position in 0..4 {
            let mut counts = [0usize; 3];
            for row in tokens.chunks_exact(4) {
                counts[row[position] as usize] += 1;
            }
            let statistic: f64 = counts
                .iter()
                .zip(&weights)
                .map(|(&c, w)| {
                    let expected = 5000.0 * w / total;
                    (c as f64 - expected).powi(2) / expected
                })
                .sum();
            assert!(statistic < critical, "temperature {temperature}, position {position}: {statistic:.1}, counts {counts:?}");
        }
    }
}

#[test]
fn neural_kernel_fills_every_position() {
    let tokenizer = CharTokenizer::from_texts(["abc de"]).unwrap();
    let config = DenoiserConfig {
        vocab_size: tokenizer.vocab_size(),
        shape: ModelShape {
            seq_len: 8,
            d_model: 16,
            heads: 2,
            layers: 1,
            mlp_hidden: 32,
            ..ModelShape::default()
        },
    };
    for backend in [Backend::Ndarray, Backend::Flex] {
        let device = backend.device().unwrap();
        let network = Transformer::init(&config, 1, &device);
        let model = TextModel::from_network(tokenizer.clone(), config.clone(), &network, backend).unwrap();
        for remasking in [Remasking::Random, Remasking::LowConfidence] {
            let options = GenerateOptions {
                samples: 5,
                seed: 2,
                kernel: StepKernelConfig {
                    steps: Some(4),
                    block_len: Some(4),
                    remasking,
                    temperature: 1.0,
                },
            };
            let tokens = lcb_models::text::generate_tokens(&model, &options, &lcb_core::NoProgress).unwrap();
            assert!(tokens.iter().all(|&t| t < tokenizer.mask_id()), "{backend}, {remasking:?}: {tokens:?}");
            let texts = generate(&model, &options, &lcb_core::NoProgress).unwrap();
            assert_eq!(texts.len(), 5);
            assert!(texts.iter().all(|t| t.chars().all(|c| "abcde ".contains(c))), "{texts:?}");
        }
    }
}

#[test]
fn invalid_step_settings_are_rejected() {
    let denoiser = HashDenoiser::default();
    for (steps, block_len, temperature) in [(5, Some(4), 1.0), (13, None, 1.0), (12, Some(5), 1.0), (12, None, -1.0)] {
        let config = StepKernelConfig {
            steps: Some(steps),
            block_len,
            remasking: Remasking::Random,
            temperature,
        };
        assert!(
            StepKernel::new(&denoiser, &config).is_err(),
            "{steps} steps, blocks {block_len:?}, temperature {temperature}"
        );
    }
}

#[test]
fn non_finite_logits_are_an_error() {
    let denoiser = FixedDenoiser {
        logits: [0.0, f32::NAN, 1.0],
    };
    let kernel = StepKernel::new(&denoiser, &StepKernelConfig::default()).unwrap();
    let parent = vec![3; 4];
    let mut rngs = vec![Stream::at(0, 0, 4, 0, Lane::Kernel)];
    let mut child = vec![0; 4];
    let err = kernel.propose(4, &parent, &[0], &mut rngs, &mut child).unwrap_err();
    assert!(err.to_string().contains("NaN or infinite logits"), "{err}");
}

#[test]
fn repeated_proposals_reuse_cached_logits() {
    let denoiser = HashDenoiser::default();
    let kernel = StepKernel::new(&denoiser, &StepKernelConfig::default()).unwrap();
    let mut parents = vec![MASK; 3 * LEN];
    parents[0] = 1;
    parents[LEN + 1] = 2;
    let parent_of = [0, 1, 2, 0, 1, 2];
    let mut out = vec![0u32; parent_of.len() * LEN];
    let mut first = vec![0u32; out.len()];
    for round in 0..3 {
        let mut rngs: Vec<Stream> = (0..parent_of.len())
            .map(|i| Stream::at(5, i as u64, 0, 0, Lane::Kernel))
            .collect();
        kernel.propose(LEN - 1, &parents, &parent_of, &mut rngs, &mut out).unwrap();
        if round == 0 {
            first.copy_from_slice(&out);
        }
        // The same streams give the same children from cached logits.
        assert_eq!(out, first, "round {round}");
    }
    assert_eq!(denoiser.rows_scored.load(Ordering::Relaxed), 3, "each distinct parent is scored once");
}

#[test]
fn row_logits_are_batch_independent() {
    // The kernel's logits cache assumes that a row's logits are the same
    // bits whatever rows share its forward pass.
    let tokenizer = CharTokenizer::from_texts(["abc de"]).unwrap();
    let config = DenoiserConfig {
        vocab_size: tokenizer.vocab_size(),
        shape: ModelShape {
            seq_len: 8,
            d_model: 32,
            heads: 2,
            layers: 2,
            mlp_hidden: 64,
            ..ModelShape::default()
        },
    };
    let mask = tokenizer.mask_id();
    let mut rows = Vec::new();
    for i in 0..64u32 {
        rows.extend((0..8u32).map(|k| if (i + k) % 3 == 0 { mask } else { (i * 7 + k) % mask }));
    }
    let per_row = 8 * tokenizer.vocab_size();
    for backend in [Backend::Ndarray, Backend::Flex] {
        let device = backend.device().unwrap();
        let network = Transformer::init(&config, 4, &device);
        let model = TextModel::from_network(tokenizer.clone(), config.clone(), &network, backend).unwrap();
        let mut batched = vec![0f32; 64 * per_row];
        model.logits(&rows, &mut batched).unwrap();
        for r in [0usize, 17, 63] {
            let mut alone = vec![0f32; per_row];
            model.logits(&rows[r * 8..(r + 1) * 8], &mut alone).unwrap();
            let same = alone
                .iter()
                .zip(&batched[r * per_row..(r + 1) * per_row])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{backend}: row {r} differs alone and in a batch of 64");
        }
    }

    // The same for the embedded model, whose matrices are larger.
    let model = TextModel::embedded(Backend::Flex).unwrap();
    let (len, vocab) = (model.seq_len(), model.vocab_size());
    let mask = model.mask_id();
    let rows: Vec<u32> = (0..16 * len as u32)
        .map(|i| if i % 5 < 2 { mask } else { (i * 13) % mask })
        .collect();
    let mut batched = vec![0f32; 16 * len * vocab];
    model.logits(&rows, &mut batched).unwrap();
    let mut alone = vec![0f32; len * vocab];
    model.logits(&rows[5 * len..6 * len], &mut alone).unwrap();
    let same = alone
        .iter()
        .zip(&batched[5 * len * vocab..6 * len * vocab])
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "embedded model: a row's logits differ alone and in a batch of 16");
}
