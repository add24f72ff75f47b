//! The tokens in emails: a link back to the conversation (single use, expiring: its row in
//! storage says whether it was used) and an unsubscribe link (for as long as the address is
//! kept). Both are signed with the token secret, so a token cannot be made up or altered, and
//! a guessed link id is refused before storage is asked.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::auth::Auth;

const LINK: &str = "surechat-link";
const UNSUBSCRIBE: &str = "surechat-unsubscribe";

/// A fresh link id: 16 random bytes, base64url.
pub fn new_link_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The token of a link: its id and a signature.
pub fn link_token(auth: &Auth, id: &str) -> String {
    format!("{id}.{}", auth.sign(LINK, id))
}

/// The link id of a well-signed token.
pub fn link_id(auth: &Auth, token: &str) -> Option<String> {
    let (id, signature) = token.split_once('.')?;
    auth.check_signature(LINK, id, signature)
        .then(|| id.to_owned())
}

/// The token of an unsubscribe link for `user_id`.
pub fn unsubscribe_token(auth: &Auth, user_id: &str) -> String {
    let user = URL_SAFE_NO_PAD.encode(user_id);
    format!("{user}.{}", auth.sign(UNSUBSCRIBE, user_id))
}

/// The user of a well-signed unsubscribe token.
pub fn unsubscribe_user(auth: &Auth, token: &str) -> Option<String> {
    let (user, signature) = token.split_once('.')?;
    let user = String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
    auth.check_signature(UNSUBSCRIBE, &user, signature)
        .then_some(user)
}

/// `base` with `name=value` added to its query (before any fragment).
pub fn with_query(base: &str, name: &str, value: &str) -> String {
    let (path, fragment) = match base.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (base, None),
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut url = format!("{path}{separator}{name}={value}");
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new("0123456789abcdef0123456789abcdef", "admin-key-0123456789")
    }

    #[test]
    fn link_tokens_verify_and_refuse_tampering() {
        let id = new_link_id();
        let token = link_token(&auth(), &id);
        assert_eq!(link_id(&auth(), &token), Some(id.clone()));
        let other = Auth::new("another-secret-0123456789abcdef012", "admin-key-0123456789");
        assert_eq!(link_id(&other, &token), None);
        let forged = format!("{}.{}", new_link_id(), token.split_once('.').unwrap().1);
        assert_eq!(link_id(&auth(), &forged), None);
        assert_eq!(link_id(&auth(), "no-dot"), None);
        // An unsubscribe signature never passes for a link.
        let unsubscribe = unsubscribe_token(&auth(), &id);
        assert_eq!(link_id(&auth(), &unsubscribe), None);
    }

    #[test]
    fn unsubscribe_tokens_carry_the_user() {
        let token = unsubscribe_token(&auth(), "guest:42@booking");
        assert_eq!(
            unsubscribe_user(&auth(), &token).as_deref(),
            Some("guest:42@booking")
        );
        let (_, signature) = token.split_once('.').unwrap();
        let other = format!("{}.{signature}", URL_SAFE_NO_PAD.encode("guest:43@booking"));
        assert_eq!(unsubscribe_user(&auth(), &other), None);
    }

    #[test]
    fn query_parameters_are_added_before_the_fragment() {
        assert_eq!(
            with_query("https://a.example/p", "x", "1"),
            "https://a.example/p?x=1"
        );
        assert_eq!(
            with_query("https://a.example/p?a=b", "x", "1"),
            "https://a.example/p?a=b&x=1"
        );
        assert_eq!(
            with_query("https://a.example/p#f", "x", "1"),
            "https://a.example/p?x=1#f"
        );
    }
}
