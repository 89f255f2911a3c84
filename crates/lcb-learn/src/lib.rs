//! Learned Chernoff baselines (placeholder while the crate is built).
