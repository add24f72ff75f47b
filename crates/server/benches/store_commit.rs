//! The SQLite writer's group commit: a burst of appends submitted at once is stored in as few
//! fsync'd transactions as the writer can make of it. Reported per message.
//!
//! Run with: `cargo bench -p surechat-server --bench store_commit`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protocol::api::ParticipantSpec;
use protocol::frames::MessageKind;
use protocol::Role;
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::store::{AppendRequest, Store};

fn commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).expect("open"));
    let participants = vec![
        ParticipantSpec {
            user_id: "ana".into(),
            role: Role::Client,
            email: None,
        },
        ParticipantSpec {
            user_id: "olga".into(),
            role: Role::Operator,
            email: None,
        },
    ];
    runtime
        .block_on(store.create_conversation("c1".into(), participants, 8, 0))
        .expect("created");
    let mut group = c.benchmark_group("store_commit");
    group.sample_size(20);
    for burst in [1usize, 64, 512] {
        group.throughput(Throughput::Elements(burst as u64));
        group.bench_function(BenchmarkId::new("append_burst", burst), |b| {
            b.iter(|| {
                let pending: Vec<_> = (0..burst)
                    .map(|_| {
                        store.append(AppendRequest {
                            role: Role::Operator,
                            conversation: "c1".into(),
                            id: uuid::Uuid::new_v4().to_string(),
                            sender: "ana".into(),
                            body: "Check-in is from 3 pm.".into(),
                            ts: 1_767_139_330_500,
                            kind: MessageKind::Text,
                            after: None,
                            attachments: Vec::new(),
                        })
                    })
                    .collect();
                runtime.block_on(async {
                    for p in pending {
                        p.await.expect("stored");
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
