//! Every limit of the protocol, with its unit last in the name and the reason for its value.
//! Servers may be configured with other values for the configurable ones (see the server's
//! `Config`); these are the defaults and the hard ceilings.

/// Default largest message body, in bytes of UTF-8. Chat messages are short; 16 KiB holds a long
/// pasted text while keeping one message well inside a frame. Configurable up to
/// [`MESSAGE_BYTES_CEILING`].
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024;

/// Largest message body a server may be configured to accept, in bytes.
pub const MESSAGE_BYTES_CEILING: usize = 64 * 1024;

/// Largest WebSocket text frame the server parses, in bytes. A body is JSON-escaped on the wire and
/// a control character becomes six bytes (`\u0000`), so a frame must hold six times the largest
/// body plus the envelope. Larger frames (up to [`TRANSPORT_BYTES_MAX`]) are answered with
/// `frame_too_large` and the connection stays up.
pub const FRAME_BYTES_MAX: usize = 6 * MESSAGE_BYTES_CEILING + ENVELOPE_BYTES_MAX;

/// Room for everything in a `send` frame except the body (type, id, conversation id), in bytes.
pub const ENVELOPE_BYTES_MAX: usize = 1024;

/// Largest WebSocket message the transport reads at all, in bytes. Beyond it the connection is
/// closed with 1009 (message too big): reading it would let one peer make us buffer without bound.
pub const TRANSPORT_BYTES_MAX: usize = 1024 * 1024;

/// Largest external conversation id (e.g. a booking id), in bytes.
pub const CONVERSATION_ID_BYTES_MAX: usize = 128;

/// Largest user id, in bytes.
pub const USER_ID_BYTES_MAX: usize = 128;

/// Default largest number of participants of one conversation. A booking chat has a client and a
/// few operators; the limit keeps fan-out per message bounded.
pub const PARTICIPANTS_MAX: usize = 32;

/// Default sustained rate of `send` frames one connection may make, per second. A person types a
/// few messages a minute; a device flushing its outbox after an outage sends faster, and the
/// burst ([`SENDS_BURST_MAX`]) absorbs that.
pub const SENDS_PER_SECOND_MAX: u32 = 100;

/// Default burst of `send` frames above the sustained rate.
pub const SENDS_BURST_MAX: u32 = 200;

/// Most attachments one message carries.
pub const ATTACHMENTS_MAX: usize = 10;

/// Default largest file a user may upload (`attachment_bytes_max`): 25 MiB, enough for a phone's
/// photo or a scanned PDF.
pub const ATTACHMENT_BYTES_MAX: u64 = 25 * 1024 * 1024;

/// Largest body of one upload `PATCH`: a device sends bigger files in several chunks, so a cut
/// connection costs at most one chunk.
pub const UPLOAD_CHUNK_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Default bytes one user may upload in 24 hours (`upload_bytes_per_day`).
pub const UPLOAD_BYTES_PER_DAY: u64 = 500 * 1024 * 1024;

/// Default uploads one user may create per minute (`uploads_per_minute`).
pub const UPLOADS_PER_MINUTE: u32 = 60;

/// Default age after which an upload no message names is removed (`upload_ttl_s`).
pub const UPLOAD_TTL_S: u64 = 24 * 3600;

/// Default lifetime of a signed download link (`attachment_link_ttl_s`).
pub const ATTACHMENT_LINK_TTL_S: u64 = 300;

/// Largest file name of an upload, in bytes of UTF-8.
pub const UPLOAD_NAME_BYTES_MAX: usize = 255;

/// Default largest number of simultaneous connections of one user (all devices and tabs).
pub const CONNECTIONS_PER_USER_MAX: usize = 100;

/// Default page size of history reads (`GET .../messages`), in messages.
pub const PAGE_LIMIT_DEFAULT: u32 = 100;

/// Largest page of history reads, in messages. Resume streams pages of this size.
pub const PAGE_LIMIT_MAX: u32 = 1000;

