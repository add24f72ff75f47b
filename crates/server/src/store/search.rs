//! Full-text search of messages for operators: what a query means and how a message matches it,
//! once, for every backend. A query is split into terms (runs of letters and digits); a message
//! matches when each term starts a word of its body, compared case- and accent-insensitively
//! (`é` finds `e` and the other way round). User text never reaches a query language as it is:
//! the SQL stores build their full-text queries from these terms only.
//!
//! SQLite indexes bodies in an FTS5 table (`unicode61 remove_diacritics 2`), PostgreSQL in a
//! generated `tsvector` column (`simple` configuration over the body with Latin accents removed)
//! with a GIN index, and the memory store scans with [`matches`].

use std::ops::Range;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::{Pending, StoredMessage};

/// Terms of one query at most; further ones are ignored.
pub const TERMS_MAX: usize = 16;

/// What to search for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The terms ([`terms`]); no term finds nothing.
    pub terms: Vec<String>,
    /// Only conversations this user takes part in; `None`: every conversation.
    pub participant: Option<String>,
    /// Only this conversation.
    pub conversation: Option<String>,
    /// Whether private notes are searched too (operators only).
    pub include_notes: bool,
    /// Most results.
    pub limit: u32,
}

/// Full-text search over stored messages.
pub trait SearchStore: Send + Sync {
    /// Messages matching every term, newest first (by time, then `seq`), at most `limit`.
    fn search(&self, query: SearchQuery) -> Pending<Vec<StoredMessage>>;
}

/// Lower-case, without accents: `Déjà` → `deja`.
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of `text`: byte ranges of runs of letters and digits.
pub fn words(text: &str) -> Vec<Range<usize>> {
    let mut words = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                words.push(from..at);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        words.push(from..text.len());
    }
    words
}

/// The terms of a query: its words, folded, without repeats, at most [`TERMS_MAX`]. Quotes,
/// parentheses and operators are not words: `"` or `AND (` is no query at all or the word `and`.
pub fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for range in words(query) {
        let term = fold(&query[range]);
        if !term.is_empty() && !terms.contains(&term) {
            terms.push(term);
        }
        if terms.len() == TERMS_MAX {
            break;
        }
    }
    terms
}

/// The words of `body` that some term starts (byte ranges), in order.
pub fn highlights(body: &str, terms: &[String]) -> Vec<Range<usize>> {
    words(body)
        .into_iter()
        .filter(|range| {
            let word = fold(&body[range.clone()]);
            terms.iter().any(|term| word.starts_with(term.as_str()))
        })
        .collect()
}

/// Whether every term starts some word of `body` (the memory store's search).
pub fn matches(body: &str, terms: &[String]) -> bool {
    if terms.is_empty() {
        return false;
    }
    let words: Vec<String> = words(body).into_iter().map(|r| fold(&body[r])).collect();
    terms
        .iter()
        .all(|term| words.iter().any(|word| word.starts_with(term.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_plain_terms() {
        assert_eq!(terms("  Déjà vu, DÉJÀ!  "), ["deja", "vu"]);
        assert_eq!(terms("\""), Vec::<String>::new());
        assert_eq!(terms("AND ( OR* NEAR(\"x\""), ["and", "or", "near", "x"]);
        assert_eq!(terms(&"a ".repeat(40)).len(), 1);
        let many: String = (0..40).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&many).len(), TERMS_MAX);
    }

    #[test]
    fn words_match_by_prefix_without_case_or_accents() {
        let body = "Le café est à côté de l'hôtel.";
        let terms = terms("cafe HOT");
        assert!(matches(body, &terms));
        let found: Vec<&str> = highlights(body, &terms)
            .into_iter()
            .map(|r| &body[r])
            .collect();
        assert_eq!(found, ["café", "hôtel"]);
        assert!(
            !matches(body, &super::terms("otel")),
            "a term starts a word"
        );
        assert!(!matches(body, &super::terms("cafe plage")), "every term");
        assert!(!matches(body, &[]));
    }
}
