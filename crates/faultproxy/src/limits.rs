//! Every bound of the proxy, with its unit last in the name and the reason for its value.
//!
//! The proxy runs inside tests and chaos runs next to the system under test: it must never be the
//! thing that runs out of memory, file descriptors or time.

/// Largest chunk read from one endpoint at once, in bytes. 16 KiB holds a typical WebSocket frame
/// in one read while keeping the per-chunk copy small.
pub const CHUNK_BYTES_MAX: usize = 16 * 1024;

/// Bytes one direction of one connection may hold waiting for their delivery time (latency) or
/// for bandwidth. Beyond it the pump stops reading, so the sender feels TCP backpressure instead
/// of the proxy buffering without bound. 1 MiB covers 100 ms of latency at 10 MB/s.
pub const QUEUE_BYTES_MAX: usize = 1024 * 1024;

/// Connections proxied at once. Each costs two sockets and up to twice [`QUEUE_BYTES_MAX`]; past
/// this many, new connections are refused (and counted in `Stats::refused`) rather than letting
/// a runaway reconnect loop exhaust file descriptors.
pub const CONNECTIONS_MAX: usize = 1024;

/// Largest latency and largest jitter the proxy applies, in milliseconds. Longer settings are
/// clamped: ten minutes is beyond any test, and the bound keeps `Instant` arithmetic far from
/// overflow.
pub const LATENCY_MS_MAX: u64 = 10 * 60 * 1000;

/// How long the proxy waits for the upstream to accept a connection, in milliseconds, before it
/// closes the client's side. Long enough for a loaded CI machine, short enough that a test with a
/// dead upstream sees the failure promptly.
pub const UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Pause after a failed `accept`, in milliseconds. Running out of file descriptors makes accept
/// fail at once, again and again; pausing keeps the loop from spinning a core meanwhile.
pub const ACCEPT_BACKOFF_MS: u64 = 100;

/// Burst of the bandwidth token bucket, in milliseconds of the configured rate. Short, so the
/// throttle is smooth (a 50 KB transfer at 50 KB/s takes 0.95 s, not 0.7 s after a 16 KiB burst),
/// yet long enough that the pump writes a few hundred bytes per wake-up rather than one.
pub const BURST_MS: u64 = 50;

/// Bytes of a connection's first request head the frame scanner keeps to tell a WebSocket upgrade
/// from plain HTTP (an upload, a download): plain HTTP never gets frames injected into its body.
/// A longer head is not followed (nothing is injected into that connection).
pub const REQUEST_HEAD_BYTES_MAX: usize = 16 * 1024;

/// Frames one [`crate::FaultProxy::inject_text_frames`] call puts into each connection. Enough
/// for a burst that trips any sane bad-frame limit, small enough to stay far below
/// [`QUEUE_BYTES_MAX`] with frames of a few hundred bytes.
pub const INJECT_FRAMES_MAX: usize = 1000;
