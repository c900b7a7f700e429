//! Benchmark of Graph page parsing: every `users/delta` page a run walks (up to 200 users)
//! goes through `parse_page` before it becomes a batch.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dirsync_coordinator::graph::wire::parse_page;
use std::hint::black_box;

#[path = "../../proto/benches/support/users.rs"]
mod users;

fn graph_page(c: &mut Criterion) {
    let body = users::graph_page(users::PAGE_USERS);
    let page = parse_page(&body).unwrap();
    assert_eq!(page.users.len(), users::PAGE_USERS);
    assert_eq!(page.users, users::source_users(users::PAGE_USERS));
    let mut group = c.benchmark_group("graph_page_200_users");
    group.throughput(Throughput::Elements(users::PAGE_USERS as u64));
    group.bench_function("parse_page", |b| {
        b.iter(|| parse_page(black_box(&body)).unwrap())
    });
    group.finish();
    println!(
        "users/delta page of {} users: {} bytes",
        users::PAGE_USERS,
        body.len()
    );
}

criterion_group!(benches, graph_page);
criterion_main!(benches);
