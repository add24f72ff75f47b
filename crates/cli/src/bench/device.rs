//! A lean driver over the SDK's sans-IO core ([`client::Session`]) for many devices in one
//! process: no local store, no app channel, the connect done inline. One bench task owns one or
//! two [`Link`]s and pumps them itself, so thousands of devices cost thousands of tasks, not
//! three times that. The protocol logic (outbox, window, cursors, receipts, statuses) is the
//! SDK's own.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use client::{Action, Config, Event, Session};
use futures_util::{SinkExt, StreamExt};
use protocol::frames::decode_server_frame;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// A WebSocket over plain TCP (the bench only talks to loopback).
pub type Ws = WebSocketStream<TcpStream>;

/// Read buffer of a bench socket: frames are small, and thousands of idle sockets should not
/// each hold tungstenite's 128 KiB default.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Opens a WebSocket to `server`, from `source` when given (several loopback source addresses
/// lift the limit of one address's ephemeral ports).
pub async fn open(url: &str, server: SocketAddr, source: Option<Ipv4Addr>) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::from((ip, 0)))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(ws)
}

/// One device: a session and its socket.
pub struct Link {
    /// The SDK core.
    pub session: Session,
    url: String,
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    ws: Option<Ws>,
    attempt: u64,
}

impl Link {
    /// A device of the user `token` belongs to; call [`Link::drive`] after `session.connect`.
    pub fn new(
        url: &str,
        server: SocketAddr,
        source: Option<Ipv4Addr>,
        token: String,
        config: Config,
    ) -> Link {
        Link {
            session: Session::new(config, token),
            url: url.to_owned(),
            server,
            source,
            ws: None,
            attempt: 0,
        }
    }

    /// Carries out what the session asked for, in the SDK's polling order: transport actions,
    /// then events (appended to `events`), then frames, written and flushed once.
    pub async fn drive(&mut self, events: &mut Vec<Event>) {
        loop {
            while let Some(action) = self.session.poll_action() {
                match action {
                    Action::Connect { attempt } => {
                        self.ws = None;
                        match open(&self.url, self.server, self.source).await {
                            Ok(ws) => {
                                self.ws = Some(ws);
                                self.attempt = attempt;
                                self.session.handle_open(Instant::now(), attempt);
                            }
                            Err(_) => self.session.handle_close(Instant::now(), attempt, None),
                        }
                    }
                    // Dropped, not closed politely: a cut is a cut.
                    Action::Disconnect => self.ws = None,
                    // Bench devices send text only.
                    Action::Upload(_) | Action::CancelUpload { .. } => {
                        unreachable!("bench devices send no files")
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                events.push(event);
            }
            let mut failed = false;
            let mut wrote = false;
            while let Some(frame) = self.session.poll_transmit() {
                let Some(ws) = self.ws.as_mut() else { continue };
                if ws.feed(Message::text(frame.encode())).await.is_err() {
                    failed = true;
                    break;
                }
                wrote = true;
            }
            if wrote && !failed {
                if let Some(ws) = self.ws.as_mut() {
                    failed = ws.flush().await.is_err();
                }
            }
            if !failed {
                return;
            }
            self.ws = None;
            self.session
                .handle_close(Instant::now(), self.attempt, None);
        }
    }

    /// The next message from the socket; pending forever while there is none.
    pub async fn next(&mut self) -> Option<Result<Message, WsError>> {
        match self.ws.as_mut() {
            Some(ws) => ws.next().await,
            None => std::future::pending().await,
        }
    }

    /// Hands what the socket produced to the session.
    pub fn handle(&mut self, now: Instant, next: Option<Result<Message, WsError>>) {
        match next {
            Some(Ok(Message::Text(text))) => {
                if let Ok(frame) = decode_server_frame(text.as_str()) {
                    self.session.handle_frame(now, frame);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                self.ws = None;
                let code = frame.map(|f| u16::from(f.code));
                self.session.handle_close(now, self.attempt, code);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                self.ws = None;
                self.session.handle_close(now, self.attempt, None);
            }
        }
    }

    /// Handles every message already waiting on the socket without waiting for more, so one
    /// wake-up of the task handles a burst.
    pub fn handle_ready(&mut self, now: Instant) {
        use futures_util::FutureExt;
        for _ in 0..256 {
            let Some(ws) = self.ws.as_mut() else { return };
            match ws.next().now_or_never() {
                Some(next) => self.handle(now, next),
                None => return,
            }
        }
    }
}

/// The session configuration of bench devices: `window` messages in flight per device, quick
/// reconnects (a storm measures the server, not the backoff).
pub fn config(window: usize, seed: u64) -> Config {
    Config {
        send_window: window,
        backoff_first_ms: 100,
        backoff_base_ms: 200,
        backoff_cap_ms: 2_000,
        seed,
        ..Config::default()
    }
}
