//! Rewards on text: token rows are decoded with the tokenizer and scored by
//! a [`TextScorer`], built in or an external command.
//!
//! Built-in scorers, each with a known range, so `upper_bound()` gives the
//! `r_max` that per-step and whole-trajectory RS need:
//!
//! - [`WordListScorer`]: the sum of the weights of the distinct listed words
//!   in the text; at most the sum of the positive weights;
//! - [`RegexScorer`]: one value when a regular expression matches, another
//!   when it does not;
//! - [`LengthScorer`]: one value when the length in characters lies in a
//!   window, another outside it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lcb_core::{ComponentError, ComponentResult, Reward};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::text::command::CommandScorer;
use crate::text::error::{CheckpointError, TextError};
use crate::text::tokenizer::CharTokenizer;

/// Scores decoded texts in reward units.
pub trait TextScorer: Send + Sync {
    /// Writes the reward of each text.
    ///
    /// # Shapes
    /// `texts: [n]`, `out: [n]`.
    fn score(&self, texts: &[String], out: &mut [f64]) -> ComponentResult;

    /// `r_max`, an upper bound on every reward, when one is known.
    fn upper_bound(&self) -> Option<f64>;
}

/// A reward on token rows of width `width`: decode each row with
/// `tokenizer` (the text before the first end-of-text token), then score.
pub struct TextReward {
    tokenizer: CharTokenizer,
    width: usize,
    scorer: Box<dyn TextScorer>,
}

impl TextReward {
    pub fn new(tokenizer: CharTokenizer, width: usize, scorer: Box<dyn TextScorer>) -> Self {
        Self {
            tokenizer,
            width,
            scorer,
        }
    }

    pub fn tokenizer(&self) -> &CharTokenizer {
        &self.tokenizer
    }

    /// Decodes `[n, width]` rows to texts.
    pub fn decode_rows(&self, states: &[u32]) -> Vec<String> {
        states
            .chunks_exact(self.width.max(1))
            .map(|row| self.tokenizer.decode(row))
            .collect()
    }
}

impl Reward for TextReward {
    type Elem = u32;

    fn rewards(&self, states: &[u32], out: &mut [f64]) -> ComponentResult {
        if states.len() != out.len() * self.width {
            return Err(Box::new(TextError::Shape {
                what: "reward batch (rows x width)",
                expected: out.len() * self.width,
                actual: states.len(),
            }));
        }
        let texts = self.decode_rows(states);
        self.scorer.score(&texts, out)
    }

    fn upper_bound(&self) -> Option<f64> {
        self.scorer.upper_bound()
    }
}

/// Splits text into lowercase (unless `case_sensitive`) words: maximal runs
/// of alphanumeric characters and apostrophes, with apostrophes trimmed from
/// both ends.
fn words(text: &str, case_sensitive: bool) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(move |w| if case_sensitive { w.to_string() } else { w.to_lowercase() })
}

/// `r = sum of weight(w)` over the distinct words `w` of the text that are
/// in the list. Each word counts once, so `r` lies between the sum of the
/// negative weights and the sum of the positive ones.
#[derive(Debug, Clone, PartialEq)]
pub struct WordListScorer {
    weights: HashMap<String, f64>,
    case_sensitive: bool,
}

impl WordListScorer {
    /// # Errors
    /// An empty list, an empty word, or a non-finite weight.
    pub fn new(weights: HashMap<String, f64>, case_sensitive: bool) -> Result<Self, TextError> {
        if weights.is_empty() {
            return Err(TextError::InvalidConfig {
                name: "word list",
                value: "no words".into(),
                expected: "at least one word",
            });
        }
        let mut normalised = HashMap::with_capacity(weights.len());
        for (word, weight) in weights {
            if !weight.is_finite() {
                return Err(TextError::InvalidConfig {
                    name: "word weight",
                    value: format!("{word} {weight}"),
                    expected: "a finite weight",
                });
            }
            let key = if case_sensitive { word.clone() } else { word.to_lowercase() };
            if key.is_empty() {
                return Err(TextError::InvalidConfig {
                    name: "word list",
                    value: "an empty word".into(),
                    expected: "non-empty words",
                });
            }
            *normalised.entry(key).or_insert(0.0) += weight;
        }
        Ok(Self {
            weights: normalised,
            case_sensitive,
        })
    }

