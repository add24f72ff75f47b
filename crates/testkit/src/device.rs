//! A WebSocket device for tests: connects, says `hello`, and reads frames with bounded waits.

use futures_util::{SinkExt, StreamExt};
use protocol::frames::{self, ClientFrame, Cursor, Message, ServerFrame, Welcome};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;

/// A raw WebSocket stream.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `url` (`ws://host:port/v1/ws`) without saying anything.
pub async fn connect_raw(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connecting in time")
        .expect("the WebSocket handshake succeeds");
    ws
}

/// A connected, authenticated device.
pub struct Device {
    /// The socket.
    pub ws: Ws,
    /// The server's `welcome`.
    pub welcome: Welcome,
}

/// What ended a connection: close code and reason, or `None` for a close without a frame.
pub type Closed = Option<(u16, String)>;

impl Device {
    /// Connects and says `hello` with `token` and `cursors`; panics unless `welcome` comes back.
    pub async fn connect(url: &str, token: &str, cursors: Vec<Cursor>) -> Device {
        Device::greet(
            url,
            frames::Hello {
                v: protocol::PROTOCOL_VERSION,
                token: token.into(),
                cursors,
                offline_ms: None,
                pending: None,
            },
        )
        .await
    }

    /// Connects and says this `hello`; panics unless `welcome` comes back.
    pub async fn greet(url: &str, hello: frames::Hello) -> Device {
        let mut ws = connect_raw(url).await;
        let hello = ClientFrame::Hello(hello);
        ws.send(WsMessage::text(hello.encode()))
            .await
            .expect("sending hello");
        let mut device = Device {
            ws,
            welcome: placeholder_welcome(),
        };
        match device.next().await {
            ServerFrame::Welcome(welcome) => device.welcome = welcome,
            other => panic!("expected welcome, got {other:?}"),
        }
        device
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(&frame.encode()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text.to_owned()))
            .await
            .expect("sending a frame");
    }

    /// Sends a message with a fresh id; returns the id.
    pub async fn send_message(&mut self, conversation: &str, body: &str) -> String {
        let id = crate::uuid();
        self.send(&ClientFrame::Send(frames::Send {
            id: id.clone(),
            conversation: conversation.into(),
            body: body.into(),
            kind: Default::default(),
            attachments: Vec::new(),
        }))
        .await;
        id
    }

    /// The next frame (pings are answered and skipped); panics after [`WAIT`] or on close.
    pub async fn next(&mut self) -> ServerFrame {
        match self.next_or_close().await {
            Ok(frame) => frame,
            Err(closed) => panic!("connection closed while waiting for a frame: {closed:?}"),
        }
    }

    /// The next frame, or how the connection closed.
    pub async fn next_or_close(&mut self) -> Result<ServerFrame, Closed> {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    let frame = frames::decode_server_frame(text.as_str())
                        .unwrap_or_else(|e| panic!("undecodable server frame ({e}): {text}"));
                    if let ServerFrame::Ping(_) = frame {
                        self.send(&ClientFrame::Pong(frames::Pong {})).await;
                        continue;
                    }
                    return Ok(frame);
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Reads until the connection closes, returning the close code; panics on a frame not allowed
    /// by `allow`.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match self.next_or_close().await {
                Ok(_) => continue,
                Err(closed) => return closed,
            }
        }
    }

    /// Skips frames until `pick` returns `Some`.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            if let Some(found) = pick(&frame) {
                return found;
            }
        }
    }

    /// Waits for the `ack` of message `id`; panics on an `error` for it.
    pub async fn ack(&mut self, id: &str) -> frames::Ack {
        let what = format!("the ack of {id}");
        self.wait_for(&what, |frame| match frame {
            ServerFrame::Ack(ack) if ack.id == id => Some(ack.clone()),
            ServerFrame::Error(err) if err.reference.as_deref() == Some(id) => {
                panic!("send {id} failed: {err:?}")
            }
            _ => None,
        })
        .await
    }

    /// Waits for an `error` naming `reference`.
    pub async fn error_for(&mut self, reference: Option<&str>) -> frames::ErrorFrame {
        self.wait_for("an error frame", |frame| match frame {
            ServerFrame::Error(err) if err.reference.as_deref() == reference => Some(err.clone()),
            _ => None,
        })
        .await
    }

    /// Collects `message` frames of `conversation` until `count` have arrived; other frames are
    /// skipped.
    pub async fn messages(&mut self, conversation: &str, count: usize) -> Vec<Message> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let what = format!("message {} of {count} in {conversation}", out.len() + 1);
            let message = self
                .wait_for(&what, |frame| match frame {
                    ServerFrame::Message(m) if m.conversation == conversation => Some(m.clone()),
                    _ => None,
                })
                .await;
            out.push(message);
        }
        out
    }

    /// Collects `message` frames of `conversation` until its `synced` frame.
    pub async fn until_synced(&mut self, conversation: &str) -> (Vec<Message>, u64) {
        let mut out = Vec::new();
        loop {
            match self.next().await {
                ServerFrame::Message(m) if m.conversation == conversation => out.push(m),
                ServerFrame::Synced(s) if s.conversation == conversation => return (out, s.seq),
                _ => {}
            }
        }
    }

    /// Round-trips a `ping`, returning every frame received before its `pong`: proves the server
    /// has processed everything sent before, and shows what it pushed meanwhile.
    pub async fn barrier(&mut self) -> Vec<ServerFrame> {
        let reference = crate::uuid();
        self.send(&ClientFrame::Ping(frames::Ping {
            reference: Some(reference.clone()),
        }))
        .await;
        let mut before = Vec::new();
        loop {
            match self.next().await {
                ServerFrame::Pong(p) if p.reference.as_deref() == Some(reference.as_str()) => {
                    return before
                }
                other => before.push(other),
            }
        }
    }
}

fn placeholder_welcome() -> Welcome {
    Welcome {
        v: 0,
        user_id: String::new(),
        role: protocol::Role::Client,
        connection_id: String::new(),
        heartbeat_ms: 0,
        timeout_ms: 0,
        conversations: Vec::new(),
    }
}
