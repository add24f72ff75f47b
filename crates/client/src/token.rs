//! Fresh tokens for a long-lived client: a [`TokenProvider`] the app gives (its backend mints
//! tokens), asked shortly before the current token expires and whenever the server refuses it.
//! Without one, a refused token leaves the session `Expired` until the app calls `set_token`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before its expiry a token is refreshed (at most half its remaining life).
pub const REFRESH_AHEAD: Duration = Duration::from_secs(60);

type Fetch = dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync;

/// Gets a fresh token for the same user, or says why it cannot (the user must sign in again).
#[derive(Clone)]
pub struct TokenProvider(Arc<Fetch>);

impl TokenProvider {
    /// A provider calling `fetch`.
    pub fn new<F, Fut>(fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        TokenProvider(Arc::new(move || Box::pin(fetch())))
    }

    /// Asks for a token.
    pub fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
        (self.0)()
    }
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenProvider")
    }
}

/// How long from now a token should be refreshed: `REFRESH_AHEAD` before its `exp` (or half its
/// remaining life, when shorter). `None` when the token names no expiry. Read without checking
/// the signature: only to refresh in time.
pub fn refresh_in(token: &str) -> Option<Duration> {
    let exp = Duration::from_secs(expiry(token)?);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let left = exp.saturating_sub(now);
    Some(left.saturating_sub(REFRESH_AHEAD.min(left / 2)))
}

/// The `exp` claim of a JWT, in seconds since the epoch.
fn expiry(token: &str) -> Option<u64> {
    let payload = base64url(token.split('.').nth(1)?)?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims["exp"].as_u64()
}

/// Decodes unpadded base64url.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_expiry_of_a_jwt() {
        // {"sub":"ana","role":"client","exp":1767225600,"iat":1767139200}
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbmEiLCJyb2xlIjoiY2xpZW50IiwiZXhwIjoxNzY3MjI1NjAwLCJpYXQiOjE3NjcxMzkyMDB9.c2ln";
        assert_eq!(expiry(token), Some(1_767_225_600));
        assert_eq!(expiry("not a token"), None);
        assert_eq!(base64url("aGk").as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn refreshes_ahead_of_expiry_but_never_past_half_the_life_left() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = |exp: u64| {
            let claims = format!("{{\"exp\":{exp}}}");
            let b64: String = claims
                .bytes()
                .collect::<Vec<_>>()
                .chunks(3)
                .flat_map(|chunk| {
                    const A: &[u8] =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                    let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b))
                        << (8 * (3 - chunk.len()));
                    (0..=chunk.len()).map(move |i| A[(n >> (18 - 6 * i)) as usize & 63] as char)
                })
                .collect();
            format!("h.{b64}.s")
        };
        let hour = refresh_in(&token(now + 3600)).unwrap();
        assert!(hour <= Duration::from_secs(3540) && hour >= Duration::from_secs(3530));
        let short = refresh_in(&token(now + 10)).unwrap();
        assert!(short <= Duration::from_secs(5) && short >= Duration::from_secs(3));
        assert_eq!(
            refresh_in(&token(now.saturating_sub(5))),
            Some(Duration::ZERO)
        );
    }
}
