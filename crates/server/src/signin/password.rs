//! Operators' passwords: Argon2id hashes in PHC string form, and the policy a new password must
//! meet.
//!
//! Hashing and verifying are deliberately slow (tens of milliseconds of CPU and 19 MiB of memory
//! each): callers on the async runtime run [`hash`], [`verify`] and [`dummy_verify`] on
//! `tokio::task::spawn_blocking`, so one sign-in does not stall every connection of its worker
//! thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Fewest characters (Unicode scalar values) a password may have.
pub const MIN_CHARS: usize = 12;
/// Most bytes (UTF-8) a password may have: hashing reads all of it, so it is bounded.
pub const MAX_BYTES: usize = 1024;

/// Memory cost in KiB, iterations and lanes: OWASP's minimum for Argon2id (19 MiB, 2, 1).
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;
/// Salt length in bytes (the PHC recommendation).
const SALT_BYTES: usize = 16;

/// A hash of a password nobody knows, with the parameters [`hash`] uses (checked by a test), so
/// that [`dummy_verify`] costs what a real verification costs.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$UHv5FcX3Jw9qO5Xh2J6v3A$0Jm5n0Pg2N3dsXJwqfE0S6T1GZ1Zb8D3m4cRrD7tH1E";

/// Passwords at least [`MIN_CHARS`] long that lists of leaked passwords put at the top. Compared
/// without regard to case.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789012345",
    "1234567890qwerty",
    "123123123123",
    "123412341234",
    "121212121212",
    "098765432109",
    "0987654321qw",
    "1q2w3e4r5t6y",
    "1q2w3e4r5t6y7u",
    "1qaz2wsx3edc",
    "1qaz2wsx3edc4rfv",
    "qazwsxedcrfv",
    "zaq12wsxcde3",
    "qwertyuiop12",
    "qwertyuiopasdf",
    "qwertyuiopasdfghjkl",
    "qwerty123456",
    "qwertyqwerty",
    "asdfghjkl123",
    "asdfasdfasdf",
    "abcdefghijkl",
    "abcabcabcabc",
    "abc123abc123",
    "abc123456789",
    "a1b2c3d4e5f6",
    "password1234",
    "password12345",
    "password123456",
    "password123!",
    "passwordpassword",
    "passw0rd1234",
    "p@ssw0rd1234",
    "p@ssword1234",
    "mypassword123",
    "administrator",
    "administrator1",
    "changeme1234",
    "letmein12345",
    "welcome12345",
    "welcome123456",
    "iloveyou1234",
    "trustno1trustno1",
    "football1234",
    "baseball1234",
    "monkey123456",
    "sunshine1234",
    "princess1234",
    "superman1234",
    "starwars1234",
    "michael12345",
    "1234qwerasdf",
    "qwer1234asdf",
];

/// Why a password is refused, or could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("the password must have at least {min} characters")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// More than [`MAX_BYTES`] bytes.
    #[error("the password must have at most {max} bytes")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// One character repeated.
    #[error("the password must not be one character repeated")]
    OneCharacter,
    /// Among the most common passwords.
    #[error("the password is one of the most common passwords")]
    Common,
    /// The hasher failed (not the password's fault).
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
}

