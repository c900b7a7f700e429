//! Names of the broker and Redis resources one deployment (or one test) uses.
//!
//! Everything is derived from a prefix so that tests can run side by side on the same
//! RabbitMQ and Redis without seeing each other's messages or counters.

use crate::RunId;

/// Resource names of one dirsync deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
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
}
