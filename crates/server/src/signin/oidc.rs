//! Signing operators in with an OpenID provider: the authorization code flow with PKCE
//! (RFC 7636, S256) and ID token validation per OpenID Connect Core 1.0 §3.1.3.7.
//!
//! The steps that decide anything are pure functions, so they are tested without a network:
//! [`Pkce`] and [`random_token`] make the secrets of one sign-in, [`authorization_url`] builds
//! where the browser goes, and [`validate_id_token`] checks a token against a JWKS document
//! given as JSON. The network is in thin async functions over a caller's `reqwest::Client`
//! (whose timeouts, redirect policy and TLS roots apply): [`discover`], [`fetch_jwks`],
//! [`exchange`], and [`Keys`], which caches one provider's metadata and keys.
//!
//! A sign-in, as the routes use it:
//! 1. start: `state` and `nonce` from [`random_token`], a [`Pkce`]; keep the three and the
//!    verifier with the browser (a short-lived cookie), send it to [`authorization_url`];
//! 2. callback: check `state` against the kept one, [`exchange`] the `code` with the verifier,
//!    then [`Keys::validate`] the ID token with the kept `nonce`. The account is the pair
//!    (issuer, [`IdClaims::sub`]); an email is only an identity when `email_verified`.
//!
//! Only RS256 and ES256 signatures are accepted: `none` and the HMAC algorithms never are (an
//! HS256 token "signed" with the provider's public key is the classic forgery), and neither is
//! an algorithm other than the one the chosen key is for.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The scopes asked for when a provider's configuration names none: the ID token then carries
/// the email and the display name on most providers.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// How far a provider's clock may be ahead of or behind ours: `exp` is honoured this long after
/// it passed, `iat` and `nbf` may be this far in the future.
pub const CLOCK_SKEW_S: u64 = 60;

/// The most bytes read from a discovery document, a JWKS or a token response: providers' are a
/// few KiB, and a misbehaving endpoint must not fill the memory.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The longest ID token considered (they are 1–2 KiB); longer is refused before any decoding.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// An unknown `kid` refetches the JWKS, but not more often than this: every callback with a
/// forged token would otherwise make us fetch from the provider.
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// Metadata and keys older than this are fetched again before a validation, so a key that the
/// provider withdrew stops being trusted within a day even without a restart.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// One OpenID provider as the operator configured it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The name in the routes (`/v1/oidc/{name}/start`) and on the sign-in button.
    pub name: String,
    /// The issuer identifier, exactly as the provider writes it in `iss` (trailing slash or not).
    pub issuer: String,
    /// The client id registered at the provider; ID tokens must be for it (`aud`).
    pub client_id: String,
    /// The client secret, sent with HTTP Basic at the token endpoint (`client_secret_basic`);
    /// `None` for a public client, which sends only its `client_id` and relies on PKCE.
    pub client_secret: Option<String>,
    /// The scopes asked for; `openid` is added when missing. Empty means [`DEFAULT_SCOPES`].
    pub scopes: Vec<String>,
}

impl ProviderConfig {
    /// A provider with the [`DEFAULT_SCOPES`].
    pub fn new(
        name: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Option<String>,
    ) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret,
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The `scope` parameter: the configured scopes (or the defaults), `openid` first.
    pub fn scope(&self) -> String {
        let mut scopes: Vec<&str> = if self.scopes.is_empty() {
            DEFAULT_SCOPES.to_vec()
        } else {
            self.scopes.iter().map(String::as_str).collect()
        };
        let mut unique = vec!["openid"];
        for scope in scopes.drain(..) {
            if !scope.is_empty() && !unique.contains(&scope) {
                unique.push(scope);
            }
        }
        unique.join(" ")
    }
}

// By hand so that a logged configuration never shows the secret.
impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// What this client uses of a provider's discovery document (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    /// The issuer; [`discover`] checks it equals the configured one.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged for tokens.
    pub token_endpoint: String,
    /// Where the provider's signing keys are published.
    pub jwks_uri: String,
}

