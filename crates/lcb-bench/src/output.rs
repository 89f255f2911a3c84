//! Atomic writes of samples (CSV) and run records (JSON).

use std::path::Path;

use lcb_core::RunRecord;

use crate::error::BenchError;

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder, synced, then renamed over the target, so a reader never sees a
/// half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    let to_error = |source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(to_error)?;
    lcb_learn::files::write_atomic(dir, path, bytes).map_err(|err| to_error(err.source))?;
    Ok(())
}

/// Samples as CSV: a header `x1,...,xd,reward`, then one row per sample with
/// every number in its shortest exact decimal form.
pub fn samples_csv(states: &[f64], width: usize, rewards: &[f64]) -> String {
    let mut text = String::new();
    for i in 1..=width {
        text.push_str(&format!("x{i},"));
    }
    text.push_str("reward\n");
    for (x, r) in states.chunks_exact(width).zip(rewards) {
        for v in x {
            text.push_str(&format!("{v},"));
        }
        text.push_str(&format!("{r}\n"));
    }
    text
}

/// Writes a run record as pretty JSON.
pub fn write_record(path: &Path, record: &RunRecord) -> Result<(), BenchError> {
    let mut text = serde_json::to_string_pretty(record).expect("run records serialise");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}
