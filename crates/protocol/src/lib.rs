//! The surechat wire protocol: every frame, error code, close code and limit that a server and a
//! device agree on. Serde only, no IO: this crate is the single source of truth shared by the
//! server, the Rust SDK and (through `tests/vectors/`) the browser SDK.
//!
//! # Layout
//! - [`frames`]: WebSocket frames, client → server ([`ClientFrame`]) and server → client
//!   ([`ServerFrame`]), and [`decode_client_frame`] which names the offending request on failure.
//! - [`api`]: JSON bodies of the HTTP API.
//! - [`error`]: [`ErrorCode`], the stable machine-readable codes of every rejection.
//! - [`close`]: WebSocket close codes and what a device should do after each.
//! - [`limits`]: every limit, with its unit and why it has that value.
//! - [`ids`]: syntax of conversation ids, user ids and message ids.
//!
//! The protocol is versioned by [`PROTOCOL_VERSION`], sent in `hello` and `welcome`.

pub mod api;
pub mod close;
pub mod error;
pub mod frames;
pub mod ids;
pub mod limits;

pub use error::ErrorCode;
pub use frames::{decode_client_frame, ClientFrame, DecodeError, ServerFrame};

/// Version of the WebSocket protocol described in `docs/protocol.md`. A device sends it in `hello`;
/// a server that does not speak it answers `version_unsupported` and closes with
/// [`close::PROTOCOL_ERROR`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Every protocol version this build speaks: the current one and, while it is supported, the
/// one before (`docs/protocol.md`, "Versions"). A `hello` with another `v` is refused.
pub const PROTOCOL_VERSIONS: &[u32] = &[PROTOCOL_VERSION];

/// Role of a participant in a conversation.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Someone who made a booking.
    Client,
    /// A support agent of the business.
    Operator,
}

impl Role {
    /// The wire name, as used in JSON and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Operator => "operator",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "client" => Some(Role::Client),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
