//! Names of the broker and Redis resources one deployment (or one test) uses.
//!
//! Everything is derived from a prefix so that tests can run side by side on the same
//! RabbitMQ and Redis without seeing each other's messages or counters.

use crate::RunId;

/// How many times a batch may be delivered and handed back (requeued, or lost with its
/// channel) before the broker dead-letters it, by default.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 10;

/// Resource names of one dirsync deployment, and the one setting of its queues that both
/// sides must declare alike (the delivery limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    delivery_limit: u32,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            delivery_limit: DEFAULT_DELIVERY_LIMIT,
        }
    }

    /// The same names with another delivery limit (at least 1). Coordinators and workers of
    /// one deployment must agree on it: RabbitMQ refuses to redeclare a queue with other
    /// arguments.
    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// `x-delivery-limit` of the batch queue and the priority lane: past it, a message is
    /// dead-lettered to [`Self::dead_letter_queue`] instead of requeued.
    pub fn delivery_limit(&self) -> u32 {
        self.delivery_limit
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Durable quorum queue holding batches for the workers.
    pub fn batch_queue(&self) -> String {
        format!("{}.batches", self.prefix)
    }

    /// Durable quorum queue of the priority lane: one-user batches an operator waits for
    /// ("provision on demand"). Workers consume it on a channel of its own, so its batches
    /// never queue behind the batch queue's.
    pub fn priority_queue(&self) -> String {
        format!("{}.batches.priority", self.prefix)
    }

    /// Direct exchange the batch queue and the priority lane dead-letter to (a message
    /// rejected as undecodable or hopeless, or delivered past the delivery limit).
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    /// Durable quorum queue holding dead-lettered batches of both lanes, bound to
    /// [`Self::dead_letter_exchange`] by its own name as routing key; the coordinators
    /// consume it. The original queue of each message is in its `x-death` header.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.batches.dead", self.prefix)
    }

    /// Topic exchange carrying [`crate::BatchResultEvent`]s, routed by run id.
    pub fn results_exchange(&self) -> String {
        format!("{}.results", self.prefix)
    }

    /// Routing key of a run's result events.
    pub fn result_routing_key(run: RunId) -> String {
        format!("run.{run}")
    }

    /// Redis hash with the live synced/skipped/failed counts of a run. The run id is a
    /// hash tag so that a run's keys share a Redis Cluster slot.
    pub fn run_counts_key(&self, run: RunId) -> String {
        format!("{}:{{{run}}}:counts", self.prefix)
    }

    /// Redis set of the batch sequence numbers already added to the run's counts.
    pub fn run_counted_key(&self, run: RunId) -> String {
        format!("{}:{{{run}}}:counted", self.prefix)
    }
}

/// How long a run's counters outlive their last update.
pub const RUN_COUNTS_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// The Lua script that adds a batch's counts to its run's counters once
/// (`KEYS`: [`Topology::run_counts_key`], [`Topology::run_counted_key`]; `ARGV`: seq,
/// synced, skipped, failed, TTL in seconds; returns 1 when added). The workers and the
/// dead-letter consumer both count batches with it, so neither can count one twice.
pub const RUN_COUNTS_ADD_ONCE: &str = r"
local added = redis.call('SADD', KEYS[2], ARGV[1])
if added == 1 then
  redis.call('HINCRBY', KEYS[1], 'synced', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'skipped', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'failed', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return added
";

/// The value of one queue argument, as pure data: each side's broker module turns it into
/// its AMQP field table, so the coordinator and the workers declare the very same queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueArgument {
    Text(String),
    Number(i64),
}

impl Topology {
    /// Arguments of the batch queue and the priority lane: quorum queues that count
    /// deliveries and, past [`Self::delivery_limit`] or on a reject, dead-letter the message
    /// to [`Self::dead_letter_exchange`]. `at-least-once` dead-lettering keeps the message in
    /// its queue until the dead-letter queue has confirmed it (a broker restart in between
    /// loses nothing); RabbitMQ requires `reject-publish` overflow for it (no length limit
    /// is set, so nothing is ever refused for it).
    pub fn batch_queue_arguments(&self) -> Vec<(&'static str, QueueArgument)> {
        vec![
            ("x-queue-type", QueueArgument::Text("quorum".into())),
            (
                "x-delivery-limit",
                QueueArgument::Number(i64::from(self.delivery_limit)),
            ),
            (
                "x-dead-letter-exchange",
                QueueArgument::Text(self.dead_letter_exchange()),
            ),
            (
                "x-dead-letter-routing-key",
                QueueArgument::Text(self.dead_letter_queue()),
            ),
            (
                "x-dead-letter-strategy",
                QueueArgument::Text("at-least-once".into()),
            ),
            ("x-overflow", QueueArgument::Text("reject-publish".into())),
        ]
    }

    /// Arguments of the dead-letter queue: a plain durable quorum queue (nothing is
    /// dead-lettered from it; its consumer requeues what it cannot store yet).
    pub fn dead_letter_queue_arguments(&self) -> Vec<(&'static str, QueueArgument)> {
        vec![("x-queue-type", QueueArgument::Text("quorum".into()))]
    }
}

/// Headers the coordinator stamps on every batch it publishes, so that even a body nobody
/// can decode is attributed to its tenant, run and sequence number once dead-lettered.
pub mod headers {
    /// The tenant id (text).
    pub const TENANT: &str = "x-dirsync-tenant";
    /// The run id (text; a dry run's id for a dry run's batch).
    pub const RUN: &str = "x-dirsync-run";
    /// The batch's sequence number in its run (long-long).
    pub const SEQ: &str = "x-dirsync-seq";
}

impl Default for Topology {
    fn default() -> Self {
        Self::new("dirsync")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_keys_share_a_hash_tag() {
        let t = Topology::new("t1");
        let run = RunId::new();
        let tag = |k: String| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_string();
        assert_eq!(tag(t.run_counts_key(run)), tag(t.run_counted_key(run)));
        assert_eq!(t.batch_queue(), "t1.batches");
        assert_eq!(t.priority_queue(), "t1.batches.priority");
    }

    #[test]
    fn dead_letter_names_are_the_prefix_s_own() {
        let t = Topology::new("t1");
        assert_eq!(t.dead_letter_exchange(), "t1.dead-letters");
        assert_eq!(t.dead_letter_queue(), "t1.batches.dead");
        assert_ne!(
            t.dead_letter_queue(),
            Topology::new("t2").dead_letter_queue()
        );
        assert_eq!(t.delivery_limit(), DEFAULT_DELIVERY_LIMIT);
        assert_eq!(t.clone().with_delivery_limit(3).delivery_limit(), 3);
        assert_eq!(t.with_delivery_limit(0).delivery_limit(), 1);
    }

    #[test]
    fn batch_queues_dead_letter_to_the_dead_letter_queue() {
        let t = Topology::new("t1").with_delivery_limit(4);
        let args = t.batch_queue_arguments();
        let get = |k: &str| args.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("x-delivery-limit"), Some(QueueArgument::Number(4)));
        assert_eq!(
            get("x-dead-letter-exchange"),
            Some(QueueArgument::Text("t1.dead-letters".into()))
        );
        assert_eq!(
            get("x-dead-letter-routing-key"),
            Some(QueueArgument::Text("t1.batches.dead".into()))
        );
        // at-least-once dead-lettering is only allowed with reject-publish overflow
        assert_eq!(
            get("x-dead-letter-strategy"),
            Some(QueueArgument::Text("at-least-once".into()))
        );
        assert_eq!(
            get("x-overflow"),
            Some(QueueArgument::Text("reject-publish".into()))
        );
    }
}
