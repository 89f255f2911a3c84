//! Rewards computed by an external command that speaks JSON lines.
//!
//! The command is started once and kept running. For each request it reads
//! one line `{"id": <u64>, "text": <string>}` on standard input and writes
//! one line `{"id": <u64>, "reward": <number>}` on standard output. Extra
//! fields are ignored, and responses may come in any order. Requests are
//! sent in batches of up to `batch_size` lines, and every request of a batch
//! must get its response within the timeout.
//!
//! When the command exits, times out, or writes a line that is not a valid
//! response, the call fails with a [`CommandError`] naming the cause (with
//! the last lines of its standard error for a crash), the process is
//! killed, and the next call starts a fresh one.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lcb_core::ComponentResult;
use serde::Serialize;
use thiserror::Error;

use crate::text::error::TextError;
use crate::text::reward::{TextScorer, component_error};

/// Lines of the command's standard error kept for error messages.
const STDERR_TAIL_LINES: usize = 20;

/// Characters of an invalid output line quoted in an error message.
const QUOTED_CHARS: usize = 200;

/// Failures of an external reward command.
#[derive(Debug, Error)]
pub enum CommandError {
    #[error("failed to start the reward command {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the reward command {} exited ({status}) after answering {answered} of {expected} requests of a batch; \
         its standard error ended with:\n{stderr}",
        program.display()
    )]
    Exited {
        program: PathBuf,
        status: String,
        answered: usize,
        expected: usize,
        stderr: String,
    },

    #[error(
        "the reward command {} timed out: it answered {answered} of {expected} requests within {seconds} s; \
         raise the timeout or check that it flushes standard output after each line",
        program.display()
    )]
    TimedOut {
        program: PathBuf,
        seconds: f64,
        answered: usize,
        expected: usize,
    },

    #[error(
        "the reward command {} wrote an invalid response {line:?}: {reason}; \
         expected one JSON object per line such as {{\"id\": 3, \"reward\": 0.5}}",
        program.display()
    )]
    InvalidResponse {
        program: PathBuf,
        line: String,
        reason: String,
    },

    #[error(
        "the reward command {} returned reward {reward} for request {id}, above its declared upper bound {bound}",
        program.display()
    )]
    AboveBound {
        program: PathBuf,
        id: u64,
        reward: f64,
        bound: f64,
    },

    #[error("reading the output of the reward command {} failed: {source}", program.display())]
    Read {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One request line.
#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    text: &'a str,
}

/// A [`TextScorer`] backed by an external command; see the module docs for
/// the protocol.
pub struct CommandScorer {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    batch_size: usize,
    upper_bound: Option<f64>,
    state: Mutex<CommandState>,
}

struct CommandState {
    session: Option<Session>,
    next_id: u64,
}

impl CommandScorer {
    /// Creates a scorer that runs `program` with `args`, with a 30 s timeout
    /// per batch of up to 256 requests and no known upper bound.
    pub fn new(program: impl AsRef<Path>, args: Vec<String>) -> Self {
        Self {
            program: program.as_ref().to_path_buf(),
            args,
            timeout: Duration::from_secs(30),
            batch_size: 256,
            upper_bound: None,
            state: Mutex::new(CommandState {
                session: None,
                next_id: 0,
            }),
        }
    }

    /// Sets the time a whole batch may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the maximum number of requests sent before waiting for responses.
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self, TextError> {
        if batch_size == 0 {
            return Err(TextError::InvalidConfig {
                name: "batch_size",
                value: "0".into(),
                expected: "at least 1 request per batch",
            });
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// Declares `r_max`; a larger reward from the command is then an error.
    pub fn with_upper_bound(mut self, upper_bound: Option<f64>) -> Result<Self, TextError> {
        if let Some(bound) = upper_bound
            && !bound.is_finite()
        {
            return Err(TextError::InvalidConfig {
                name: "upper_bound",
                value: bound.to_string(),
                expected: "a finite reward bound",
            });
        }
        self.upper_bound = upper_bound;
        Ok(self)
    }

    /// Scores `texts`, batch by batch.
    ///
    /// # Errors
    /// A [`CommandError`]; the process is then stopped and the next call
    /// starts a new one.
    pub fn score_texts(&self, texts: &[String]) -> Result<Vec<f64>, CommandError> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut rewards = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            let first_id = state.next_id;
            state.next_id += batch.len() as u64;
            if state.session.is_none() {
                state.session = Some(Session::start(&self.program, &self.args)?);
            }
            let session = state.session.as_mut().expect("session was just started");
            match self.exchange(session, batch, first_id) {
                Ok(batch_rewards) => rewards.extend(batch_rewards),
                Err(error) => {
                    if let Some(session) = state.session.take() {
                        session.kill();
                    }
                    tracing::warn!(program = %self.program.display(), %error, "reward command failed; it will be restarted");
                    return Err(error);
                }
            }
        }
        Ok(rewards)
    }

