//! A character-level tokenizer with an end-of-text token and a mask token.
//!
//! Token ids: `0` is end-of-text (it also pads a text to the sequence
//! length), `1..=n` are the `n` characters of the alphabet in its stored
//! order, and `n + 1` is the mask. The denoiser predicts the `n + 1`
//! non-mask tokens.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::text::error::TextError;

/// Id of the end-of-text token, which also pads every text to the sequence length.
pub const END_OF_TEXT: u32 = 0;

/// Character written for a mask token by [`CharTokenizer::decode`].
pub const MASK_DISPLAY: char = '_';

/// A character-level tokenizer over a fixed alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharTokenizer {
    /// The alphabet: character `alphabet[i]` has token id `i + 1`.
    alphabet: Vec<char>,
}

impl CharTokenizer {
    /// Builds a tokenizer over the given alphabet.
    ///
    /// # Errors
    /// An empty alphabet, a repeated character, or a control character
    /// (a line break would split one text into two in a corpus file).
    pub fn new(alphabet: Vec<char>) -> Result<Self, TextError> {
        if alphabet.is_empty() {
            return Err(TextError::InvalidTokenizer("the alphabet is empty".into()));
        }
        let mut seen = BTreeSet::new();
        for &c in &alphabet {
            if c.is_control() {
                return Err(TextError::InvalidTokenizer(format!(
                    "the alphabet contains the control character {c:?}"
                )));
            }
            if !seen.insert(c) {
                return Err(TextError::InvalidTokenizer(format!("the alphabet repeats {c:?}")));
            }
        }
        Ok(Self { alphabet })
    }

    /// Builds a tokenizer over every character of `texts`, in code point order.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Self, TextError> {
        let chars: BTreeSet<char> = texts.into_iter().flat_map(str::chars).collect();
        Self::new(chars.into_iter().collect())
    }

    pub fn alphabet(&self) -> &[char] {
        &self.alphabet
    }

    /// Number of tokens the denoiser predicts: the characters plus end-of-text.
    pub fn vocab_size(&self) -> usize {
        self.alphabet.len() + 1
    }

    /// Id of the mask token, one past the last predicted token.
    pub fn mask_id(&self) -> u32 {
        self.alphabet.len() as u32 + 1
    }

    /// Id of one character, if it is in the alphabet.
    pub fn id_of(&self, c: char) -> Option<u32> {
        // Alphabets are small (about 100 characters), so a scan is fast enough.
        self.alphabet.iter().position(|&a| a == c).map(|i| i as u32 + 1)
    }

    /// Encodes `text` into exactly `len` tokens, padded with end-of-text.
    ///
    /// # Errors
    /// A character outside the alphabet, or a text longer than `len` characters.
    pub fn encode(&self, text: &str, len: usize) -> Result<Vec<u32>, TextError> {
        let mut ids = Vec::with_capacity(len);
        for c in text.chars() {
            let id = self.id_of(c).ok_or_else(|| TextError::UnknownCharacter {
                character: c,
                text: text.to_string(),
            })?;
            ids.push(id);
        }
        if ids.len() > len {
            return Err(TextError::TextTooLong {
                chars: ids.len(),
                max: len,
                text: text.to_string(),
            });
        }
        ids.resize(len, END_OF_TEXT);
        Ok(ids)
    }

    /// Decodes one sequence: the characters before the first end-of-text
    /// token, with each mask written as [`MASK_DISPLAY`]. Ids outside the
    /// vocabulary decode to U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mask = self.mask_id();
        let mut text = String::with_capacity(ids.len());
        for &id in ids {
            if id == END_OF_TEXT {
                break;
            }
            if id == mask {
                text.push(MASK_DISPLAY);
                continue;
            }
            let c = self
                .alphabet
                .get(id as usize - 1)
                .copied()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            text.push(c);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_pads_and_decode_stops_at_end() {
        let tokenizer = CharTokenizer::from_texts(["ab", "ba c"]).unwrap();
        assert_eq!(tokenizer.alphabet(), &[' ', 'a', 'b', 'c']);
        assert_eq!(tokenizer.vocab_size(), 5);
        assert_eq!(tokenizer.mask_id(), 5);

        let ids = tokenizer.encode("ba c", 6).unwrap();
        assert_eq!(ids, vec![3, 2, 1, 4, 0, 0]);
        assert_eq!(tokenizer.decode(&ids), "ba c");
        assert_eq!(tokenizer.decode(&[2, 5, 3, 0, 2]), "a_b");
    }

    #[test]
    fn unknown_character_and_long_text_are_rejected() {
        let tokenizer = CharTokenizer::from_texts(["abc"]).unwrap();
        let err = tokenizer.encode("abd", 8).unwrap_err();
        assert!(err.to_string().contains("'d'"), "{err}");
        let err = tokenizer.encode("abcabc", 4).unwrap_err();
        assert!(err.to_string().contains("6 characters"), "{err}");
    }

    #[test]
    fn alphabet_rejects_repeats_and_line_breaks() {
        assert!(CharTokenizer::new(vec!['a', 'a']).is_err());
        assert!(CharTokenizer::new(vec!['a', '\n']).is_err());
        assert!(CharTokenizer::new(vec![]).is_err());
    }
}
