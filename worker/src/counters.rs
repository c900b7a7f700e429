//! Live run counters in Redis, each batch added exactly once.
//!
//! A Lua script adds the batch's seq to the run's "counted" set and increments the counts
//! hash only when the seq was not there yet, atomically. A batch is therefore added once
//! however many times it is redelivered, and a crash between the PostgreSQL commit and
//! this step is healed by the redelivery.

use std::time::Duration;

use dirsync_proto::{Counts, RunId, Topology};
use redis::Script;
use redis::aio::ConnectionLike;

use crate::error::WorkerError;

/// How long a run's counters outlive their last update.
pub const COUNTS_TTL: Duration = dirsync_proto::RUN_COUNTS_TTL;

/// The add-once script, loaded lazily by the first invocation (EVALSHA, then EVAL).
#[derive(Debug, Clone)]
pub struct RunCounters {
    script: Script,
    topology: Topology,
    ttl: Duration,
}

impl RunCounters {
    pub fn new(topology: Topology, ttl: Duration) -> Self {
        RunCounters {
            script: Script::new(dirsync_proto::RUN_COUNTS_ADD_ONCE),
            topology,
            ttl,
        }
    }

    /// Adds `counts` to the run's hash unless batch `seq` was already added. Returns whether
    /// it was added by this call.
    pub async fn add_once<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        run: RunId,
        seq: u32,
        counts: Counts,
    ) -> Result<bool, WorkerError> {
        let added: i64 = self
            .script
            .key(self.topology.run_counts_key(run))
            .key(self.topology.run_counted_key(run))
            .arg(seq)
            .arg(counts.synced)
            .arg(counts.skipped)
            .arg(counts.failed)
            .arg(self.ttl.as_secs().max(1))
            .invoke_async(conn)
            .await?;
        Ok(added == 1)
    }
}