fn hasher() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("the Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with Argon2id and a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Slow on purpose: run it on
/// `spawn_blocking`. It does not check the policy: see [`check_policy`].
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|err| PasswordError::Hashing(err.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|err| PasswordError::Hashing(err.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|phc| phc.to_string())
        .map_err(|err| PasswordError::Hashing(err.to_string()))
}

/// Whether `password` matches the PHC string `phc`, with the parameters recorded in it (so
/// hashes made with older parameters still verify). The hashes are compared in constant time.
/// `false` for a malformed string or one that is not Argon2id. Slow on purpose: run it on
/// `spawn_blocking`.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of a [`verify`] against a hash that matches nothing. Called when the email
/// given at sign-in has no account (or no password), so that the response time does not tell
/// which emails have accounts. Run it on `spawn_blocking`, like `verify`.
pub fn dummy_verify(password: &str) {
    std::hint::black_box(verify(password, DUMMY_HASH));
}

/// Checks a new password against the policy: at least [`MIN_CHARS`] characters, at most
/// [`MAX_BYTES`] bytes, not one character repeated, not one of the most common passwords.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong { max: MAX_BYTES });
    }
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordError::TooShort { min: MIN_CHARS });
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(PasswordError::OneCharacter);
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_strings_with_the_owasp_parameters() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.salt.unwrap().as_str().len(), 22, "16 bytes of salt");
    }

    #[test]
    fn verify_accepts_the_password_and_nothing_else() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapl", &phc));
        assert!(!verify("Correct horse battery staple", &phc));
        assert!(!verify("", &phc));
    }

    #[test]
    fn a_salt_makes_every_hash_different() {
        let a = hash("correct horse battery staple").unwrap();
        let b = hash("correct horse battery staple").unwrap();
        assert_ne!(a, b);
        assert!(verify("correct horse battery staple", &a));
        assert!(verify("correct horse battery staple", &b));
    }

    #[test]
    fn malformed_or_foreign_hashes_verify_nothing() {
        let phc = hash("correct horse battery staple").unwrap();
        for bad in [
            "",
            "correct horse battery staple",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            &phc[..phc.len() - 5],
            &phc.replace("$argon2id$", "$argon2i$"),
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            assert!(!verify("correct horse battery staple", bad), "{bad}");
        }
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        // Same algorithm and parameters as `hash`, or the time of a sign-in with an unknown
        // email would differ from one with a known email.
        let real = hash("correct horse battery staple").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.unwrap().len(), real.hash.unwrap().len());
        assert!(!verify("correct horse battery staple", DUMMY_HASH));
        dummy_verify("anything");
    }

    #[test]
    fn the_policy_gives_its_reason() {
        assert_eq!(check_policy("correct horse battery staple"), Ok(()));
        assert_eq!(check_policy("Tr0ub4dor&3x"), Ok(()));
        assert_eq!(
            check_policy("Tr0ub4dor&3"),
            Err(PasswordError::TooShort { min: 12 })
        );
        assert_eq!(check_policy(""), Err(PasswordError::TooShort { min: 12 }));
        // Characters, not bytes: eleven two-byte characters are too short, twelve are enough.
        assert_eq!(
            check_policy(
                &"é"
                    .repeat(6)
                    .chars()
                    .chain("ü".repeat(5).chars())
                    .collect::<String>()
            ),
            Err(PasswordError::TooShort { min: 12 })
        );
        assert_eq!(check_policy("ééééééüüüüüü"), Ok(()));
        assert_eq!(
            check_policy(&"ab".repeat(513)),
            Err(PasswordError::TooLong { max: 1024 })
        );
        assert_eq!(check_policy(&"ab".repeat(512)), Ok(()));
        assert_eq!(
            check_policy("aaaaaaaaaaaaaaaa"),
            Err(PasswordError::OneCharacter)
        );
        assert_eq!(
            check_policy("ßßßßßßßßßßßß"),
            Err(PasswordError::OneCharacter)
        );
        assert_eq!(check_policy("password1234"), Err(PasswordError::Common));
        assert_eq!(check_policy("PassWord1234"), Err(PasswordError::Common));
        assert_eq!(check_policy("123456789012"), Err(PasswordError::Common));
        assert_eq!(check_policy("password12345x"), Ok(()));
    }

    #[test]
    fn the_common_list_holds_only_passwords_the_length_rule_lets_through() {
        for common in COMMON {
            assert!(common.chars().count() >= MIN_CHARS, "{common}");
            assert_eq!(*common, common.to_lowercase(), "{common}");
        }
    }
}
