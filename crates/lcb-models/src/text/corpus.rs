//! Training corpora: one short text a line.

use std::path::Path;

use lcb_core::{Lane, Stream};
use serde::{Deserialize, Serialize};

use crate::text::checkpoint::fnv1a64_hex;
use crate::text::error::TextError;
use crate::text::tokenizer::CharTokenizer;

/// The embedded default corpus: short sentences from the King James Bible
/// (public domain), one a line. `assets/README.md` gives its source and how
/// it was extracted.
pub const DEFAULT_CORPUS: &str = include_str!("../../assets/kjv-sentences.txt");

/// Name under which the embedded corpus is recorded in checkpoints.
pub const DEFAULT_CORPUS_NAME: &str = "embedded:kjv-sentences";

/// A list of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    /// Origin of the texts: a path or [`DEFAULT_CORPUS_NAME`].
    pub source: String,
    pub texts: Vec<String>,
    /// FNV-1a hash of the raw file, to recognise the corpus on resume.
    pub fnv1a64: String,
}

impl Corpus {
    /// Splits `contents` into texts: one a line, with surrounding whitespace
    /// removed and empty lines skipped.
    pub fn parse(source: &str, contents: &str) -> Self {
        let texts = contents
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect();
        Self {
            source: source.to_string(),
            texts,
            fnv1a64: fnv1a64_hex(contents.as_bytes()),
        }
    }

    /// Reads a UTF-8 file with one text a line.
    ///
    /// # Errors
    /// An unreadable or non-UTF-8 file, or one without any text.
    pub fn from_file(path: &Path) -> Result<Self, TextError> {
        let contents = std::fs::read_to_string(path).map_err(|source| {
            TextError::Checkpoint(crate::text::error::CheckpointError::Io {
                action: "read the corpus",
                path: path.to_path_buf(),
                source,
            })
        })?;
        let corpus = Self::parse(&path.display().to_string(), &contents);
        if corpus.texts.is_empty() {
            return Err(TextError::EmptyCorpus {
                path: path.to_path_buf(),
                reason: "every line is empty".into(),
            });
        }
        Ok(corpus)
    }

    /// Parses the embedded default corpus.
    pub fn embedded() -> Self {
        Self::parse(DEFAULT_CORPUS_NAME, DEFAULT_CORPUS)
    }

    /// Splits the texts into a training and a held-out part: text `i` is
    /// held out when the uniform of stream `(seed, i)` is below `fraction`,
    /// so the split does not depend on the order of other texts.
    pub fn split(&self, fraction: f64, seed: u64) -> (Vec<&str>, Vec<&str>) {
        let mut train = Vec::new();
        let mut heldout = Vec::new();
        for (i, text) in self.texts.iter().enumerate() {
            if Stream::at(seed, i as u64, 0, 0, Lane::Select).uniform_open() < fraction {
                heldout.push(text.as_str());
            } else {
                train.push(text.as_str());
            }
        }
        (train, heldout)
    }
}

/// Texts encoded to fixed-length token rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedTexts {
    /// `[rows, seq_len]`.
    pub tokens: Vec<u32>,
    pub rows: usize,
    /// Texts left out because they are longer than the sequence length.
    pub skipped_too_long: usize,
}

impl EncodedTexts {
    /// Encodes every text that fits `seq_len` tokens.
    ///
    /// # Errors
    /// A character outside the tokenizer's alphabet.
    pub fn encode(texts: &[&str], tokenizer: &CharTokenizer, seq_len: usize) -> Result<Self, TextError> {
        let mut tokens = Vec::with_capacity(texts.len() * seq_len);
        let mut rows = 0;
        let mut skipped_too_long = 0;
        for text in texts {
            match tokenizer.encode(text, seq_len) {
                Ok(ids) => {
                    tokens.extend_from_slice(&ids);
                    rows += 1;
                }
                Err(TextError::TextTooLong { .. }) => skipped_too_long += 1,
                Err(other) => return Err(other),
            }
        }
        Ok(Self {
            tokens,
            rows,
            skipped_too_long,
        })
    }

    /// Row `i`, `[seq_len]`.
    pub fn row(&self, i: usize, seq_len: usize) -> &[u32] {
        &self.tokens[i * seq_len..(i + 1) * seq_len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_trims_and_skips_empty_lines() {
        let corpus = Corpus::parse("test", "  first \n\n second\r\n");
        assert_eq!(corpus.texts, vec!["first", "second"]);
    }

    #[test]
    fn embedded_corpus_fits_the_default_length() {
        let corpus = Corpus::embedded();
        assert!(corpus.texts.len() > 1000, "{} texts", corpus.texts.len());
        assert!(corpus.texts.iter().all(|t| t.chars().count() <= 64));
    }

    #[test]
    fn split_holds_out_about_the_fraction() {
        let corpus = Corpus::embedded();
        let (train, heldout) = corpus.split(0.05, 0);
        let n = corpus.texts.len() as f64;
        let share = heldout.len() as f64 / n;
        // Binomial standard error sqrt(0.05 * 0.95 / n); 5 of them is the tolerance.
        assert!((share - 0.05).abs() < 5.0 * (0.05 * 0.95 / n).sqrt(), "share {share}");
        assert_eq!(train.len() + heldout.len(), corpus.texts.len());
    }

    #[test]
    fn encoding_skips_long_texts() {
        let tokenizer = CharTokenizer::from_texts(["abc"]).unwrap();
        let encoded = EncodedTexts::encode(&["ab", "abcabc", "c"], &tokenizer, 4).unwrap();
        assert_eq!(encoded.rows, 2);
        assert_eq!(encoded.skipped_too_long, 1);
        assert_eq!(encoded.row(1, 4), &[3, 0, 0, 0]);
    }
}
