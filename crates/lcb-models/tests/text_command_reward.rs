//! The external reward command: a well-behaved command is batched and
//! matched by id, and each way a command can fail gives a clear error.
//! The fake commands are python3 scripts written into a temporary directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lcb_core::Reward;
use lcb_models::text::{CharTokenizer, CommandError, CommandScorer, TextReward, TextRewardSpec};

/// Writes `body` as a python3 script and returns its path.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("import json, sys, time\n{body}")).unwrap();
    path
}

fn scorer(script: &Path) -> CommandScorer {
    CommandScorer::new("python3", vec![script.display().to_string()]).with_timeout(Duration::from_secs(10))
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Responds to every request with the length of its text, flushing each line.
const LENGTH_SCORER: &str = r#"
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"id": request["id"], "reward": len(request["text"])}), flush=True)
"#;

#[test]
fn command_scores_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "length.py", LENGTH_SCORER);
    let scorer = scorer(&path).with_batch_size(3).unwrap();
    let items = texts(&["a", "bb", "ccc", "", "eeeee", "ffffff", "g"]);
    assert_eq!(scorer.score_texts(&items).unwrap(), vec![1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 1.0]);
    // The process stays up between calls, and ids keep increasing.
    assert_eq!(scorer.score_texts(&texts(&["xyz"])).unwrap(), vec![3.0]);
}

#[test]
fn command_answers_may_come_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "reversed.py",
        r#"
pending = []
for line in sys.stdin:
    pending.append(json.loads(line))
    if len(pending) == 4:
        for request in reversed(pending):
            print(json.dumps({"id": request["id"], "reward": len(request["text"]), "note": "extra"}), flush=True)
        pending = []
"#,
    );
    let scorer = scorer(&path).with_batch_size(4).unwrap();
    assert_eq!(scorer.score_texts(&texts(&["a", "bb", "ccc", "dddd"])).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn command_reward_decodes_token_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "length.py", LENGTH_SCORER);
    let spec = TextRewardSpec::Command {
        program: "python3".into(),
        args: vec![path.display().to_string()],
        timeout_seconds: 10.0,
        batch_size: 2,
        upper_bound: Some(4.0),
    };
    let tokenizer = CharTokenizer::from_texts(["ab"]).unwrap();
    let reward = TextReward::new(tokenizer, 4, spec.build().unwrap());
    let mut out = [0.0; 3];
    reward.rewards(&[1, 2, 0, 0, 2, 2, 2, 2, 1, 0, 1, 1], &mut out).unwrap();
    assert_eq!(out, [2.0, 4.0, 1.0]);
    assert_eq!(reward.upper_bound(), Some(4.0));
}

#[test]
fn crashing_command_reports_exit_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "crash.py",
        r#"
for line in sys.stdin:
    request = json.loads(line)
    if request["text"] == "crash":
        print("scorer failed on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    print(json.dumps({"id": request["id"], "reward": 1.0}), flush=True)
"#,
    );
    let scorer = scorer(&path);
    let err = scorer.score_texts(&texts(&["fine", "crash", "never"])).unwrap_err();
    assert!(matches!(err, CommandError::Exited { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("exit code 3"), "{message}");
    assert!(message.contains("answering 1 of 3"), "{message}");
    assert!(message.contains("scorer failed on purpose"), "{message}");

    // The next call starts a fresh process.
    assert_eq!(scorer.score_texts(&texts(&["fine"])).unwrap(), vec![1.0]);
}

#[test]
fn hanging_command_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "hang.py",
        r#"
for line in sys.stdin:
    time.sleep(60)
"#,
    );
    let scorer = scorer(&path).with_timeout(Duration::from_millis(500));
    let start = Instant::now();
    let err = scorer.score_texts(&texts(&["a", "b"])).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, CommandError::TimedOut { answered: 0, expected: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(waited < Duration::from_secs(5), "the timeout took {waited:?}");
}

#[test]
fn command_that_never_reads_times_out() {
    // A command that neither reads nor responds must not block the writer.
    // 2000 requests of 1 kB overflow a Linux pipe buffer (64 kB by default).
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "deaf.py", "time.sleep(60)\n");
    let scorer = scorer(&path).with_timeout(Duration::from_millis(500)).with_batch_size(2000).unwrap();
    let long = vec!["x".repeat(1000); 2000];
    let start = Instant::now();
    let err = scorer.score_texts(&long).unwrap_err();
    assert!(matches!(err, CommandError::TimedOut { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn invalid_json_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "garbage.py",
        r#"
for line in sys.stdin:
    print("reward: high", flush=True)
"#,
    );
    let err = scorer(&path).score_texts(&texts(&["a"])).unwrap_err();
    assert!(matches!(err, CommandError::InvalidResponse { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(message.contains("reward: high"), "{message}");
}

#[test]
fn missing_id_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "no_id.py",
        r#"
for line in sys.stdin:
    print(json.dumps({"reward": 1.0}), flush=True)
"#,
    );
    let err = scorer(&path).score_texts(&texts(&["a"])).unwrap_err();
    assert!(err.to_string().contains("\"id\" is missing"), "{err}");
}

#[test]
fn wrong_fields_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (r#"{"id": 0}"#, "\"reward\" is missing"),
        (r#"{"id": 0, "reward": "high"}"#, "not a finite number"),
        (r#"{"id": 99, "reward": 1}"#, "does not belong to the current batch"),
        (r#"[0, 1]"#, "not a JSON object"),
    ];
    for (k, (response, expected)) in cases.into_iter().enumerate() {
        let body = format!("for line in sys.stdin:\n    print({response:?}, flush=True)\n");
        let path = script(dir.path(), &format!("case{k}.py"), &body);
        let err = scorer(&path).score_texts(&texts(&["a"])).unwrap_err();
        assert!(err.to_string().contains(expected), "{response}: {err}");
    }
}

#[test]
fn reward_above_declared_bound_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "length.py", LENGTH_SCORER);
    let scorer = scorer(&path).with_upper_bound(Some(2.0)).unwrap();
    let err = scorer.score_texts(&texts(&["ab", "abc"])).unwrap_err();
    assert!(matches!(err, CommandError::AboveBound { reward: 3.0, .. }), "{err:?}");
}

#[test]
fn missing_program_is_reported() {
    let scorer = CommandScorer::new("/nonexistent/reward-command", vec![]);
    let err = scorer.score_texts(&texts(&["a"])).unwrap_err();
    assert!(matches!(err, CommandError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/reward-command"), "{err}");
}
