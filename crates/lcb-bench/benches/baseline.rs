//! Learned-baseline throughput per backend on the paper preset: network
//! forward passes (CPU backends, where inference runs) and whole training
//! runs with few iterations, whose time is dominated by gradient steps.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lcb_bench::KernelChoice;
use lcb_bench::learned::train_gmm;
use lcb_core::NoProgress;
use lcb_learn::{Backend, TrainConfig};
use lcb_models::gmm::GmmConfig;

const ITERATIONS: usize = 10;
const PARTICLES: usize = 1024;

fn small_config(backend: Backend) -> TrainConfig {
    TrainConfig {
        particles: PARTICLES,
        iterations_per_step: ITERATIONS,
        replay_steps: 0,
        backend,
        ..TrainConfig::default()
    }
}

fn forward(c: &mut Criterion) {
    let setup = GmmConfig::paper().build(0.2).unwrap();
    let prefixes: Vec<f64> = (0..16_384).flat_map(|i| [0.001 * i as f64 - 8.0, 0.5]).collect();
    let mut group = c.benchmark_group("baseline-forward");
    group.throughput(Throughput::Elements(16_384));
    for backend in [Backend::Ndarray, Backend::Flex] {
        let trained = train_gmm(&setup, KernelChoice::Exact, &small_config(backend), &NoProgress).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(backend.name()), &backend, |b, _| {
            b.iter(|| black_box(trained.network.evaluate(10, &prefixes).unwrap()))
        });
    }
    group.finish();
}

fn training(c: &mut Criterion) {
    let setup = GmmConfig::paper().build(0.2).unwrap();
    let mut group = c.benchmark_group("baseline-training");
    group.sample_size(10);
    // Gradient steps per run: one per iteration at each of the 21 transitions.
    group.throughput(Throughput::Elements((ITERATIONS * 21) as u64));
    for backend in Backend::ALL {
        if backend.device().is_err() {
            eprintln!("skipping {}: no device", backend.name());
            continue;
        }
        group.bench_with_input(BenchmarkId::from_parameter(backend.name()), &backend, |b, &backend| {
            b.iter(|| black_box(train_gmm(&setup, KernelChoice::Exact, &small_config(backend), &NoProgress).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, forward, training);
criterion_main!(benches);
