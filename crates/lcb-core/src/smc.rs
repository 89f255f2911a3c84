//! Sequential Monte Carlo with value-based incremental weights (being written).
