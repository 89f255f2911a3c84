//! The same training run on ndarray, flex and wgpu.

mod common;

use common::{LinearValue, RandomWalk};
use lcb_core::NoProgress;
use std::process::Command;

use lcb_learn::{Backend, LearnError, NetworkConfig, TrainConfig, TrainedBaseline, train};

fn train_on(backend: Backend) -> Result<TrainedBaseline, LearnError> {
    let kernel = RandomWalk {
        width: 2,
        steps: 4,
        sigma: 1.0,
    };
    let value = LinearValue {
        width: 2,
        w: 0.5,
        sigma: 1.0,
        alpha: 1.0,
    };
    let config = TrainConfig {
        particles: 256,
        iterations_per_step: 8,
        learning_rate: 1e-2,
        network: NetworkConfig {
            hidden: vec![16, 16],
            time_frequencies: 2,
            tokens: None,
        },
        seed: 4,
        backend,
        ..TrainConfig::default()
    };
    train(&kernel, &value, &config, &NoProgress)
}

/// Largest difference between two runs, relative to `max(1, |x|)`.
fn largest_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
        .fold(0.0, f64::max)
}

#[test]
fn backends_follow_same_loss_trajectory() {
    let reference = train_on(Backend::Ndarray).unwrap();
    let mut others = vec![(Backend::Flex, train_on(Backend::Flex).unwrap())];
    match train_on(Backend::Wgpu) {
        Ok(run) => others.push((Backend::Wgpu, run)),
        Err(err @ LearnError::WgpuUnavailable { .. }) => {
            eprintln!("NOTE: skipping the wgpu comparison: {err}");
        }
        Err(err) => panic!("wgpu training failed: {err}"),
    }

    // Every run starts from the same weights and draws the same proposals,
    // so only f32 rounding differs. Adam divides by the root mean square of
    // the gradient, which magnifies rounding in near-zero gradients, so the
    // runs drift apart slowly. Measured gaps are about 3e-4 for the losses
    // and 5e-3 for tau, which reacts most to the largest scores.
    let losses = reference.loss_trajectory();
    assert_eq!(losses.len(), 4 * 8);
    for (backend, run) in &others {
        let loss_gap = largest_difference(&losses, &run.loss_trajectory());
        let tau_gap = largest_difference(&reference.tau, &run.tau);
        let lambda_gap = largest_difference(&reference.lambda, &run.lambda);
        eprintln!("{backend}: loss {loss_gap:.2e}, tau {tau_gap:.2e}, lambda {lambda_gap:.2e}");
        assert!(loss_gap < 1e-3, "{backend}: loss trajectory differs by {loss_gap}");
        assert!(tau_gap < 2e-2, "{backend}: tau differs by {tau_gap}");
        assert!(lambda_gap < 1e-3, "{backend}: lambda differs by {lambda_gap}");
    }
}

/// Set in the child process of `wgpu_without_adapter_is_clear_error`.
const NO_ADAPTER_CHILD: &str = "LCB_LEARN_NO_ADAPTER_CHILD";

#[test]
fn wgpu_without_adapter_is_clear_error() {
    if std::env::var_os(NO_ADAPTER_CHILD).is_some() {
        match Backend::Wgpu.device() {
            Err(err @ LearnError::WgpuUnavailable { .. }) => {
                let message = err.to_string();
                assert!(message.contains("no adapter"), "{message}");
                assert!(message.contains("mesa-vulkan-drivers"), "{message}");
                assert!(message.contains("flex or ndarray"), "{message}");
            }
            Err(other) => panic!("expected WgpuUnavailable, got {other}"),
            Ok(_) => eprintln!("NOTE: an adapter was found even with the Vulkan and EGL drivers hidden"),
        }
        return;
    }

    // The wgpu runtime initialises once per process, so the check runs in a
    // child whose Vulkan loader and EGL dispatcher find no driver files
    // (the variables are read by the Linux Vulkan loader and libglvnd).
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "wgpu_without_adapter_is_clear_error", "--nocapture"])
        .env(NO_ADAPTER_CHILD, "1")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn fit_value_on(backend: Backend) -> Result<lcb_learn::TrainedValue, LearnError> {
    let kernel = RandomWalk {
        width: 4,
        steps: 3,
        sigma: 1.0,
    };
    let value = LinearValue {
        width: 4,
        w: 0.5,
        sigma: 1.0,
        alpha: 1.0,
    };
    // Token input over rows of 2 positions with 2 classes: the random walk's
    // rows are not one-hot, but the pooled embeddings' arithmetic is the
    // same, and it is what this test compares across backends.
    let config = lcb_learn::ValueConfig {
        network: NetworkConfig {
            hidden: vec![16],
            time_frequencies: 1,
            tokens: Some(lcb_learn::TokenInput {
                classes: 2,
                embedding: 8,
                window: 2,
            }),
        },
        trajectories: 256,
        epochs: 4,
        batch: 64,
        seed: 2,
        backend,
        ..lcb_learn::ValueConfig::default()
    };
    lcb_learn::fit_value(&kernel, &value, &config, &NoProgress)
}

#[test]
fn value_fit_agrees_across_backends() {
    let reference = fit_value_on(Backend::Ndarray).unwrap();
    let mut others = vec![(Backend::Flex, fit_value_on(Backend::Flex).unwrap())];
    match fit_value_on(Backend::Wgpu) {
        Ok(run) => others.push((Backend::Wgpu, run)),
        Err(err @ LearnError::WgpuUnavailable { .. }) => {
            eprintln!("NOTE: skipping the wgpu comparison: {err}");
        }
        Err(err) => panic!("wgpu value fit failed: {err}"),
    }
    let losses = &reference.history.train_loss;
    assert!(losses.last() < losses.first(), "training loss did not fall: {losses:?}");
    for (backend, run) in &others {
        let gap = largest_difference(losses, &run.history.train_loss);
        eprintln!("{backend}: value loss gap {gap:.2e}");
        assert!(gap < 1e-3, "{backend}: value losses differ by {gap}");
    }
}
