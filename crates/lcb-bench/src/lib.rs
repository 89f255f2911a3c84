//! The experiment runner: methods side by side on the same seeds, exact
//! metrics against closed-form targets, tables and reports.

pub mod compare;
pub mod error;
pub mod figures;
pub mod gmm;
pub mod learned;
pub mod method;
pub mod output;
pub mod plots;
pub mod scaling;
pub mod suite;
pub mod table;
pub mod text;

pub use error::BenchError;
pub use gmm::{GmmRunOptions, KernelChoice, LearnedLcb, run_gmm};
pub use method::MethodName;
