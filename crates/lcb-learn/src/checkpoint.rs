//! Checkpoints of a trained baseline: the network's weights in burn's
//! burnpack format and a JSON manifest with everything else inference needs.
//!
//! A checkpoint directory contains `manifest.json` and `baseline.bpk`. Both are
//! written to a temporary file in the same directory and renamed into place,
//! weights first, so a reader never sees a half-written file. The manifest
//! records the weights' length and FNV-1a checksum, so a weights file that
//! does not belong to the manifest (truncated, corrupt, or from another
//! save) is rejected on load.
//!
//! NOTE: numbers in the manifest are JSON numbers written in their shortest
//! exact form, but serde_json reads them back without its `float_roundtrip`
//! feature (turning it on rebuilds burn's whole stack), so `tau_t` and
//! `lambda_t` may come back 1 ulp off.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::baseline::NetworkBaseline;
use crate::config::TrainConfig;
use crate::error::CheckpointError;
use crate::network::Normalization;
use crate::trained::{TrainedBaseline, TrainingHistory};

/// Version of the manifest layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a checkpoint directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the burnpack weights inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "baseline.bpk";

/// Caller's record of the problem a baseline was trained for.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// Identifier of the model, reward and value estimate (a name or a
    /// config hash); loading must request the same string.
    pub model_id: String,
    /// KL temperature the values were computed at.
    pub alpha: f64,
}

/// Requirements a loaded checkpoint must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointExpectations {
    pub model_id: String,
    pub alpha: f64,
    /// Width of the kernel's state rows.
    pub width: usize,
    /// Number of transitions `T` of the kernel.
    pub steps: usize,
}

/// The weights file and the length and checksum it must have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsInfo {
    pub file: String,
    pub bytes: u64,
    /// FNV-1a 64-bit hash of the file, as 16 hex digits.
    pub fnv1a64: String,
}

/// The JSON manifest of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub model_id: String,
    pub alpha: f64,
    pub width: usize,
    pub steps: usize,
    /// `lambda[t - 1]` is `lambda_t`.
    pub lambda: Vec<f64>,
    /// `tau[t - 1]` is `tau_t` in log units, from the final calibration pass.
    pub tau: Vec<f64>,
    /// CPU backend the network was evaluated on when `tau_t` was calibrated.
    pub inference_backend: Backend,
    pub normalization: Normalization,
    pub weights: WeightsInfo,
    /// The training settings, including `delta`, the seed, the training
    /// backend and the network shape.
    pub training: TrainConfig,
    pub history: TrainingHistory,
}

impl TrainedBaseline {
    /// Saves the checkpoint into `dir` (created if missing) and returns the
    /// manifest's path.
    ///
    /// # Errors
    /// An invalid `info` or a failed write.
    pub fn save(&self, dir: &Path, info: &CheckpointInfo) -> Result<PathBuf, CheckpointError> {
        if !(info.alpha.is_finite() && info.alpha > 0.0) {
            return Err(CheckpointError::InvalidArgument {
                path: dir.to_path_buf(),
                name: "alpha",
                value: info.alpha.to_string(),
                expected: "a finite temperature > 0",
            });
        }
        let weights = write_weights(dir, WEIGHTS_FILE, &self.network)?;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            model_id: info.model_id.clone(),
            alpha: info.alpha,
            width: self.network.width(),
            steps: self.steps(),
            lambda: self.lambda.clone(),
            tau: self.tau.clone(),
            inference_backend: self.network.backend(),
            normalization: self.network.normalization().clone(),
            weights,
            training: self.config.clone(),
            history: self.history.clone(),
        };
        write_manifest(dir, MANIFEST_FILE, &manifest)
    }

    /// Loads the checkpoint in `dir` for inference on the CPU backend
    /// recorded in its manifest, after checking it against `expected`.
    ///
    /// # Errors
    /// A missing, truncated, corrupt or inconsistent file, or a manifest
    /// whose model id, alpha, width or step count differs from `expected`.
    pub fn load(dir: &Path, expected: &CheckpointExpectations) -> Result<Self, CheckpointError> {
        let manifest = read_manifest(dir)?;
        let backend = manifest.inference_backend;
        load_with_manifest(dir, manifest, expected, backend)
    }

    /// Like [`Self::load`], evaluating the network on the CPU backend `backend`.
    pub fn load_on(dir: &Path, expected: &CheckpointExpectations, backend: Backend) -> Result<Self, CheckpointError> {
        if !backend.is_cpu() {
            return Err(CheckpointError::InvalidArgument {
                path: dir.to_path_buf(),
                name: "inference backend",
                value: backend.to_string(),
                expected: "a CPU backend (ndarray or flex)",
            });
        }
        let manifest = read_manifest(dir)?;
        load_with_manifest(dir, manifest, expected, backend)
    }
}

