//! Signed download links: for an `<img src>` or a download, which cannot carry the token in a
//! header. A link names the file, the variant (file or thumbnail), the user and their role, and
//! an expiry, signed with the server's token secret; who may download is checked again when it
//! is used, so a link outlives neither its expiry nor its user's participation.

use protocol::Role;

use crate::auth::Auth;

/// The purpose the signatures are made for (so no other signature passes for a link).
const PURPOSE: &str = "attachment-link";

/// Which bytes a link serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The file itself.
    File,
    /// Its thumbnail.
    Thumb,
}

impl Variant {
    fn as_str(self) -> &'static str {
        match self {
            Variant::File => "file",
            Variant::Thumb => "thumb",
        }
    }
}

/// A verified link's holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The user the link was made for.
    pub user: String,
    /// Their role when it was made (the token's).
    pub role: Role,
}

fn data(id: &str, variant: Variant, user: &str, role: Role, expires_s: u64) -> String {
    format!(
        "{id}\n{}\n{user}\n{}\n{expires_s}",
        variant.as_str(),
        role.as_str()
    )
}

/// The link's path and query, relative to the server.
pub fn sign(
    auth: &Auth,
    id: &str,
    variant: Variant,
    user: &str,
    role: Role,
    expires_s: u64,
) -> String {
    let signature = auth.sign(PURPOSE, &data(id, variant, user, role, expires_s));
    let path = match variant {
        Variant::File => format!("/v1/attachments/{id}"),
        Variant::Thumb => format!("/v1/attachments/{id}/thumb"),
    };
    format!(
        "{path}?u={user}&r={}&exp={expires_s}&sig={signature}",
        role.as_str()
    )
}

/// The holder of a link's query parameters, if they are a valid, unexpired signature for `id`
/// and `variant` at `now_s`.
pub fn verify(
    auth: &Auth,
    id: &str,
    variant: Variant,
    query: &std::collections::HashMap<String, String>,
    now_s: u64,
) -> Option<Holder> {
    let user = query.get("u")?;
    let role = Role::parse(query.get("r")?)?;
    let expires_s: u64 = query.get("exp")?.parse().ok()?;
    let signature = query.get("sig")?;
    if expires_s <= now_s {
        return None;
    }
    auth.check_signature(
        PURPOSE,
        &data(id, variant, user, role, expires_s),
        signature,
    )
    .then(|| Holder {
        user: user.clone(),
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(link: &str) -> std::collections::HashMap<String, String> {
        let (_, query) = link.split_once('?').unwrap();
        query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn a_link_works_for_its_file_variant_and_time_only() {
        let auth = Auth::new("a-secret-of-at-least-thirty-two-bytes!!", "admin");
        let link = sign(&auth, "u1", Variant::Thumb, "ana", Role::Client, 1_000);
        assert!(link.starts_with("/v1/attachments/u1/thumb?"));
        let q = query(&link);
        let holder = verify(&auth, "u1", Variant::Thumb, &q, 999).unwrap();
        assert_eq!(holder.user, "ana");
        assert_eq!(holder.role, Role::Client);
        assert_eq!(verify(&auth, "u1", Variant::Thumb, &q, 1_000), None);
        assert_eq!(verify(&auth, "u2", Variant::Thumb, &q, 999), None);
        assert_eq!(verify(&auth, "u1", Variant::File, &q, 999), None);
        for (key, value) in [("u", "olga"), ("r", "operator"), ("exp", "99999")] {
            let mut altered = q.clone();
            altered.insert(key.into(), value.into());
            assert_eq!(verify(&auth, "u1", Variant::Thumb, &altered, 999), None);
        }
        let other = Auth::new("another-secret-of-thirty-two-bytes!!!!", "admin");
        assert_eq!(verify(&other, "u1", Variant::Thumb, &q, 999), None);
    }
}
