//! Per-step value-guided selection (being written).
