//! Errors raised while building models from parameters or config files.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },

    #[error("covariance of component {component} is not positive definite ({detail}); give a symmetric matrix with positive eigenvalues")]
    NotPositiveDefinite { component: usize, detail: String },

    #[error("dimension mismatch in {what}: expected {expected}, got {actual}")]
    Dimension {
        what: String,
        expected: usize,
        actual: usize,
    },

    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },

    #[error(transparent)]
    Sample(#[from] lcb_core::SampleError),
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ModelError {
    ModelError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}
