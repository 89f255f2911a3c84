//! `train`, `sample` and `bench` on a text model, through the binary: a
//! tiny denoiser trained by `model train`, a value network and baseline
//! trained by `train --model`, and every text method by `sample --model`.

use std::path::Path;
use std::process::{Command, Output};

fn lcb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lcb-cli"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("lcb-cli runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "lcb-cli failed:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Trains a denoiser of sequences of 8 characters for 30 steps on a small
/// corpus and returns its directory.
fn tiny_model(dir: &Path) -> String {
    let corpus = dir.join("corpus.txt");
    let lines: Vec<&str> = ["ab ba", "abab", "ba ab", "cab", "abc", "ba", "cc ab", "bb"]
        .iter()
        .copied()
        .cycle()
        .take(64)
        .collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let config = dir.join("tiny.toml");
    std::fs::write(
        &config,
        "steps = 30\nbatch_size = 16\nlearning_rate = 3e-3\nwarmup_steps = 5\nheldout_fraction = 0.0\n\
         eval_every = 10\ncheckpoint_every = 30\n\n[model]\nseq_len = 8\nd_model = 16\nheads = 2\nlayers = 1\n\
         mlp_hidden = 32\n",
    )
    .unwrap();
    let model = dir.join("model");
    ok(&lcb(&[
        "model",
        "train",
        "--corpus",
        corpus.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]));
    model.to_str().unwrap().to_string()
}

#[test]
fn text_train_then_sample_all_methods() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let checkpoint = dir.path().join("lcb");
    let checkpoint = checkpoint.to_str().unwrap();
    let common = ["--model", model.as_str(), "--reward", "regex:ab", "--alpha", "0.5", "--steps", "4"];

    let mut train = vec!["train"];
    train.extend(common);
    train.extend(["--particles", "64", "--iterations", "4", "--value-trajectories", "256", "--out", checkpoint]);
    let stdout = ok(&lcb(&train));
    assert!(stdout.contains("value network: held-out loss"), "{stdout}");
    assert!(stdout.contains("(1024 pairs"), "{stdout}");
    for file in ["manifest.json", "baseline.bpk", "value.json", "value.bpk"] {
        assert!(Path::new(checkpoint).join(file).exists(), "{file} missing");
    }

    for method in ["rs", "lcb", "bon", "lcb-bon"] {
        let out = dir.path().join(format!("{method}.jsonl"));
        let report = dir.path().join(format!("{method}.json"));
        let mut sample = vec!["sample"];
        sample.extend(common);
        sample.extend([
            "--method",
            method,
            "--baseline",
            checkpoint,
            "--samples",
            "40",
            "--n",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]);
        let stdout = ok(&lcb(&sample));
        assert!(stdout.contains(method), "{method}: {stdout}");
        let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(record["samples"], 40, "{method}");
        assert!(record["model_id"].as_str().unwrap().contains("regex"), "{method}: {record}");
        assert_eq!(record["baseline"], checkpoint, "{method}");
        let lines = std::fs::read_to_string(&out).unwrap();
        assert_eq!(lines.lines().count(), 40, "{method}");
        for line in lines.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let reward = record["reward"].as_f64().unwrap();
            assert!(reward == 0.0 || reward == 1.0, "{method}: {line}");
            assert!(record["text"].is_string());
        }
    }

    // The same seed gives the same texts for any thread count.
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("threads-{threads}.jsonl"));
        let mut sample = vec!["sample"];
        sample.extend(common);
        sample.extend([
            "--method",
            "lcb",
            "--baseline",
            checkpoint,
            "--samples",
            "200",
            "--threads",
            threads,
            "--out",
            out.to_str().unwrap(),
        ]);
        ok(&lcb(&sample));
        outputs.push(std::fs::read_to_string(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);

    // A baseline trained for another reward is refused, naming both.
    let output = lcb(&[
        "sample", "--model", model.as_str(), "--reward", "regex:ba", "--alpha", "0.5", "--steps", "4", "--method",
        "lcb", "--baseline", checkpoint,
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("model id"), "{stderr}");
    assert!(stderr.contains(r#""pattern":"ab""#), "{stderr}");
    assert!(stderr.contains(r#""pattern":"ba""#), "{stderr}");

    // Monte Carlo values stand in for the value network.
    let mut rollouts = vec!["sample"];
    rollouts.extend(common);
    rollouts.extend(["--method", "rs", "--rollouts", "4", "--samples", "10"]);
    ok(&lcb(&rollouts));
}

#[test]
fn text_errors_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let common = ["--model", model.as_str(), "--steps", "4"];

    // LCB without a trained baseline, even with Monte Carlo values.
    let mut args = vec!["sample", "--method", "lcb", "--reward", "regex:ab", "--rollouts", "2"];
    args.extend(common);
    let output = lcb(&args);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("lcb-cli train --model"), "{stderr}");
    assert!(stderr.contains("--baseline"), "{stderr}");

    // RS without values.
    let mut args = vec!["sample", "--method", "rs", "--reward", "regex:ab"];
    args.extend(common);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("--baseline"), "{stderr}");
    assert!(stderr.contains("--rollouts"), "{stderr}");

    // Zero reverse steps.
    let mut args = vec!["sample", "--method", "bon", "--model", model.as_str(), "--steps", "0"];
    args.extend(["--reward", "regex:ab"]);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("--steps 0"), "{stderr}");

    // A method that has no text version.
    let mut args = vec!["sample", "--method", "smc", "--reward", "regex:ab"];
    args.extend(common);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("rs, lcb, bon or lcb-bon"), "{stderr}");

    // An unknown reward kind.
    let mut args = vec!["sample", "--method", "bon", "--reward", "sentiment:x"];
    args.extend(common);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("regex:PATTERN"), "{stderr}");

    // A command with arguments and a bound on a reward that has its own.
    let mut args = vec!["sample", "--method", "bon", "--reward", "command:python3 scorer.py"];
    args.extend(common);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("--reward-config"), "{stderr}");
    let mut args = vec!["sample", "--method", "bon", "--reward", "regex:ab", "--reward-upper-bound", "2"];
    args.extend(common);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("drop it"), "{stderr}");

    // Mixture options with a text model.
    let mut args = vec!["sample", "--method", "bon", "--reward", "regex:ab", "--kernel", "ddpm", "--delta", "0.3"];
    args.extend(common);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("--kernel, --delta"), "{stderr}");

    // RS needs a bounded reward: a command reward without --reward-upper-bound.
    let mut args = vec!["sample", "--method", "rs", "--rollouts", "2", "--reward", "command:/bin/true"];
    args.extend(common);
    let stderr = text(&lcb(&args).stderr);
    assert!(stderr.contains("bound"), "{stderr}");
}
