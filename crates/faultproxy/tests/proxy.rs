//! The fault proxy against real sockets on 127.0.0.1: an echo server (or a greeter) behind it,
//! plain TCP clients in front, one test per fault.
//!
//! Nothing here sleeps to synchronise: tests await bytes, closes and `wait_connections`. Timeouts
//! appear in two roles only: a guard that turns a hang into a failure (`within`), and the
//! assertion that nothing arrives (`assert_silent`, 300 ms).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultproxy::FaultProxy;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// How long any awaited event may take before the test fails instead of hanging.
const GUARD: Duration = Duration::from_secs(10);

/// How long silence must last to count as "nothing arrives".
const SILENCE: Duration = Duration::from_millis(300);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done after {GUARD:?}"),
    }
}

/// An upstream server and how many connections reached it.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

/// Echoes every byte back; on the client's half-close, finishes and closes.
async fn echo_server() -> Upstream {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    Upstream { addr, accepted }
}

/// Writes `name` to each connection and closes it.
async fn greeter(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(name.as_bytes()).await;
        }
    });
    addr
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = within("connect", TcpStream::connect(proxy.local_addr()))
        .await
        .expect("connect to the proxy");
    stream.set_nodelay(true).unwrap();
    stream
}

/// Writes `payload` and expects it back unchanged.
async fn round_trip(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.unwrap();
    let mut back = vec![0; payload.len()];
    within("echo", stream.read_exact(&mut back))
        .await
        .expect("the echo");
    assert_eq!(back, payload);
}

/// Reads until the connection ends (end of stream or reset), discarding what is still in flight.
async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = vec![0; 64 * 1024];
    within("the connection to end", async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
}

/// Asserts that nothing arrives for [`SILENCE`] and that the connection is still open.
async fn assert_silent(stream: &mut TcpStream) {
    let mut buf = [0; 1024];
    match tokio::time::timeout(SILENCE, stream.read(&mut buf)).await {
        Err(_elapsed) => {}
        Ok(Ok(0)) => panic!("the connection was closed"),
        Ok(Ok(n)) => panic!("{n} bytes arrived through a black hole"),
        Ok(Err(error)) => panic!("the connection failed: {error}"),
    }
}

/// Deterministic test data (xorshift64), so a failure reproduces.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a, 64 bits: enough to tell a corrupted, truncated or reordered stream.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Sends `payload` in `piece`-byte writes, half-closes, and returns the hash and length of
/// everything that came back before the end of stream.
async fn echo_through(stream: TcpStream, payload: Vec<u8>, piece: usize) -> (u64, usize) {
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for part in payload.chunks(piece) {
            write.write_all(part).await.unwrap();
        }
        write.shutdown().await.unwrap();
    });
    let mut hash = FNV_OFFSET;
    let mut len = 0;
    let mut buf = vec![0; 64 * 1024];
    within("the echo of the whole payload", async {
        loop {
            let n = read.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            hash = fnv1a(hash, &buf[..n]);
            len += n;
        }
    })
    .await;
    writer.await.unwrap();
    (hash, len)
}

#[tokio::test]
async fn bytes_pass_unchanged_both_ways_and_half_close_travels() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    let payload = data(4 * 1024 * 1024, 1);
    let expected = fnv1a(FNV_OFFSET, &payload);

    let (hash, len) = echo_through(connect(&proxy).await, payload, 7_919).await;

    assert_eq!(len, 4 * 1024 * 1024);
    assert_eq!(hash, expected);
    // The end of stream came back through the proxy, so the proxy closes its connection.
    within("the proxy to close", proxy.wait_connections(0)).await;
    let stats = proxy.stats();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.bytes_to_upstream, 4 * 1024 * 1024);
    assert_eq!(stats.bytes_to_client, 4 * 1024 * 1024);
    assert_eq!(
        stats.dropped + stats.refused + stats.stalled + stats.upstream_failed,
        0
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn jitter_never_reorders_bytes() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    proxy.set_seed(42);
    // Each chunk draws 0..10 ms on top of 1 ms: without the "never before the previous chunk"
    // rule, small chunks would overtake one another.
    proxy.set_latency(Duration::from_millis(1), Duration::from_millis(10));
    let payload = data(256 * 1024, 2);
    let expected = fnv1a(FNV_OFFSET, &payload);

    let (hash, len) = echo_through(connect(&proxy).await, payload, 1_000).await;

    assert_eq!(len, 256 * 1024);
    assert_eq!(hash, expected);
    proxy.shutdown().await;
}

