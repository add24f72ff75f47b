//! Web Push, the parts that talk to a browser's push service: delivery (RFC 8030), payload
//! encryption with the `aes128gcm` content coding (RFC 8291 over RFC 8188) and the server's
//! identification with VAPID (RFC 8292).
//!
//! The push service (FCM, Mozilla autopush, Apple's) only relays: the payload is encrypted to the
//! browser's subscription keys, so the relay cannot read it, and it is signed for with the
//! server's VAPID key, so only this server can push to the subscriptions made with its public
//! key. What to push, when, and what to do with a subscription that is gone is decided by the
//! caller; [`send`] answers with a [`PushOutcome`] that says which of those applies.

use std::io;
use std::path::Path;

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use p256::{PublicKey, SecretKey};
use reqwest::Url;
use sha2::Sha256;

/// Record size written in the header. One record carries the whole message (it is at most
/// 4096 bytes, RFC 8030 Section 7.2), so this only has to be larger than that record.
const RECORD_SIZE: u32 = 4096;
/// Salt (16), record size (4), key id length (1) and the sender's public key (65).
const HEADER_LEN: usize = 86;
/// AES-GCM authentication tag.
const TAG_LEN: usize = 16;
/// Push services must accept bodies of 4096 bytes (RFC 8030 Section 7.2); larger ones may be
/// refused with 413.
pub const BODY_MAX: usize = 4096;
/// The most plaintext [`encrypt`] takes: what fits in [`BODY_MAX`] after the header, the tag and
/// the padding delimiter (3993 bytes, as RFC 8291 Section 4 says).
pub const PLAINTEXT_MAX: usize = BODY_MAX - HEADER_LEN - TAG_LEN - 1;
/// Lifetime of a VAPID token. RFC 8292 allows at most 24 hours; half leaves room for clocks
/// that disagree.
const VAPID_LIFETIME_S: u64 = 12 * 3600;
/// Longest `Topic` (RFC 8030 Section 5.4).
const TOPIC_MAX: usize = 32;

/// Base64url that accepts input with or without `=` padding: browsers send it without, some
/// libraries with.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a subscription, a key or a message cannot be used. None of these gets better by retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The endpoint is not an absolute `https://` or `http://` URL with a host.
    #[error("endpoint must be an https:// (or http://) URL with a host and no user name")]
    Endpoint,
    /// A key is not base64url.
    #[error("{0} is not base64url")]
    Base64(&'static str),
    /// `p256dh` is not an uncompressed point on P-256.
    #[error("p256dh must be an uncompressed P-256 point (65 bytes) on the curve")]
    PublicKey,
    /// `auth` is not 16 bytes long (its length is given).
    #[error("auth must be 16 bytes, not {0}")]
    AuthSecret(usize),
    /// The VAPID private key cannot be read.
    #[error("VAPID private key: {0}")]
    PrivateKey(String),
    /// The VAPID subject is not a `mailto:` or `https:` URI (RFC 8292 Section 2.1).
    #[error("VAPID subject must be a mailto: or https: URI")]
    Subject,
    /// The plaintext is longer than [`PLAINTEXT_MAX`] (its length is given).
    #[error("payload of {0} bytes is over the {PLAINTEXT_MAX} bytes a push message carries")]
    TooLarge(usize),
    /// The topic is longer than 32 characters or not of the base64url alphabet.
    #[error("topic must be at most 32 characters of the base64url alphabet")]
    Topic,
    /// The cipher refused its input (not expected with valid keys).
    #[error("encryption failed")]
    Crypto,
}

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it (with `keys`
/// flattened).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscription {
    /// Where to POST messages: a capability URL at the browser's push service.
    pub endpoint: String,
    /// The browser's ECDH public key: base64url of the 65-byte uncompressed P-256 point.
    pub p256dh: String,
    /// The browser's authentication secret: base64url of 16 bytes.
    pub auth: String,
}

impl std::fmt::Debug for Subscription {
    // The endpoint alone lets anyone who also holds the VAPID key push; the keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Checks what [`encrypt`] and [`send`] rely on: the endpoint is an `https://` or `http://`
    /// URL with a host (plain HTTP is accepted here; the caller applies its own policy),
    /// `p256dh` a point on the curve and `auth` 16 bytes, both base64url with or without padding.
    pub fn check(&self) -> Result<(), PushError> {
        endpoint_url(&self.endpoint)?;
        self.keys().map(|_| ())
    }

