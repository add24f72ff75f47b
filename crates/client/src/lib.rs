//! The surechat Rust SDK.
//!
//! # Layout
//! - [`session`]: the sans-IO core — outbox, cursors, receipts, statuses, connection state
//!   machine, heartbeats and backoff. No sockets, no clock, no global randomness.
//! - [`store`]: the device's local SQLite file (outbox, cursors, messages), crash-safe.
//! - [`driver`]: the tokio driver ([`Client`]) over a WebSocket.
//! - `transfer` (private): uploads and downloads of attachments over HTTP for the driver, on the
//!   small HTTP/1.1 client in `http`; `outgoing`: the files an app sends ([`OutgoingFile`]).
//!
//! **Invariant:** `client::session` does not depend on tokio.
//!
//! # Features
//! - `local-store`: the [`store`] module (SQLite, bundled).
//! - `driver` (default; implies `local-store`): the [`driver`] module and [`Client`].
//!
//! With `default-features = false` only the sans-IO [`session`] is compiled: no tokio, no
//! SQLite — for an app that brings its own I/O.
//!
//! # Example
//! The sans-IO core, with a driver's part played by hand (`examples/session.rs` goes on to a
//! lost connection and the ack; `examples/chat.rs` uses the tokio driver):
//! ```
//! use std::time::Instant;
//! use client::session::{Action, Config, DeliveryStatus, Session};
//! use protocol::frames::ClientFrame;
//!
//! let now = Instant::now();
//! let mut session = Session::new(Config::default(), "a token from your backend");
//! session.connect(now);
//! let Some(Action::Connect { attempt }) = session.poll_action() else {
//!     unreachable!("connect() asks for a transport")
//! };
//! session.handle_open(now, attempt); // the driver opened a WebSocket
//! assert!(matches!(session.poll_transmit(), Some(ClientFrame::Hello(_))));
//!
//! // A send goes to the outbox first, connected or not; it is written once `welcome` arrives.
//! let id = "3f1c2a9e-5b7d-4c1e-8f2a-6b9d0e1c2f3a".to_owned();
//! session.send(now, id.clone(), "booking-42", "Is early check-in possible?", None);
//! assert_eq!(session.pending_count(), 1);
//! assert_eq!(session.delivery_status(&id), Some(DeliveryStatus::Sending));
//! ```

#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "driver")]
mod http;
#[cfg(feature = "driver")]
mod outgoing;
pub mod session;
#[cfg(feature = "local-store")]
pub mod store;
#[cfg(feature = "driver")]
pub mod token;
#[cfg(feature = "driver")]
mod transfer;

#[cfg(feature = "driver")]
pub use driver::{Client, ClientError, ClientOptions};
#[cfg(feature = "driver")]
pub use http::HttpError;
#[cfg(feature = "driver")]
pub use outgoing::{FileError, OutgoingFile};
pub use protocol::frames::Attachment;
pub use session::{
    Action, ChatMessage, Config, ConnectionStatus, DeliveryStatus, Event, Session, Snapshot,
    UploadProgress,
};
#[cfg(feature = "driver")]
pub use token::TokenProvider;
#[cfg(feature = "driver")]
pub use transfer::{DownloadError, DOWNLOAD_BYTES_MAX};
