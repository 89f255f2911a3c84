//! Errors of training, inference and checkpoints.

use std::path::PathBuf;

use lcb_core::SampleError;
use thiserror::Error;

/// Errors of baseline training and inference.
#[derive(Debug, Error)]
pub enum LearnError {
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidConfig {
        name: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error(
        "failed to initialise the wgpu backend: {reason}. Without a GPU, install a Vulkan driver \
         (on Debian or Ubuntu: apt-get install mesa-vulkan-drivers) or choose the flex or ndarray backend"
    )]
    WgpuUnavailable { reason: String },

    #[error("the kernel has {what} = 0; a baseline needs states of width >= 1 and at least one transition")]
    EmptyKernel { what: &'static str },

    #[error(
        "training diverged at step {step}, iteration {iteration}: the objective J is {value}; \
         lower the learning rate or check the value estimates for extreme magnitudes"
    )]
    Diverged { step: usize, iteration: usize, value: f64 },

    #[error("the baseline network returned {value} at row {index} for step {step}; the weights are not finite")]
    NonFiniteBaseline { step: usize, index: usize, value: f64 },

    #[error("reading {what} back from the {backend} device failed: {message}")]
    TensorRead {
        what: &'static str,
        backend: &'static str,
        message: String,
    },

    #[error(transparent)]
    Sample(#[from] SampleError),

    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Errors of saving and loading a checkpoint. Every variant names the file.
#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("checkpoint file {} not found; save a trained baseline there first or pass the directory that contains manifest.json", path.display())]
    NotFound { path: PathBuf },

    #[error("checkpoint manifest {} is truncated or corrupt ({message}); re-run `lcb-cli train` to write it again", path.display())]
    CorruptManifest { path: PathBuf, message: String },

    #[error(
        "checkpoint manifest {} has format version {found}, but this build reads version {supported}; \
         retrain the baseline or load it with the lcb version that wrote it",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },

    #[error(
        "checkpoint {} was trained for {field} = {found}, but {expected} was requested; \
         train a baseline for this setting or load the checkpoint that matches it",
        path.display()
    )]
    Mismatch {
        path: PathBuf,
        field: &'static str,
        expected: String,
        found: String,
    },

    #[error(
        "checkpoint weights {} are truncated: the manifest records {expected} bytes, the file has {actual}; \
         re-run `lcb-cli train` to write it again",
        path.display()
    )]
    TruncatedWeights { path: PathBuf, expected: u64, actual: u64 },

    #[error(
        "checkpoint weights {} are corrupt: FNV-1a checksum {actual} does not match {expected} in the manifest; \
         re-run `lcb-cli train` to write it again",
        path.display()
    )]
    CorruptWeights {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("checkpoint weights {} do not fit the network in the manifest ({message}); re-run `lcb-cli train` to write it again", path.display())]
    InvalidWeights { path: PathBuf, message: String },

    #[error("checkpoint manifest {} is inconsistent: {message}; re-run `lcb-cli train` to write it again", path.display())]
    Inconsistent { path: PathBuf, message: String },

    #[error("invalid {name} = {value} for checkpoint {}: expected {expected}", path.display())]
    InvalidArgument {
        path: PathBuf,
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}
