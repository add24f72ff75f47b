//! Authentication: user tokens are JWTs signed with HS256 and a shared secret, so the integrator's
//! backend can mint them itself; admin requests carry the admin key. Both comparisons are constant
//! time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use protocol::limits::TOKEN_CLOCK_LEEWAY_S;
use protocol::{ErrorCode, Role};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The claims of a user token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch. A token issued more than
    /// `TOKEN_CLOCK_LEEWAY_S` in the future is refused.
    #[serde(default)]
    pub iat: u64,
    /// Not before, seconds since the Unix epoch: refused until then (less the leeway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `all`: an operator who may see every conversation in the inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Signs and verifies tokens, and checks the admin key.
#[derive(Clone)]
pub struct Auth {
    secret: Vec<u8>,
    admin_key: Vec<u8>,
}

impl Auth {
    /// An authenticator with the JWT secret and the admin key.
    pub fn new(jwt_secret: &str, admin_key: &str) -> Self {
        Auth {
            secret: jwt_secret.as_bytes().to_vec(),
            admin_key: admin_key.as_bytes().to_vec(),
        }
    }

    /// Mints a token for `user_id` with `role`, valid for `ttl_s` seconds from `now_s`.
    pub fn mint(&self, user_id: &str, role: Role, now_s: u64, ttl_s: u64) -> String {
        self.mint_scoped(user_id, role, None, now_s, ttl_s)
    }

    /// Mints a token with a scope (`all` for operators who see every conversation).
    pub fn mint_scoped(
        &self,
        user_id: &str,
        role: Role,
        scope: Option<&str>,
        now_s: u64,
        ttl_s: u64,
    ) -> String {
        let scope = scope.map(str::to_owned);
        mint_token(
            &self.secret,
            &Claims {
                sub: user_id.to_owned(),
                role,
                exp: now_s.saturating_add(ttl_s),
                iat: now_s,
                nbf: None,
                scope,
            },
        )
    }

