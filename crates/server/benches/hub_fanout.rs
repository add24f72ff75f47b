//! The hub's fan-out of one committed message to every connection of its conversation: one
//! encode, one `try_send` per subscriber, under the hub's lock.
//!
//! Run with: `cargo bench -p surechat-server --bench hub_fanout`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protocol::frames::{decode_server_frame, ServerFrame};
use server::hub::Hub;
use server::store::{CommitListener, Committed};

const MESSAGE: &str = r#"{"type":"message","conversation":"c1","id":"0190f3c2-7a3b-7c4d-8e5f-1a2b3c4d5e70","seq":5,"sender":"ana","role":"client","body":"Check-in is from 3 pm; the keys are at the desk.","ts":1767139330500}"#;

fn fanout(c: &mut Criterion) {
    let ServerFrame::Message(message) = decode_server_frame(MESSAGE).expect("valid") else {
        unreachable!("a message frame")
    };
    let message = Arc::new(message);
    let mut group = c.benchmark_group("hub_fanout");
    for subscribers in [2usize, 8, 32] {
        let hub = Hub::new();
        let mut registrations: Vec<_> = (0..subscribers)
            .map(|i| {
                let registration = hub.register(&format!("user-{i}"), 1024, 100).expect("room");
                registration.subscribe("c1");
                registration
            })
            .collect();
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter(|| {
                hub.committed(Committed::Message(black_box(message.clone())));
                // Drain, as the connections do, so queues never fill.
                for registration in &mut registrations {
                    while registration.events.try_recv().is_ok() {}
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