/// Reads and checks the manifest of the checkpoint in `dir`, without the weights.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CheckpointError> {
    let path = dir.join(MANIFEST_FILE);
    let text = read_file(&path, "read the checkpoint manifest")?;
    let corrupt = |message: String| CheckpointError::CorruptManifest {
        path: path.clone(),
        message,
    };
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|err| corrupt(err.to_string()))?;
    let version = json
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("format_version is missing".to_string()))?;
    if version != u64::from(FORMAT_VERSION) {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.clone(),
            found: u32::try_from(version).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_value(json).map_err(|err| corrupt(err.to_string()))?;
    check_consistency(&manifest).map_err(|message| CheckpointError::Inconsistent {
        path: path.clone(),
        message,
    })?;
    Ok(manifest)
}

fn load_with_manifest(
    dir: &Path,
    manifest: Manifest,
    expected: &CheckpointExpectations,
    backend: Backend,
) -> Result<TrainedBaseline, CheckpointError> {
    check_expectations(&dir.join(MANIFEST_FILE), &manifest, expected)?;

    let weights_path = dir.join(&manifest.weights.file);
    let weights = read_checked_weights(&weights_path, &manifest.weights)?;

    let network = NetworkBaseline::from_burnpack(
        weights,
        &manifest.training.network,
        &manifest.normalization,
        manifest.steps,
        backend,
    )
    .map_err(|err| CheckpointError::InvalidWeights {
        path: weights_path,
        message: err.to_string(),
    })?;
    Ok(TrainedBaseline {
        network,
        lambda: manifest.lambda,
        tau: manifest.tau,
        history: manifest.history,
        config: manifest.training,
    })
}

fn check_consistency(manifest: &Manifest) -> Result<(), String> {
    if manifest.width == 0 || manifest.steps == 0 {
        return Err(format!(
            "width {} and steps {} must be >= 1",
            manifest.width, manifest.steps
        ));
    }
    for (name, table) in [("lambda", &manifest.lambda), ("tau", &manifest.tau)] {
        if table.len() != manifest.steps {
            return Err(format!(
                "{name} has {} entries for {} steps",
                table.len(),
                manifest.steps
            ));
        }
        if let Some(index) = table.iter().position(|x| !x.is_finite()) {
            return Err(format!("{name}[{index}] = {} is not finite", table[index]));
        }
    }
    if let Some(index) = manifest.lambda.iter().position(|&l| l <= 0.0) {
        return Err(format!("lambda[{index}] = {} is not positive", manifest.lambda[index]));
    }
    if !manifest.inference_backend.is_cpu() {
        return Err(format!(
            "inference backend {} is not a CPU backend",
            manifest.inference_backend
        ));
    }
    let file = &manifest.weights.file;
    if file.is_empty() || file.contains(['/', '\\']) || file == "." || file == ".." {
        return Err(format!("weights file name {file:?} is not a plain file name"));
    }
    manifest.normalization.validate(manifest.width)?;
    manifest
        .training
        .validate()
        .map_err(|err| format!("training settings: {err}"))?;
    Ok(())
}

