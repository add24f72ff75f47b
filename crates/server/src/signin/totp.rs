//! Time-based one-time passwords (RFC 6238) as authenticator apps make them: HMAC-SHA1, 30-second
//! steps, 6 digits, secrets in base32 (RFC 4648, no padding).
//!
//! A code is accepted once: [`verify`] answers the step it matched, the caller stores it
//! (`AccountStore::sign_in_succeeded`), and the next verification is given it as `last_step`, so
//! the same code (or an older one) is refused afterwards.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const PERIOD_S: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Steps accepted either side of the current one, for clocks that drift.
pub const SKEW_STEPS: u64 = 1;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends for HMAC-SHA1).
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new random secret, base32 (32 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    base32_encode(&bytes)
}

/// The code of `step` (seconds since the epoch divided by [`PERIOD_S`]): 6 digits, zero-padded.
/// `None` when the secret is not base32 or is empty.
pub fn code(secret_b32: &str, step: u64) -> Option<String> {
    let key = base32_decode(secret_b32)?;
    if key.is_empty() {
        return None;
    }
    Some(hotp(&key, step))
}

/// Checks a code typed at `now_s` (seconds since the epoch): the current step and
/// [`SKEW_STEPS`] either side are tried, only those above `last_step` (the last one accepted).
/// Answers the matched step, which the caller stores as the new `last_step`. Spaces in the code
/// are ignored (apps show `123 456`); anything else but 6 digits, or a secret that is not base32,
/// matches nothing.
pub fn verify(secret_b32: &str, code: &str, now_s: u64, last_step: u64) -> Option<u64> {
    let typed: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if typed.len() != DIGITS || !typed.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let key = base32_decode(secret_b32)?;
    if key.is_empty() {
        return None;
    }
    let current = now_s / PERIOD_S;
    let mut matched = None;
    // Every candidate is computed and compared in full, and the newest match wins: accepting
    // an older step would leave the same code usable once more for the newer one.
    for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
        if step > last_step && constant_time_eq(hotp(&key, step).as_bytes(), &typed) {
            matched = Some(step);
        }
    }
    matched
}

/// The `otpauth://` URL an authenticator app reads from a QR code:
/// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`, with
/// the issuer and account percent-encoded.
pub fn otpauth_url(secret_b32: &str, account: &str, issuer: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={PERIOD_S}",
        account = percent_encode(account),
        secret = percent_encode(secret_b32),
    )
}

/// RFC 4226: HMAC-SHA1 of the big-endian counter, dynamically truncated, modulo 10^6.
fn hotp(key: &[u8], counter: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Upper or lower case; no padding, no other characters, and no length a base32 encoding cannot
/// have (1, 3 or 6 characters beyond a multiple of 8).
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    if matches!(text.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's SHA-1 secret, the ASCII of "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn base32_round_trips_rfc_4648_vectors() {
        for (bytes, text) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
            ("12345678901234567890", RFC_SECRET),
        ] {
            assert_eq!(base32_encode(bytes.as_bytes()), text);
            assert_eq!(base32_decode(text).unwrap(), bytes.as_bytes());
            assert_eq!(
                base32_decode(&text.to_lowercase()).unwrap(),
                bytes.as_bytes()
            );
        }
        for bad in ["MZXW6===", "MZ XW", "MZXW1", "M", "MZX", "MZXW6Y"] {
            assert_eq!(base32_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc_6238_sha1_vectors_truncated_to_six_digits() {
        // Appendix B: time, then the 8-digit TOTP; 6 digits are the same value's last six.
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let six = &eight[2..];
            assert_eq!(
                code(RFC_SECRET, time / PERIOD_S).as_deref(),
                Some(six),
                "{time}"
            );
            assert_eq!(verify(RFC_SECRET, six, time, 0), Some(time / PERIOD_S));
        }
    }

    #[test]
    fn one_step_of_skew_either_side_is_accepted() {
        let now = 1_111_111_111; // step 37037037
        let step = now / PERIOD_S;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let at = step.checked_add_signed(offset).unwrap();
            let typed = code(RFC_SECRET, at).unwrap();
            assert_eq!(
                verify(RFC_SECRET, &typed, now, 0),
                accepted.then_some(at),
                "offset {offset}"
            );
        }
        // At the very start of time there is no step before the first.
        let typed = code(RFC_SECRET, 0).unwrap();
        assert_eq!(
            verify(RFC_SECRET, &typed, 0, 0),
            None,
            "step 0 is never above last_step"
        );
        let typed = code(RFC_SECRET, 1).unwrap();
        assert_eq!(verify(RFC_SECRET, &typed, 0, 0), Some(1));
    }

    #[test]
    fn a_code_is_not_accepted_at_or_below_the_last_step() {
        let now = 2_000_000_000;
        let step = now / PERIOD_S;
        let typed = code(RFC_SECRET, step).unwrap();
        assert_eq!(verify(RFC_SECRET, &typed, now, step - 1), Some(step));
        assert_eq!(verify(RFC_SECRET, &typed, now, step), None, "replay");
        assert_eq!(
            verify(RFC_SECRET, &typed, now + 20, step),
            None,
            "replay a bit later"
        );
        // The previous step's code, once a newer step was accepted, is refused too.
        let older = code(RFC_SECRET, step - 1).unwrap();
        assert_eq!(verify(RFC_SECRET, &older, now, step), None);
        // The next step's code is still fine.
        let next = code(RFC_SECRET, step + 1).unwrap();
        assert_eq!(verify(RFC_SECRET, &next, now, step), Some(step + 1));
    }

    #[test]
    fn malformed_codes_and_secrets_match_nothing() {
        let now = 1_234_567_890;
        let typed = code(RFC_SECRET, now / PERIOD_S).unwrap();
        assert_eq!(typed, "005924");
        assert_eq!(verify(RFC_SECRET, "005 924", now, 0), Some(now / PERIOD_S));
        assert_eq!(
            verify(RFC_SECRET, " 005924\n", now, 0),
            Some(now / PERIOD_S)
        );
        for bad in [
            "",
            "5924",
            "05924",
            "0059245",
            "00592a",
            "-05924",
            "005924x",
            "٠٠٥٩٢٤",
        ] {
            assert_eq!(verify(RFC_SECRET, bad, now, 0), None, "{bad:?}");
        }
        for secret in [
            "",
            "not base32!",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1",
            "GEZDGNBVG",
        ] {
            assert_eq!(verify(secret, &typed, now, 0), None, "{secret:?}");
            assert_eq!(code(secret, 1), None, "{secret:?}");
        }
        // A wrong code of the right shape.
        let wrong = format!("{:06}", (typed.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(verify(RFC_SECRET, &wrong, now, 0), None);
    }

    #[test]
    fn new_secrets_are_random_160_bit_base32() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(base32_decode(&a).unwrap().len(), SECRET_BYTES);
        assert!(code(&a, 1).is_some());
    }

    #[test]
    fn otpauth_urls_are_percent_encoded() {
        assert_eq!(
            otpauth_url(
                "JBSWY3DPEHPK3PXP",
                "olga+chat@example.com",
                "Acme Chat & Co"
            ),
            "otpauth://totp/Acme%20Chat%20%26%20Co:olga%2Bchat%40example.com\
             ?secret=JBSWY3DPEHPK3PXP&issuer=Acme%20Chat%20%26%20Co\
             &algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_url("JBSWY3DPEHPK3PXP", "Ölga:1", "surechat"),
            "otpauth://totp/surechat:%C3%96lga%3A1?secret=JBSWY3DPEHPK3PXP&issuer=surechat\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
