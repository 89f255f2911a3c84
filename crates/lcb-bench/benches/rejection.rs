//! Kernel proposals per second across dimensions, and the cost that
//! envelope rejection adds per accepted sample.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lcb_core::{ComponentResult, GlobalBound, Guide, Kernel, Lane, Limits, Stream, Value, advance};
use lcb_models::gmm::GmmConfig;

const BATCH: usize = 8192;

/// Exact-kernel proposals per second at `t = 10` of the paper preset lifted
/// to `d` dimensions (kernel only, no value).
fn kernel_by_dimension(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel-proposals");
    group.throughput(Throughput::Elements(BATCH as u64));
    for d in [2usize, 16, 64] {
        let setup = GmmConfig::paper_in(d).unwrap().build(0.2).unwrap();
        let parents: Vec<f64> = (0..32 * d).map(|i| 0.01 * (i % 97) as f64 - 0.4).collect();
        let parent_of: Vec<usize> = (0..BATCH).map(|r| r / 256).collect();
        let mut out = vec![0.0; BATCH * d];
        let mut round = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(format!("d={d}")), &d, |b, _| {
            b.iter(|| {
                round += 1;
                let mut rngs: Vec<Stream> = (0..BATCH as u64)
                    .map(|j| Stream::at(1, j / 256, 10, round * 256 + j % 256, Lane::Kernel))
                    .collect();
                setup.exact.propose(10, &parents, &parent_of, &mut rngs, &mut out).unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// A value of 0 everywhere: with envelope 0 every proposal is accepted, so
/// `advance` costs one proposal per sample plus its own bookkeeping.
struct Zero;

impl Value for Zero {
    type Elem = f64;
    fn log_values(&self, _t: usize, _states: &[f64], out: &mut [f64]) -> ComponentResult {
        out.fill(0.0);
        Ok(())
    }
}

/// Per accepted sample: `advance` (streams, envelope, acceptance test,
/// copies) against the bare kernel-plus-value call it wraps, both on one
/// thread.
fn rejection_overhead(c: &mut Criterion) {
    let setup = GmmConfig::paper().build(0.2).unwrap();
    let parents: Vec<f64> = (0..BATCH).flat_map(|i| [0.001 * i as f64 - 4.0, 0.3]).collect();
    let particles: Vec<u64> = (0..BATCH as u64).collect();
    let bound = GlobalBound::new(0.0).unwrap();
    let guide = Guide {
        value: &Zero,
        envelope: &bound,
    };
    let limits = Limits::default();

    let mut group = c.benchmark_group("rejection-overhead");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut seed = 0u64;
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    group.bench_function("advance (accept all)", |b| {
        b.iter(|| {
            seed += 1;
            one_thread.install(|| {
                black_box(advance(&setup.exact, Some(guide), 10, &parents, &particles, seed, &limits).unwrap())
            })
        })
    });
    let parent_of: Vec<usize> = (0..BATCH).collect();
    let mut out = vec![0.0; BATCH * 2];
    let mut values = vec![0.0; BATCH];
    group.bench_function("kernel + value only", |b| {
        b.iter(|| {
            seed += 1;
            let mut rngs: Vec<Stream> = (0..BATCH as u64).map(|j| Stream::at(seed, j, 10, 0, Lane::Kernel)).collect();
            setup.exact.propose(10, &parents, &parent_of, &mut rngs, &mut out).unwrap();
            Zero.log_values(9, &out, &mut values).unwrap();
            black_box(&values);
        })
    });
    group.finish();
}

criterion_group!(benches, kernel_by_dimension, rejection_overhead);
criterion_main!(benches);
