//! Benchmarks of the batch message codec: a worker decodes every batch it takes and the
//! coordinator encodes (and stages) every batch it publishes, one 200-user Graph page each.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dirsync_proto::{BatchMessage, RunId, TenantId, WIRE_VERSION};
use std::hint::black_box;

#[path = "support/users.rs"]
mod users;

fn batch() -> BatchMessage {
    BatchMessage {
        version: WIRE_VERSION,
        tenant_id: TenantId::new(),
        run_id: RunId::new(),
        seq: 42,
        users: users::source_users(users::PAGE_USERS),
        groups: Vec::new(),
        dry_run: false,
    }
}

fn codec(c: &mut Criterion) {
    let msg = batch();
    let bytes = msg.encode();
    let mut group = c.benchmark_group("batch_message_200_users");
    group.throughput(Throughput::Elements(users::PAGE_USERS as u64));
    group.bench_function("encode", |b| b.iter(|| black_box(&msg).encode()));
    group.bench_function("decode", |b| {
        b.iter(|| BatchMessage::decode(black_box(&bytes)).unwrap())
    });
    group.finish();
    println!(
        "batch message of {} users: {} bytes",
        users::PAGE_USERS,
        bytes.len()
    );
}

criterion_group!(benches, codec);
criterion_main!(benches);
