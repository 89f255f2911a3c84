//! The interface of a masked-diffusion denoiser.

use std::sync::Arc;

use lcb_core::ComponentResult;

/// A model that predicts, for every position of a batch of partially masked
/// sequences, a categorical distribution over the clean token there.
///
/// Logits cover token ids `0..vocab_size()`. The mask id may lie inside that
/// range (as in LLaDA, whose vocabulary contains its mask token) or outside
/// it. Samplers never draw the mask id.
pub trait Denoiser: Sync {
    /// Number of token ids the logits cover.
    fn vocab_size(&self) -> usize;

    /// Id of the mask token.
    fn mask_id(&self) -> u32;

    /// Length of the sequences the denoiser reads.
    fn seq_len(&self) -> usize;

    /// Writes the logits of every position of every sequence.
    ///
    /// # Shapes
    /// `tokens: [rows, seq_len]`, `out: [rows, seq_len, vocab_size]`.
    fn logits(&self, tokens: &[u32], out: &mut [f32]) -> ComponentResult;
}

impl<D: Denoiser + ?Sized> Denoiser for &D {
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }

    fn mask_id(&self) -> u32 {
        (**self).mask_id()
    }

    fn seq_len(&self) -> usize {
        (**self).seq_len()
    }

    fn logits(&self, tokens: &[u32], out: &mut [f32]) -> ComponentResult {
        (**self).logits(tokens, out)
    }
}

impl<D: Denoiser + ?Sized + Send> Denoiser for Arc<D> {
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }

    fn mask_id(&self) -> u32 {
        (**self).mask_id()
    }

    fn seq_len(&self) -> usize {
        (**self).seq_len()
    }

    fn logits(&self, tokens: &[u32], out: &mut [f32]) -> ComponentResult {
        (**self).logits(tokens, out)
    }
}
