//! Training the text denoiser on a tiny corpus: the loss falls, checkpoints
//! round-trip exactly, and an interrupted run resumes to the same weights.

use std::ops::ControlFlow;
use std::path::Path;

use lcb_models::text::{
    Backend, CharTokenizer, CheckpointError, Corpus, Denoiser, DenoiserConfig, ModelShape, TextError, TextModel,
    TrainConfig, TrainEvent, Transformer, train,
};

const TINY_CORPUS: &str = "\
the cat sat
the dog ran
a cat ran
the cat ran
a dog sat
the dog sat
a cat sat
a dog ran
";

fn tiny_config(steps: usize) -> TrainConfig {
    TrainConfig {
        model: ModelShape {
            seq_len: 12,
            d_model: 32,
            heads: 2,
            layers: 2,
            mlp_hidden: 64,
            ..ModelShape::default()
        },
        batch_size: 16,
        steps,
        learning_rate: 3e-3,
        warmup_steps: 5,
        heldout_fraction: 0.0,
        eval_every: 10,
        checkpoint_every: 10,
        backend: Backend::Flex,
        ..TrainConfig::default()
    }
}

fn continue_always(_: &TrainEvent) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// Logits of every row of `rows` under the model saved in `dir`.
fn logits_of(dir: &Path, backend: Backend, rows: &[u32]) -> Vec<f32> {
    let model = TextModel::load(dir, backend).unwrap();
    let mut out = vec![0.0; rows.len() * model.vocab_size()];
    model.logits(rows, &mut out).unwrap();
    out
}

fn probe_rows(tokenizer: &CharTokenizer, len: usize) -> Vec<u32> {
    let mask = tokenizer.mask_id();
    let mut rows = tokenizer.encode("the cat", len).unwrap();
    rows.extend(vec![mask; len]);
    let mut partial = tokenizer.encode("a dog ran", len).unwrap();
    partial[2] = mask;
    partial[5] = mask;
    rows.extend(partial);
    rows
}

#[test]
fn training_loss_falls_on_tiny_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::parse("tiny", TINY_CORPUS);
    let mut losses = Vec::new();
    let summary = train(&corpus, dir.path(), &tiny_config(200), false, &mut |event| {
        if let TrainEvent::Step { loss, .. } = event {
            losses.push(*loss);
        }
        ControlFlow::Continue(())
    })
    .unwrap();

    assert_eq!(summary.steps_done, 200);
    assert!(!summary.stopped);
    // The first 10 steps start near ln V (uniform over the alphabet and
    // end-of-text); the last 10 must average well below them.
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[190..].iter().sum::<f64>() / 10.0;
    eprintln!("mean loss of the first 10 steps {first:.3}, of the last 10 {last:.3}");
    assert!(first > 0.6 * summary.uniform_loss, "first losses {first:.3} vs ln V {:.3}", summary.uniform_loss);
    assert!(last < 0.5 * first, "loss fell only from {first:.3} to {last:.3}");
    assert_eq!(summary.last.as_ref().unwrap().step, 200);
}

#[test]
fn checkpoint_round_trip_gives_identical_logits() {
    let tokenizer = CharTokenizer::from_texts(TINY_CORPUS.lines()).unwrap();
    let config = DenoiserConfig {
        vocab_size: tokenizer.vocab_size(),
        shape: tiny_config(1).model,
    };
    let rows = probe_rows(&tokenizer, 12);
    for backend in [Backend::Ndarray, Backend::Flex] {
        let dir = tempfile::tempdir().unwrap();
        let device = backend.device().unwrap();
        let network = Transformer::init(&config, 5, &device);
        let model = TextModel::from_network(tokenizer.clone(), config.clone(), &network, backend).unwrap();
        let mut before = vec![0.0; rows.len() * model.vocab_size()];
        model.logits(&rows, &mut before).unwrap();

        model.save(dir.path()).unwrap();
        let after = logits_of(dir.path(), backend, &rows);
        assert_eq!(before, after, "{backend}: logits changed across save and load");
    }
}

