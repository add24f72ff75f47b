//! The WebSocket gateway at `/v1/ws`: one task per connection, each one visible loop over a closed
//! set of inputs (frames from the device, notices from the hub, finished storage writes, timers,
//! shutdown). See [`connection`] for the loop and `docs/protocol.md` for the frames.

pub mod connection;
pub mod core;
pub mod limiter;

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use protocol::limits::TRANSPORT_BYTES_MAX;
use protocol::ErrorCode;

use crate::error::ApiError;
use crate::AppState;

/// Bytes read from a socket at once. tungstenite zero-fills its whole read buffer (128 KiB by
/// default), so that buffer is resident memory of every idle connection; frames are a few
/// hundred bytes, and a larger frame grows the buffer only while it is read.
const READ_BUFFER_BYTES: usize = 512;

/// `GET /v1/ws`: upgrades to a WebSocket and runs the connection until it closes.
pub async fn upgrade(
    State(app): State<Arc<AppState>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A request that is not a WebSocket handshake gets a problem document like any other.
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::new(
                ErrorCode::BadRequest,
                format!("not a WebSocket handshake: {}", rejection.body_text()),
            )
            .into_response()
        }
    };
    let tracker = app.connections.clone();
    // The connection's lines carry the id of its upgrade request.
    let span = tracing::info_span!("connection");
    ws.max_message_size(TRANSPORT_BYTES_MAX)
        .max_frame_size(TRANSPORT_BYTES_MAX)
        .read_buffer_size(READ_BUFFER_BYTES)
        // Each frame is written and flushed on its own: no buffer to keep between writes.
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            tracker.track_future(tracing::Instrument::instrument(
                connection::run(socket, app),
                span,
            ))
        })
}
