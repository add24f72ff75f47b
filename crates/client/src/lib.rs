//! The surechat Rust SDK.
//!
//! # Layout
//! - [`session`]: the sans-IO core — outbox, cursors, receipts, statuses, connection state
//!   machine, heartbeats and backoff. No sockets, no clock, no global randomness.
//! - [`store`]: the device's local SQLite file (outbox, cursors, messages), crash-safe.
//! - [`driver`]: the tokio driver ([`Client`]) over a WebSocket.
//!
//! **Invariant:** `client::session` does not depend on tokio.

pub mod driver;
pub mod session;
pub mod store;

pub use driver::{Client, ClientError, ClientOptions};
pub use session::{
    Action, ChatMessage, Config, ConnectionStatus, DeliveryStatus, Event, Session, Snapshot,
};