fn check_expectations(
    path: &Path,
    manifest: &Manifest,
    expected: &CheckpointExpectations,
) -> Result<(), CheckpointError> {
    let mismatch = |field: &'static str, expected: String, found: String| {
        Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            field,
            expected,
            found,
        })
    };
    if manifest.model_id != expected.model_id {
        let (expected, found) = model_id_difference(&expected.model_id, &manifest.model_id);
        return mismatch("model id", expected, found);
    }
    if (manifest.alpha - expected.alpha).abs() > 1e-12 * expected.alpha.abs().max(1.0) {
        return mismatch("alpha", expected.alpha.to_string(), manifest.alpha.to_string());
    }
    if manifest.width != expected.width {
        return mismatch("state width", expected.width.to_string(), manifest.width.to_string());
    }
    if manifest.steps != expected.steps {
        return mismatch("steps T", expected.steps.to_string(), manifest.steps.to_string());
    }
    Ok(())
}

/// Formats two different model ids for an error message: in brackets, not
/// Debug quotes, since ids may contain quoted JSON, and reduced to the
/// `; `-separated parts that differ when both have the same parts.
pub(crate) fn model_id_difference(expected: &str, found: &str) -> (String, String) {
    let a: Vec<&str> = expected.split("; ").collect();
    let b: Vec<&str> = found.split("; ").collect();
    if a.len() == b.len() && a.len() > 1 {
        let differing: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        let pick = |parts: &[&str]| {
            let shown: Vec<&str> = differing.iter().map(|&i| parts[i]).collect();
            format!("[{}] (other parts equal)", shown.join("; "))
        };
        return (pick(&a), pick(&b));
    }
    (format!("[{expected}]"), format!("[{found}]"))
}

/// Creates `dir` if missing, writes `network`'s weights to `file` in it
/// atomically, and returns the record of that file for the manifest.
pub(crate) fn write_weights(dir: &Path, file: &str, network: &NetworkBaseline) -> Result<WeightsInfo, CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
        action: "create the checkpoint directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(file);
    let weights = network.to_burnpack().map_err(|err| CheckpointError::InvalidWeights {
        path: path.clone(),
        message: err.to_string(),
    })?;
    write_atomic(dir, &path, &weights)?;
    Ok(WeightsInfo {
        file: file.to_string(),
        bytes: weights.len() as u64,
        fnv1a64: crate::files::fnv1a64_hex(&weights),
    })
}

/// Writes `manifest` as pretty JSON to `file` in `dir` atomically and returns its path.
pub(crate) fn write_manifest(dir: &Path, file: &str, manifest: &impl Serialize) -> Result<PathBuf, CheckpointError> {
    let path = dir.join(file);
    let json = serde_json::to_vec_pretty(manifest).map_err(|err| CheckpointError::CorruptManifest {
        path: path.clone(),
        message: format!("serialising failed: {err}"),
    })?;
    write_atomic(dir, &path, &json)?;
    Ok(path)
}

/// Reads the weights file at `path` and checks its length and checksum against `info`.
///
/// # Errors
/// [`CheckpointError::TruncatedWeights`] for a short file,
/// [`CheckpointError::CorruptWeights`] for any other difference.
pub(crate) fn read_checked_weights(path: &Path, info: &WeightsInfo) -> Result<Vec<u8>, CheckpointError> {
    let weights = read_file(path, "read the checkpoint weights")?;
    let actual = weights.len() as u64;
    if actual < info.bytes {
        return Err(CheckpointError::TruncatedWeights {
            path: path.to_path_buf(),
            expected: info.bytes,
            actual,
        });
    }
    let checksum = crate::files::fnv1a64_hex(&weights);
    if actual != info.bytes || checksum != info.fnv1a64 {
        return Err(CheckpointError::CorruptWeights {
            path: path.to_path_buf(),
            expected: format!("{} ({} bytes)", info.fnv1a64, info.bytes),
            actual: format!("{checksum} ({actual} bytes)"),
        });
    }
    Ok(weights)
}

pub(crate) fn read_file(path: &Path, action: &'static str) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            CheckpointError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Writes `bytes` to `path` atomically (see [`crate::files::write_atomic`]).
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::files::write_atomic(dir, path, bytes).map_err(|err| CheckpointError::Io {
        action: err.action,
        path: path.to_path_buf(),
        source: err.source,
    })
}
