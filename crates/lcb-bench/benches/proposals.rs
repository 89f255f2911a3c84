//! Kernel-plus-value proposals per second on the paper preset, for both
//! kernels: one kernel call and one value call over a batch of proposals,
//! on one thread and split over the rayon pool (all cores).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use lcb_core::{Kernel, Lane, Stream, Value};
use lcb_models::gmm::GmmConfig;

const BATCH: usize = 16_384;

fn bench_kernel(c: &mut Criterion, name: &str, kernel: &dyn Kernel<Elem = f64>, value: &dyn Value<Elem = f64>) {
    let d = kernel.width();
    // 64 parents at t = 10, 256 proposals each.
    let parents: Vec<f64> = (0..64).flat_map(|i| [-2.0 + 0.1 * i as f64, 0.3]).collect();
    let parent_of: Vec<usize> = (0..BATCH).map(|r| r / 256).collect();
    let mut out = vec![0.0; BATCH * d];
    let mut values = vec![0.0; BATCH];
    let mut group = c.benchmark_group("proposals");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut round = 0u64;
    group.bench_function(name, |b| {
        b.iter(|| {
            round += 1;
            let mut rngs: Vec<Stream> = (0..BATCH as u64)
                .map(|j| Stream::at(1, j / 256, 10, round * 256 + j % 256, Lane::Kernel))
                .collect();
            kernel.propose(10, &parents, &parent_of, &mut rngs, &mut out).unwrap();
            value.log_values(9, &out, &mut values).unwrap();
            black_box(&values);
        })
    });
    let threads = rayon::current_num_threads();
    group.bench_function(format!("{name}/{threads}-threads"), |b| {
        b.iter(|| {
            round += 1;
            // Each worker takes whole parents: 8 parents (2048 proposals) a chunk.
            out.par_chunks_mut(2048 * d)
                .zip(values.par_chunks_mut(2048))
                .enumerate()
                .for_each(|(chunk, (out, values))| {
                    let first = chunk * 8;
                    let parent_of: Vec<usize> = (0..2048).map(|r| r / 256).collect();
                    let mut rngs: Vec<Stream> = (0..2048u64)
                        .map(|j| Stream::at(1, first as u64 + j / 256, 10, round * 256 + j % 256, Lane::Kernel))
                        .collect();
                    let parents = &parents[first * d..(first + 8) * d];
                    kernel.propose(10, parents, &parent_of, &mut rngs, out).unwrap();
                    value.log_values(9, out, values).unwrap();
                });
            black_box(&values);
        })
    });
    group.finish();
}

fn proposals(c: &mut Criterion) {
    let setup = GmmConfig::paper().build(0.2).unwrap();
    bench_kernel(c, "paper-gmm/exact", &setup.exact, &setup.value);
    bench_kernel(c, "paper-gmm/ddpm", &setup.ddpm, &setup.value);
}

criterion_group!(benches, proposals);
criterion_main!(benches);