    /// The decoded `p256dh` point and `auth` secret.
    fn keys(&self) -> Result<(Vec<u8>, Vec<u8>), PushError> {
        let public = URL_SAFE_LENIENT
            .decode(self.p256dh.trim())
            .map_err(|_| PushError::Base64("p256dh"))?;
        ua_public_key(&public)?;
        let auth = URL_SAFE_LENIENT
            .decode(self.auth.trim())
            .map_err(|_| PushError::Base64("auth"))?;
        if auth.len() != 16 {
            return Err(PushError::AuthSecret(auth.len()));
        }
        Ok((public, auth))
    }
}

/// The endpoint as a URL, if it is one a push can go to.
fn endpoint_url(endpoint: &str) -> Result<Url, PushError> {
    let url = Url::parse(endpoint).map_err(|_| PushError::Endpoint)?;
    let scheme_ok = matches!(url.scheme(), "https" | "http");
    if !scheme_ok || url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() {
        return Err(PushError::Endpoint);
    }
    Ok(url)
}

/// A browser's public key: exactly the 65-byte uncompressed form, and on the curve.
fn ua_public_key(bytes: &[u8]) -> Result<PublicKey, PushError> {
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return Err(PushError::PublicKey);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| PushError::PublicKey)
}

/// A new P-256 private key from the OS random source.
fn random_secret_key() -> SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        // Fails only for zero or a value at or above the group order (about 2^-32 of draws).
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// The uncompressed SEC1 form (65 bytes) of a public key.
fn uncompressed(key: &PublicKey) -> Vec<u8> {
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// The server's VAPID identity (RFC 8292): a P-256 key whose public half browsers are given as
/// `applicationServerKey` when they subscribe, and with which every push is signed for.
pub struct Vapid {
    secret: SecretKey,
    signing: p256::ecdsa::SigningKey,
    public: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public)
            .finish_non_exhaustive()
    }
}

impl Vapid {
    fn new(secret: SecretKey) -> Vapid {
        let public = URL_SAFE_NO_PAD.encode(uncompressed(&secret.public_key()));
        Vapid {
            signing: p256::ecdsa::SigningKey::from(&secret),
            secret,
            public,
        }
    }

    /// A new key, kept in memory only (tests; a server uses [`Vapid::load_or_create`], since
    /// every subscription is bound to the key it was made with).
    pub fn generate() -> Vapid {
        Vapid::new(random_secret_key())
    }