/// How often the server sends `ping`, in milliseconds. Under the 30 s idle timeout of common load
/// balancers, so a quiet connection is never cut by a proxy.
pub const HEARTBEAT_INTERVAL_MS: u64 = 25_000;

/// How long past a missed heartbeat either side waits before treating the connection as dead, in
/// milliseconds. A device times out after `HEARTBEAT_INTERVAL_MS + HEARTBEAT_GRACE_MS` of silence.
pub const HEARTBEAT_GRACE_MS: u64 = 10_000;

/// Time a device has to send `hello` after the WebSocket opens, in milliseconds.
pub const HELLO_TIMEOUT_MS: u64 = 10_000;

/// How long a typing indicator lasts unless renewed, in milliseconds.
pub const TYPING_TTL_MS: u64 = 10_000;

/// Frames queued for one connection before it counts as lagging and is closed with
/// [`crate::close::TOO_SLOW`]; the device then resumes from its cursor.
pub const CONNECTION_QUEUE_FRAMES: usize = 1024;

/// Bad frames (errors) one connection may cause in a burst before it is closed with
/// [`crate::close::POLICY_VIOLATION`]; the allowance refills at one per second.
/// Default of `connection_write_stall_ms`: with frames queued for a device and none taken by its
/// socket for this long, the device is not reading and is closed 4409. Long enough for a phone
/// on a slow network to drain a socket buffer, short enough that a stalled device holds its
/// memory for seconds, not forever.
pub const WRITE_STALL_MS: u64 = 10_000;

/// Bytes queued for a device's socket above which the server stops queueing live messages for
/// it: they wait in storage and are read once the device has read what is queued.
pub const WRITE_QUEUE_HIGH_BYTES: usize = 64 * 1024;

/// Bytes queued for a device's socket (beyond the kernel's buffer) at which it is closed 4409:
/// the most a device that stops reading makes the server hold for it, plus one frame. Only acks,
/// errors and small signals can push the queue past [`WRITE_QUEUE_HIGH_BYTES`].
pub const WRITE_QUEUE_BYTES_MAX: usize = 1024 * 1024;

const _: () = assert!(WRITE_QUEUE_HIGH_BYTES + FRAME_BYTES_MAX < WRITE_QUEUE_BYTES_MAX);

/// Writes waiting for a store's writer (SQLite thread, PostgreSQL task) before the store refuses
/// new ones `unavailable` at once: under an overload the server sheds load with a transient,
/// retried error instead of queueing without bound (16384 appends of the largest body are about
/// 256 MiB; at group commits of 1024 it is 16 batches of latency).
pub const WRITER_QUEUE_MAX: usize = 16_384;

/// How long a closing connection waits for the peer's close frame (and for its queued frames to
/// be written) before the server drops the socket.
pub const CLOSE_HANDSHAKE_MS: u64 = 5_000;

pub const BAD_FRAMES_BURST_MAX: u32 = 50;

/// Longest lifetime of a token minted by `POST /v1/tokens`, in seconds (30 days).
pub const TOKEN_TTL_S_MAX: u64 = 30 * 24 * 3600;

/// How far a token's `iat` and `nbf` may lie in the future of the server's clock: the clocks of
/// the integrator's backend (which mints tokens) and of the server are never exactly equal.
pub const TOKEN_CLOCK_LEEWAY_S: u64 = 60;

const _: () = assert!(MESSAGE_BYTES_MAX <= MESSAGE_BYTES_CEILING);
const _: () = assert!(FRAME_BYTES_MAX < TRANSPORT_BYTES_MAX);
const _: () = assert!(PAGE_LIMIT_DEFAULT <= PAGE_LIMIT_MAX);
const _: () = assert!(SENDS_PER_SECOND_MAX <= SENDS_BURST_MAX);

/// Most Unicode characters (scalar values) in a message body, unless configured otherwise
/// (`message_chars_max`; never above the byte limit).
pub const MESSAGE_CHARS_DEFAULT: usize = 4096;