#[test]
fn trained_checkpoint_loads_on_every_cpu_backend() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::parse("tiny", TINY_CORPUS);
    train(&corpus, dir.path(), &tiny_config(10), false, &mut continue_always).unwrap();
    let tokenizer = TextModel::load(dir.path(), Backend::Flex).unwrap().tokenizer().clone();
    let rows = probe_rows(&tokenizer, 12);
    let flex = logits_of(dir.path(), Backend::Flex, &rows);
    let ndarray = logits_of(dir.path(), Backend::Ndarray, &rows);
    let max_diff = flex.iter().zip(&ndarray).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-4, "flex and ndarray logits differ by {max_diff}");
    assert!(dir.path().join("loss.csv").exists());
}

#[test]
fn interrupted_training_resumes_to_same_weights() {
    let corpus = Corpus::parse("tiny", TINY_CORPUS);
    let config = tiny_config(20);

    let straight = tempfile::tempdir().unwrap();
    train(&corpus, straight.path(), &config, false, &mut continue_always).unwrap();

    let resumed = tempfile::tempdir().unwrap();
    let first = train(&corpus, resumed.path(), &config, false, &mut |event| {
        if matches!(event, TrainEvent::Step { step: 7, .. }) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert!(first.stopped);
    assert_eq!(first.steps_done, 7, "the stop request saves a checkpoint at step 7");

    let mut resumed_from = None;
    let second = train(&corpus, resumed.path(), &config, true, &mut |event| {
        if let TrainEvent::Started { step, .. } = event {
            resumed_from = Some(*step);
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(resumed_from, Some(7));
    assert_eq!(second.steps_done, 20);

    let tokenizer = TextModel::load(straight.path(), Backend::Flex).unwrap().tokenizer().clone();
    let rows = probe_rows(&tokenizer, 12);
    let a = logits_of(straight.path(), Backend::Flex, &rows);
    let b = logits_of(resumed.path(), Backend::Flex, &rows);
    let max_diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-5, "resumed run differs from the uninterrupted one by {max_diff}");

    // The resumed log has the uninterrupted log's rows plus one at the stop.
    let steps_of = |dir: &Path| -> Vec<String> {
        let log = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
        log.lines().skip(1).map(|line| line.split(',').next().unwrap().to_string()).collect()
    };
    assert_eq!(steps_of(straight.path()), vec!["10", "20"]);
    assert_eq!(steps_of(resumed.path()), vec!["7", "10", "20"]);
}

#[test]
fn existing_checkpoint_needs_resume() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::parse("tiny", TINY_CORPUS);
    train(&corpus, dir.path(), &tiny_config(10), false, &mut continue_always).unwrap();
    let err = train(&corpus, dir.path(), &tiny_config(10), false, &mut continue_always).unwrap_err();
    assert!(
        matches!(err, TextError::Checkpoint(CheckpointError::AlreadyExists { step: 10, .. })),
        "{err}"
    );
    let err = train(&corpus, dir.path(), &tiny_config(20), true, &mut continue_always).unwrap_err();
    assert!(err.to_string().contains("steps: checkpoint 10, requested 20"), "{err}");
}

#[test]
fn corrupt_weights_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::parse("tiny", TINY_CORPUS);
    train(&corpus, dir.path(), &tiny_config(10), false, &mut continue_always).unwrap();
    let weights = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("weights-"))
        .unwrap();
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    let err = TextModel::load(dir.path(), Backend::Flex).unwrap_err();
    assert!(err.to_string().contains("does not match its manifest"), "{err}");
}

#[test]
fn embedded_model_beats_uniform_and_generates() {
    let manifest = TextModel::embedded_manifest().unwrap();
    let training = manifest.training.unwrap();
    let last = training.history.last().unwrap();
    let uniform = (manifest.model.vocab_size as f64).ln();
    let heldout = last.heldout_loss.unwrap();
    assert!(heldout < 0.5 * uniform, "held-out loss {heldout:.3} vs ln V {uniform:.3}");
    assert_eq!(training.config, TrainConfig::default(), "the shipped model uses the default settings");

    let model = TextModel::embedded(Backend::Flex).unwrap();
    let options = lcb_models::text::GenerateOptions {
        samples: 4,
        seed: 1,
        ..Default::default()
    };
    let texts = lcb_models::text::generate(&model, &options, &lcb_core::NoProgress).unwrap();
    assert_eq!(texts.len(), 4);
    assert!(texts.iter().all(|t| t.chars().count() <= 64 && !t.contains('_')), "{texts:?}");
}