#[tokio::test]
async fn drop_all_ends_connections_while_data_flows_and_new_ones_work() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    let mut idle = connect(&proxy).await;
    round_trip(&mut idle, b"idle").await;
    let (mut read, mut write) = connect(&proxy).await.into_split();
    let writer = tokio::spawn(async move {
        let block = data(16 * 1024, 3);
        // Until the connection breaks.
        while write.write_all(&block).await.is_ok() {}
    });
    let mut flowing = vec![0; 64 * 1024];
    within("data to flow", read.read_exact(&mut flowing))
        .await
        .unwrap();

    proxy.drop_all();

    within("the flowing connection to end", async {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(1..) = read.read(&mut buf).await {}
    })
    .await;
    within("the writer to fail", writer).await.unwrap();
    assert_closed(&mut idle).await;
    within("the proxy to close both", proxy.wait_connections(0)).await;
    assert_eq!(proxy.stats().dropped, 2);

    let mut fresh = connect(&proxy).await;
    round_trip(&mut fresh, b"after the drop").await;
    assert_eq!(proxy.connections(), 1);
    proxy.shutdown().await;
}

#[tokio::test]
async fn stall_black_holes_current_and_new_connections_until_an_endpoint_closes() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    let mut before = connect(&proxy).await;
    round_trip(&mut before, b"before").await;

    proxy.stall(true);

    before.write_all(b"into the void").await.unwrap();
    assert_silent(&mut before).await;
    let mut during = connect(&proxy).await;
    during.write_all(b"also into the void").await.unwrap();
    assert_silent(&mut during).await;
    within("both connections", proxy.wait_connections(2)).await;
    // A connection born in a partition never reaches the server.
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);

    proxy.stall(false);

    let mut after = connect(&proxy).await;
    round_trip(&mut after, b"after").await;
    // Black holes stay black holes.
    before.write_all(b"still nothing").await.unwrap();
    assert_silent(&mut before).await;

    // An endpoint closing its side closes the black hole.
    drop(before);
    within("the black hole to close", proxy.wait_connections(2)).await;
    drop(during);
    within("the black hole to close", proxy.wait_connections(1)).await;
    round_trip(&mut after, b"unaffected").await;
    // Both black holes read what was written into them before they saw the end of stream.
    let stats = proxy.stats();
    assert_eq!(stats.stalled, 2);
    assert!(stats.bytes_discarded >= b"into the voidalso into the voidstill nothing".len() as u64);
    assert_eq!(stats.dropped, 0);
    proxy.shutdown().await;
}

#[tokio::test]
async fn stall_stops_data_in_flight_and_drop_all_closes_black_holes() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    let (mut read, mut write) = connect(&proxy).await.into_split();
    let writer = tokio::spawn(async move {
        let block = data(16 * 1024, 4);
        while write.write_all(&block).await.is_ok() {}
    });
    let mut flowing = vec![0; 64 * 1024];
    within("data to flow", read.read_exact(&mut flowing))
        .await
        .unwrap();

    proxy.stall(true);

    // What was already past the proxy still arrives; then silence, with the connection open.
    let mut buf = vec![0; 64 * 1024];
    within("silence", async {
        loop {
            match tokio::time::timeout(SILENCE, read.read(&mut buf)).await {
                Err(_elapsed) => break,
                Ok(Ok(0)) => panic!("the connection was closed"),
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => panic!("the connection failed: {error}"),
            }
        }
    })
    .await;
    assert!(!writer.is_finished(), "the client can still write");

    proxy.drop_all();

    within("the black hole to end", async {
        while let Ok(1..) = read.read(&mut buf).await {}
    })
    .await;
    within("the writer to fail", writer).await.unwrap();
    within("the proxy to close", proxy.wait_connections(0)).await;
    let stats = proxy.stats();
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.stalled, 1);
    // The client kept writing into the black hole for the whole silence.
    assert!(stats.bytes_discarded > 0);
    proxy.shutdown().await;
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"warm up").await;

    proxy.set_latency(Duration::from_millis(100), Duration::ZERO);
    let started = Instant::now();
    round_trip(&mut stream, b"slow").await;
    let took = started.elapsed();

    assert!(
        took >= Duration::from_millis(200),
        "round trip took {took:?}"
    );
    assert!(took < Duration::from_secs(3), "round trip took {took:?}");
    assert_eq!(proxy.faults().latency, Duration::from_millis(100));
    proxy.heal();
    assert_eq!(proxy.faults(), faultproxy::Faults::default());
    proxy.shutdown().await;
}

#[tokio::test]
async fn bandwidth_throttles_each_direction() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    proxy.set_bandwidth(Some(50_000));
    let payload = data(50_000, 5);
    let expected = fnv1a(FNV_OFFSET, &payload);

    let started = Instant::now();
    let (hash, len) = echo_through(connect(&proxy).await, payload, 16 * 1024).await;
    let took = started.elapsed();

    assert_eq!((hash, len), (expected, 50_000));
    // Each direction: one 2.5 KB burst, then 47.5 KB at 50 KB/s; the two overlap.
    assert!(took >= Duration::from_millis(800), "50 KB took {took:?}");
    assert!(took < Duration::from_secs(5), "50 KB took {took:?}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn refuse_resets_new_connections_and_spares_existing_ones() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    let mut existing = connect(&proxy).await;
    round_trip(&mut existing, b"before").await;

    proxy.refuse(true);

    // The kernel completes the handshake before the proxy sees the connection, so connect may
    // succeed; then the first read sees the reset (or an end of stream), never data.
    if let Ok(mut refused) = TcpStream::connect(proxy.local_addr()).await {
        let mut buf = [0; 16];
        match within("the reset", refused.read(&mut buf)).await {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("a refused connection delivered {n} bytes"),
        }
    }
    round_trip(&mut existing, b"still here").await;
    assert_eq!(proxy.stats().refused, 1);
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);

    proxy.refuse(false);
    let mut fresh = connect(&proxy).await;
    round_trip(&mut fresh, b"welcome back").await;
    proxy.shutdown().await;
}