    /// Parses a word list: one `word` or `word weight` a line (weight 1 when
    /// omitted); blank lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    /// A line with more than two fields or a weight that is not a number;
    /// `source` names the list in the message.
    pub fn parse(source: &str, contents: &str, case_sensitive: bool) -> Result<Self, TextError> {
        let mut weights = HashMap::new();
        for (number, line) in contents.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let weight = match fields.as_slice() {
                [_] => 1.0,
                [_, weight] => weight.parse::<f64>().map_err(|_| TextError::InvalidConfig {
                    name: "word list line",
                    value: format!("{source}:{}: {line:?}", number + 1),
                    expected: "`word` or `word weight` with a numeric weight",
                })?,
                _ => {
                    return Err(TextError::InvalidConfig {
                        name: "word list line",
                        value: format!("{source}:{}: {line:?}", number + 1),
                        expected: "`word` or `word weight`",
                    });
                }
            };
            *weights.entry(fields[0].to_string()).or_insert(0.0) += weight;
        }
        Self::new(weights, case_sensitive)
    }

    /// Reads a word list file (see [`Self::parse`]).
    pub fn from_file(path: &Path, case_sensitive: bool) -> Result<Self, TextError> {
        let contents = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io {
            action: "read the word list",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &contents, case_sensitive)
    }

    /// `r` of one text.
    pub fn score_text(&self, text: &str) -> f64 {
        let distinct: HashSet<String> = words(text, self.case_sensitive).collect();
        // A float sum of no terms is -0.0; adding 0.0 makes it 0.
        distinct.iter().filter_map(|w| self.weights.get(w)).sum::<f64>() + 0.0
    }
}

impl TextScorer for WordListScorer {
    fn score(&self, texts: &[String], out: &mut [f64]) -> ComponentResult {
        for (r, text) in out.iter_mut().zip(texts) {
            *r = self.score_text(text);
        }
        Ok(())
    }

    fn upper_bound(&self) -> Option<f64> {
        Some(self.weights.values().filter(|w| **w > 0.0).sum())
    }
}

/// `r = matched` when the regular expression matches anywhere in the text,
/// `unmatched` otherwise.
#[derive(Debug, Clone)]
pub struct RegexScorer {
    regex: Regex,
    matched: f64,
    unmatched: f64,
}

impl RegexScorer {
    /// # Errors
    /// An invalid pattern (the message shows where) or a non-finite value.
    pub fn new(pattern: &str, matched: f64, unmatched: f64) -> Result<Self, TextError> {
        check_finite("regex reward values", &[matched, unmatched])?;
        let regex = Regex::new(pattern).map_err(|err| TextError::InvalidConfig {
            name: "regex",
            value: err.to_string(),
            expected: "a valid regular expression (Rust regex syntax)",
        })?;
        Ok(Self {
            regex,
            matched,
            unmatched,
        })
    }
}

impl TextScorer for RegexScorer {
    fn score(&self, texts: &[String], out: &mut [f64]) -> ComponentResult {
        for (r, text) in out.iter_mut().zip(texts) {
            *r = if self.regex.is_match(text) { self.matched } else { self.unmatched };
        }
        Ok(())
    }

    fn upper_bound(&self) -> Option<f64> {
        Some(self.matched.max(self.unmatched))
    }
}

/// `r = inside` when `min_chars <= length <= max_chars` (length in
/// characters), `outside` otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct LengthScorer {
    min_chars: usize,
    max_chars: usize,
    inside: f64,
    outside: f64,
}

impl LengthScorer {
    /// # Errors
    /// `min_chars > max_chars` or a non-finite value.
    pub fn new(min_chars: usize, max_chars: usize, inside: f64, outside: f64) -> Result<Self, TextError> {
        check_finite("length reward values", &[inside, outside])?;
        if min_chars > max_chars {
            return Err(TextError::InvalidConfig {
                name: "length window",
                value: format!("{min_chars}..={max_chars}"),
                expected: "min_chars <= max_chars",
            });
        }
        Ok(Self {
            min_chars,
            max_chars,
            inside,
            outside,
        })
    }
}

impl TextScorer for LengthScorer {
    fn score(&self, texts: &[String], out: &mut [f64]) -> ComponentResult {
        for (r, text) in out.iter_mut().zip(texts) {
            let len = text.chars().count();
            *r = if (self.min_chars..=self.max_chars).contains(&len) {
                self.inside
            } else {
                self.outside
            };
        }
        Ok(())
    }

    fn upper_bound(&self) -> Option<f64> {
        Some(self.inside.max(self.outside))
    }
}

fn check_finite(name: &'static str, values: &[f64]) -> Result<(), TextError> {
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(TextError::InvalidConfig {
            name,
            value: v.to_string(),
            expected: "finite rewards",
        });
    }
    Ok(())
}

fn one() -> f64 {
    1.0
}

fn default_timeout_seconds() -> f64 {
    30.0
}

fn default_batch_size() -> usize {
    256
}

