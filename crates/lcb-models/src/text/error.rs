//! Errors of the text models, their training and their rewards.

use std::path::PathBuf;

use lcb_core::{ComponentError, SampleError};
use thiserror::Error;

/// Errors of tokenizers, kernels, the denoiser, training and checkpoints.
#[derive(Debug, Error)]
pub enum TextError {
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidConfig {
        name: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("invalid tokenizer: {0}")]
    InvalidTokenizer(String),

    #[error("character {character:?} is not in the tokenizer's alphabet (text {text:?})")]
    UnknownCharacter { character: char, text: String },

    #[error("text of {chars} characters is longer than the sequence length {max}: {text:?}")]
    TextTooLong { chars: usize, max: usize, text: String },

    #[error("invalid reveal schedule: {0}")]
    InvalidSchedule(String),

    #[error("invalid finite language: {0}")]
    InvalidLanguage(String),

    #[error("no sequence of the language agrees with the unmasked tokens of state {state:?}")]
    Inconsistent { state: Vec<u32> },

    #[error("the reward failed: {source}")]
    Reward {
        #[source]
        source: ComponentError,
    },

    #[error("token id {id} at row {row}, position {position} is outside the model's input vocabulary 0..={mask_id}")]
    TokenOutOfRange {
        id: u32,
        row: usize,
        position: usize,
        mask_id: u32,
    },

    #[error(
        "the denoiser returned NaN or infinite logits at position {position} (or none finite outside the mask); \
         check the model's weights"
    )]
    NonFiniteLogits { position: usize },

    #[error("shape mismatch in {what}: expected {expected}, got {actual}")]
    Shape {
        what: &'static str,
        expected: usize,
        actual: usize,
    },

    #[error(
        "the wgpu backend found no usable adapter: {reason}. Install a Vulkan driver \
         (on Debian or Ubuntu: apt-get install mesa-vulkan-drivers) or choose the flex or ndarray backend"
    )]
    WgpuUnavailable { reason: String },

    #[error("the tensor backend failed: {message}")]
    Backend { message: String },

    #[error("reading {what} back from the {backend} device failed: {message}")]
    TensorRead {
        what: &'static str,
        backend: &'static str,
        message: String,
    },

    #[error("the corpus {} has no usable texts: {reason}", path.display())]
    EmptyCorpus { path: PathBuf, reason: String },

    #[error(
        "training diverged at step {step}: the loss is {value}; lower the learning rate or check the corpus"
    )]
    Diverged { step: usize, value: f64 },

    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),

    #[error(transparent)]
    Sample(#[from] SampleError),
}

/// Errors of saving and loading a model or training checkpoint. Every
/// variant names the file.
#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} not found; train a model with `lcb-cli model train --out DIR` first", path.display())]
    NotFound { path: PathBuf },

    #[error("checkpoint manifest {} is invalid: {message}", path.display())]
    CorruptManifest { path: PathBuf, message: String },

    #[error("checkpoint manifest {} has format version {found}, but this build reads version {supported}", path.display())]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },

    #[error("{} does not match its manifest: expected {expected}, found {actual}; the file is truncated, corrupt or from another checkpoint", path.display())]
    CorruptFile {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("cannot load the tensors of {}: {message}", path.display())]
    InvalidTensors { path: PathBuf, message: String },

    #[error(
        "{} already holds a training checkpoint at step {step}; pass --resume to continue it or choose another output directory",
        dir.display()
    )]
    AlreadyExists { dir: PathBuf, step: usize },

    #[error("cannot resume the checkpoint in {}: {reason}", dir.display())]
    CannotResume { dir: PathBuf, reason: String },
}
