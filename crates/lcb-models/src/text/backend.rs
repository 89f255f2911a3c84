//! The tensor backend of the text denoiser: the same [`lcb_learn::Backend`]
//! that trains baselines, so one process initialises wgpu only once.

pub use lcb_learn::Backend;

use crate::text::error::TextError;

impl From<lcb_learn::LearnError> for TextError {
    fn from(error: lcb_learn::LearnError) -> Self {
        match error {
            lcb_learn::LearnError::WgpuUnavailable { reason } => TextError::WgpuUnavailable { reason },
            other => TextError::Backend {
                message: other.to_string(),
            },
        }
    }
}
