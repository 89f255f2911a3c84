//! Errors of experiment runs and report writing.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Sample(#[from] lcb_core::SampleError),

    #[error(transparent)]
    Model(#[from] lcb_models::ModelError),

    #[error("method {method} needs {what}")]
    MissingInput { method: String, what: &'static str },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Learn(#[from] lcb_learn::LearnError),

    #[error(transparent)]
    Checkpoint(#[from] lcb_learn::CheckpointError),

    #[error(transparent)]
    Text(#[from] lcb_models::text::TextError),

    #[error(transparent)]
    Plot(#[from] crate::plots::PlotError),

    #[error("invalid {name} = {value}: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("{what}: {source}")]
    Component {
        what: &'static str,
        #[source]
        source: lcb_core::ComponentError,
    },

    #[error("unknown method {0:?}; available: {1}")]
    UnknownMethod(String, String),
}