    /// The key in `path` (PEM, PKCS#8 or SEC1), or a new one written there with mode 0600 if the
    /// file does not exist. The key must outlive restarts: subscriptions made with another
    /// public key are refused by push services. A file that exists but holds no key is an error,
    /// never replaced, for the same reason.
    pub fn load_or_create(path: &Path) -> io::Result<Vapid> {
        let unreadable = |err: PushError| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {err}", path.display()),
            )
        };
        match std::fs::read_to_string(path) {
            Ok(pem) => return Vapid::from_pem(&pem).map_err(unreadable),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::config::create_private_dir(dir)?;
        }
        let vapid = Vapid::generate();
        let pem = vapid
            .secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // Written whole to a temporary file, then linked in place: a process starting at the
        // same moment reads either no file or a complete one, and a link never replaces a key
        // another process put there first.
        let temporary = path.with_extension(format!("tmp-{}", crate::auth::random_hex(6)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temporary).and_then(|mut file| {
            io::Write::write_all(&mut file, pem.as_bytes())?;
            file.sync_all()
        });
        let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => Ok(vapid),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                Vapid::from_pem(&std::fs::read_to_string(path)?).map_err(unreadable)
            }
            Err(err) => Err(err),
        }
    }

    /// A configured key: PEM of a P-256 private key, PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1
    /// (`BEGIN EC PRIVATE KEY`, what `openssl ecparam -genkey` writes).
    pub fn from_pem(pem: &str) -> Result<Vapid, PushError> {
        let pem = pem.trim();
        let secret = if pem.contains("BEGIN EC PRIVATE KEY") {
            SecretKey::from_sec1_pem(pem).map_err(|e| PushError::PrivateKey(e.to_string()))?
        } else {
            SecretKey::from_pkcs8_pem(pem).map_err(|e| PushError::PrivateKey(e.to_string()))?
        };
        Ok(Vapid::new(secret))
    }

    /// The public key as browsers take it for `applicationServerKey`: base64url, without
    /// padding, of the 65-byte uncompressed point.
    pub fn public_key(&self) -> String {
        self.public.clone()
    }

    /// The `Authorization` header of a push to `endpoint` (RFC 8292 Section 3):
    /// `vapid t=<JWT>, k=<public key>`. The JWT is ES256-signed with `aud` the endpoint's origin
    /// (`scheme://host[:port]`, no path), `exp` 12 hours after `now_s` and `sub` the
    /// operator's contact, `subject`, a `mailto:` or `https:` URI.
    pub fn authorization(
        &self,
        endpoint: &str,
        subject: &str,
        now_s: u64,
    ) -> Result<String, PushError> {
        let subject_ok = (subject.starts_with("mailto:") && subject.len() > "mailto:".len())
            || Url::parse(subject).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
        if !subject_ok {
            return Err(PushError::Subject);
        }
        let audience = endpoint_url(endpoint)?.origin().ascii_serialization();
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "exp": now_s + VAPID_LIFETIME_S,
            "sub": subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        // ES256 in a JWT is the fixed 64-byte r || s form (RFC 7518 Section 3.4), not DER.
        let signature: p256::ecdsa::Signature = self.signing.sign(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        Ok(format!("vapid t={signed}.{signature}, k={}", self.public))
    }

    /// The RFC 8030 `Topic` of a conversation's notifications: a push service keeps only the
    /// newest message of a topic while the browser is offline, so a conversation's messages
    /// collapse into one. 32 base64url characters (24 bytes of an HMAC-SHA-256), the same for a
    /// conversation as long as the key is, and keyed so that the push service, which sees the
    /// topic in clear, cannot tell which conversation it names by hashing likely identifiers.
    pub fn topic(&self, conversation_id: &str) -> String {
        // A key of its own, derived from the private key, so the topic says nothing about it.
        let mut topic_key = [0u8; 32];
        Hkdf::<Sha256>::new(None, &self.secret.to_bytes())
            .expand(b"surechat web push topic", &mut topic_key)
            .expect("32 bytes is a valid HKDF-SHA-256 length");
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&topic_key).expect("HMAC takes any key length");
        mac.update(conversation_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&digest[..24])
    }
}

/// Checks a `Topic` value: 1 to 32 characters of the base64url alphabet.
fn check_topic(topic: &str) -> Result<(), PushError> {
    let alphabet = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    if topic.is_empty() || topic.len() > TOPIC_MAX || !topic.bytes().all(alphabet) {
        return Err(PushError::Topic);
    }
    Ok(())
}

/// Encrypts `plaintext` for `sub` into an `aes128gcm` body (RFC 8291): a fresh random salt and
/// a fresh ephemeral key pair per message, one record of record size 4096, no padding beyond
/// the delimiter. At most [`PLAINTEXT_MAX`] bytes.
pub fn encrypt(plaintext: &[u8], sub: &Subscription) -> Result<Vec<u8>, PushError> {
    let (ua_public, auth_secret) = sub.keys()?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source is available");
    encrypt_with(
        plaintext,
        &ua_public,
        &auth_secret,
        &random_secret_key(),
        salt,
    )
}

/// [`encrypt`] with the sender's key and the salt given: deterministic, for known-answer tests.
/// Using either twice for the same subscription repeats the AES-GCM key and nonce, which
/// destroys confidentiality, so anything but a test calls [`encrypt`].
pub fn encrypt_with(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    as_private: &SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, PushError> {
    if plaintext.len() > PLAINTEXT_MAX {
        return Err(PushError::TooLarge(plaintext.len()));
    }
    let ua_key = ua_public_key(ua_public)?;
    if auth_secret.len() != 16 {
        return Err(PushError::AuthSecret(auth_secret.len()));
    }
    let as_public = uncompressed(&as_private.public_key());
    let shared = p256::ecdh::diffie_hellman(as_private.to_nonzero_scalar(), ua_key.as_affine());
    let (cek, nonce) = derive(
        shared.raw_secret_bytes(),
        auth_secret,
        ua_public,
        &as_public,
        &salt,
    );

    let mut body = Vec::with_capacity(HEADER_LEN + plaintext.len() + 1 + TAG_LEN);
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    let mut record = Vec::with_capacity(plaintext.len() + 1 + TAG_LEN);
    record.extend_from_slice(plaintext);
    // The delimiter of the last (here: only) record (RFC 8188 Section 2).
    record.push(0x02);
    let key = ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &cek)
        .map_err(|_| PushError::Crypto)?;
    ring::aead::LessSafeKey::new(key)
        .seal_in_place_append_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::empty(),
            &mut record,
        )
        .map_err(|_| PushError::Crypto)?;
    body.extend_from_slice(&record);
    Ok(body)
}

