//! Test helpers shared by the integration tests of the server and the CLI: a minimal HTTP/1.1
//! client ([`Http`]) and a WebSocket device speaking the protocol ([`Device`]). Every wait is
//! bounded by [`WAIT`] and panics with what it was waiting for, so a broken test fails instead of
//! hanging.

mod device;
mod http;

pub use device::{connect_raw, Device, Ws};
pub use http::{Http, HttpResponse};

/// The longest any helper waits for an event before failing the test.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A fresh message id.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
