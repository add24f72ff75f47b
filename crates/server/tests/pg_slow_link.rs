//! PostgreSQL behind a slow link: the writer bounds how long the database may stay silent, not
//! how long a batch may take. A backlog (the sends queued during an outage, say) makes a batch
//! whose statements, each answered, add up to more than `WRITE_TIMEOUT`; cutting it off would
//! roll it back only for the devices to resend it, as large, into the same bound, and the node
//! would never catch up. The writer commits a backlog in parts instead, and keeps counting as
//! answering while it works.

mod common;

use std::time::Duration;

use common::Schema;
use faultproxy::FaultProxy;
use protocol::api::ParticipantSpec;
use protocol::Role;
use server::store::postgres::{PgOptions, PgStore, WRITE_TIMEOUT};
use server::store::{AppendRequest, MessageStore, WorkflowStore};

/// Added to every chunk, each way: a round trip takes at least twice this.
const LATENCY: Duration = Duration::from_millis(4);

/// Appends queued at once. Each takes several round trips in the writer's transaction, so the
/// batch they make takes well over `WRITE_TIMEOUT` on this link (checked below).
const BACKLOG: usize = 80;

/// How long `/readyz` waits for storage.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// The schema's URL with its host and port replaced by `proxy`'s.
fn through(url: &str, proxy: &FaultProxy) -> String {
    let authority = authority(url);
    url.replacen(&authority, &proxy.local_addr().to_string(), 1)
}

/// The `host:port` of a `postgres://user@host:port/…` URL.
fn authority(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("a TCP database is needed here, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let authority = format!("{host}:{port}");
    assert!(
        url.contains(&format!("@{authority}/")),
        "{url} names {authority}"
    );
    authority
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_longer_than_the_write_bound_is_stored() {
    let schema = Schema::new().await;
    let upstream = tokio::net::lookup_host(authority(&schema.url))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), upstream)
        .await
        .unwrap();
    let url = through(&schema.url, &proxy);
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let spec = |user: &str, role| ParticipantSpec {
        user_id: user.into(),
        role,
        email: None,
    };
    store
        .create_conversation(
            "b1".into(),
            vec![spec("ana", Role::Client), spec("olga", Role::Operator)],
            8,
            1,
        )
        .await
        .unwrap();

    proxy.set_latency(LATENCY, Duration::ZERO);
    let started = tokio::time::Instant::now();
    // Queued before any is awaited: a backlog, as after an outage.
    let appends: Vec<_> = (0..BACKLOG)
        .map(|i| {
            store.append(AppendRequest {
                role: Role::Client,
                conversation: "b1".into(),
                id: uuid::Uuid::now_v7().to_string(),
                sender: "ana".into(),
                body: format!("message {i}"),
                ts: 1_000,
                after: None,
                kind: Default::default(),
                attachments: Vec::new(),
            })
        })
        .collect();
    // While the writer works through the backlog, storage counts as answering (`/readyz`): a
    // ping queued behind it would wait for all of it.
    tokio::time::timeout(READY_WITHIN, store.health())
        .await
        .expect("health answers while the writer works through a backlog")
        .expect("storage answers");
    let mut seqs = Vec::new();
    let mut first_ack = None;
    for append in appends {
        let appended = append.await.expect("stored although the batch is slow");
        first_ack.get_or_insert_with(|| started.elapsed());
        seqs.push(appended.message.seq);
    }
    let took = started.elapsed();
    assert_eq!(seqs, (1..=BACKLOG as u64).collect::<Vec<_>>());
    // The point of the test: the backlog outlasted the bound and still committed.
    assert!(
        took > WRITE_TIMEOUT,
        "the backlog took {took:?}, within the bound {WRITE_TIMEOUT:?}: make the link slower"
    );
    // And it committed in parts: the first acks came long before the last.
    let first_ack = first_ack.unwrap();
    assert!(
        first_ack < took / 2,
        "the first ack came after {first_ack:?} of {took:?}: the backlog was one batch"
    );
    proxy.shutdown().await;
}
