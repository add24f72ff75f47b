//! Attachments through the Rust SDK against the real server, through the fault proxy: uploads
//! cut by the network and a client dropped mid-upload still end with the message stored once,
//! in order between the texts around it, and a download byte-identical to what was sent. Every
//! wait is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use client::{
    Client, ClientOptions, Config, ConnectionStatus, DeliveryStatus, Event, OutgoingFile,
};
use faultproxy::FaultProxy;
use protocol::Role;
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::{AppState, Config as ServerConfig};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Bytes per upload request in these tests: small, so a file takes many requests to cut.
const CHUNK: usize = 32 * 1024;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A PDF (as the server tells types by content) of `len` bytes, the same for the same seed.
fn pdf(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut state = seed | 1;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A server (SQLite) with one booking, `b1`: ana (client) and olga (operator).
struct Harness {
    state: Arc<AppState>,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            admin_key: Some("attachment-test-admin-key-0123".into()),
            jwt_secret: Some("attachment-test-jwt-secret-0123456789abcdef".into()),
            heartbeat_interval_ms: 500,
            heartbeat_grace_ms: 500,
            operators_auto_register: true,
            ..ServerConfig::default()
        };
        let store =
            SqliteStore::open(&dir.path().join("server"), SqliteOptions::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = AppState::new(config, Arc::new(store), CancellationToken::new());
        tokio::spawn(server::run(listener, state.clone()));
        let participants = [("ana", Role::Client), ("olga", Role::Operator)]
            .into_iter()
            .map(|(user, role)| protocol::api::ParticipantSpec {
                user_id: user.into(),
                role,
                email: None,
            })
            .collect();
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

    /// A client of `user` reaching the server at `address`, with a fast backoff and small upload
    /// chunks; `store` is its local file.
    fn client(&self, user: &str, role: Role, address: SocketAddr, store: Option<&Path>) -> Device {
        let token = self.state.auth.mint(user, role, server::now_s(), 3600);
        let mut options = ClientOptions::new(format!("ws://{address}/v1/ws"), token);
        options.config = Config {
            backoff_first_ms: 50,
            backoff_base_ms: 100,
            backoff_cap_ms: 500,
            connect_timeout_ms: 2_000,
            ..Config::default()
        };
        options.upload_chunk_bytes = CHUNK;
        options.http_idle_timeout_ms = 5_000;
        options.store = store.map(Path::to_owned);
        let (client, events) = Client::start(options).unwrap();
        Device { client, events }
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
}

impl Device {
    /// Waits for an event matching `pick`; panics after [`WAIT`] with the client's state.
    async fn wait<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let Ok(event) = tokio::time::timeout_at(deadline, self.events.recv()).await else {
                let state = self.client.describe().await.unwrap_or_default();
                panic!("timed out waiting for {what}; the client: {state}");
            };
            let event = event.expect("the client is running");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    async fn connected(&mut self) {
        self.wait("connected", |e| {
            matches!(e, Event::ConnectionStatus(ConnectionStatus::Connected)).then_some(())
        })
        .await
    }

    /// Waits until every id in `ids` is `sent`, in whatever order the acks come.
    async fn all_sent(&mut self, ids: &[&str]) {
        let mut left: Vec<&str> = ids.to_vec();
        while !left.is_empty() {
            let id = self
                .wait("sent", |e| match e {
                    Event::DeliveryStatus {
                        id,
                        status: DeliveryStatus::Sent { .. },
                        ..
                    } => Some(id.clone()),
                    Event::DeliveryStatus {
                        id,
                        status: DeliveryStatus::Failed { code, .. },
                        ..
                    } => panic!("{id} failed: {code}"),
                    _ => None,
                })
                .await;
            left.retain(|l| *l != id);
        }
    }

    /// Waits for upload progress of message `id` beyond `offset` (and short of its end).
    async fn uploaded_beyond(&mut self, id: &str, offset: u64) -> u64 {
        self.wait("upload progress", |e| match e {
            Event::UploadProgress {
                id: of,
                offset: at,
                length,
                ..
            } if of == id && *at > offset && at < length => Some(*at),
            _ => None,
        })
        .await
    }
}

/// The stored messages are exactly `ids`, in this order; the one with a file carries its hash.
async fn assert_stored(h: &Harness, ids: &[&str], with_file: &str, file: &[u8]) -> String {
    let stored = h.stored().await;
    assert_eq!(
        stored.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ids,
        "each message once, in the order of the calls"
    );
    let message = stored.iter().find(|m| m.id == with_file).unwrap();
    assert_eq!(message.attachments.len(), 1);
    let attachment = &message.attachments[0];
    assert_eq!(
        (
            attachment.sha256.as_str(),
            attachment.size,
            attachment.content_type.as_str()
        ),
        (sha256(file).as_str(), file.len() as u64, "application/pdf")
    );
    attachment.id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_cut_by_the_network_deliver_the_message_once_in_order_and_byte_identical() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let store = h.dir.path().join("ana.db");
    let mut ana = h.client("ana", Role::Client, proxy.local_addr(), Some(&store));
    let mut olga = h.client("olga", Role::Operator, h.address, None);
    ana.connected().await;
    olga.connected().await;
    let file = pdf(7, 400_000);
    // Slow enough that a cut lands inside a request: a chunk takes about 0.3 s, and the next
    // request starts as soon as one is answered.
    proxy.set_bandwidth(Some(100_000));
    let before = ana.client.send("b1", "the invoice follows").unwrap();
    let with_file = ana
        .client
        .send_with_files(
            "b1",
            "",
            vec![OutgoingFile::new("invoice.pdf", file.clone())],
        )
        .unwrap();
    let after = ana.client.send("b1", "did it arrive?").unwrap();
    // Ids are time-ordered (UUIDv7): made one after the other, they sort in that order.
    for id in [&before, &with_file, &after] {
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    }
    assert!(before < with_file && with_file < after);
    ana.all_sent(&[&before]).await;
    let mut cut_at = 0;
    for _ in 0..3 {
        cut_at = ana.uploaded_beyond(&with_file, cut_at).await;
        proxy.drop_all();
    }
    let progress = ana
        .client
        .upload_progress(&with_file)
        .await
        .unwrap()
        .unwrap();
    assert!(
        progress.sent < progress.total,
        "cut before the end: {progress:?}"
    );
    assert_eq!(
        h.stored().await.len(),
        1,
        "only the text before it is stored yet"
    );
    proxy.heal();
    ana.all_sent(&[&with_file, &after]).await;
    let attachment = assert_stored(&h, &[&before, &with_file, &after], &with_file, &file).await;
    assert!(proxy.stats().dropped >= 3);

    // The other side gets the description with the message, and the same bytes.
    let received = olga
        .wait("the message with the file", |e| match e {
            Event::Message(m) if m.id == with_file => Some(m.clone()),
            _ => None,
        })
        .await;
    assert_eq!(received.attachments[0].name, "invoice.pdf");
    assert_eq!(olga.client.download(&attachment).await.unwrap(), file);
    assert_eq!(ana.client.download(&attachment).await.unwrap(), file);
    // The sender's local store no longer holds the bytes, and keeps the description.
    ana.client.stop().await;
    let local = client::store::LocalStore::open(&store).unwrap();
    assert_eq!(local.file_chunk(&attachment, 0, 10).unwrap(), None);
    let snapshot = local.load().unwrap();
    assert!(snapshot.outbox.is_empty());
    let mine = &snapshot.conversations[0].messages[1];
    assert_eq!(mine.attachments[0].sha256, sha256(&file));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dropped_mid_upload_finishes_it_from_its_store_and_sends_once() {
    let h = Harness::start().await;
    let proxy = h.proxy().await;
    let store = h.dir.path().join("ana.db");
    let file = pdf(11, 300_000);
    let (first, with_file, third);
    {
        let mut ana = h.client("ana", Role::Client, proxy.local_addr(), Some(&store));
        ana.connected().await;
        proxy.set_bandwidth(Some(100_000));
        first = ana.client.send("b1", "one").unwrap();
        with_file = ana
            .client
            .send_with_files(
                "b1",
                "two",
                vec![OutgoingFile::new("scan.pdf", file.clone())],
            )
            .unwrap();
        third = ana.client.send("b1", "three").unwrap();
        ana.all_sent(&[&first]).await;
        ana.uploaded_beyond(&with_file, 2 * CHUNK as u64).await;
        // The process goes away: no stop, no goodbye; its upload dies with it.
    }
    tokio::time::timeout(WAIT, proxy.wait_connections(0))
        .await
        .expect("the dropped client's connections close");
    let stored = h.stored().await;
    assert_eq!(
        stored.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [first.as_str()],
        "nothing after the file's message went ahead of it"
    );
    let uploads: Vec<String> = {
        let local = client::store::LocalStore::open(&store).unwrap();
        let outbox = local.load().unwrap().outbox;
        assert_eq!(outbox.len(), 2, "the file's message and the one behind it");
        outbox[0]
            .files
            .iter()
            .map(|f| f.upload_id.clone())
            .collect()
    };
    let upload = h
        .state
        .store
        .upload(uploads[0].clone())
        .await
        .unwrap()
        .unwrap();
    let server_offset = upload.offset;
    assert!(
        server_offset > 0 && server_offset < file.len() as u64,
        "{server_offset}"
    );

    // A new process over the same store finishes the upload from the server's offset.
    proxy.heal();
    let sent_before = proxy.stats().bytes_to_upstream;
    let mut ana = h.client("ana", Role::Client, proxy.local_addr(), Some(&store));
    ana.all_sent(&[&with_file, &third]).await;
    let attachment = assert_stored(&h, &[&first, &with_file, &third], &with_file, &file).await;
    assert_eq!(
        attachment, uploads[0],
        "the upload id chosen before the restart"
    );
    let resent = proxy.stats().bytes_to_upstream - sent_before;
    let left = file.len() as u64 - server_offset;
    assert!(
        resent < left + 16 * 1024,
        "resumed, not started over: {resent} bytes sent for {left} left"
    );
    assert_eq!(ana.client.download(&attachment).await.unwrap(), file);
}