/// A text reward as written in a config file (TOML or JSON), tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TextRewardSpec {
    /// A weighted word list file; see [`WordListScorer::parse`].
    WordList {
        path: PathBuf,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// A regular expression.
    Regex {
        pattern: String,
        #[serde(default = "one")]
        matched: f64,
        #[serde(default)]
        unmatched: f64,
    },
    /// A window on the length in characters.
    Length {
        min_chars: usize,
        max_chars: usize,
        #[serde(default = "one")]
        inside: f64,
        #[serde(default)]
        outside: f64,
    },
    /// An external command speaking JSON lines; see [`CommandScorer`].
    Command {
        program: PathBuf,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default = "default_timeout_seconds")]
        timeout_seconds: f64,
        #[serde(default = "default_batch_size")]
        batch_size: usize,
        /// The command's `r_max`, if it has one; larger rewards are an error.
        #[serde(default)]
        upper_bound: Option<f64>,
    },
}

impl TextRewardSpec {
    /// Builds the scorer. A command is started on first use, not here.
    pub fn build(&self) -> Result<Box<dyn TextScorer>, TextError> {
        Ok(match self {
            Self::WordList { path, case_sensitive } => Box::new(WordListScorer::from_file(path, *case_sensitive)?),
            Self::Regex {
                pattern,
                matched,
                unmatched,
            } => Box::new(RegexScorer::new(pattern, *matched, *unmatched)?),
            Self::Length {
                min_chars,
                max_chars,
                inside,
                outside,
            } => Box::new(LengthScorer::new(*min_chars, *max_chars, *inside, *outside)?),
            Self::Command {
                program,
                args,
                timeout_seconds,
                batch_size,
                upper_bound,
            } => {
                if !(timeout_seconds.is_finite() && *timeout_seconds > 0.0) {
                    return Err(TextError::InvalidConfig {
                        name: "timeout_seconds",
                        value: timeout_seconds.to_string(),
                        expected: "a finite timeout > 0 seconds",
                    });
                }
                let scorer = CommandScorer::new(program, args.clone())
                    .with_timeout(Duration::from_secs_f64(*timeout_seconds))
                    .with_batch_size(*batch_size)?
                    .with_upper_bound(*upper_bound)?;
                Box::new(scorer)
            }
        })
    }
}

/// Wraps a scorer error as a component error.
pub(crate) fn component_error(error: impl std::error::Error + Send + Sync + 'static) -> ComponentError {
    Box::new(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn word_list_counts_distinct_words_once() {
        let scorer = WordListScorer::parse("test", "# praise\nlight 2\nGod\ndarkness -1\n", false).unwrap();
        let mut out = [0.0; 3];
        scorer
            .score(&texts(&["God said, Let there be light: and there was light.", "darkness", "nothing"]), &mut out)
            .unwrap();
        assert_eq!(out, [3.0, -1.0, 0.0]);
        assert_eq!(scorer.upper_bound(), Some(3.0));
    }

    #[test]
    fn word_list_rejects_bad_lines() {
        let err = WordListScorer::parse("list.txt", "light two\n", false).unwrap_err();
        assert!(err.to_string().contains("list.txt:1"), "{err}");
        assert!(WordListScorer::parse("list.txt", "a 1 2\n", false).is_err());
        assert!(WordListScorer::parse("list.txt", "# only a comment\n", false).is_err());
    }

    #[test]
    fn regex_and_length_scores() {
        let regex = RegexScorer::new(r"^And\b", 2.0, -1.0).unwrap();
        let length = LengthScorer::new(3, 5, 1.0, 0.0).unwrap();
        let items = texts(&["And so", "Andrew", "ab"]);
        let mut out = [0.0; 3];
        regex.score(&items, &mut out).unwrap();
        assert_eq!(out, [2.0, -1.0, -1.0]);
        length.score(&items, &mut out).unwrap();
        assert_eq!(out, [0.0, 0.0, 0.0]);
        length.score(&texts(&["abc", "abcde", "abcdef"]), &mut out).unwrap();
        assert_eq!(out, [1.0, 1.0, 0.0]);
        assert_eq!(regex.upper_bound(), Some(2.0));
        assert!(RegexScorer::new("(", 1.0, 0.0).is_err());
    }

    #[test]
    fn text_reward_decodes_rows() {
        let tokenizer = CharTokenizer::from_texts(["ab"]).unwrap();
        let reward = TextReward::new(tokenizer, 3, Box::new(LengthScorer::new(2, 2, 1.0, 0.0).unwrap()));
        let mut out = [0.0; 2];
        // "ab" then end-of-text; "a" then end-of-text and a stray "b" after it.
        reward.rewards(&[1, 2, 0, 1, 0, 2], &mut out).unwrap();
        assert_eq!(out, [1.0, 0.0]);
    }

    #[test]
    fn spec_reads_from_toml() {
        let spec: TextRewardSpec = toml::from_str("kind = \"regex\"\npattern = \"light\"\n").unwrap();
        assert_eq!(
            spec,
            TextRewardSpec::Regex {
                pattern: "light".into(),
                matched: 1.0,
                unmatched: 0.0
            }
        );
        assert_eq!(spec.build().unwrap().upper_bound(), Some(1.0));
    }
}