    /// Verifies a token at time `now_s`: signature, `alg`, subject, `exp`, and `iat`/`nbf` no
    /// further ahead than [`TOKEN_CLOCK_LEEWAY_S`]. Every time claim is compared, never added to,
    /// so no value of them can overflow.
    pub fn verify(&self, token: &str, now_s: u64) -> Result<Claims, ErrorCode> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ErrorCode::TokenInvalid);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header: serde_json::Value = decode_part(header)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(ErrorCode::TokenInvalid);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| ErrorCode::TokenInvalid)?;
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key size");
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| ErrorCode::TokenInvalid)?;
        let claims: Claims = decode_part(payload)?;
        protocol::ids::check_user_id(&claims.sub).map_err(|_| ErrorCode::TokenInvalid)?;
        let latest_start = now_s.saturating_add(TOKEN_CLOCK_LEEWAY_S);
        if claims.iat > latest_start || claims.nbf.is_some_and(|nbf| nbf > latest_start) {
            return Err(ErrorCode::TokenInvalid);
        }
        if claims.exp <= now_s {
            return Err(ErrorCode::TokenExpired);
        }
        Ok(claims)
    }

    /// Whether `key` is the admin key (constant time).
    pub fn is_admin_key(&self, key: &str) -> bool {
        let mut a =
            HmacSha256::new_from_slice(b"surechat-admin-key-compare").expect("any key size");
        a.update(&self.admin_key);
        let expected = a.finalize().into_bytes();
        let mut b =
            HmacSha256::new_from_slice(b"surechat-admin-key-compare").expect("any key size");
        b.update(key.as_bytes());
        b.verify_slice(&expected).is_ok()
    }

    /// A signature of `data` for one `purpose` (e.g. an email's link), with the token secret:
    /// base64url, 43 characters. Purposes keep signatures of one kind from passing for another.
    pub fn sign(&self, purpose: &str, data: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key size");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` is [`Auth::sign`]'s for `purpose` and `data` (constant time).
    pub fn check_signature(&self, purpose: &str, data: &str, signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key size");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

/// Signs claims into an HS256 JWT.
pub fn mint_token(secret: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, ErrorCode> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ErrorCode::TokenInvalid)?;
    serde_json::from_slice(&bytes).map_err(|_| ErrorCode::TokenInvalid)
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_fail_clearly() {
        let auth = Auth::new("0123456789abcdef0123456789abcdef", "admin-key-0123456789");
        let token = auth.mint("ana", Role::Client, 1_000, 60);
        let claims = auth.verify(&token, 1_030).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role, claims.exp),
            ("ana", Role::Client, 1_060)
        );
        assert_eq!(auth.verify(&token, 1_060), Err(ErrorCode::TokenExpired));
        let other = Auth::new("another-secret-another-secret-xxxx", "k");
        assert_eq!(other.verify(&token, 1_030), Err(ErrorCode::TokenInvalid));
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 2, 'A');
        assert_eq!(auth.verify(&tampered, 1_030), Err(ErrorCode::TokenInvalid));
        assert_eq!(auth.verify("a.b", 1_030), Err(ErrorCode::TokenInvalid));
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            token.split('.').nth(1).unwrap()
        );
        assert_eq!(auth.verify(&none_alg, 1_030), Err(ErrorCode::TokenInvalid));
        assert!(auth.is_admin_key("admin-key-0123456789"));
        assert!(!auth.is_admin_key("admin-key-012345678"));
    }

    fn signed(auth_secret: &[u8], iat: u64, nbf: Option<u64>, exp: u64) -> String {
        mint_token(
            auth_secret,
            &Claims {
                sub: "ana".into(),
                role: Role::Client,
                exp,
                iat,
                nbf,
                scope: None,
            },
        )
    }

    #[test]
    fn nbf_and_iat_are_honoured_with_the_leeway() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let auth = Auth::new("0123456789abcdef0123456789abcdef", "k");
        let now = 1_000_000;
        let leeway = TOKEN_CLOCK_LEEWAY_S;
        assert!(auth
            .verify(&signed(secret, now + leeway, None, now + 600), now)
            .is_ok());
        assert_eq!(
            auth.verify(&signed(secret, now + leeway + 1, None, now + 600), now),
            Err(ErrorCode::TokenInvalid),
            "issued in the future"
        );
        assert!(auth
            .verify(&signed(secret, now, Some(now + leeway), now + 600), now)
            .is_ok());
        assert_eq!(
            auth.verify(&signed(secret, now, Some(now + leeway + 1), now + 600), now),
            Err(ErrorCode::TokenInvalid),
            "not valid yet"
        );
    }

    /// Random claims and clocks through every token path: nothing panics, and the answer is the
    /// one the claims call for. `SURECHAT_FUZZ_CASES` scales the count.
    #[test]
    fn random_claims_and_clocks_never_panic() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let auth = Auth::new("0123456789abcdef0123456789abcdef", "k");
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Often an edge (0, 1, the maximum, near a clock), else anything.
            match state % 5 {
                0 => [0, 1, u64::MAX, u64::MAX - 1, 1 << 53][(state >> 8) as usize % 5],
                1 => 1_700_000_000 + (state >> 40),
                _ => state,
            }
        };
        let cases: usize = std::env::var("SURECHAT_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        for _ in 0..cases {
            let (iat, exp, now, ttl) = (next(), next(), next(), next());
            let nbf = (next() % 2 == 0).then(&mut next);
            let token = signed(secret, iat, nbf, exp);
            let expected = if iat > now.saturating_add(TOKEN_CLOCK_LEEWAY_S)
                || nbf.is_some_and(|n| n > now.saturating_add(TOKEN_CLOCK_LEEWAY_S))
            {
                Err(ErrorCode::TokenInvalid)
            } else if exp <= now {
                Err(ErrorCode::TokenExpired)
            } else {
                Ok(())
            };
            assert_eq!(auth.verify(&token, now).map(drop), expected);
            let minted = auth.mint("ana", Role::Operator, now, ttl);
            let claims = auth.verify(&minted, now);
            assert!(claims.is_ok() || ttl == 0 || now == u64::MAX, "{now} {ttl}");
            // Mangled tokens are refused, never a panic.
            let mut bytes = token.clone().into_bytes();
            let at = (next() as usize) % bytes.len();
            bytes[at] = (next() % 128) as u8;
            let mangled = String::from_utf8_lossy(&bytes);
            if mangled != token {
                assert!(auth.verify(&mangled, now).is_err(), "{mangled}");
            }
        }
    }
}