    /// Sends one batch and collects its responses.
    fn exchange(&self, session: &mut Session, batch: &[String], first_id: u64) -> Result<Vec<f64>, CommandError> {
        let mut payload = Vec::new();
        for (k, text) in batch.iter().enumerate() {
            let request = Request {
                id: first_id + k as u64,
                text,
            };
            serde_json::to_writer(&mut payload, &request).expect("a request always serialises");
            payload.push(b'\n');
        }
        // A closed writer means the command has exited; the reader reports it below.
        let _ = session.to_stdin.send(payload);

        let expected = batch.len();
        let mut rewards: Vec<Option<f64>> = vec![None; expected];
        let mut answered = 0;
        let deadline = Instant::now() + self.timeout;
        while answered < expected {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match session.stdout_lines.recv_timeout(wait) {
                Ok(Ok(line)) => line,
                Ok(Err(source)) => {
                    return Err(CommandError::Read {
                        program: self.program.clone(),
                        source,
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(CommandError::TimedOut {
                        program: self.program.clone(),
                        seconds: self.timeout.as_secs_f64(),
                        answered,
                        expected,
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(CommandError::Exited {
                        program: self.program.clone(),
                        status: session.exit_status(),
                        answered,
                        expected,
                        stderr: session.stderr_tail(),
                    });
                }
            };
            let (id, reward) = self.parse_response(&line)?;
            let slot = id
                .checked_sub(first_id)
                .map(|k| k as usize)
                .filter(|&k| k < expected)
                .ok_or_else(|| self.invalid(&line, format!("id {id} does not belong to the current batch {first_id}..{}", first_id + expected as u64)))?;
            if rewards[slot].is_some() {
                return Err(self.invalid(&line, format!("id {id} was answered twice")));
            }
            if let Some(bound) = self.upper_bound
                && reward > bound
            {
                return Err(CommandError::AboveBound {
                    program: self.program.clone(),
                    id,
                    reward,
                    bound,
                });
            }
            rewards[slot] = Some(reward);
            answered += 1;
        }
        Ok(rewards.into_iter().map(|r| r.expect("every slot has a response")).collect())
    }

    fn parse_response(&self, line: &str) -> Result<(u64, f64), CommandError> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|err| self.invalid(line, format!("not valid JSON ({err})")))?;
        let object = value
            .as_object()
            .ok_or_else(|| self.invalid(line, "not a JSON object".into()))?;
        let id = match object.get("id") {
            None => return Err(self.invalid(line, "the field \"id\" is missing".into())),
            Some(id) => id
                .as_u64()
                .ok_or_else(|| self.invalid(line, "\"id\" is not a non-negative integer".into()))?,
        };
        let reward = match object.get("reward") {
            None => return Err(self.invalid(line, "the field \"reward\" is missing".into())),
            Some(reward) => reward
                .as_f64()
                .filter(|r| r.is_finite())
                .ok_or_else(|| self.invalid(line, "\"reward\" is not a finite number".into()))?,
        };
        Ok((id, reward))
    }

    fn invalid(&self, line: &str, reason: String) -> CommandError {
        let mut quoted: String = line.chars().take(QUOTED_CHARS).collect();
        if line.chars().count() > QUOTED_CHARS {
            quoted.push_str("...");
        }
        CommandError::InvalidResponse {
            program: self.program.clone(),
            line: quoted,
            reason,
        }
    }
}

impl TextScorer for CommandScorer {
    fn score(&self, texts: &[String], out: &mut [f64]) -> ComponentResult {
        let rewards = self.score_texts(texts).map_err(component_error)?;
        out.copy_from_slice(&rewards);
        Ok(())
    }

    fn upper_bound(&self) -> Option<f64> {
        self.upper_bound
    }
}

impl std::fmt::Debug for CommandScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandScorer")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("timeout", &self.timeout)
            .field("batch_size", &self.batch_size)
            .field("upper_bound", &self.upper_bound)
            .finish_non_exhaustive()
    }
}

/// A running command with threads that feed its standard input and drain
/// its standard output and standard error, so that neither side can block
/// the other and every wait can time out.
struct Session {
    child: Child,
    to_stdin: Sender<Vec<u8>>,
    stdout_lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Session {
    fn start(program: &Path, args: &[String]) -> Result<Self, CommandError> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CommandError::Spawn {
                program: program.to_path_buf(),
                source,
            })?;
        tracing::debug!(program = %program.display(), pid = child.id(), "reward command started");

        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");

        let (to_stdin, payloads) = mpsc::channel::<Vec<u8>>();
        thread::spawn(move || feed_stdin(stdin, payloads));

        let (lines_sender, stdout_lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let failed = line.is_err();
                if lines_sender.send(line).is_err() || failed {
                    break;
                }
            }
        });

        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let tail = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });

        Ok(Self {
            child,
            to_stdin,
            stdout_lines,
            stderr,
        })
    }

    /// Waits up to a second for the process to finish after its standard
    /// output closed, and describes its exit status.
    fn exit_status(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return describe_status(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => return "closed its standard output but is still running".into(),
                Err(err) => return format!("status unknown: {err}"),
            }
        }
    }

    fn stderr_tail(&self) -> String {
        // Give the stderr thread a moment to read what a crashing command wrote last.
        thread::sleep(Duration::from_millis(50));
        let tail = self.stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if tail.is_empty() {
            "(nothing)".into()
        } else {
            tail.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }

    /// Kills the process and reaps it.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    /// Closes the command's standard input, gives it a moment to exit on
    /// its own, then kills it, so no process outlives the scorer.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.to_stdin, closed));
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn feed_stdin(mut stdin: ChildStdin, payloads: Receiver<Vec<u8>>) {
    for payload in payloads {
        if stdin.write_all(&payload).and_then(|()| stdin.flush()).is_err() {
            break;
        }
    }
}

fn describe_status(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => status.to_string(),
    }
}
