//! WebSocket close codes the server uses, and what a device does after each. Codes in the
//! 4000–4999 range are ours; the others are from RFC 6455 and the IANA registry.

/// Normal closure. The server does not send it on its own; received by a device that did not ask
/// to leave (a proxy draining, say), it means only that this connection ended: reconnect.
pub const NORMAL: u16 = 1000;
/// The transport message was larger than [`crate::limits::TRANSPORT_BYTES_MAX`]. Reconnect; the
/// device must not resend the same frame.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The server is restarting or shutting down. Reconnect with backoff; nothing was lost.
pub const SERVICE_RESTART: u16 = 1012;
/// The first frame was not `hello`, or `hello` names an unsupported protocol version. Do not
/// reconnect without fixing the client.
pub const PROTOCOL_ERROR: u16 = 4400;
/// The token is missing, invalid or expired. Get a fresh token from the app, then reconnect.
pub const UNAUTHORIZED: u16 = 4401;
/// The server heard nothing from the device for the heartbeat timeout, or no `hello` within
/// `HELLO_TIMEOUT_MS` of opening. Reconnect.
pub const HEARTBEAT_TIMEOUT: u16 = 4408;
/// The device did not read its frames fast enough and its queue filled. Reconnect and resume from
/// the cursors; nothing was lost.
pub const TOO_SLOW: u16 = 4409;
/// Sustained bad frames, or too many connections for this user. Reconnect only after a long
/// backoff.
pub const POLICY_VIOLATION: u16 = 4429;

/// Whether a device should reconnect on its own after this close code.
pub fn should_reconnect(code: u16) -> bool {
    code != PROTOCOL_ERROR
}
