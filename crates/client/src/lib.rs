//! The surechat Rust SDK.
//!
//! # Layout
//! - [`session`]: the sans-IO core — outbox, cursors, receipts, statuses, connection state
//!   machine, heartbeats and backoff. No sockets, no clock, no global randomness.
//!
//! **Invariant:** `client::session` does not depend on tokio.

pub mod session;

pub use session::{Action, ChatMessage, Config, ConnectionStatus, DeliveryStatus, Event, Session, Snapshot};
