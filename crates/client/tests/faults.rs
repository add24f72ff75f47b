//! The Rust SDK against the real server through the fault proxy: one test per line of the
//! original checklist, plus a restart from the local store. Every wait is bounded.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Client, ClientOptions, Config, ConnectionStatus, DeliveryStatus, Event};
use faultproxy::FaultProxy;
use protocol::Role;
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::{AppState, Config as ServerConfig};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// A server (SQLite, short heartbeats) with one booking, `b1`: ana (client) and olga (operator).
struct Harness {
    state: Arc<AppState>,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            admin_key: Some("fault-test-admin-key-0123".into()),
            jwt_secret: Some("fault-test-jwt-secret-0123456789abcdef".into()),
            heartbeat_interval_ms: 300,
            heartbeat_grace_ms: 300,
            sends_per_second_max: 10_000,
            sends_burst_max: 10_000,
            // olga joins the operator directory when she first connects.
            operators_auto_register: true,
            ..ServerConfig::default()
        };
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = AppState::new(config, Arc::new(store), CancellationToken::new());
        tokio::spawn(server::run(listener, state.clone()));
        let participants = vec![
            protocol::api::ParticipantSpec {
                user_id: "ana".into(),
                role: Role::Client,
                email: None,
            },
            protocol::api::ParticipantSpec {
                user_id: "olga".into(),
                role: Role::Operator,
                email: None,
            },
        ];
        state
            .store
            .create_conversation("b1".into(), participants, 8, 0)
            .await
            .unwrap();
        Harness {
            state,
            address,
            dir,
        }
    }

    async fn proxy(&self) -> FaultProxy {
        FaultProxy::start("127.0.0.1:0".parse().unwrap(), self.address)
            .await
            .unwrap()
    }

    fn token(&self, user: &str, role: Role) -> String {
        self.state.auth.mint(user, role, server::now_s(), 3600)
    }

    /// A client of `user` through `proxy`, with a fast backoff; `store` names its local file.
    fn client(&self, user: &str, role: Role, proxy: &FaultProxy, store: Option<&str>) -> Device {
        let url = format!("ws://{}/v1/ws", proxy.local_addr());
        let mut options = ClientOptions::new(url, self.token(user, role));
        options.config = Config {
            backoff_first_ms: 50,
            backoff_base_ms: 100,
            backoff_cap_ms: 500,
            connect_timeout_ms: 2_000,
            ..Config::default()
        };
        options.store = store.map(|name| self.dir.path().join(name));
        let (client, events) = Client::start(options).unwrap();
        Device {
            client,
            events,
            seen: Vec::new(),
        }
    }

    /// Every stored message of b1, by seq.
    async fn stored(&self) -> Vec<protocol::frames::Message> {
        self.state
            .store
            .messages_since("b1".into(), 0, 1000)
            .await
            .unwrap()
    }
}

struct Device {
    client: Client,
    events: tokio::sync::mpsc::Receiver<Event>,
    /// Every event so far, for assertions on sequences.
    seen: Vec<Event>,
}

impl Device {
    /// Waits for an event matching `pick`; panics after [`WAIT`].
    async fn wait<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("the client is running");
            self.seen.push(event.clone());
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    async fn status(&mut self, what: &str, want: fn(&ConnectionStatus) -> bool) {
        self.wait(what, |e| {
            matches!(e, Event::ConnectionStatus(s) if want(s)).then_some(())
        })
        .await
    }

    async fn delivery(&mut self, id: &str, name: &str) {
        let what = format!("{id} to become {name}");
        self.wait(&what, |e| matches!(e, Event::DeliveryStatus { id: i, status, .. } if i == id && status.name() == name).then_some(()))
            .await
    }

    /// Waits until the conversation holds `count` messages (cursor), returning them.
    async fn holds(&mut self, count: u64) -> Vec<client::ChatMessage> {
        let what = format!("cursor {count}");
        if self.client.cursor("b1").await.unwrap() < count {
            self.wait(&what, |e| {
                matches!(e, Event::Cursor { seq, .. } if *seq >= count).then_some(())
            })
            .await;
        }
        self.client
            .messages("b1")
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.seq.is_some())
            .collect()
    }

    fn statuses_of(&self, id: &str) -> Vec<&'static str> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::DeliveryStatus { id: i, status, .. } if i == id => Some(status.name()),
                _ => None,
            })
            .collect()
    }
}

