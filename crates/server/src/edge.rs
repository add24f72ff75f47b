//! The HTTP edge: accepting connections from the internet without letting a hostile client hold
//! the server. Before this, `axum::serve` accepted every connection and never timed one out, so
//! a few hundred sockets that stop mid-headers exhausted the open files and `/healthz` stopped
//! answering.
//!
//! - **Caps.** At most `connections_max` connections in all and `connections_per_address_max`
//!   from one source address; a connection over a cap is closed at once (it never waits in the
//!   accept queue behind the others, and never stalls accepted ones). A WebSocket keeps its
//!   place until it ends.
//! - **Timeouts.** Request headers must arrive within `http_header_read_timeout_ms`, a request
//!   body within `http_body_read_timeout_ms`, and a keep-alive connection with no request in
//!   flight is closed after `http_idle_timeout_ms` of silence. A WebSocket has its own `hello`
//!   timeout and heartbeats.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;

/// Counts of open connections, in all and per source address.
#[derive(Debug, Default)]
pub struct Caps {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection's place under the caps, given back when it is dropped.
#[derive(Debug)]
pub struct Permit {
    caps: Arc<Caps>,
    address: IpAddr,
}

impl Caps {
    /// Takes a place for a connection from `address`, unless a cap is reached.
    pub fn admit(self: &Arc<Self>, address: IpAddr, config: &Config) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_address) = &mut *open;
        let mine = by_address.entry(address).or_default();
        if *total >= config.connections_max || *mine >= config.connections_per_address_max {
            if *mine == 0 {
                by_address.remove(&address);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(Permit {
            caps: self.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_address) = &mut *open;
        *total -= 1;
        if let Some(mine) = by_address.get_mut(&self.address) {
            *mine -= 1;
            if *mine == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}

/// A socket that remembers when it last moved bytes, and holds its connection's permit (so a
/// WebSocket, which takes the socket over, keeps its place under the caps).
struct Watched {
    inner: TcpStream,
    last_active_ms: Arc<AtomicU64>,
    origin: Instant,
    _permit: Permit,
}

impl Watched {
    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `shutdown`, under the caps and timeouts of `config`; then
/// stops accepting and waits for HTTP requests in flight (WebSockets are tracked by the caller).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    config: Arc<Config>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let caps = Arc::new(Caps::default());
    let connections = tokio_util::task::TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.http_header_read_timeout_ms))
        .keep_alive(true);
    let idle = Duration::from_millis(config.http_idle_timeout_ms);
    loop {
        let (tcp, address) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait a little rather than spin; accepted
                    // connections go on meanwhile.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(permit) = caps.admit(address.ip(), &config) else {
            // Closed at once: a refused connection costs nothing and waits for nothing.
            tracing::debug!(%address, "connection refused: a connection cap is reached");
            continue;
        };
        // Frames are small and latency-bound: without TCP_NODELAY a frame written while the
        // previous one is unacknowledged waits for the peer's delayed ACK (40 ms on Linux).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
        let last_active_ms = Arc::new(AtomicU64::new(0));
        let origin = Instant::now();
        let io = TokioIo::new(Watched {
            inner: tcp,
            last_active_ms: last_active_ms.clone(),
            origin,
            _permit: permit,
        });
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move {
                    let request = request.map(Body::new);
                    tower::ServiceExt::oneshot(router, request).await
                }
            });
        let connection = http.serve_connection(io, service).with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let mut draining = false;
            loop {
                let since = last_active_ms.load(Ordering::Relaxed);
                let deadline = origin + Duration::from_millis(since) + idle;
                tokio::select! {
                    _ = &mut connection => return,
                    _ = shutdown.cancelled(), if !draining => {
                        // Finish the request in flight, then close (no more keep-alive).
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        if last_active_ms.load(Ordering::Relaxed) == since {
                            // Silent for the whole idle timeout: a keep-alive connection nobody
                            // uses, or a request that stopped moving. (An upgraded WebSocket has
                            // left this future already.)
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Middleware: a request body must arrive within `http_body_read_timeout_ms`, or the request
/// fails (a client that sends a header and then trickles or stops its body is cut off).
pub async fn body_deadline(
    axum::extract::State(config): axum::extract::State<Arc<Config>>,
    request: Request,
    next: Next,
) -> Response {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(config.http_body_read_timeout_ms);
    let (parts, body) = request.into_parts();
    let body = Body::new(Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
    });
    next.run(Request::from_parts(parts, body)).await
}

/// A request body that fails once its deadline passes.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new("request body read timed out"))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_in_all_and_per_address() {
        let config = Config {
            connections_max: 3,
            connections_per_address_max: 2,
            ..Config::default()
        };
        let caps = Arc::new(Caps::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = caps.admit(a, &config).unwrap();
        let _second = caps.admit(a, &config).unwrap();
        assert!(caps.admit(a, &config).is_none(), "per address");
        let _third = caps.admit(b, &config).unwrap();
        assert!(caps.admit(b, &config).is_none(), "in all");
        drop(first);
        let again = caps.admit(b, &config);
        assert!(again.is_some(), "a place given back is taken again");
        assert_eq!(caps.open(), 3);
        drop(again);
        assert_eq!(caps.open(), 2);
    }
}