/// The content-encryption key and the nonce of the first record (RFC 8291 Section 3.4, RFC 8188
/// Section 2.2), from the ECDH secret, the browser's auth secret, both public keys and the salt.
fn derive(
    ecdh_secret: &[u8],
    auth_secret: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> ([u8; 16], [u8; 12]) {
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), ecdh_secret)
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA-256 length");
    let content = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    content
        .expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA-256 length");
    content
        .expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA-256 length");
    (cek, nonce)
}

/// How soon the push service should deliver (RFC 8030 Section 5.3); lower urgency lets a
/// phone on battery wait for a better moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Deliver only on power and Wi-Fi.
    VeryLow,
    /// Deliver on power or Wi-Fi.
    Low,
    /// Deliver unless the battery is low.
    Normal,
    /// Deliver at once.
    High,
}

impl Urgency {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// What became of one push, and so what the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The push service accepted the message (2xx, normally 201).
    Delivered,
    /// 404 or 410: the subscription expired or was cancelled; remove it and never push to it
    /// again.
    Gone,
    /// 408, 429, 5xx or a network failure: try again later, with backoff. `retry_after_s` is
    /// the push service's `Retry-After` when it gave one in seconds.
    Retry {
        /// What happened, for logs.
        reason: String,
        /// Seconds to wait at least, if the push service said.
        retry_after_s: Option<u64>,
    },
    /// Anything else, e.g. 400, 401/403 (the VAPID key does not match the subscription's), 413,
    /// or a subscription or payload that cannot be encrypted: retrying the same request fails
    /// the same way.
    Refused(String),
}

/// POSTs `payload`, encrypted for `sub`, to its endpoint (RFC 8030 Section 5) with
/// `Authorization: vapid …` for `subject` (see [`Vapid::authorization`]), `TTL: ttl_s` (how long
/// the push service keeps it for an offline browser), `Topic: topic` unless `topic` is empty
/// (see [`Vapid::topic`]), `Urgency`, and `Content-Encoding: aes128gcm`. The client's timeouts
/// bound the request; redirects should be off, as a push service does not send them.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    client: &reqwest::Client,
    vapid: &Vapid,
    subject: &str,
    sub: &Subscription,
    payload: &[u8],
    ttl_s: u32,
    topic: &str,
    urgency: Urgency,
) -> PushOutcome {
    let prepared = (|| {
        if !topic.is_empty() {
            check_topic(topic)?;
        }
        let authorization = vapid.authorization(&sub.endpoint, subject, crate::now_s())?;
        Ok::<_, PushError>((authorization, encrypt(payload, sub)?))
    })();
    let (authorization, body) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return PushOutcome::Refused(err.to_string()),
    };
    let mut request = client
        .post(&sub.endpoint)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .header("TTL", ttl_s.to_string())
        .header("Urgency", urgency.as_str())
        .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body);
    if !topic.is_empty() {
        request = request.header("Topic", topic);
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            return PushOutcome::Retry {
                reason: describe(&err),
                retry_after_s: None,
            }
        }
    };
    let status = response.status();
    if status.is_success() {
        return PushOutcome::Delivered;
    }
    let retry_after_s = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // The first bytes of the answer: push services say there why they refused.
    let said = match response.chunk().await {
        Ok(Some(chunk)) => {
            let text = String::from_utf8_lossy(&chunk[..chunk.len().min(200)]);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        }
        _ => String::new(),
    };
    let reason = format!("HTTP {}{said}", status.as_u16());
    match status.as_u16() {
        404 | 410 => PushOutcome::Gone,
        408 | 429 | 500..=599 => PushOutcome::Retry {
            reason,
            retry_after_s,
        },
        _ => PushOutcome::Refused(reason),
    }
}

