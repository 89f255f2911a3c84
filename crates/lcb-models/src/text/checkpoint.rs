//! Checkpoint directories of the text denoiser.
//!
//! A directory contains `checkpoint.json` (the manifest), the weights in burn's
//! burnpack format, and during training the optimizer state and a
//! human-readable `loss.csv`. Data files carry the training step in their
//! names and are written (to a temporary file, flushed, renamed) before the
//! manifest that names them, so the manifest always refers to complete
//! files: a run killed at any point leaves the previous checkpoint usable.
//! The manifest records each file's length and FNV-1a checksum, so a file
//! that does not belong to it is rejected on load.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::text::error::CheckpointError;
use crate::text::tokenizer::CharTokenizer;
use crate::text::train::TrainingRecord;
use crate::text::transformer::DenoiserConfig;

/// Version of the manifest layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a checkpoint directory.
pub const MANIFEST_FILE: &str = "checkpoint.json";
/// File name of the loss log (CSV) inside a training directory.
pub const LOSS_LOG_FILE: &str = "loss.csv";

/// A data file of a checkpoint and the length and checksum it must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInfo {
    /// Plain file name inside the checkpoint directory.
    pub file: String,
    pub bytes: u64,
    /// FNV-1a 64-bit hash of the file, as 16 hex digits.
    pub fnv1a64: String,
}

impl FileInfo {
    pub fn of(file: &str, bytes: &[u8]) -> Self {
        Self {
            file: file.to_string(),
            bytes: bytes.len() as u64,
            fnv1a64: fnv1a64_hex(bytes),
        }
    }
}

/// The JSON manifest of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub tokenizer: CharTokenizer,
    pub model: DenoiserConfig,
    pub weights: FileInfo,
    /// Present in directories written by training; absent for a bare model.
    pub training: Option<TrainingRecord>,
}

impl Manifest {
    /// Checks that the model fits the tokenizer and that file names are plain.
    pub fn validate(&self) -> Result<(), String> {
        if self.model.vocab_size != self.tokenizer.vocab_size() {
            return Err(format!(
                "the model predicts {} tokens but the tokenizer has {}",
                self.model.vocab_size,
                self.tokenizer.vocab_size()
            ));
        }
        self.model.validate().map_err(|err| err.to_string())?;
        let mut files = vec![&self.weights];
        if let Some(optimizer) = self.training.as_ref().and_then(|t| t.optimizer.as_ref()) {
            files.push(optimizer);
        }
        for info in files {
            let name = &info.file;
            if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
                return Err(format!("file name {name:?} is not a plain file name"));
            }
        }
        Ok(())
    }
}

/// Reads and checks the manifest of the checkpoint in `dir`.
///
/// # Errors
/// A missing, unreadable or invalid manifest, or one of another format version.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CheckpointError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = read_file(&path)?;
    parse_manifest(&bytes, &path)
}

/// Parses manifest bytes; `path` names them in errors.
pub fn parse_manifest(bytes: &[u8], path: &Path) -> Result<Manifest, CheckpointError> {
    let corrupt = |message: String| CheckpointError::CorruptManifest {
        path: path.to_path_buf(),
        message,
    };
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| corrupt(err.to_string()))?;
    let version = json
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("format_version is missing".to_string()))?;
    if version != u64::from(FORMAT_VERSION) {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: u32::try_from(version).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_value(json).map_err(|err| corrupt(err.to_string()))?;
    manifest.validate().map_err(corrupt)?;
    Ok(manifest)
}

/// Reads the data file `info` of the checkpoint in `dir` and checks its
/// length and checksum.
pub fn read_checked(dir: &Path, info: &FileInfo) -> Result<Vec<u8>, CheckpointError> {
    let path = dir.join(&info.file);
    let bytes = read_file(&path)?;
    check_bytes(&bytes, info, &path)?;
    Ok(bytes)
}

/// Checks `bytes` against the length and checksum in `info`.
pub fn check_bytes(bytes: &[u8], info: &FileInfo, path: &Path) -> Result<(), CheckpointError> {
    let checksum = fnv1a64_hex(bytes);
    if bytes.len() as u64 != info.bytes || checksum != info.fnv1a64 {
        return Err(CheckpointError::CorruptFile {
            path: path.to_path_buf(),
            expected: format!("{} bytes with FNV-1a {}", info.bytes, info.fnv1a64),
            actual: format!("{} bytes with FNV-1a {checksum}", bytes.len()),
        });
    }
    Ok(())
}

/// Writes the manifest of `dir` atomically.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<PathBuf, CheckpointError> {
    let path = dir.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(manifest).map_err(|err| CheckpointError::CorruptManifest {
        path: path.clone(),
        message: format!("serialising failed: {err}"),
    })?;
    write_atomic(dir, &path, &json)?;
    Ok(path)
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::NotFound { path: path.to_path_buf() }
        } else {
            CheckpointError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Creates `dir` and its parents if they are missing.
pub(crate) fn create_dir(dir: &Path) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
        action: "create the directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` atomically (see [`lcb_learn::files::write_atomic`]).
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    lcb_learn::files::write_atomic(dir, path, bytes).map_err(|err| CheckpointError::Io {
        action: err.action,
        path: path.to_path_buf(),
        source: err.source,
    })
}

pub use lcb_learn::files::fnv1a64_hex;
