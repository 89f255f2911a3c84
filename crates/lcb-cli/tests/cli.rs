//! The command-line tool as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

fn lcb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lcb-cli"))
        .args(args)
        .output()
        .expect("lcb-cli starts")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn same_seed_same_csv_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for method in ["rs", "lcb-analytic", "soft-bon", "trajectory-rs"] {
        let mut files = Vec::new();
        for threads in ["1", "2"] {
            let path = dir.path().join(format!("{method}-{threads}.csv"));
            let output = lcb(&[
                "sample", "--method", method, "--alpha", "0.5", "--samples", "300", "--seed", "42", "--threads",
                threads, "--out", path.to_str().unwrap(),
            ]);
            assert!(output.status.success(), "{}", stderr(&output));
            files.push(std::fs::read(&path).unwrap());
        }
        assert_eq!(files[0], files[1], "{method}: CSV differs between 1 and 2 threads");
        assert_eq!(String::from_utf8_lossy(&files[0]).lines().count(), 301);
    }
}

#[test]
fn report_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let output = lcb(&[
        "sample", "--method", "lcb-analytic", "--samples", "200", "--report", report.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for field in [
        "method",
        "samples",
        "steps",
        "computed_proposals",
        "sequential_proposals",
        "proposals_per_sample",
        "effective_n",
        "reward_mean",
        "reward_stderr",
        "tv_clip_estimate",
        "wall_seconds",
        "exact_reward_mean",
        "ks_statistic",
        "ks_pvalue",
    ] {
        assert!(json.get(field).is_some(), "report lacks {field}: {json}");
    }
    assert_eq!(json["method"], "lcb-analytic");
    assert_eq!(json["samples"], 200);
}

fn write_config(dir: &Path, body: &str) -> String {
    let path = dir.join("model.toml");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

const SCHEDULE_AND_REWARD: &str = r#"
[schedule]
kind = "paper"
steps = 10
c = 4.0
delta0 = 0.02

[reward]
kind = "step"
scale = 1.0
coordinate = 0
threshold = -3.0
"#;

#[test]
fn custom_config_runs() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "alpha = 0.5\n[mixture]\nweights = [0.7, 0.3]\nmeans = [[2.0, 0.0], [-2.0, 1.0]]\ncovariances = [[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 1.0]]]\n{SCHEDULE_AND_REWARD}"
    );
    let config = write_config(dir.path(), &body);
    let output = lcb(&["bench", "--config", &config, "--samples", "300", "--out", dir.path().join("out").to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("out/rs.json").exists());
    assert!(dir.path().join("out/table.md").exists());
}

#[test]
fn mismatched_dimensions_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("[mixture]\nweights = [0.5, 0.5]\nmeans = [[1.0, 0.0], [0.0]]\n{SCHEDULE_AND_REWARD}");
    let config = write_config(dir.path(), &body);
    let output = lcb(&["sample", "--method", "rs", "--config", &config]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("mixture.means[1]"), "{message}");
    assert!(message.contains("expected 2, got 1"), "{message}");
}

#[test]
fn indefinite_covariance_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "[mixture]\nweights = [1.0]\nmeans = [[1.0, 0.0]]\ncovariances = [[[1.0, 3.0], [3.0, 1.0]]]\n{SCHEDULE_AND_REWARD}"
    );
    let config = write_config(dir.path(), &body);
    let output = lcb(&["sample", "--method", "rs", "--config", &config]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("component 0 is not positive definite"), "{message}");
}

#[test]
fn nonpositive_alpha_is_named() {
    for alpha in ["0", "-1"] {
        let output = lcb(&["sample", "--method", "rs", "--alpha", alpha]);
        assert!(!output.status.success());
        let message = stderr(&output);
        assert!(message.contains(&format!("invalid alpha = {alpha}")), "{message}");
    }
}

#[test]
fn unknown_method_lists_the_choices() {
    let output = lcb(&["sample", "--method", "magic"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("lcb-analytic"), "{message}");
}

#[test]
fn malformed_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[mixture\nweights = ");
    let output = lcb(&["sample", "--method", "rs", "--config", &config]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("model.toml"), "{}", stderr(&output));
}

#[test]
fn failed_run_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("samples.csv");
    // The budget is far too small for RS at alpha 0.1.
    let output = lcb(&[
        "sample", "--method", "rs", "--alpha", "0.1", "--max-proposals", "3", "--out", out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("stopped after"), "{}", stderr(&output));
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temporary files left");
}

#[test]
fn checkpoint_misuse_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("lcb");
    let checkpoint = checkpoint.to_str().unwrap();
    let train = [
        "train", "--alpha", "0.5", "--particles", "64", "--iterations", "2", "--out", checkpoint,
    ];
    let output = lcb(&train);
    assert!(output.status.success(), "{}", stderr(&output));

    // A second run does not replace the checkpoint unless asked to.
    let output = lcb(&train);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
    let mut forced = train.to_vec();
    forced.push("--force");
    let output = lcb(&forced);
    assert!(output.status.success(), "{}", stderr(&output));

    // --baseline with a method that does not use it.
    let output = lcb(&["sample", "--alpha", "0.5", "--method", "rs", "--baseline", checkpoint, "--samples", "10"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("lcb and lcb-bon"), "{}", stderr(&output));

    // --delta cannot change the tau_t the baseline was calibrated with.
    let output = lcb(&[
        "sample", "--alpha", "0.5", "--delta", "0.05", "--method", "lcb", "--baseline", checkpoint, "--samples", "10",
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("lcb-cli train --delta 0.05"), "{}", stderr(&output));
}

#[test]
fn negative_temperature_is_named() {
    let output = lcb(&["generate", "--temperature", "-1", "--samples", "1"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("temperature"), "{}", stderr(&output));
    assert!(stderr(&output).contains(">= 0"), "{}", stderr(&output));
}