fn assert_gap_free_once(messages: &[client::ChatMessage], count: usize) {
    assert_eq!(messages.len(), count);
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq.unwrap()).collect();
    assert_eq!(seqs, (1..=count as u64).collect::<Vec<_>>());
    let ids: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), count, "no message twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_delivery_both_ways_with_ticks_to_read() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    let mut olga = h.client("olga", Role::Operator, &proxy, None);
    ana.status("ana connected", |s| *s == ConnectionStatus::Connected)
        .await;
    olga.status("olga connected", |s| *s == ConnectionStatus::Connected)
        .await;
    let id = ana.client.send("b1", "hello, I booked room 12").unwrap();
    ana.delivery(&id, "sent").await;
    olga.holds(1).await;
    ana.delivery(&id, "delivered").await;
    olga.client.mark_read("b1").unwrap();
    ana.delivery(&id, "read").await;
    assert_eq!(
        ana.statuses_of(&id),
        vec!["sending", "sent", "delivered", "read"]
    );
    let reply = olga.client.send("b1", "welcome!").unwrap();
    let held = ana.holds(2).await;
    assert_eq!(
        (
            held[1].id.as_str(),
            held[1].body.as_str(),
            held[1].sender.as_str()
        ),
        (reply.as_str(), "welcome!", "olga")
    );
    olga.delivery(&reply, "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_network_still_delivers_everything_in_order() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    proxy.set_seed(11);
    proxy.set_latency(Duration::from_millis(40), Duration::from_millis(40));
    proxy.set_bandwidth(Some(20_000));
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    let fast = h.proxy().await;
    let mut olga = h.client("olga", Role::Operator, &fast, None);
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(
            ana.client
                .send("b1", &format!("slow {i} {}", "x".repeat(200)))
                .unwrap(),
        );
    }
    let held = olga.holds(40).await;
    assert_gap_free_once(&held, 40);
    assert_eq!(
        held.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        ids,
        "FIFO through latency and throttling"
    );
    ana.delivery(ids.last().unwrap(), "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_while_offline_then_recovery() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    ana.status("connected", |s| *s == ConnectionStatus::Connected)
        .await;
    // The device learns it lost its network; the proxy refuses too.
    proxy.refuse(true);
    proxy.drop_all();
    ana.client.set_network(false).unwrap();
    ana.status("offline", |s| *s == ConnectionStatus::Offline)
        .await;
    let ids: Vec<String> = (0..3)
        .map(|i| ana.client.send("b1", &format!("offline {i}")).unwrap())
        .collect();
    assert_eq!(ana.client.pending_count().await.unwrap(), 3);
    assert!(h.stored().await.is_empty());
    proxy.refuse(false);
    ana.client.set_network(true).unwrap();
    for id in &ids {
        ana.delivery(id, "sent").await;
    }
    let stored = h.stored().await;
    assert_eq!(
        stored.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        ids,
        "each once, in order"
    );
    assert_eq!(ana.client.pending_count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_retry_after_the_server_comes_back() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    ana.status("connected", |s| *s == ConnectionStatus::Connected)
        .await;
    proxy.refuse(true);
    proxy.drop_all();
    ana.status("reconnecting", |s| {
        matches!(s, ConnectionStatus::Reconnecting { .. })
    })
    .await;
    let ids: Vec<String> = (0..5)
        .map(|i| {
            ana.client
                .send("b1", &format!("during the outage {i}"))
                .unwrap()
        })
        .collect();
    // Several attempts fail while refused; no app action is needed when it heals.
    ana.status("a failed attempt", |s| {
        matches!(s, ConnectionStatus::Reconnecting { .. })
    })
    .await;
    proxy.refuse(false);
    for id in &ids {
        ana.delivery(id, "sent").await;
    }
    assert_eq!(
        h.stored()
            .await
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>(),
        ids
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_retry_of_a_failed_message_keeps_its_id() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    ana.status("connected", |s| *s == ConnectionStatus::Connected)
        .await;
    proxy.refuse(true);
    proxy.drop_all();
    let id = ana
        .client
        .send_with_deadline(
            "b1",
            "urgent",
            Some(Instant::now() + Duration::from_millis(300)),
        )
        .unwrap();
    let failed = ana
        .wait("the deadline failure", |e| match e {
            Event::DeliveryStatus {
                id: i,
                status: DeliveryStatus::Failed { code, .. },
                ..
            } if *i == id => Some(code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(failed, "deadline_exceeded");
    // A message the server refuses for good fails with the server's code and does not block.
    let too_big = ana.client.send("b1", &"x".repeat(20_000)).unwrap();
    proxy.refuse(false);
    let code = ana
        .wait("the size refusal", |e| match e {
            Event::DeliveryStatus {
                id: i,
                status: DeliveryStatus::Failed { code, .. },
                ..
            } if *i == too_big => Some(code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(code, "message_too_large");
    assert!(h.stored().await.is_empty());
    assert_eq!(ana.client.retry_failed().await.unwrap(), 2);
    ana.delivery(&id, "sent").await;
    let stored = h.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id, "the retry used the same id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_status_transitions() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    ana.status("connected", |s| *s == ConnectionStatus::Connected)
        .await;
    proxy.drop_all();
    ana.status("reconnecting", |s| {
        matches!(s, ConnectionStatus::Reconnecting { .. })
    })
    .await;
    ana.status("connected again", |s| *s == ConnectionStatus::Connected)
        .await;
    ana.client.set_network(false).unwrap();
    ana.status("offline", |s| *s == ConnectionStatus::Offline)
        .await;
    ana.client.set_network(true).unwrap();
    ana.status("connected after offline", |s| {
        *s == ConnectionStatus::Connected
    })
    .await;
    ana.client.disconnect().await.unwrap();
    ana.status("disconnected", |s| *s == ConnectionStatus::Disconnected)
        .await;
    let names: Vec<&str> = ana
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::ConnectionStatus(s) => Some(s.name()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "connecting",
            "connected",
            "reconnecting",
            "connecting",
            "connected",
            "offline",
            "connecting",
            "connected",
            "disconnected"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_messages_from_both_sides() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    let mut olga = h.client("olga", Role::Operator, &proxy, None);
    let mut sent = (Vec::new(), Vec::new());
    for i in 0..100 {
        sent.0
            .push(ana.client.send("b1", &format!("ana {i}")).unwrap());
        sent.1
            .push(olga.client.send("b1", &format!("olga {i}")).unwrap());
    }
    let a = ana.holds(200).await;
    let o = olga.holds(200).await;
    assert_gap_free_once(&a, 200);
    assert_eq!(
        a.iter().map(|m| &m.id).collect::<Vec<_>>(),
        o.iter().map(|m| &m.id).collect::<Vec<_>>(),
        "one order for both"
    );
    let ana_order: Vec<String> = a
        .iter()
        .filter(|m| m.sender == "ana")
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(ana_order, sent.0, "FIFO for ana");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_half_open_outage_is_detected_and_resumed() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    let direct = h.proxy().await;
    let mut olga = h.client("olga", Role::Operator, &direct, None);
    ana.status("connected", |s| *s == ConnectionStatus::Connected)
        .await;
    // Half-open: nothing flows, nothing closes. The heartbeat (300 + 300 ms here) notices.
    proxy.stall(true);
    ana.status("reconnecting after silence", |s| {
        matches!(s, ConnectionStatus::Reconnecting { .. })
    })
    .await;
    let ids: Vec<String> = (0..50)
        .map(|i| olga.client.send("b1", &format!("missed {i}")).unwrap())
        .collect();
    for id in &ids {
        olga.delivery(id, "sent").await;
    }
    proxy.stall(false);
    let held = ana.holds(50).await;
    assert_gap_free_once(&held, 50);
    assert_eq!(held.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_messages_sync_after_reconnection() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let mut ana = h.client("ana", Role::Client, &proxy, None);
    let direct = h.proxy().await;
    let mut olga = h.client("olga", Role::Operator, &direct, None);
    let first = olga.client.send("b1", "before").unwrap();
    ana.holds(1).await;
    olga.delivery(&first, "delivered").await;
    proxy.refuse(true);
    proxy.drop_all();
    let ids: Vec<String> = (0..30)
        .map(|i| olga.client.send("b1", &format!("while away {i}")).unwrap())
        .collect();
    olga.delivery(ids.last().unwrap(), "sent").await;
    proxy.refuse(false);
    let synced = ana.wait("synced", |e| match e {
        Event::Synced { seq, .. } if *seq == 31 => Some(*seq),
        _ => None,
    });
    synced.await;
    let held = ana.holds(31).await;
    assert_gap_free_once(&held, 31);
    // Delivered receipts for the backlog reach the sender.
    olga.delivery(ids.last().unwrap(), "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_resends_its_outbox_once_in_order() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    proxy.refuse(true);
    let ids: Vec<String> = {
        let ana = h.client("ana", Role::Client, &proxy, Some("ana.db"));
        let ids = (0..5)
            .map(|i| ana.client.send("b1", &format!("kept {i}")).unwrap())
            .collect();
        ana.client.stop().await;
        ids
    };
    proxy.refuse(false);
    let mut ana = h.client("ana", Role::Client, &proxy, Some("ana.db"));
    assert_eq!(ana.client.pending_count().await.unwrap(), 5);
    for id in &ids {
        ana.delivery(id, "sent").await;
    }
    let held = ana.holds(5).await;
    assert_eq!(held.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    ana.client.stop().await;
    // Once more: the history comes from the local file, nothing is shown twice.
    let again = h.client("ana", Role::Client, &proxy, Some("ana.db"));
    let shown = again.client.messages("b1").await.unwrap();
    assert_eq!(shown.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(again.client.pending_count().await.unwrap(), 0);
}

/// Fast reconnects, for the token tests.
fn quick(url: &str, token: String) -> ClientOptions {
    let mut options = ClientOptions::new(url, token);
    options.config = Config {
        backoff_first_ms: 50,
        backoff_base_ms: 100,
        backoff_cap_ms: 500,
        ..Config::default()
    };
    options
}

/// A token that expires while the client is connected, with no way to get another: the client
/// waits `Expired` (it does not loop reconnecting), tells the app `AuthExpired`, keeps what is
/// typed meanwhile, and sends it once after `set_token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_waits_for_the_user_and_loses_nothing() {
    let harness = Harness::start().await;
    let proxy = harness.proxy().await;
    let url = format!("ws://{}/v1/ws", proxy.local_addr());
    let short = harness
        .state
        .auth
        .mint("ana", Role::Client, server::now_s(), 2);
    let (client, events) = Client::start(quick(&url, short)).unwrap();
    let mut ana = Device {
        client,
        events,
        seen: Vec::new(),
    };
    ana.status("connected", |s| *s == ConnectionStatus::Connected)
        .await;
    ana.wait("auth_expired", |e| (*e == Event::AuthExpired).then_some(()))
        .await;
    ana.status("expired", |s| *s == ConnectionStatus::Expired)
        .await;
    let id = ana.client.send("b1", "typed after the expiry").unwrap();
    assert_eq!(ana.client.pending_count().await.unwrap(), 1);
    let connects = proxy.stats().accepted;
    ana.client
        .set_token(&harness.token("ana", Role::Client))
        .unwrap();
    ana.delivery(&id, "sent").await;
    let stored = harness.stored().await;
    assert_eq!(
        stored.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    // One new connection for the new token; none while it waited.
    assert_eq!(proxy.stats().accepted, connects + 1);
    ana.client.stop().await;
}

/// A short-lived token with a provider: refreshed ahead of its expiry, so the server's close at
/// the old token's expiry is only a reconnect — never `Expired` — and messages keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_provider_keeps_the_client_signed_in() {
    let harness = Harness::start().await;
    let proxy = harness.proxy().await;
    let url = format!("ws://{}/v1/ws", proxy.local_addr());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mint = |state: &Arc<AppState>| state.auth.mint("olga", Role::Operator, server::now_s(), 3);
    let mut options = quick(&url, mint(&harness.state));
    let (state, counter) = (harness.state.clone(), calls.clone());
    options.token_provider = Some(client::TokenProvider::new(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let token = mint(&state);
        async move { Ok(token) }
    }));
    let (client, events) = Client::start(options).unwrap();
    let mut olga = Device {
        client,
        events,
        seen: Vec::new(),
    };
    olga.status("connected", |s| *s == ConnectionStatus::Connected)
        .await;
    // Past the first token's expiry: closed by the server, connected again with a fresh token.
    olga.status("reconnecting", |s| {
        matches!(s, ConnectionStatus::Reconnecting { .. })
    })
    .await;
    olga.status("connected again", |s| *s == ConnectionStatus::Connected)
        .await;
    let id = olga.client.send("b1", "still here").unwrap();
    olga.delivery(&id, "sent").await;
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(
        !olga.seen.iter().any(|e| matches!(
            e,
            Event::AuthExpired | Event::ConnectionStatus(ConnectionStatus::Expired)
        )),
        "{:?}",
        olga.seen
    );
    olga.client.stop().await;
}
