//! The run's live counters in Redis, for the batches dead letters stand for: added once
//! under the run's set of counted sequence numbers, exactly as a worker adds a batch it
//! recorded (the same script), and taken out again by a re-drive, so the batch the worker
//! then records is counted once, with its real outcome.

use dirsync_proto::{RUN_COUNTS_ADD_ONCE, RUN_COUNTS_TTL, RunId, Topology};
use redis::Script;
use redis::aio::ConnectionManager;

/// Takes a batch counted with `failed` failures out again, if it was counted.
const REMOVE_FAILED: &str = r"
local removed = redis.call('SREM', KEYS[2], ARGV[1])
if removed == 1 then
  redis.call('HINCRBY', KEYS[1], 'failed', -tonumber(ARGV[2]))
end
return removed
";

/// Adds the failed batch `seq` of `run` (`failed` users) unless it is counted already.
pub async fn add_failed(
    conn: &mut ConnectionManager,
    topology: &Topology,
    (run, seq, failed): (RunId, u32, u64),
) -> redis::RedisResult<bool> {
    let added: i64 = Script::new(RUN_COUNTS_ADD_ONCE)
        .key(topology.run_counts_key(run))
        .key(topology.run_counted_key(run))
        .arg(seq)
        .arg(0)
        .arg(0)
        .arg(failed)
        .arg(RUN_COUNTS_TTL.as_secs())
        .invoke_async(conn)
        .await?;
    Ok(added == 1)
}

/// Takes the failed batch `seq` of `run` out of the counts, if it was counted.
pub async fn remove_failed(
    conn: &mut ConnectionManager,
    topology: &Topology,
    (run, seq, failed): (RunId, u32, u64),
) -> redis::RedisResult<bool> {
    let removed: i64 = Script::new(REMOVE_FAILED)
        .key(topology.run_counts_key(run))
        .key(topology.run_counted_key(run))
        .arg(seq)
        .arg(failed)
        .invoke_async(conn)
        .await?;
    Ok(removed == 1)
}