#[tokio::test]
async fn set_upstream_redirects_new_connections() {
    let a = greeter("A").await;
    let b = greeter("B").await;
    let proxy = FaultProxy::start(any_port(), a).await.unwrap();
    let mut greeting = String::new();
    // The greeter closes after its name: the end of stream must travel through the proxy.
    within("A", connect(&proxy).await.read_to_string(&mut greeting))
        .await
        .unwrap();
    assert_eq!(greeting, "A");

    proxy.set_upstream(b);

    assert_eq!(proxy.upstream(), b);
    greeting.clear();
    within("B", connect(&proxy).await.read_to_string(&mut greeting))
        .await
        .unwrap();
    assert_eq!(greeting, "B");
    proxy.shutdown().await;
}

#[tokio::test]
async fn unreachable_upstream_closes_the_client() {
    // A port that was just free: nothing listens there.
    let dead = TcpListener::bind(any_port())
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = FaultProxy::start(any_port(), dead).await.unwrap();
    let mut stream = connect(&proxy).await;
    assert_closed(&mut stream).await;
    within("the proxy to close", proxy.wait_connections(0)).await;
    assert_eq!(proxy.stats().upstream_failed, 1);
    proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_everything_and_stops_listening() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(any_port(), upstream.addr).await.unwrap();
    let addr = proxy.local_addr();
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"hello").await;

    within("shutdown", proxy.shutdown()).await;

    assert_closed(&mut stream).await;
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

#[tokio::test]
async fn websocket_passes_through_and_drop_all_ends_it() {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let proxy = FaultProxy::start(any_port(), server).await.unwrap();
    let url = format!("ws://{}/", proxy.local_addr());
    let (mut ws, _) = within("the handshake", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    ws.send(Message::text("hello")).await.unwrap();
    let echo = within("the echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(echo, Message::text("hello"));

    proxy.drop_all();

    // The client sees the TCP connection end without a close frame.
    match within("the end", ws.next()).await {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("unexpected {message:?}"),
    }
    proxy.shutdown().await;
}

/// A WebSocket echo server for text messages.
async fn websocket_echo() -> SocketAddr {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    server
}

#[tokio::test]
async fn injected_frames_reach_the_server_between_the_clients_messages() {
    let proxy = FaultProxy::start(any_port(), websocket_echo().await)
        .await
        .unwrap();
    let url = format!("ws://{}/", proxy.local_addr());
    let (mut ws, _) = within("the handshake", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    ws.send(Message::text("first")).await.unwrap();
    let echo = within("the echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(echo, Message::text("first"));

    // At a boundary now: the frames go at once, before anything the client sends next.
    let long = "z".repeat(300);
    proxy.inject_text_frames(vec!["bad 1".into(), long.clone()]);
    ws.send(Message::text("second")).await.unwrap();
    let mut echoes = Vec::new();
    for _ in 0..3 {
        echoes.push(within("the echoes", ws.next()).await.unwrap().unwrap());
    }
    assert_eq!(
        echoes,
        vec![
            Message::text("bad 1"),
            Message::text(long),
            Message::text("second")
        ]
    );
    assert_eq!(proxy.stats().frames_injected, 2);

    // A connection born after the call gets nothing; the first one nothing more.
    let url = format!("ws://{}/", proxy.local_addr());
    let (mut late, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    late.send(Message::text("late")).await.unwrap();
    assert_eq!(
        within("the late echo", late.next()).await.unwrap().unwrap(),
        Message::text("late")
    );
    ws.send(Message::text("third")).await.unwrap();
    assert_eq!(
        within("the third echo", ws.next()).await.unwrap().unwrap(),
        Message::text("third")
    );
    assert_eq!(proxy.stats().frames_injected, 2);
    proxy.shutdown().await;
}

#[tokio::test]
async fn injection_waits_for_the_first_message_of_a_new_connection() {
    let proxy = FaultProxy::start(any_port(), websocket_echo().await)
        .await
        .unwrap();
    let url = format!("ws://{}/", proxy.local_addr());
    let (mut ws, _) = within("the handshake", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    // Nothing sent yet: the injection must not come before the client's own first message.
    proxy.inject_text_frames(vec!["bad".into()]);
    ws.send(Message::text("hello")).await.unwrap();
    let first = within("the echo", ws.next()).await.unwrap().unwrap();
    let second = within("the injected echo", ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first, second),
        (Message::text("hello"), Message::text("bad"))
    );
    proxy.shutdown().await;
}
