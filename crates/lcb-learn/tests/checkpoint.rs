//! Saving and loading trained baselines.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::{LinearValue, RandomWalk};
use lcb_core::NoProgress;
use lcb_learn::checkpoint::{MANIFEST_FILE, WEIGHTS_FILE};
use lcb_learn::{
    Backend, CheckpointError, CheckpointExpectations, CheckpointInfo, NetworkConfig, TrainConfig, TrainedBaseline,
    read_manifest, train,
};

const MODEL_ID: &str = "random-walk-linear-v1";
const ALPHA: f64 = 0.5;
const STEPS: usize = 3;
const WIDTH: usize = 2;

/// Trains, once per test binary, the small baseline every test of this file uses.
fn trained() -> &'static TrainedBaseline {
    static TRAINED: OnceLock<TrainedBaseline> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let kernel = RandomWalk {
            width: WIDTH,
            steps: STEPS,
            sigma: 1.0,
        };
        let value = LinearValue {
            width: WIDTH,
            w: 1.0,
            sigma: 1.0,
            alpha: ALPHA,
        };
        let config = TrainConfig {
            particles: 128,
            iterations_per_step: 5,
            network: NetworkConfig {
                hidden: vec![16, 8],
                time_frequencies: 2,
                tokens: None,
            },
            seed: 9,
            backend: Backend::Flex,
            ..TrainConfig::default()
        };
        train(&kernel, &value, &config, &NoProgress).unwrap()
    })
}

fn info() -> CheckpointInfo {
    CheckpointInfo {
        model_id: MODEL_ID.to_string(),
        alpha: ALPHA,
    }
}

fn expectations() -> CheckpointExpectations {
    CheckpointExpectations {
        model_id: MODEL_ID.to_string(),
        alpha: ALPHA,
        width: WIDTH,
        steps: STEPS,
    }
}

/// Saves the shared baseline into a fresh temporary directory.
fn saved() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    trained().save(dir.path(), &info()).unwrap();
    dir
}

/// Builds states on a grid, `[49, 2]`.
fn grid() -> Vec<f64> {
    let mut rows = Vec::new();
    for i in 0..7 {
        for j in 0..7 {
            rows.push(-6.0 + 2.0 * i as f64);
            rows.push(-3.0 + j as f64);
        }
    }
    rows
}

fn load(dir: &Path) -> Result<TrainedBaseline, CheckpointError> {
    TrainedBaseline::load(dir, &expectations())
}

#[test]
fn round_trip_reproduces_baseline_outputs() {
    let dir = saved();
    let loaded = load(dir.path()).unwrap();
    let original = trained();
    for t in 1..=STEPS {
        let before = original.network.evaluate(t, &grid()).unwrap();
        let after = loaded.network.evaluate(t, &grid()).unwrap();
        assert_eq!(before, after, "step {t}");
    }
    // serde_json (built without its float_roundtrip feature) may read the
    // last bit of a number differently, so tables match to 1 ulp.
    let within_ulp = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 2.0 * f64::EPSILON * x.abs())
    };
    assert_eq!(loaded.tau.len(), original.tau.len());
    assert!(
        within_ulp(&loaded.tau, &original.tau),
        "{:?} vs {:?}",
        loaded.tau,
        original.tau
    );
    assert!(within_ulp(&loaded.lambda, &original.lambda));
    assert_eq!(loaded.history.steps.len(), original.history.steps.len());
    assert!(within_ulp(&loaded.loss_trajectory(), &original.loss_trajectory()));
    assert_eq!(loaded.config, original.config);
    assert_eq!(loaded.network.backend(), original.network.backend());
}

#[test]
fn saving_twice_replaces_the_checkpoint() {
    let dir = saved();
    trained().save(dir.path(), &info()).unwrap();
    load(dir.path()).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != MANIFEST_FILE && name != WEIGHTS_FILE)
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

#[test]
fn manifest_records_the_run() {
    let dir = saved();
    let manifest = read_manifest(dir.path()).unwrap();
    assert_eq!(manifest.format_version, lcb_learn::checkpoint::FORMAT_VERSION);
    assert_eq!(manifest.model_id, MODEL_ID);
    assert_eq!(manifest.alpha, ALPHA);
    assert_eq!(manifest.training.delta, trained().config.delta);
    assert_eq!(manifest.training.seed, 9);
    assert_eq!(manifest.training.backend, Backend::Flex);
    assert_eq!(manifest.training.network.hidden, vec![16, 8]);
    assert_eq!(manifest.tau.len(), STEPS);
    assert_eq!(manifest.lambda.len(), STEPS);
}

