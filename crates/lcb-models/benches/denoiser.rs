//! Forward throughput of the default text denoiser (about 0.87 M parameters,
//! 64 tokens a row) on each burn backend, in tokens per second.
//!
//! ```text
//! XDG_RUNTIME_DIR=/tmp cargo bench -p lcb-models --bench denoiser
//! ```
//!
//! wgpu is skipped with a message when no adapter is available.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lcb_models::text::{Backend, CharTokenizer, Corpus, Denoiser, DenoiserConfig, ModelShape, TextModel, Transformer};

/// Rows per forward pass: one rejection chunk of the samplers.
const ROWS: usize = 64;

fn forward_throughput(c: &mut Criterion) {
    let corpus = Corpus::embedded();
    let tokenizer = CharTokenizer::from_texts(corpus.texts.iter().map(String::as_str)).unwrap();
    let config = DenoiserConfig {
        vocab_size: tokenizer.vocab_size(),
        shape: ModelShape::default(),
    };
    let len = config.shape.seq_len;

    // Half-masked rows of real text, as in the middle of a sampling chain.
    let mut tokens = Vec::with_capacity(ROWS * len);
    for (i, text) in corpus.texts.iter().take(ROWS).enumerate() {
        let mut row = tokenizer.encode(text, len).unwrap();
        for (j, token) in row.iter_mut().enumerate() {
            if (i + j) % 2 == 0 {
                *token = tokenizer.mask_id();
            }
        }
        tokens.extend(row);
    }

    let mut group = c.benchmark_group("denoiser_forward");
    group.throughput(Throughput::Elements((ROWS * len) as u64));
    group.sample_size(20);
    for backend in Backend::ALL {
        let device = match backend.device() {
            Ok(device) => device,
            Err(err) => {
                eprintln!("skipping {backend}: {err}");
                continue;
            }
        };
        let network = Transformer::init(&config, 0, &device);
        let model = TextModel::from_network(tokenizer.clone(), config.clone(), &network, backend).unwrap();
        let mut logits = vec![0.0; ROWS * len * model.vocab_size()];
        group.bench_with_input(BenchmarkId::new(backend.name(), ROWS), &tokens, |b, tokens| {
            b.iter(|| model.logits(tokens, &mut logits).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, forward_throughput);
criterion_main!(benches);
