//! Unconditional samples from a text denoiser (the base model, no reward).

use lcb_core::{Kernel, Limits, Progress, advance};

use crate::text::denoiser::Denoiser;
use crate::text::error::TextError;
use crate::text::model::TextModel;
use crate::text::step_kernel::{StepKernel, StepKernelConfig};

/// Settings of a generation run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateOptions {
    pub samples: usize,
    /// Sample `i` uses the kernel streams of particle `i` under this seed,
    /// so the output does not depend on thread count or batch size.
    pub seed: u64,
    pub kernel: StepKernelConfig,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            samples: 8,
            seed: 0,
            kernel: StepKernelConfig::default(),
        }
    }
}

/// Runs the step kernel from the all-mask root to `x_0` for every sample and
/// returns the token rows, `[samples, seq_len]`. `progress.advance` is
/// called after every transition.
pub fn generate_tokens<D: Denoiser>(
    denoiser: D,
    options: &GenerateOptions,
    progress: &dyn Progress,
) -> Result<Vec<u32>, TextError> {
    let kernel = StepKernel::new(denoiser, &options.kernel)?;
    let width = kernel.width();
    let steps = kernel.steps();
    let mut root = vec![0; width];
    kernel.root(&mut root);
    let mut states: Vec<u32> = root.iter().copied().cycle().take(width * options.samples).collect();
    let particles: Vec<u64> = (0..options.samples as u64).collect();
    for t in (1..=steps).rev() {
        let outcome = advance(&kernel, None, t, &states, &particles, options.seed, &Limits::default())?;
        states = outcome.children;
        progress.advance(steps - t + 1, steps);
    }
    Ok(states)
}

/// Generates `options.samples` texts with `model`, decoded with its tokenizer.
pub fn generate(model: &TextModel, options: &GenerateOptions, progress: &dyn Progress) -> Result<Vec<String>, TextError> {
    let width = model.seq_len();
    let tokens = generate_tokens(model, options, progress)?;
    Ok(tokens
        .chunks_exact(width)
        .map(|row| model.tokenizer().decode(row))
        .collect())
}
