//! Learned Chernoff baselines for mixture experiments: training on a
//! preset or config and loading checkpoints that must match it.

use std::path::Path;

use lcb_core::{Kernel, Progress};
use lcb_learn::{CheckpointExpectations, CheckpointInfo, TrainConfig, TrainedBaseline};
use lcb_models::gmm::{GmmConfig, GmmSetup};

use crate::error::BenchError;
use crate::gmm::KernelChoice;

/// Returns the identifier a checkpoint stores for the model it was trained
/// on: the kernel, the reward, the schedule and a hash of the whole
/// experiment. Temperature and tail level are stored and checked on their
/// own. The readable parts show which setting differs on a mismatch.
pub fn model_id(config: &GmmConfig, kernel: KernelChoice) -> String {
    let mut model = config.clone();
    model.alpha = 1.0;
    model.delta = 0.1;
    let reward = serde_json::to_string(&config.reward).unwrap_or_default();
    let schedule = serde_json::to_string(&config.schedule).unwrap_or_default();
    format!(
        "gmm {kernel} kernel; {} components in {} dimensions; reward {reward}; schedule {schedule}; hash {}",
        config.mixture.weights.len(),
        config.mixture.means.first().map_or(0, Vec::len),
        model.fingerprint()
    )
}

fn kernel_of(setup: &GmmSetup, kernel: KernelChoice) -> &dyn Kernel<Elem = f64> {
    match kernel {
        KernelChoice::Exact => &setup.exact,
        KernelChoice::Ddpm => &setup.ddpm,
    }
}

/// Trains a baseline for `setup` on `kernel` with the exact soft value.
/// The envelope is capped at `r_max / alpha` when the reward is bounded,
/// and `delta` comes from the setup.
pub fn train_gmm(
    setup: &GmmSetup,
    kernel: KernelChoice,
    config: &TrainConfig,
    progress: &dyn Progress,
) -> Result<TrainedBaseline, BenchError> {
    let mut config = config.clone();
    config.delta = setup.delta;
    if config.envelope_cap.is_none() {
        config.envelope_cap = setup.reward.reward.bound().map(|r| r / setup.alpha);
    }
    Ok(lcb_learn::train(kernel_of(setup, kernel), &setup.value, &config, progress)?)
}

/// Saves a trained baseline with the identity of its experiment.
pub fn save_gmm(
    dir: &Path,
    trained: &TrainedBaseline,
    config: &GmmConfig,
    setup: &GmmSetup,
    kernel: KernelChoice,
) -> Result<(), BenchError> {
    let info = CheckpointInfo {
        model_id: model_id(config, kernel),
        alpha: setup.alpha,
    };
    trained.save(dir, &info)?;
    Ok(())
}

/// Loads a baseline and checks that it was trained for this experiment,
/// kernel and temperature.
pub fn load_gmm(
    dir: &Path,
    config: &GmmConfig,
    setup: &GmmSetup,
    kernel: KernelChoice,
) -> Result<TrainedBaseline, BenchError> {
    let steps = kernel_of(setup, kernel).steps();
    let expected = CheckpointExpectations {
        model_id: model_id(config, kernel),
        alpha: setup.alpha,
        width: setup.diffusion.dim(),
        steps,
    };
    Ok(TrainedBaseline::load(dir, &expected)?)
}
