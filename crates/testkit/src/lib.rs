//! Test helpers shared by the integration tests of the server and the CLI: a minimal HTTP/1.1
//! client ([`Http`]), a WebSocket device speaking the protocol ([`Device`]), a private
//! PostgreSQL instance that can be restarted ([`postgres::Postgres`]) and an SMTP server that
//! keeps what it receives ([`smtp::Sink`]). Every wait is bounded by [`WAIT`] and panics with what
//! it was waiting for, so a broken test fails instead of hanging.

mod device;
mod http;
pub mod postgres;
mod served;
pub mod smtp;

pub use device::{connect_raw, Device, Ws};
pub use http::{Http, HttpResponse};
pub use served::Served;

/// The longest any helper waits for an event before failing the test.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A fresh message id.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A seedable generator for model and randomized tests (splitmix64): the same seed gives the
/// same run, so a failure reproduces from its printed seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// How many cases a randomized test runs: `SURECHAT_FUZZ_CASES` if set, else `default` (sized
/// for the ordinary test run).
pub fn fuzz_cases(default: usize) -> usize {
    std::env::var("SURECHAT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
