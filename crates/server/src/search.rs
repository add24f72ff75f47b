//! `GET /v1/search`: operators search the messages of the conversations they may read, private
//! notes included. What matches is decided in [`crate::store::search`]; here are who may search
//! what, and the snippet shown for each result.

use std::ops::Range;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use protocol::frames::MessageKind;
use protocol::{ErrorCode, Role};
use serde::Serialize;

use crate::error::ApiError;
use crate::http::{conversation_id, number_param, Query, User};
use crate::store::search::{self, SearchQuery};
use crate::AppState;

/// Results of one search, by default and at most.
pub const LIMIT_DEFAULT: u64 = 20;
pub const LIMIT_MAX: u64 = 100;
/// Longest query, in characters.
pub const QUERY_CHARS_MAX: usize = 200;
/// About how many characters a snippet shows, and how many of them come before the first match.
const SNIPPET_CHARS: usize = 160;
const SNIPPET_BEFORE: usize = 40;

/// The routes of this module.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/search", get(search))
}

/// A span of a snippet, in UTF-16 code units (what JavaScript strings index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Span {
    /// First code unit.
    pub start: u64,
    /// After the last code unit.
    pub end: u64,
}

/// One message found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SearchResult {
    /// Message id.
    pub id: String,
    /// Conversation id.
    pub conversation_id: String,
    /// The message's `seq` in its conversation.
    pub seq: u64,
    /// `text`, `note` (a private note) or `system`.
    pub kind: MessageKind,
    /// Sender's user id.
    pub sender: String,
    /// `client` or `operator`.
    pub sender_role: Role,
    /// When it was stored, ms since the Unix epoch.
    pub sent_at: u64,
    /// The whole body.
    pub body: String,
    /// Plain text around the first match (never HTML), with `…` where the body was cut; line
    /// breaks become spaces.
    pub snippet: String,
    /// The matching words of `snippet`, in order.
    pub highlights: Vec<Span>,
}

/// `GET /v1/search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SearchResults {
    /// Newest first.
    pub results: Vec<SearchResult>,
}

fn utf16_len(text: &str) -> u64 {
    text.encode_utf16().count() as u64
}

/// The snippet of `body` around its first highlight, and the highlights inside it.
pub fn snippet(body: &str, highlights: &[Range<usize>]) -> (String, Vec<Span>) {
    let first = highlights.first().map_or(0, |h| h.start);
    let boundaries: Vec<usize> = body
        .char_indices()
        .map(|(at, _)| at)
        .chain([body.len()])
        .collect();
    let first_char = boundaries.partition_point(|&at| at < first);
    let mut start = boundaries[first_char.saturating_sub(SNIPPET_BEFORE)];
    let mut end = boundaries
        [(first_char.saturating_sub(SNIPPET_BEFORE) + SNIPPET_CHARS).min(boundaries.len() - 1)];
    // Whole words at the cuts, when a space is near.
    if start > 0 {
        if let Some((space, c)) = body[start..first]
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
        {
            start += space + c.len_utf8();
        }
    }
    if end < body.len() {
        if let Some(space) = body[first..end].rfind(char::is_whitespace) {
            end = first + space;
        }
    }
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < body.len() { "…" } else { "" };
    let flat: String = body[start..end]
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let spans = highlights
        .iter()
        .filter(|h| h.start >= start && h.end <= end)
        .map(|h| {
            let from = utf16_len(lead) + utf16_len(&body[start..h.start]);
            Span {
                start: from,
                end: from + utf16_len(&body[h.clone()]),
            }
        })
        .collect();
    (format!("{lead}{}{tail}", flat.trim_end()), spans)
}

/// `GET /v1/search?q=…&limit=…&conversation=…` (operators): the newest messages matching every
/// word of `q` as a word prefix, in the conversations the caller may read (every one with scope
/// `all`, otherwise those they take part in), private notes included.
async fn search(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Query(query): Query,
) -> Result<Json<SearchResults>, ApiError> {
    if claims.role != Role::Operator {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "search is for operators",
        ));
    }
    let Some(text) = query.get("q") else {
        return Err(ApiError::new(ErrorCode::BadRequest, "`q` is required"));
    };
    let length = text.chars().count();
    if length == 0 || length > QUERY_CHARS_MAX || crate::validate::blank(text) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("`q` must be 1 to {QUERY_CHARS_MAX} characters, not only spaces"),
        ));
    }
    let limit = number_param(&query, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX)?;
    let conversation = query.get("conversation").cloned();
    if let Some(id) = &conversation {
        conversation_id(id)?;
    }
    let terms = search::terms(text);
    let participant = match claims.scope.as_deref() {
        Some("all") => None,
        _ => Some(claims.sub.clone()),
    };
    let found = app
        .store
        .search(SearchQuery {
            terms: terms.clone(),
            participant,
            conversation,
            include_notes: true,
            limit: limit as u32,
        })
        .await?;
    let results = found
        .into_iter()
        .map(|m| {
            let (snippet, highlights) = snippet(&m.body, &search::highlights(&m.body, &terms));
            SearchResult {
                id: m.id,
                conversation_id: m.conversation,
                seq: m.seq,
                kind: m.kind,
                sender: m.sender,
                sender_role: m.role,
                sent_at: m.ts,
                body: m.body,
                snippet,
                highlights,
            }
        })
        .collect();
    Ok(Json(SearchResults { results }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(body: &str, query: &str) -> String {
        let (text, spans) = snippet(body, &search::highlights(body, &search::terms(query)));
        let units: Vec<u16> = text.encode_utf16().collect();
        let mut out = String::new();
        let mut at = 0;
        for span in spans {
            out += &String::from_utf16(&units[at..span.start as usize]).unwrap();
            out += "[";
            out += &String::from_utf16(&units[span.start as usize..span.end as usize]).unwrap();
            out += "]";
            at = span.end as usize;
        }
        out + &String::from_utf16(&units[at..]).unwrap()
    }

    #[test]
    fn short_bodies_are_whole_with_their_matches_marked() {
        assert_eq!(
            marked("Le café,\nà côté 😀 du Café.", "cafe"),
            "Le [café], à côté 😀 du [Café]."
        );
        assert_eq!(marked("nothing here", "cafe"), "nothing here");
    }

    #[test]
    fn long_bodies_are_cut_at_words_around_the_first_match() {
        let body = format!(
            "{} the parking code is 4411 {}",
            "word ".repeat(60),
            "more ".repeat(60)
        );
        let got = marked(&body, "PARK");
        assert!(got.starts_with("…word "), "{got}");
        assert!(got.ends_with("more…"), "{got}");
        assert!(got.contains("the [parking] code"), "{got}");
        assert!(
            got.chars().count() <= SNIPPET_CHARS + 2,
            "{}",
            got.chars().count()
        );
    }
}
