//! Checks of the mixture model's closed forms against Monte Carlo and
//! against each other.

use lcb_core::special::normal_cdf;
use lcb_core::stats::ks_one_sample;
use lcb_core::{BallBound, Kernel, Lane, Stream, Value};
use lcb_models::gmm::GmmConfig;

fn draw(kernel: &dyn Kernel<Elem = f64>, t: usize, parent: &[f64], n: usize, seed: u64) -> Vec<f64> {
    let parent_of = vec![0; n];
    let mut rngs: Vec<Stream> = (0..n as u64).map(|j| Stream::at(seed, 0, t, j, Lane::Kernel)).collect();
    let mut out = vec![0.0; n * kernel.width()];
    kernel.propose(t, parent, &parent_of, &mut rngs, &mut out).unwrap();
    out
}

#[test]
fn value_recursion_holds_for_exact_kernel() {
    // exp V_t(y) = E_{x ~ p_t(.|y)} exp V_{t-1}(x). With n = 200k proposals the
    // Monte Carlo mean of exp(V_{t-1} - V_t) (= 1 in expectation) has a
    // relative standard error of sd / sqrt(n); 5 standard errors plus 1e-3 is
    // the tolerance.
    for config in [GmmConfig::paper(), GmmConfig::aniso_4d()] {
        let setup = config.build(0.5).unwrap();
        let d = setup.exact.width();
        for (t, parent) in [(3usize, vec![-2.0; d]), (10, vec![0.5; d]), (1, vec![-6.5; d])] {
            let n = 200_000;
            let xs = draw(&setup.exact, t, &parent, n, 11);
            let mut prev = vec![0.0; n];
            setup.value.log_values(t - 1, &xs, &mut prev).unwrap();
            let mut now = [0.0];
            setup.value.log_values(t, &parent, &mut now).unwrap();
            let ratios: Vec<f64> = prev.iter().map(|v| (v - now[0]).exp()).collect();
            let (mean, se) = lcb_core::stats::mean_and_stderr(&ratios);
            assert!(
                (mean - 1.0).abs() < 5.0 * se + 1e-3,
                "t = {t}: E[exp(V_t-1 - V_t)] = {mean} +- {se}"
            );
        }
    }
}

#[test]
fn root_value_is_log_normalizer() {
    let setup = GmmConfig::paper().build(0.2).unwrap();
    assert!((setup.value.log_normalizer() - setup.target.log_normalizer()).abs() < 1e-12);
    // Under the exact kernel the prior is the noised mixture at T, so
    // E exp V_T(x_T) = Z as well.
    let n = 400_000;
    let steps = setup.exact.steps();
    let xs = draw(&setup.exact, steps, &[0.0, 0.0], n, 3);
    let mut v = vec![0.0; n];
    setup.value.log_values(steps - 1, &xs, &mut v).unwrap();
    let ratios: Vec<f64> = v.iter().map(|v| (v - setup.value.log_normalizer()).exp()).collect();
    let (mean, se) = lcb_core::stats::mean_and_stderr(&ratios);
    assert!((mean - 1.0).abs() < 5.0 * se + 1e-3, "{mean} +- {se}");
}

#[test]
fn exact_base_chain_reproduces_data() {
    // With no tilt the exact kernel's x_0 is the data mixture; KS at n = 4000
    // on the first coordinate, p > 1e-3.
    let setup = GmmConfig::aniso_4d().build(1.0).unwrap();
    let kernel = &setup.exact;
    let d = kernel.width();
    let n = 4000;
    let mut states = vec![0.0; n * d];
    for t in (1..=kernel.steps()).rev() {
        let parent_of: Vec<usize> = (0..n).collect();
        let mut rngs: Vec<Stream> = (0..n as u64).map(|i| Stream::at(5, i, t, 0, Lane::Kernel)).collect();
        let mut next = vec![0.0; n * d];
        kernel.propose(t, &states, &parent_of, &mut rngs, &mut next).unwrap();
        states = next;
    }
    let first: Vec<f64> = states.chunks_exact(d).map(|x| x[0]).collect();
    let mixture = setup.diffusion.mixture();
    let cdf = |a: f64| {
        (0..mixture.components())
            .map(|k| mixture.weights()[k] * normal_cdf((a - mixture.mean(k)[0]) / mixture.covariance(k)[(0, 0)].sqrt()))
            .sum::<f64>()
    };
    let ks = ks_one_sample(&first, cdf).unwrap();
    assert!(ks.pvalue > 1e-3, "{ks:?}");
}

#[test]
fn target_samples_match_target_cdf() {
    for (config, alpha) in [(GmmConfig::paper(), 0.2), (GmmConfig::aniso_4d(), 0.5)] {
        let setup = config.build(alpha).unwrap();
        let d = setup.exact.width();
        let xs = setup.target.sample(5000, 9);
        for coordinate in 0..d.min(2) {
            let column: Vec<f64> = xs.chunks_exact(d).map(|x| x[coordinate]).collect();
            let ks = ks_one_sample(&column, |a| setup.target.coordinate_cdf(coordinate, a)).unwrap();
            assert!(ks.pvalue > 1e-3, "coordinate {coordinate}: {ks:?}");
        }
        let mut rewards = vec![0.0; 5000];
        lcb_core::Reward::rewards(&setup.reward, &xs, &mut rewards).unwrap();
        let (mean, se) = lcb_core::stats::mean_and_stderr(&rewards);
        assert!((mean - setup.target.reward_mean()).abs() < 4.0 * se.max(1e-3), "{mean} +- {se}");
    }
}

#[test]
fn ball_bound_dominates_value_inside_ball() {
    for config in [GmmConfig::paper(), GmmConfig::aniso_4d()] {
        let setup = config.build(0.3).unwrap();
        let d = setup.exact.width();
        let mut log_g = vec![0.0; 3];
        for t in [0usize, 1, 2, 5, 12, 20] {
            for c in 0..20u64 {
                let mut rng = Stream::at(1, c, t, 0, Lane::Kernel);
                let center: Vec<f64> = (0..d).map(|_| 8.0 * rng.uniform_open() - 4.0 - 3.0 * (c % 2) as f64).collect();
                let radius = 0.2 + 2.0 * rng.uniform_open();
                let bound = setup.value.ball_upper_bound(t, &center, radius);
                for _ in 0..200 {
                    let dir: Vec<f64> = (0..d).map(|_| rng.uniform_open() - 0.5).collect();
                    let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
                    let scale = radius * rng.uniform_open() / norm;
                    let x: Vec<f64> = center.iter().zip(&dir).map(|(c, v)| c + scale * v).collect();
                    let v = setup.value.log_value(t, &x, &mut log_g);
                    assert!(v <= bound + 1e-9, "t = {t}: V = {v} above bound {bound}");
                }
            }
        }
    }
}

#[test]
fn invalid_alpha_is_named() {
    for alpha in [0.0, -1.0, f64::NAN] {
        let err = GmmConfig::paper().build(alpha).unwrap_err();
        assert!(err.to_string().contains("alpha"), "{err}");
    }
}
