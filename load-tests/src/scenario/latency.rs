//! Latency from a Graph change to its SCIM write, per cycle: for every Webex user the cycle
//! wrote (its `meta.lastModified`, milliseconds, at or after the cycle's start), the time
//! since its tenant's change step was applied (the cycle's start when the tenant got none).
//!
//! A user written twice in a cycle (a create, then its manager reference) counts once, at its
//! last write; a deleted Webex user (an Entra hard delete) has no resource left to read and
//! is not counted. The harness applies a step just before the cycle starts, so this is the
//! latency a change meets when the sync is asked for at once, poll interval excluded.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::scim_sim::ScimSim;

/// Percentiles of a cycle's change-to-write latencies, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub writes: usize,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
}

/// The latencies of the users written since `since` in each org, measured from the org's
/// change time; `None` when the cycle wrote nothing.
pub fn measure(
    scim: &ScimSim,
    orgs: &[(String, DateTime<Utc>)],
    since: DateTime<Utc>,
) -> Option<Percentiles> {
    // lastModified has millisecond precision: compare at that precision.
    let since_ms = since.timestamp_millis();
    let mut latencies = Vec::new();
    for (org, changed_at) in orgs {
        let changed_ms = changed_at.timestamp_millis();
        scim.for_each_user(org, |u| {
            let written = u["meta"]["lastModified"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp_millis());
            if let Some(written) = written.filter(|&w| w >= since_ms) {
                latencies.push(u64::try_from(written - changed_ms).unwrap_or(0));
            }
        });
    }
    percentiles(latencies)
}

/// Nearest-rank percentiles.
fn percentiles(mut values: Vec<u64>) -> Option<Percentiles> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = |p: usize| values[(values.len() * p).div_ceil(100).max(1) - 1];
    Some(Percentiles {
        writes: values.len(),
        p50_ms: rank(50),
        p95_ms: rank(95),
        p99_ms: rank(99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // (values, expected p50/p95/p99)
        type Expected = Option<(u64, u64, u64)>;
        let cases: [(Vec<u64>, Expected); 4] = [
            (vec![], None),
            (vec![7], Some((7, 7, 7))),
            ((1..=100).rev().collect(), Some((50, 95, 99))),
            (vec![1, 2, 3, 1000], Some((2, 1000, 1000))),
        ];
        for (values, expected) in cases {
            let got = percentiles(values.clone()).map(|p| (p.p50_ms, p.p95_ms, p.p99_ms));
            assert_eq!(got, expected, "{values:?}");
        }
    }
}