/// A PKCE pair (RFC 7636): the verifier stays with us, its S256 challenge goes in the
/// authorization URL, and the token endpoint only gives tokens to whoever shows the verifier,
/// so a stolen `code` alone is useless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// 43 base64url characters (32 random bytes); sent to the token endpoint.
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`; sent in the authorization URL.
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair from the OS random source.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Pkce {
        Pkce::from_verifier(random_token())
    }

    /// The pair for a given verifier (the one kept from the start of a sign-in, or a test
    /// vector).
    pub fn from_verifier(verifier: impl Into<String>) -> Pkce {
        let verifier = verifier.into();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// 32 bytes from the OS random source in base64url (43 characters): a `state`, a `nonce` or a
/// PKCE verifier.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The URL to send the browser to: the authorization code flow (`response_type=code`) for
/// `cfg.client_id`, with `state`, `nonce` and the S256 PKCE challenge. `redirect_uri` must be
/// registered at the provider exactly as given here and given again to [`exchange`].
pub fn authorization_url(
    meta: &Metadata,
    cfg: &ProviderConfig,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    pkce: &Pkce,
) -> String {
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &cfg.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", &cfg.scope()),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    // Some providers' endpoints carry a query of their own (a tenant, a policy): keep it.
    let separator = if meta.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{query}", meta.authorization_endpoint)
}

/// Who signed in, from a validated ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    /// The provider's stable identifier of the person; with the issuer, the account's key.
    pub sub: String,
    /// Their email, if the provider shared it (scope `email`).
    pub email: Option<String>,
    /// Whether the provider verified that email; an unverified email identifies no one.
    pub email_verified: bool,
    /// Their display name, if shared (scope `profile`).
    pub name: Option<String>,
}

/// Why a sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The discovery document or the JWKS could not be used (HTTP status, not JSON, a missing
    /// field, an issuer other than the configured one).
    #[error("OpenID discovery: {0}")]
    Discovery(String),
    /// The token endpoint refused the code or answered without an ID token.
    #[error("OpenID token endpoint: {0}")]
    Token(String),
    /// The ID token failed a check; the reason names which: `format` (not a compact JWS, or
    /// bad JSON), `header` (a `crit` extension), `algorithm` (not RS256/ES256, or not the one
    /// the key is for), `key` (no key with that `kid`, even after refetching the JWKS),
    /// `signature`, `issuer`, `audience` (`aud` lacks the client id, or `azp` is another
    /// client), `expired`, `issued_at` (`iat` missing or in the future), `not_yet_valid`
    /// (`nbf`), `nonce`, `subject` (`sub` missing or empty).
    #[error("invalid ID token: {0}")]
    InvalidToken(&'static str),
    /// The provider could not be reached, or the connection failed.
    #[error("OpenID provider unreachable: {0}")]
    Network(String),
}

/// Validates an ID token per OpenID Connect Core §3.1.3.7 and returns who it names.
///
/// `jwks` is the provider's JWKS document (`{"keys": [...]}`); `now_s` is the Unix time. The
/// signature is checked first, with the key named by `kid` (or the only suitable key when the
/// token names none), and only then the claims: `iss` equals `meta.issuer` exactly, `aud`
/// contains `cfg.client_id` (and `azp`, when present, is it; it must be present when there are
/// several audiences), `exp` has not passed and `iat`/`nbf` are not in the future (with
/// [`CLOCK_SKEW_S`]), and `nonce` equals the one sent.
pub fn validate_id_token(
    id_token: &str,
    jwks: &Value,
    meta: &Metadata,
    cfg: &ProviderConfig,
    nonce: &str,
    now_s: u64,
) -> Result<IdClaims, OidcError> {
    let claims = verify_signature(id_token, jwks)?;
    check_claims(&claims, meta, cfg, nonce, now_s)
}

/// The header fields that matter here.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// The algorithms accepted, and the key type each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    fn parse(alg: &str) -> Option<Alg> {
        match alg {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    /// Whether a JWK can verify this algorithm: its key type (and curve), and its `alg` when it
    /// declares one.
    fn fits(self, jwk: &Value) -> bool {
        let kty = jwk.get("kty").and_then(Value::as_str);
        let type_fits = match self {
            Alg::Rs256 => kty == Some("RSA"),
            Alg::Es256 => {
                kty == Some("EC") && jwk.get("crv").and_then(Value::as_str) == Some("P-256")
            }
        };
        let alg_fits = match jwk.get("alg") {
            None => true,
            Some(alg) => alg.as_str() == Some(self.name()),
        };
        type_fits && alg_fits
    }
}

/// Whether a JWK is for signatures (not declared for encryption only).
fn for_signing(jwk: &Value) -> bool {
    let use_ok = match jwk.get("use") {
        None => true,
        Some(u) => u.as_str() == Some("sig"),
    };
    let ops_ok = match jwk.get("key_ops").and_then(Value::as_array) {
        None => true,
        Some(ops) => ops.iter().any(|op| op.as_str() == Some("verify")),
    };
    use_ok && ops_ok
}

/// Checks the JWS signature of a compact token and returns its payload as JSON.
fn verify_signature(id_token: &str, jwks: &Value) -> Result<Value, OidcError> {
    const FORMAT: OidcError = OidcError::InvalidToken("format");
    if id_token.len() > MAX_TOKEN_BYTES {
        return Err(FORMAT);
    }
    let mut parts = id_token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FORMAT);
    };
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| FORMAT)?;
    let header: Header = serde_json::from_slice(&header_json).map_err(|_| FORMAT)?;
    // No extension is understood here, and RFC 7515 §4.1.11 says to refuse what is not.
    if header.crit.is_some() {
        return Err(OidcError::InvalidToken("header"));
    }
    let alg = Alg::parse(&header.alg).ok_or(OidcError::InvalidToken("algorithm"))?;
    let jwk = choose_key(jwks, header.kid.as_deref(), alg)?;
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| FORMAT)?;
    let signed = &id_token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let valid = match alg {
        Alg::Rs256 => verify_rs256(jwk, signed, &signature)?,
        Alg::Es256 => verify_es256(jwk, signed, &signature)?,
    };
    if !valid {
        return Err(OidcError::InvalidToken("signature"));
    }
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| FORMAT)?;
    let claims: Value = serde_json::from_slice(&payload).map_err(|_| FORMAT)?;
    if !claims.is_object() {
        return Err(FORMAT);
    }
    Ok(claims)
}

/// The JWK that verifies this token: the signing key with the token's `kid`, or, when the token
/// names none, the only signing key that fits the algorithm.
fn choose_key<'a>(jwks: &'a Value, kid: Option<&str>, alg: Alg) -> Result<&'a Value, OidcError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let signing = keys.iter().filter(|k| for_signing(k));
    match kid {
        Some(kid) => {
            let jwk = signing
                .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                .collect::<Vec<_>>();
            match jwk.as_slice() {
                [] => Err(OidcError::InvalidToken("key")),
                // A kid may be shared by an RSA and an EC key: the algorithm picks.
                candidates => candidates
                    .iter()
                    .find(|k| alg.fits(k))
                    .copied()
                    .ok_or(OidcError::InvalidToken("algorithm")),
            }
        }
        None => {
            let fitting = signing.filter(|k| alg.fits(k)).collect::<Vec<_>>();
            match fitting.as_slice() {
                [only] => Ok(only),
                _ => Err(OidcError::InvalidToken("key")),
            }
        }
    }
}

/// A base64url member of a JWK, decoded; a missing or malformed one makes the key unusable.
fn jwk_bytes(jwk: &Value, member: &str) -> Result<Vec<u8>, OidcError> {
    jwk.get(member)
        .and_then(Value::as_str)
        .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
        .ok_or(OidcError::InvalidToken("key"))
}

/// RSASSA-PKCS1-v1_5 with SHA-256, with `n` and `e` from the JWK (2048 to 8192 bits).
fn verify_rs256(jwk: &Value, signed: &[u8], signature: &[u8]) -> Result<bool, OidcError> {
    let n = jwk_bytes(jwk, "n")?;
    let e = jwk_bytes(jwk, "e")?;
    let key = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
    Ok(key
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed,
            signature,
        )
        .is_ok())
}

/// ECDSA P-256 with SHA-256; the JWS signature is `r || s`, 64 bytes (RFC 7518 §3.4).
fn verify_es256(jwk: &Value, signed: &[u8], signature: &[u8]) -> Result<bool, OidcError> {
    use p256::ecdsa::signature::Verifier as _;
    let x = jwk_bytes(jwk, "x")?;
    let y = jwk_bytes(jwk, "y")?;
    if x.len() != 32 || y.len() != 32 {
        return Err(OidcError::InvalidToken("key"));
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| OidcError::InvalidToken("key"))?;
    if signature.len() != 64 {
        return Ok(false);
    }
    let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
        return Ok(false);
    };
    Ok(key.verify(signed, &signature).is_ok())
}

/// The claim checks of §3.1.3.7 on a payload whose signature was verified.
fn check_claims(
    claims: &Value,
    meta: &Metadata,
    cfg: &ProviderConfig,
    nonce: &str,
    now_s: u64,
) -> Result<IdClaims, OidcError> {
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let num_claim = |name: &str| claims.get(name).and_then(Value::as_u64);

    if str_claim("iss") != Some(meta.issuer.as_str()) || meta.issuer != cfg.issuer {
        return Err(OidcError::InvalidToken("issuer"));
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&cfg.client_id.as_str()) {
        return Err(OidcError::InvalidToken("audience"));
    }
    match str_claim("azp") {
        Some(azp) if azp != cfg.client_id => return Err(OidcError::InvalidToken("audience")),
        None if audiences.len() > 1 => return Err(OidcError::InvalidToken("audience")),
        _ => {}
    }

    match num_claim("exp") {
        Some(exp) if now_s < exp.saturating_add(CLOCK_SKEW_S) => {}
        _ => return Err(OidcError::InvalidToken("expired")),
    }
    match num_claim("iat") {
        Some(iat) if iat <= now_s.saturating_add(CLOCK_SKEW_S) => {}
        _ => return Err(OidcError::InvalidToken("issued_at")),
    }
    if let Some(nbf) = claims.get("nbf") {
        match nbf.as_u64() {
            Some(nbf) if nbf <= now_s.saturating_add(CLOCK_SKEW_S) => {}
            _ => return Err(OidcError::InvalidToken("not_yet_valid")),
        }
    }

    // An empty expected nonce is a caller's bug, never a match.
    if nonce.is_empty() || str_claim("nonce") != Some(nonce) {
        return Err(OidcError::InvalidToken("nonce"));
    }

    let sub = match str_claim("sub") {
        Some(sub) if !sub.is_empty() && sub.len() <= 255 => sub.to_string(),
        _ => return Err(OidcError::InvalidToken("subject")),
    };
    // Some providers send `"email_verified": "true"`: a string that says true counts too.
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(IdClaims {
        sub,
        email: str_claim("email").map(str::to_string),
        email_verified,
        name: str_claim("name").map(str::to_string),
    })
}

/// Fetches `{issuer}/.well-known/openid-configuration` (a trailing slash of the issuer is not
/// doubled) and checks that the document names `issuer` exactly (Discovery §4.3): otherwise a
/// document could make us trust tokens of another issuer.
pub async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Metadata, OidcError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = get_json(client, &url).await?;
    // PKCE S256 is always sent: a provider that lists the methods it supports without it would
    // fail every sign-in later, so the configuration is refused now with the reason.
    if let Some(methods) = body
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
    {
        if !methods.iter().any(|m| m.as_str() == Some("S256")) {
            return Err(OidcError::Discovery(format!(
                "{url}: the provider does not support PKCE with S256"
            )));
        }
    }
    // Each required member by name, so an operator reads which one the provider lacks.
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
    ] {
        if !body.get(member).is_some_and(Value::is_string) {
            return Err(OidcError::Discovery(format!(
                "{url}: no \"{member}\" string"
            )));
        }
    }
    let meta: Metadata =
        serde_json::from_value(body).map_err(|e| OidcError::Discovery(format!("{url}: {e}")))?;
    if meta.issuer != issuer {
        return Err(OidcError::Discovery(format!(
            "{url} names the issuer {:?}, not {issuer:?}",
            meta.issuer
        )));
    }
    Ok(meta)
}

/// Fetches the provider's JWKS document and checks it has a `keys` array.
pub async fn fetch_jwks(client: &reqwest::Client, meta: &Metadata) -> Result<Value, OidcError> {
    let jwks = get_json(client, &meta.jwks_uri).await?;
    if !jwks.get("keys").is_some_and(Value::is_array) {
        return Err(OidcError::Discovery(format!(
            "{} is not a JWKS (no \"keys\" array)",
            meta.jwks_uri
        )));
    }
    Ok(jwks)
}

/// Exchanges an authorization `code` for tokens at the token endpoint and returns the ID token
/// (not yet validated: give it to [`Keys::validate`]). `verifier` is the PKCE verifier and
/// `redirect_uri` the one in the authorization URL. A client with a secret authenticates with
/// HTTP Basic (`client_secret_basic`, the default of OpenID Connect); a public client sends its
/// `client_id` in the body.
pub async fn exchange(
    client: &reqwest::Client,
    meta: &Metadata,
    cfg: &ProviderConfig,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<String, OidcError> {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let mut request = client
        .post(&meta.token_endpoint)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json");
    match &cfg.client_secret {
        Some(secret) => {
            // RFC 6749 §2.3.1: both are form-encoded before they are joined and base64-encoded.
            let credentials = format!("{}:{}", encode(&cfg.client_id), encode(secret));
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode(credentials)),
            );
        }
        None => fields.push(("client_id", &cfg.client_id)),
    }
    let response = request
        .body(form(&fields))
        .send()
        .await
        .map_err(|e| OidcError::Network(describe(&e)))?;
    let status = response.status();
    let body = read_limited(response).await?;
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        // RFC 6749 §5.2: `error` and maybe `error_description` say why.
        let said = json
            .as_ref()
            .map(|j| {
                let error = j.get("error").and_then(Value::as_str).unwrap_or("");
                match j.get("error_description").and_then(Value::as_str) {
                    Some(d) => format!("{error}: {d}"),
                    None => error.to_string(),
                }
            })
            .unwrap_or_default();
        return Err(OidcError::Token(format!(
            "HTTP {} {}",
            status.as_u16(),
            shorten(&said)
        )));
    }
    json.as_ref()
        .and_then(|j| j.get("id_token"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| OidcError::Token("the answer has no id_token".to_string()))
}

/// One provider's metadata and JWKS, fetched on first use and shared by every sign-in: an ID
/// token whose `kid` is unknown refetches the JWKS once (the provider rotated its keys), at most
/// every ten seconds; both are refetched when a day old.
pub struct Keys {
    issuer: String,
    state: tokio::sync::Mutex<Option<Arc<Cached>>>,
}

/// What a [`Keys`] holds.
struct Cached {
    meta: Metadata,
    jwks: Value,
    /// When the JWKS was fetched; `None` when it was given ([`Keys::with`]), which lets the
    /// first unknown `kid` refetch at once.
    fetched: Option<Instant>,
    /// When the metadata was fetched (`None`: given).
    discovered: Option<Instant>,
}

impl Keys {
    /// Keys of the provider at `issuer`, discovered on first use.
    pub fn new(issuer: impl Into<String>) -> Keys {
        Keys {
            issuer: issuer.into(),
            state: tokio::sync::Mutex::new(None),
        }
    }

    /// Keys starting from metadata and a JWKS already at hand (its keys are refetched from
    /// `meta.jwks_uri` when a `kid` is unknown).
    pub fn with(meta: Metadata, jwks: Value) -> Keys {
        Keys {
            issuer: meta.issuer.clone(),
            state: tokio::sync::Mutex::new(Some(Arc::new(Cached {
                meta,
                jwks,
                fetched: None,
                discovered: None,
            }))),
        }
    }

    /// The provider's metadata (for [`authorization_url`] and [`exchange`]), discovered on
    /// first use.
    pub async fn metadata(&self, client: &reqwest::Client) -> Result<Metadata, OidcError> {
        Ok(self.current(client).await?.meta.clone())
    }

    /// [`validate_id_token`] with this provider's keys; an unknown `kid` refetches the JWKS
    /// (unless it was fetched in the last ten seconds) and validates once more.
    pub async fn validate(
        &self,
        client: &reqwest::Client,
        id_token: &str,
        cfg: &ProviderConfig,
        nonce: &str,
        now_s: u64,
    ) -> Result<IdClaims, OidcError> {
        let cached = self.current(client).await?;
        match validate_id_token(id_token, &cached.jwks, &cached.meta, cfg, nonce, now_s) {
            Err(OidcError::InvalidToken("key")) => {
                let Some(refetched) = self.refetch_jwks(client, &cached).await? else {
                    return Err(OidcError::InvalidToken("key"));
                };
                validate_id_token(
                    id_token,
                    &refetched.jwks,
                    &refetched.meta,
                    cfg,
                    nonce,
                    now_s,
                )
            }
            result => result,
        }
    }

    /// The cache, filled (or renewed when a day old) first.
    async fn current(&self, client: &reqwest::Client) -> Result<Arc<Cached>, OidcError> {
        // Held across the fetches: concurrent sign-ins wait for one fetch instead of each
        // making their own.
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref() {
            let fresh = cached.discovered.is_none_or(|at| at.elapsed() < MAX_AGE)
                && cached.fetched.is_none_or(|at| at.elapsed() < MAX_AGE);
            if fresh {
                return Ok(cached.clone());
            }
        }
        let meta = discover(client, &self.issuer).await?;
        let jwks = fetch_jwks(client, &meta).await?;
        let now = Instant::now();
        let cached = Arc::new(Cached {
            meta,
            jwks,
            fetched: Some(now),
            discovered: Some(now),
        });
        *state = Some(cached.clone());
        Ok(cached)
    }

    /// Fetches the JWKS again after `seen` missed a key: `None` when it is too recent to
    /// refetch. Another sign-in may have refetched meanwhile; then its keys are used.
    async fn refetch_jwks(
        &self,
        client: &reqwest::Client,
        seen: &Arc<Cached>,
    ) -> Result<Option<Arc<Cached>>, OidcError> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref() {
            if !Arc::ptr_eq(cached, seen) {
                return Ok(Some(cached.clone()));
            }
        }
        if seen.fetched.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return Ok(None);
        }
        let jwks = fetch_jwks(client, &seen.meta).await?;
        let cached = Arc::new(Cached {
            meta: seen.meta.clone(),
            jwks,
            fetched: Some(Instant::now()),
            discovered: seen.discovered,
        });
        *state = Some(cached.clone());
        Ok(Some(cached))
    }
}

/// GETs a JSON document; any failure is a [`OidcError::Discovery`] but the network's.
async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, OidcError> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| OidcError::Network(describe(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(OidcError::Discovery(format!(
            "{url}: HTTP {}",
            status.as_u16()
        )));
    }
    let body = read_limited(response).await?;
    serde_json::from_slice(&body).map_err(|e| OidcError::Discovery(format!("{url}: {e}")))
}

/// A response's body, up to [`MAX_RESPONSE_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, OidcError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OidcError::Network(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OidcError::Discovery(format!(
                "{}: the answer is over {MAX_RESPONSE_BYTES} bytes",
                response.url()
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request error in one line with its innermost cause (reqwest's own message only says
/// "error sending request").
fn describe(err: &reqwest::Error) -> String {
    let mut innermost = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        innermost = cause.to_string();
        source = cause.source();
    }
    match err.url() {
        Some(url) => format!("{url}: {innermost}"),
        None => innermost,
    }
}

/// At most 200 characters of a provider's message, on one line.
fn shorten(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(200).collect()
}

/// `application/x-www-form-urlencoded` pairs (also a valid URL query).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes all but RFC 3986's unreserved characters (a space is `%20`, which both
/// queries and form bodies read as a space).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use serde_json::json;

    /// A 2048-bit RSA key (PKCS#1 DER) made for these tests only: ring signs with RSA but cannot
    /// make RSA keys.
    const RSA_KEY_DER: [&str; 17] = [
        "MIIEowIBAAKCAQEAsP9n17UBDFJKOhmr7cB9BdQWXswiqVoV8AcqEh5D5OXNO2MMwIpTqBabXrsNHBAGm3JEIiN2/hvQHUFL",
        "oRp7PcEsVw3MVFe54vUGM0kfQhpc01zkFwArJXdGU2rtY2baHDcruJigV3+sBL/2wT6JxxUm3Qx1y2moU8zF2d6CyjPsJ1qD",
        "oL+sZv7xoesChPj6j1EhkNUorLazh3AHK8bVdrM4PpXlXTDQCFDKJKJpWxTwIq4O0Vh9V0mv7v5cTehbKcxpJvM9sYzJc461",
        "ZyQGeouAp2feMRWYlzGnJ1JY2884yTmFP35Z/ymIYTzme8YBiIH79bkX/PhRo6QE0N0ZhQIDAQABAoIBABKVUPD1Y0hIutwH",
        "G6WJNbcvHDAqIk4slAFmXH+YJ4xjUkfKGlR8JtS5lujRyR++plWbdYAuFWK68dVN0zkgH3ti35sTlaCaBf1zDgpuwsuScAI4",
        "Y7GZ223XbDilkTSutPdhwC3lRxnDYQCt/6QswujLlY/U1z3wTcjf8Y/yjEHawox/AUMwUR6jTOrhNepudGt2Iwjm55FXzX+I",
        "aHUQ8lKo9fqRc0II1mCSJir7067Gpwaw/GJ5IJ+nARaO8T7SgG7DCcdoHK+U7gBjZXU+npr2TPsMV5pkXgM12KUOHFMzKe7N",
        "Y34CHzG56BAKb+n+UDSVJvwR416zkwNNAZk8wxsCgYEA5wsaglz6rPWsOX7PZQ8KlzuDnww5OHoVIHput2IQIgAw0Znllozg",
        "LlRpWE5rz2Iu/vjYvdL9Tv9tld9lRRCMTEDY1f4blCchtZ6VCwxGls/vbXbVMgGG4RfkNfPmTcKfN9+iAt9FK+TTuBPEMgLs",
        "XephZREjF5mxT3+vUh7CjbMCgYEAxB3PhN6Wj5tS+LFy2wRUx/gtetCuy8ie84EQEeepMZCKzEE2QGjrVrOH8x5VwRhxDUvJ",
        "1GVwFI/w9WMXNCgU6DBGLizlRpmIEb4qk634rpB24ntcdadHBT8HwCcybH0umOUzvWe1rave1ATUQu6LlqZEnqkTTaV8QlEy",
        "OEuXT+cCgYEAq6wcbnEX8hw5dB89iyG6BNU735n9inFr8U4Hpks/IYRywctQRKU4jjQ6clsS0G1r7hiJM8LqZSB2FL6BSOga",
        "1y338El3xIWvDnxe0m60pKqshPGfSCDKT8ao003++hh6pdGNWAT+KLdGeah2R5LUfpQA+k/Ze1e/4ApIAwTIGvECgYBHCO0z",
        "mVQ7q+z/u3Z4sjbrP49pntDRa1d3p9XkRl7YXxyHI0+9QMONYfXqL6CsEmhQgpUWY6+XIxQKLdwnviTkfSfObeCWE+JfWtwd",
        "JbSfth/5pOk2jGKDGfN6vDfdZ/JK2ypEfp4ly80oSp9/ptvUs2DDf0ZIp5o8gyCHl4m1HQKBgCdwbbognGGuz6xhO9DA5Abh",
        "JvMaR9sbTs+cQtquNyQh+XA3hQqM+UcejMrG7ey+2SXhsTQKFSWpnVIEYKlODOSWRn9Mk75uV36cmHktCM7Vn/Tqph9whyd+",
        "+QTCDPfhrZJvGEVCuAPY8yzPqJAw8EUGfAlPVJzGVEAIqdniKcV1",
    ];

    const ISSUER: &str = "https://id.corp.example";
    const CLIENT: &str = "surechat";
    const NONCE: &str = "n-0S6_WzA2Mj";
    const NOW: u64 = 1_800_000_000;

    enum Signer {
        Rsa(ring::signature::RsaKeyPair),
        Ec(p256::ecdsa::SigningKey),
    }

    impl Signer {
        fn rsa() -> Signer {
            let der = STANDARD.decode(RSA_KEY_DER.concat()).unwrap();
            Signer::Rsa(ring::signature::RsaKeyPair::from_der(&der).unwrap())
        }

        fn ec(seed: u8) -> Signer {
            Signer::Ec(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap())
        }

        fn jwk(&self, kid: &str) -> Value {
            match self {
                Signer::Rsa(key) => {
                    let public: ring::signature::RsaPublicKeyComponents<Vec<u8>> =
                        key.public().into();
                    json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                           "n": URL_SAFE_NO_PAD.encode(&public.n),
                           "e": URL_SAFE_NO_PAD.encode(&public.e)})
                }
                Signer::Ec(key) => {
                    let point = key.verifying_key().to_encoded_point(false);
                    json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
                           "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                           "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())})
                }
            }
        }

        fn alg(&self) -> &'static str {
            match self {
                Signer::Rsa(_) => "RS256",
                Signer::Ec(_) => "ES256",
            }
        }

        fn sign(&self, input: &[u8]) -> Vec<u8> {
            match self {
                Signer::Rsa(key) => {
                    let mut out = vec![0; key.public().modulus_len()];
                    let rng = ring::rand::SystemRandom::new();
                    key.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, input, &mut out)
                        .unwrap();
                    out
                }
                Signer::Ec(key) => {
                    let signature: p256::ecdsa::Signature = key.sign(input);
                    signature.to_bytes().to_vec()
                }
            }
        }

        /// A compact JWS of `claims` with this key, its algorithm and `kid`.
        fn token(&self, kid: &str, claims: &Value) -> String {
            self.token_with(
                &json!({"alg": self.alg(), "typ": "JWT", "kid": kid}),
                claims,
            )
        }

        fn token_with(&self, header: &Value, claims: &Value) -> String {
            let input = signing_input(header, claims);
            let signature = self.sign(input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }
    }

    fn signing_input(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
            "iat": NOW - 5, "exp": NOW + 300,
            "email": "agent@corp.example", "email_verified": true, "name": "Ada Agent",
        })
    }

    fn meta() -> Metadata {
        Metadata {
            issuer: ISSUER.to_string(),
            authorization_endpoint: format!("{ISSUER}/authorize"),
            token_endpoint: format!("{ISSUER}/token"),
            jwks_uri: format!("{ISSUER}/jwks"),
        }
    }

    fn cfg() -> ProviderConfig {
        ProviderConfig::new("corp", ISSUER, CLIENT, Some("s3cret".to_string()))
    }

    fn jwks() -> Value {
        json!({"keys": [Signer::rsa().jwk("rsa-1"), Signer::ec(7).jwk("ec-1")]})
    }

    fn validate(token: &str) -> Result<IdClaims, OidcError> {
        validate_id_token(token, &jwks(), &meta(), &cfg(), NONCE, NOW)
    }

    fn with(changes: Value) -> Value {
        let mut claims = claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    fn refused(reason: &'static str) -> Result<IdClaims, OidcError> {
        Err(OidcError::InvalidToken(reason))
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        // The challenge as RFC 7636 prints it, and as `openssl dgst -sha256 -binary | base64url`
        // computes it.
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let fresh = Pkce::new();
        assert_eq!(fresh.verifier.len(), 43);
        assert_eq!(
            Pkce::from_verifier(fresh.verifier.clone()).challenge,
            fresh.challenge
        );
    }

    #[test]
    fn random_tokens_are_43_base64url_characters_and_differ() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }

    #[test]
    fn authorization_url_carries_every_parameter_encoded() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let url = authorization_url(
            &meta(),
            &cfg(),
            "https://chat.example/v1/oidc/corp/callback",
            "st&te",
            NONCE,
            &pkce,
        );
        assert_eq!(
            url,
            "https://id.corp.example/authorize?response_type=code&client_id=surechat\
             &redirect_uri=https%3A%2F%2Fchat.example%2Fv1%2Foidc%2Fcorp%2Fcallback\
             &scope=openid%20email%20profile&state=st%26te&nonce=n-0S6_WzA2Mj\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        );
        // A tenant's query on the endpoint is kept.
        let mut tenant = meta();
        tenant.authorization_endpoint = format!("{ISSUER}/authorize?p=signin");
        let url = authorization_url(&tenant, &cfg(), "https://c/cb", "s", "n", &pkce);
        assert!(url.starts_with("https://id.corp.example/authorize?p=signin&response_type=code&"));
    }

    #[test]
    fn scope_puts_openid_first_once() {
        let mut cfg = cfg();
        assert_eq!(cfg.scope(), "openid email profile");
        cfg.scopes = vec![
            "email".into(),
            "openid".into(),
            "groups".into(),
            "email".into(),
        ];
        assert_eq!(cfg.scope(), "openid email groups");
        cfg.scopes.clear();
        assert_eq!(cfg.scope(), "openid email profile");
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let shown = format!("{:?}", cfg());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn rs256_and_es256_tokens_are_accepted() {
        let expected = IdClaims {
            sub: "248289761001".into(),
            email: Some("agent@corp.example".into()),
            email_verified: true,
            name: Some("Ada Agent".into()),
        };
        assert_eq!(
            validate(&Signer::rsa().token("rsa-1", &claims())),
            Ok(expected.clone())
        );
        assert_eq!(
            validate(&Signer::ec(7).token("ec-1", &claims())),
            Ok(expected)
        );
    }

    #[test]
    fn es256_with_a_high_s_is_accepted_as_jose_libraries_make_them() {
        // ECDSA signatures (r, s) and (r, n − s) are both valid; JOSE libraries do not
        // normalise s, so a verifier that insisted on low s would refuse half the tokens.
        let Signer::Ec(key) = Signer::ec(7) else {
            unreachable!()
        };
        let header = json!({"alg": "ES256", "kid": "ec-1"});
        let input = signing_input(&header, &claims());
        let low: p256::ecdsa::Signature = key.sign(input.as_bytes());
        let low = low.normalize_s().unwrap_or(low);
        let (r, s) = low.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        assert!(high.normalize_s().is_some(), "this s is the high one");
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(high.to_bytes()));
        assert!(validate(&token).is_ok());
    }

    #[test]
    fn a_token_for_another_client_is_refused() {
        let token = Signer::rsa().token("rsa-1", &with(json!({"aud": "other-app"})));
        assert_eq!(validate(&token), refused("audience"));
        // Several audiences: ours among them is not enough without azp naming us.
        let token = Signer::rsa().token("rsa-1", &with(json!({"aud": ["other-app", CLIENT]})));
        assert_eq!(validate(&token), refused("audience"));
        let token = Signer::rsa().token(
            "rsa-1",
            &with(json!({"aud": ["other-app", CLIENT], "azp": CLIENT})),
        );
        assert!(validate(&token).is_ok());
        let token = Signer::rsa().token("rsa-1", &with(json!({"azp": "other-app"})));
        assert_eq!(validate(&token), refused("audience"));
        let token = Signer::rsa().token("rsa-1", &with(json!({"aud": null})));
        assert_eq!(validate(&token), refused("audience"));
    }

    #[test]
    fn a_token_of_another_issuer_is_refused() {
        for iss in [
            json!("https://evil.example"),
            json!(format!("{ISSUER}/")),
            json!(null),
        ] {
            let token = Signer::ec(7).token("ec-1", &with(json!({ "iss": iss })));
            assert_eq!(validate(&token), refused("issuer"), "iss {iss}");
        }
    }

    #[test]
    fn a_token_whose_signature_changed_by_one_byte_is_refused() {
        for (signer, kid) in [(Signer::rsa(), "rsa-1"), (Signer::ec(7), "ec-1")] {
            let token = signer.token(kid, &claims());
            let (input, signature) = token.rsplit_once('.').unwrap();
            let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            signature[10] ^= 0x01;
            let tampered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
            assert_eq!(validate(&tampered), refused("signature"), "{kid}");
            // The claims changed under the signature: refused the same way.
            let (_, payload_and_sig) = token.split_once('.').unwrap();
            let (_, sig) = payload_and_sig.split_once('.').unwrap();
            let header = token.split('.').next().unwrap();
            let forged_claims = URL_SAFE_NO_PAD.encode(with(json!({"sub": "admin"})).to_string());
            let forged = format!("{header}.{forged_claims}.{sig}");
            assert_eq!(validate(&forged), refused("signature"), "{kid}");
        }
    }

    #[test]
    fn an_expired_token_is_refused_after_the_skew() {
        let token = Signer::rsa().token("rsa-1", &with(json!({"exp": NOW - 3600})));
        assert_eq!(validate(&token), refused("expired"));
        let token = Signer::rsa().token("rsa-1", &with(json!({"exp": NOW - CLOCK_SKEW_S})));
        assert_eq!(validate(&token), refused("expired"));
        // Within the skew a just-expired token still passes (clocks differ).
        let token = Signer::rsa().token("rsa-1", &with(json!({"exp": NOW - 10})));
        assert!(validate(&token).is_ok());
        let token = Signer::rsa().token("rsa-1", &with(json!({"exp": null})));
        assert_eq!(validate(&token), refused("expired"));
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused() {
        let token = Signer::rsa().token("rsa-1", &with(json!({"iat": NOW + 3600})));
        assert_eq!(validate(&token), refused("issued_at"));
        let token = Signer::rsa().token("rsa-1", &with(json!({"iat": NOW + 30})));
        assert!(validate(&token).is_ok());
        let token = Signer::rsa().token("rsa-1", &with(json!({"nbf": NOW + 3600})));
        assert_eq!(validate(&token), refused("not_yet_valid"));
    }

    #[test]
    fn a_token_with_another_nonce_is_refused() {
        let token = Signer::ec(7).token("ec-1", &with(json!({"nonce": "replayed"})));
        assert_eq!(validate(&token), refused("nonce"));
        let token = Signer::ec(7).token("ec-1", &with(json!({"nonce": null})));
        assert_eq!(validate(&token), refused("nonce"));
        // Nor does an empty expected nonce match a token without one.
        let token = Signer::ec(7).token("ec-1", &with(json!({"nonce": ""})));
        assert_eq!(
            validate_id_token(&token, &jwks(), &meta(), &cfg(), "", NOW),
            refused("nonce")
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let header = json!({"alg": "none", "typ": "JWT"});
        let token = format!("{}.", signing_input(&header, &claims()));
        assert_eq!(validate(&token), refused("algorithm"));
        let header = json!({"alg": "none", "kid": "rsa-1"});
        let token = format!("{}.", signing_input(&header, &claims()));
        assert_eq!(validate(&token), refused("algorithm"));
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_refused() {
        // The classic forgery: a verifier that takes the alg from the header would check an
        // HMAC keyed with the RSA public key, which anyone can compute.
        let jwk = Signer::rsa().jwk("rsa-1");
        let header = json!({"alg": "HS256", "kid": "rsa-1"});
        let input = signing_input(&header, &with(json!({"sub": "admin"})));
        for secret in [jwk.to_string(), jwk["n"].as_str().unwrap().to_string()] {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            let tag = ring::hmac::sign(&key, input.as_bytes());
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
            assert_eq!(validate(&token), refused("algorithm"));
        }
    }

    #[test]
    fn an_algorithm_other_than_the_keys_is_refused() {
        // An ES256 token naming the RSA key's kid.
        let token = Signer::ec(7).token("rsa-1", &claims());
        assert_eq!(validate(&token), refused("algorithm"));
        // RS256 with a key that declares itself for RS512 only.
        let mut jwk = Signer::rsa().jwk("rsa-1");
        jwk["alg"] = json!("RS512");
        let token = Signer::rsa().token("rsa-1", &claims());
        assert_eq!(
            validate_id_token(&token, &json!({"keys": [jwk]}), &meta(), &cfg(), NONCE, NOW),
            refused("algorithm")
        );
    }

    #[test]
    fn an_unknown_kid_is_refused() {
        let token = Signer::ec(9).token("ec-2", &claims());
        assert_eq!(validate(&token), refused("key"));
        // A key published for encryption does not verify signatures.
        let mut jwk = Signer::ec(9).jwk("ec-2");
        jwk["use"] = json!("enc");
        assert_eq!(
            validate_id_token(&token, &json!({"keys": [jwk]}), &meta(), &cfg(), NONCE, NOW),
            refused("key")
        );
    }

    #[test]
    fn without_a_kid_the_only_fitting_key_is_used() {
        let header = json!({"alg": "ES256"});
        let token = Signer::ec(7).token_with(&header, &claims());
        assert!(validate(&token).is_ok());
        // Two EC keys and no kid: which one is ambiguous.
        let two = json!({"keys": [Signer::ec(7).jwk("a"), Signer::ec(9).jwk("b")]});
        assert_eq!(
            validate_id_token(&token, &two, &meta(), &cfg(), NONCE, NOW),
            refused("key")
        );
    }

    #[test]
    fn malformed_tokens_and_crit_headers_are_refused() {
        for token in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(validate(token), refused("format"), "{token:.20}");
        }
        let header = json!({"alg": "ES256", "kid": "ec-1", "crit": ["exp"]});
        let token = Signer::ec(7).token_with(&header, &claims());
        assert_eq!(validate(&token), refused("header"));
    }

    #[test]
    fn claims_are_read_as_providers_send_them() {
        let token = Signer::ec(7).token(
            "ec-1",
            &with(json!({"email_verified": "true", "name": null})),
        );
        let claims = validate(&token).unwrap();
        assert!(claims.email_verified);
        assert_eq!(claims.name, None);
        let token = Signer::ec(7).token("ec-1", &with(json!({"email_verified": null})));
        assert!(!validate(&token).unwrap().email_verified);
        let token = Signer::ec(7).token("ec-1", &with(json!({"sub": ""})));
        assert_eq!(validate(&token), refused("subject"));
    }

    #[test]
    fn the_issuer_must_also_be_the_configured_one() {
        // Metadata for one issuer used with the configuration of another.
        let mut other = cfg();
        other.issuer = "https://other.example".into();
        let token = Signer::ec(7).token("ec-1", &claims());
        assert_eq!(
            validate_id_token(&token, &jwks(), &meta(), &other, NONCE, NOW),
            refused("issuer")
        );
    }

    /// A provider on 127.0.0.1 serving discovery and a JWKS that the test changes, counting
    /// the JWKS fetches.
    struct FakeProvider {
        issuer: String,
        jwks: Arc<std::sync::Mutex<Value>>,
        fetches: Arc<std::sync::atomic::AtomicUsize>,
    }

    /// `changes` replaces members of the discovery document (`issuer` is the server's own).
    async fn fake_provider(jwks: Value, changes: Value) -> FakeProvider {
        use axum::routing::get;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let jwks = Arc::new(std::sync::Mutex::new(jwks));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut document = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "code_challenge_methods_supported": ["plain", "S256"],
        });
        for (k, v) in changes.as_object().unwrap() {
            document[k] = v.clone();
        }
        let (served, counted) = (jwks.clone(), fetches.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(document) }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    axum::Json(served.lock().unwrap().clone())
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeProvider {
            issuer,
            jwks,
            fetches,
        }
    }

    fn http_client() -> reqwest::Client {
        // reqwest is built without a TLS provider of its own; plain HTTP still needs one set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    #[tokio::test]
    async fn keys_refetch_the_jwks_once_when_the_provider_rotates() {
        use std::sync::atomic::Ordering;
        let provider = fake_provider(json!({"keys": [Signer::ec(7).jwk("old")]}), json!({})).await;
        let client = http_client();
        let keys = Keys::new(provider.issuer.clone());
        let cfg = ProviderConfig::new("corp", &provider.issuer, CLIENT, None);
        let claims = with(json!({"iss": provider.issuer}));

        let old = Signer::ec(7).token("old", &claims);
        assert!(keys.validate(&client, &old, &cfg, NONCE, NOW).await.is_ok());
        assert_eq!(provider.fetches.load(Ordering::SeqCst), 1);

        // The provider rotates; the JWKS was fetched just now, so an unknown kid is refused
        // without hammering the provider...
        *provider.jwks.lock().unwrap() = json!({"keys": [Signer::ec(9).jwk("new")]});
        let new = Signer::ec(9).token("new", &claims);
        assert_eq!(
            keys.validate(&client, &new, &cfg, NONCE, NOW).await,
            refused("key")
        );
        assert_eq!(provider.fetches.load(Ordering::SeqCst), 1);

        // ...while keys given at hand refetch at the first unknown kid, once.
        let meta = keys.metadata(&client).await.unwrap();
        let keys = Keys::with(meta, json!({"keys": [Signer::ec(7).jwk("old")]}));
        assert!(keys.validate(&client, &new, &cfg, NONCE, NOW).await.is_ok());
        assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
        assert!(keys.validate(&client, &new, &cfg, NONCE, NOW).await.is_ok());
        assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
        // The withdrawn key is no longer trusted.
        assert_eq!(
            keys.validate(&client, &old, &cfg, NONCE, NOW).await,
            refused("key")
        );
        // A forged kid right after finds the refetch too recent: no third fetch.
        let forged = Signer::ec(11).token("forged", &claims);
        assert_eq!(
            keys.validate(&client, &forged, &cfg, NONCE, NOW).await,
            refused("key")
        );
        assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn discovery_refuses_a_document_naming_another_issuer() {
        let provider = fake_provider(
            json!({"keys": []}),
            json!({"issuer": "https://evil.example"}),
        )
        .await;
        let err = discover(&http_client(), &provider.issuer)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OidcError::Discovery(m) if m.contains("evil")),
            "{err}"
        );
        let provider = fake_provider(json!({"keys": []}), json!({})).await;
        let meta = discover(&http_client(), &format!("{}/", provider.issuer)).await;
        assert!(
            matches!(meta, Err(OidcError::Discovery(_))),
            "a trailing slash is another issuer"
        );
        let meta = discover(&http_client(), &provider.issuer).await.unwrap();
        assert_eq!(meta.jwks_uri, format!("{}/jwks", provider.issuer));
    }

    #[tokio::test]
    async fn discovery_refuses_a_provider_without_pkce_s256() {
        let methods = json!({"code_challenge_methods_supported": ["plain"]});
        let provider = fake_provider(json!({"keys": []}), methods).await;
        let err = discover(&http_client(), &provider.issuer)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OidcError::Discovery(m) if m.contains("S256")),
            "{err}"
        );
        // A document that lists no methods may still support PKCE: it is not refused.
        let unlisted = json!({"code_challenge_methods_supported": null});
        let provider = fake_provider(json!({"keys": []}), unlisted).await;
        assert!(discover(&http_client(), &provider.issuer).await.is_ok());
        // Nor is one without a JWKS URI accepted.
        let provider = fake_provider(json!({"keys": []}), json!({"jwks_uri": null})).await;
        let err = discover(&http_client(), &provider.issuer)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OidcError::Discovery(m) if m.contains("jwks_uri")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_a_network_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = discover(&http_client(), &issuer).await.unwrap_err();
        assert!(matches!(err, OidcError::Network(_)), "{err}");
    }
}