/// A request error in one line with its innermost cause (reqwest's own message only says
/// "error sending request").
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut innermost = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        innermost = cause.to_string();
        source = cause.source();
    }
    format!("{kind}: {innermost}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use sha2::Digest;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_LENIENT.decode(text).unwrap()
    }

    /// What a browser does with a body: the receiving side of RFC 8291, written apart from the
    /// sending code (it parses the header and uses the receiver's private key).
    fn decrypt(body: &[u8], ua_private: &SecretKey, auth_secret: &[u8]) -> Result<Vec<u8>, String> {
        if body.len() < 21 {
            return Err("short header".into());
        }
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap());
        let idlen = body[20] as usize;
        if idlen != 65 || body.len() < 21 + idlen + TAG_LEN + 1 {
            return Err("bad key id".into());
        }
        let as_public = &body[21..21 + idlen];
        let record = &body[21 + idlen..];
        if record.len() > rs as usize {
            return Err("more than one record".into());
        }
        let as_key = PublicKey::from_sec1_bytes(as_public).map_err(|e| e.to_string())?;
        let shared = p256::ecdh::diffie_hellman(ua_private.to_nonzero_scalar(), as_key.as_affine());
        let ua_public = uncompressed(&ua_private.public_key());

        let hmac = |key: &[u8], data: &[&[u8]]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
            for d in data {
                mac.update(d);
            }
            mac.finalize().into_bytes().to_vec()
        };
        let prk_key = hmac(auth_secret, &[shared.raw_secret_bytes()]);
        let ikm = hmac(&prk_key, &[b"WebPush: info\0", &ua_public, as_public, &[1]]);
        let prk = hmac(salt, &[&ikm]);
        let cek = &hmac(&prk, &[b"Content-Encoding: aes128gcm\0", &[1]])[..16];
        let nonce: [u8; 12] = hmac(&prk, &[b"Content-Encoding: nonce\0", &[1]])[..12]
            .try_into()
            .unwrap();
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, cek).unwrap(),
        );
        let mut buffer = record.to_vec();
        let plain = key
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::empty(),
                &mut buffer,
            )
            .map_err(|_| "authentication failed".to_owned())?;
        // Strip the padding: zeros, then the last record's delimiter 0x02.
        let end = plain.iter().rposition(|&b| b != 0).ok_or("no delimiter")?;
        if plain[end] != 0x02 {
            return Err(format!("delimiter {:#04x}, not 0x02", plain[end]));
        }
        Ok(plain[..end].to_vec())
    }

    // RFC 8291 Section 5 and Appendix A (published test data).
    const RFC_PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
    const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const RFC_AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const RFC_UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const RFC_SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const RFC_BODY: &str = concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );

    fn rfc_subscription() -> Subscription {
        Subscription {
            endpoint: "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV".into(),
            p256dh: RFC_UA_PUBLIC.into(),
            auth: RFC_AUTH.into(),
        }
    }

    #[test]
    fn the_rfc_8291_example_comes_out_byte_for_byte() {
        let as_private = SecretKey::from_slice(&b64(RFC_AS_PRIVATE)).unwrap();
        assert_eq!(uncompressed(&as_private.public_key()), b64(RFC_AS_PUBLIC));
        let salt: [u8; 16] = b64(RFC_SALT).try_into().unwrap();
        let body = encrypt_with(
            RFC_PLAINTEXT,
            &b64(RFC_UA_PUBLIC),
            &b64(RFC_AUTH),
            &as_private,
            salt,
        )
        .unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), RFC_BODY);
        // And the receiving side of the tests reads the RFC's message.
        let ua_private = SecretKey::from_slice(&b64(RFC_UA_PRIVATE)).unwrap();
        assert_eq!(
            decrypt(&b64(RFC_BODY), &ua_private, &b64(RFC_AUTH)).unwrap(),
            RFC_PLAINTEXT
        );
    }

    #[test]
    fn encrypt_round_trips_with_fresh_salt_and_key_each_time() {
        let ua_private = random_secret_key();
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).unwrap();
        let sub = Subscription {
            endpoint: "https://push.example.net/x".into(),
            p256dh: URL_SAFE_NO_PAD.encode(uncompressed(&ua_private.public_key())),
            auth: URL_SAFE_NO_PAD.encode(auth),
        };
        let message = br#"{"type":"message","title":"Olga","body":"the flat is ready"}"#;
        let one = encrypt(message, &sub).unwrap();
        let two = encrypt(message, &sub).unwrap();
        assert_eq!(&one[16..20], &4096u32.to_be_bytes(), "record size");
        assert_eq!(one.len(), HEADER_LEN + message.len() + 1 + TAG_LEN);
        assert_ne!(one[..16], two[..16], "a fresh salt per message");
        assert_ne!(one[21..86], two[21..86], "a fresh sender key per message");
        assert_eq!(decrypt(&one, &ua_private, &auth).unwrap(), message);
        assert_eq!(decrypt(&two, &ua_private, &auth).unwrap(), message);

        let mut tampered = one.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decrypt(&tampered, &ua_private, &auth).is_err());
        let mut wrong_auth = auth;
        wrong_auth[0] ^= 1;
        assert!(decrypt(&one, &ua_private, &wrong_auth).is_err());

        // The largest message fits in the 4096 bytes every push service accepts; one more
        // byte is refused before anything is sent.
        let largest = vec![b'a'; PLAINTEXT_MAX];
        assert_eq!(encrypt(&largest, &sub).unwrap().len(), BODY_MAX);
        assert_eq!(
            encrypt(&vec![b'a'; PLAINTEXT_MAX + 1], &sub),
            Err(PushError::TooLarge(PLAINTEXT_MAX + 1))
        );
    }

    /// The claims of a VAPID header, once its signature verified with the key in `k=`.
    fn verified_claims(header: &str, expected_key: &str) -> serde_json::Value {
        let rest = header.strip_prefix("vapid t=").expect("vapid scheme");
        let (jwt, key) = rest.split_once(", k=").expect("t= and k=");
        assert_eq!(key, expected_key);
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let head: serde_json::Value = serde_json::from_slice(&b64(parts[0])).unwrap();
        assert_eq!(head["alg"], "ES256");
        let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64(key)).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&b64(parts[2])).unwrap();
        verifying
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies with k");
        serde_json::from_slice(&b64(parts[1])).unwrap()
    }

    #[test]
    fn vapid_tokens_are_signed_for_the_endpoint_origin() {
        let vapid = Vapid::generate();
        let key = vapid.public_key();
        assert_eq!(b64(&key).len(), 65);
        assert!(!key.contains('='));
        let now = 1_760_000_000;
        let header = vapid
            .authorization(
                "https://fcm.googleapis.com/fcm/send/abc:def?x=1",
                "mailto:ops@surechat.example",
                now,
            )
            .unwrap();
        let claims = verified_claims(&header, &key);
        assert_eq!(claims["aud"], "https://fcm.googleapis.com");
        assert_eq!(claims["exp"], now + 12 * 3600);
        assert_eq!(claims["sub"], "mailto:ops@surechat.example");

        // A port stays in the origin, a default one does not; the path never.
        let header = vapid
            .authorization(
                "http://127.0.0.1:8090/push/ana",
                "https://surechat.example/",
                now,
            )
            .unwrap();
        assert_eq!(
            verified_claims(&header, &key)["aud"],
            "http://127.0.0.1:8090"
        );
        let header = vapid
            .authorization(
                "https://push.example:443/p",
                "https://surechat.example",
                now,
            )
            .unwrap();
        assert_eq!(
            verified_claims(&header, &key)["aud"],
            "https://push.example"
        );

        // Another key's signature does not verify.
        let other = Vapid::generate();
        let forged = other
            .authorization("https://push.example/p", "mailto:a@b.example", now)
            .unwrap()
            .replace(&other.public_key(), &key);
        let rest = forged.strip_prefix("vapid t=").unwrap();
        let (jwt, _) = rest.split_once(", k=").unwrap();
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64(&key)).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&b64(signature)).unwrap();
        assert!(verifying.verify(signed.as_bytes(), &signature).is_err());

        for subject in [
            "ops@surechat.example",
            "mailto:",
            "http://surechat.example",
            "",
        ] {
            assert_eq!(
                vapid.authorization("https://push.example/p", subject, now),
                Err(PushError::Subject),
                "{subject}"
            );
        }
        assert_eq!(
            vapid.authorization("ftp://push.example/p", "mailto:a@b.example", now),
            Err(PushError::Endpoint)
        );
    }

    #[test]
    fn the_key_survives_in_its_file_private_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/vapid.pem");
        let created = Vapid::load_or_create(&path).unwrap();
        let loaded = Vapid::load_or_create(&path).unwrap();
        assert_eq!(created.public_key(), loaded.public_key());
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        assert_eq!(
            Vapid::from_pem(&pem).unwrap().public_key(),
            created.public_key()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
            1
        );

        // A damaged file is an error, not silently a new key (that would orphan every
        // subscription).
        std::fs::write(&path, "not a key").unwrap();
        let err = Vapid::load_or_create(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(
            Vapid::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
            Err(PushError::PrivateKey(_))
        ));

        // SEC1, as `openssl ecparam -name prime256v1 -genkey -noout` writes it.
        let sec1 = created
            .secret
            .to_sec1_pem(LineEnding::LF)
            .unwrap()
            .to_string();
        assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
        assert_eq!(
            Vapid::from_pem(&sec1).unwrap().public_key(),
            created.public_key()
        );
    }

    #[test]
    fn topics_are_short_url_safe_and_stable_per_conversation() {
        let vapid = Vapid::generate();
        let topic = vapid.topic("booking-1001");
        assert_eq!(topic.len(), 32);
        assert!(check_topic(&topic).is_ok());
        assert!(topic
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(vapid.topic("booking-1001"), topic);
        assert_ne!(vapid.topic("booking-1002"), topic);
        assert_eq!(vapid.topic("").len(), 32);
        assert_eq!(vapid.topic(&"x".repeat(10_000)).len(), 32);
        // Keyed: not a plain hash of the identifier, and another server's differs.
        let plain = URL_SAFE_NO_PAD.encode(&Sha256::digest(b"booking-1001")[..24]);
        assert_ne!(topic, plain);
        assert_ne!(Vapid::generate().topic("booking-1001"), topic);
        // The same key (read back from its PEM) gives the same topics.
        let pem = vapid.secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(Vapid::from_pem(&pem).unwrap().topic("booking-1001"), topic);

        assert_eq!(check_topic(&"a".repeat(33)), Err(PushError::Topic));
        assert_eq!(check_topic("a+b/c="), Err(PushError::Topic));
        assert_eq!(check_topic(""), Err(PushError::Topic));
    }

    #[test]
    fn check_refuses_what_cannot_be_pushed_to() {
        let good = rfc_subscription();
        assert_eq!(good.check(), Ok(()));
        // Padding and surrounding spaces are accepted, as is plain HTTP (the caller's policy).
        let padded = Subscription {
            p256dh: format!("{RFC_UA_PUBLIC}="),
            auth: format!("{RFC_AUTH}=="),
            endpoint: "http://127.0.0.1:9000/push/1".into(),
        };
        assert_eq!(padded.check(), Ok(()));

        // A point off the curve: the RFC's key with its last byte changed.
        let mut off_curve = b64(RFC_UA_PUBLIC);
        off_curve[64] ^= 1;
        let bad_point = Subscription {
            p256dh: URL_SAFE_NO_PAD.encode(&off_curve),
            ..good.clone()
        };
        assert_eq!(bad_point.check(), Err(PushError::PublicKey));
        // The compressed form (33 bytes) of a valid point is not what browsers send.
        let ua = PublicKey::from_sec1_bytes(&b64(RFC_UA_PUBLIC)).unwrap();
        let compressed = Subscription {
            p256dh: URL_SAFE_NO_PAD.encode(ua.to_encoded_point(true).as_bytes()),
            ..good.clone()
        };
        assert_eq!(compressed.check(), Err(PushError::PublicKey));
        let short_auth = Subscription {
            auth: URL_SAFE_NO_PAD.encode([7u8; 15]),
            ..good.clone()
        };
        assert_eq!(short_auth.check(), Err(PushError::AuthSecret(15)));
        let not_base64 = Subscription {
            auth: "BTBZMqHH6r4Tts7J/aSIgg".into(),
            ..good.clone()
        };
        assert_eq!(not_base64.check(), Err(PushError::Base64("auth")));
        for endpoint in [
            "push.example.net/x",
            "ftp://push.example.net/x",
            "https://user@push.example.net/x",
            "https://",
            "",
        ] {
            let sub = Subscription {
                endpoint: endpoint.into(),
                ..good.clone()
            };
            assert_eq!(sub.check(), Err(PushError::Endpoint), "{endpoint}");
        }
        // Keys stay out of logs.
        let shown = format!("{good:?}");
        assert!(
            !shown.contains(RFC_AUTH) && !shown.contains(RFC_UA_PUBLIC),
            "{shown}"
        );
    }

    /// A push service on a local port that answers each POST with the next status of `answers`
    /// and hands each request's headers and body to the test.
    async fn push_service(
        answers: Vec<(u16, Vec<(&'static str, &'static str)>)>,
    ) -> (
        String,
        tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, Vec<u8>)>,
    ) {
        use axum::response::IntoResponse;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let answers = std::sync::Arc::new(std::sync::Mutex::new(answers.into_iter()));
        let app = axum::Router::new().route(
            "/push/{name}",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (status, extra) = answers.lock().unwrap().next().expect("an answer");
                    tx.send((headers, body.to_vec())).unwrap();
                    async move {
                        let mut response = (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            "reason\n  here",
                        )
                            .into_response();
                        for (name, value) in extra {
                            response.headers_mut().insert(name, value.parse().unwrap());
                        }
                        response
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (base, rx)
    }

    #[tokio::test]
    async fn send_posts_the_headers_and_sorts_the_answers() {
        let answers = vec![
            (201, vec![]),
            (410, vec![]),
            (404, vec![]),
            (429, vec![("retry-after", "30")]),
            (503, vec![]),
            (413, vec![]),
            (403, vec![]),
        ];
        let (base, mut requests) = push_service(answers).await;
        let ua_private = random_secret_key();
        let sub = Subscription {
            endpoint: format!("{base}/push/ana"),
            p256dh: URL_SAFE_NO_PAD.encode(uncompressed(&ua_private.public_key())),
            auth: URL_SAFE_NO_PAD.encode([9u8; 16]),
        };
        let vapid = Vapid::generate();
        // The webhooks' client (timeouts, no redirects), allowed to reach this machine.
        let client = crate::webhooks::destination::client(&crate::Config {
            webhook_allow_private: true,
            ..crate::Config::default()
        })
        .unwrap();
        let topic = vapid.topic("booking-1001");
        let push = |urgency| {
            send(
                &client,
                &vapid,
                "mailto:ops@surechat.example",
                &sub,
                b"hello",
                3600,
                &topic,
                urgency,
            )
        };

        assert_eq!(push(Urgency::High).await, PushOutcome::Delivered);
        let (headers, body) = requests.recv().await.unwrap();
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("ttl"), "3600");
        assert_eq!(header("topic"), topic);
        assert_eq!(header("urgency"), "high");
        assert_eq!(header("content-encoding"), "aes128gcm");
        assert_eq!(header("content-type"), "application/octet-stream");
        let claims = verified_claims(&header("authorization"), &vapid.public_key());
        assert_eq!(claims["aud"], base);
        assert_eq!(decrypt(&body, &ua_private, &[9u8; 16]).unwrap(), b"hello");

        assert_eq!(push(Urgency::Normal).await, PushOutcome::Gone);
        assert_eq!(push(Urgency::Normal).await, PushOutcome::Gone);
        assert_eq!(
            push(Urgency::Normal).await,
            PushOutcome::Retry {
                reason: "HTTP 429: reason here".into(),
                retry_after_s: Some(30)
            }
        );
        assert!(matches!(
            push(Urgency::Low).await,
            PushOutcome::Retry {
                retry_after_s: None,
                ..
            }
        ));
        assert_eq!(
            push(Urgency::VeryLow).await,
            PushOutcome::Refused("HTTP 413: reason here".into())
        );
        assert!(
            matches!(push(Urgency::Normal).await, PushOutcome::Refused(r) if r.starts_with("HTTP 403"))
        );

        for _ in 0..6 {
            requests.recv().await.unwrap();
        }

        // Refused before any request: a payload too large, a bad topic.
        let large = vec![0u8; PLAINTEXT_MAX + 1];
        let outcome = send(
            &client,
            &vapid,
            "mailto:a@b.example",
            &sub,
            &large,
            60,
            "",
            Urgency::Normal,
        )
        .await;
        assert!(matches!(outcome, PushOutcome::Refused(r) if r.contains("3993")));
        let outcome = send(
            &client,
            &vapid,
            "mailto:a@b.example",
            &sub,
            b"x",
            60,
            "a/b",
            Urgency::Normal,
        )
        .await;
        assert_eq!(outcome, PushOutcome::Refused(PushError::Topic.to_string()));
        assert!(requests.try_recv().is_err(), "nothing else was sent");

        // Nobody listening: retry later.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone_port = closed.local_addr().unwrap().port();
        drop(closed);
        let unreachable = Subscription {
            endpoint: format!("http://127.0.0.1:{gone_port}/push/ana"),
            ..sub.clone()
        };
        let outcome = send(
            &client,
            &vapid,
            "mailto:a@b.example",
            &unreachable,
            b"x",
            60,
            "",
            Urgency::Normal,
        )
        .await;
        assert!(matches!(outcome, PushOutcome::Retry { .. }), "{outcome:?}");
    }
}