#[test]
fn missing_checkpoint_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(err, CheckpointError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

#[test]
fn truncated_weights_are_rejected() {
    let dir = saved();
    let path = dir.path().join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, CheckpointError::TruncatedWeights { .. }), "{err}");
    assert!(err.to_string().contains(WEIGHTS_FILE), "{err}");
}

#[test]
fn corrupt_weights_are_rejected() {
    let dir = saved();
    let path = dir.path().join(WEIGHTS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip one bit in the tensor data at the end of the file: burnpack alone
    // would still read this file.
    let last = bytes.len() - 3;
    bytes[last] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, CheckpointError::CorruptWeights { .. }), "{err}");
    assert!(err.to_string().contains(WEIGHTS_FILE), "{err}");
}

#[test]
fn truncated_manifest_is_rejected() {
    let dir = saved();
    let path = dir.path().join(MANIFEST_FILE);
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, CheckpointError::CorruptManifest { .. }), "{err}");
    assert!(err.to_string().contains(MANIFEST_FILE), "{err}");
}

#[test]
fn corrupt_manifest_is_rejected() {
    let dir = saved();
    std::fs::write(
        dir.path().join(MANIFEST_FILE),
        b"{\"format_version\": 1, \"model_id\": 7}",
    )
    .unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, CheckpointError::CorruptManifest { .. }), "{err}");
}

/// Rewrites the manifest through `edit` on its JSON.
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(MANIFEST_FILE);
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
}

#[test]
fn newer_format_version_is_rejected() {
    let dir = saved();
    edit_manifest(dir.path(), |json| json["format_version"] = 99.into());
    let err = load(dir.path()).unwrap_err();
    assert!(
        matches!(err, CheckpointError::UnsupportedVersion { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn inconsistent_tau_table_is_rejected() {
    let dir = saved();
    edit_manifest(dir.path(), |json| json["tau"] = serde_json::json!([0.5]));
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, CheckpointError::Inconsistent { .. }), "{err}");
    assert!(err.to_string().contains("tau has 1 entries for 3 steps"), "{err}");
}

#[test]
fn weights_of_another_network_are_rejected() {
    // The manifest claims a different network shape; the weights file is
    // intact, so only loading the tensors can notice.
    let dir = saved();
    edit_manifest(dir.path(), |json| {
        json["training"]["network"]["hidden"] = serde_json::json!([16, 16])
    });
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, CheckpointError::InvalidWeights { .. }), "{err}");
    assert!(err.to_string().contains("shape mismatch"), "{err}");
}

#[test]
fn mismatched_requests_are_rejected() {
    let dir = saved();
    let cases = [
        (
            CheckpointExpectations {
                model_id: "another-model".to_string(),
                ..expectations()
            },
            "model id",
        ),
        (
            CheckpointExpectations {
                alpha: 0.2,
                ..expectations()
            },
            "alpha",
        ),
        (
            CheckpointExpectations {
                width: 3,
                ..expectations()
            },
            "state width",
        ),
        (
            CheckpointExpectations {
                steps: 20,
                ..expectations()
            },
            "steps T",
        ),
    ];
    for (expected, field) in cases {
        let err = TrainedBaseline::load(dir.path(), &expected).unwrap_err();
        match &err {
            CheckpointError::Mismatch { field: got, .. } => assert_eq!(*got, field),
            other => panic!("{field}: expected a mismatch, got {other}"),
        }
        assert!(err.to_string().contains(MANIFEST_FILE), "{err}");
    }
}

#[test]
fn invalid_alpha_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let err = trained()
        .save(
            dir.path(),
            &CheckpointInfo {
                model_id: MODEL_ID.to_string(),
                alpha: 0.0,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("alpha"), "{err}");
    assert!(!dir.path().join(MANIFEST_FILE).exists());
}

#[test]
fn loading_on_another_cpu_backend_is_close() {
    let dir = saved();
    let loaded = TrainedBaseline::load_on(dir.path(), &expectations(), Backend::Ndarray).unwrap();
    assert_eq!(loaded.network.backend(), Backend::Ndarray);
    let before = trained().network.evaluate(2, &grid()).unwrap();
    let after = loaded.network.evaluate(2, &grid()).unwrap();
    for (a, b) in before.iter().zip(&after) {
        // Same f32 weights, different summation order: ~1e-6 relative.
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
    let err = TrainedBaseline::load_on(dir.path(), &expectations(), Backend::Wgpu).unwrap_err();
    assert!(err.to_string().contains("CPU backend"), "{err}");
}
