//! The Redis count step: each batch added exactly once, with a TTL.

use std::collections::HashMap;
use std::time::Duration;

use dirsync_proto::{Counts, RunId};
use dirsync_worker::counters::RunCounters;

use crate::common::{delete_run_keys, redis, unique_topology};

#[tokio::test]
async fn each_batch_is_added_exactly_once() {
    let topology = unique_topology();
    let counters = RunCounters::new(topology.clone(), Duration::from_secs(3600));
    let mut conn = redis().await;
    let run = RunId::new();

    let a = Counts {
        synced: 3,
        skipped: 2,
        failed: 1,
    };
    let b = Counts {
        synced: 10,
        skipped: 0,
        failed: 0,
    };
    assert!(counters.add_once(&mut conn, run, 0, a).await.unwrap());
    assert!(
        !counters.add_once(&mut conn, run, 0, a).await.unwrap(),
        "redelivery adds nothing"
    );
    assert!(counters.add_once(&mut conn, run, 1, b).await.unwrap());
    assert!(!counters.add_once(&mut conn, run, 1, b).await.unwrap());

    let hash: HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(topology.run_counts_key(run))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(hash.get("synced"), Some(&13));
    assert_eq!(hash.get("skipped"), Some(&2));
    assert_eq!(hash.get("failed"), Some(&1));

    for key in [topology.run_counts_key(run), topology.run_counted_key(run)] {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 3000 && ttl <= 3600, "{key} ttl {ttl}");
    }
    // Another run's counters are separate.
    let other = RunId::new();
    assert!(counters.add_once(&mut conn, other, 0, a).await.unwrap());
    delete_run_keys(&mut conn, &topology, run).await;
    delete_run_keys(&mut conn, &topology, other).await;
}
