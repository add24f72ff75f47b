//! Frame decode and encode, the per-frame cost every connection pays.
//!
//! Run with: `cargo bench -p surechat-protocol --bench frames`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protocol::frames::{decode_server_frame, ServerFrame};
use std::hint::black_box;

const SEND: &str = r#"{"type":"send","id":"0190f3c2-7a3b-7c4d-8e5f-1a2b3c4d5e70","conversation":"booking-1001","body":"Merci ! He is very calm and will sleep on the sofa, if that is fine."}"#;
const MESSAGE: &str = r#"{"type":"message","conversation":"booking-1001","id":"0190f3c2-7a3b-7c4d-8e5f-1a2b3c4d5e70","seq":5,"sender":"ana","role":"client","body":"Merci ! He is very calm and will sleep on the sofa, if that is fine.","ts":1767139330500}"#;
const RECEIPT: &str = r#"{"type":"receipt","conversation":"booking-1001","delivered":6,"read":6}"#;

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frames");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_client_send", |b| {
        b.iter(|| protocol::decode_client_frame(black_box(SEND)).expect("valid"))
    });
    group.bench_function("decode_client_receipt", |b| {
        b.iter(|| protocol::decode_client_frame(black_box(RECEIPT)).expect("valid"))
    });
    group.bench_function("decode_server_message", |b| {
        b.iter(|| decode_server_frame(black_box(MESSAGE)).expect("valid"))
    });
    let message: ServerFrame = decode_server_frame(MESSAGE).expect("valid");
    group.bench_function("encode_server_message", |b| {
        b.iter(|| black_box(&message).encode())
    });
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
