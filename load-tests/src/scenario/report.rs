//! What the harness reports: one [`CycleMeasure`] per cycle (throughput, SCIM traffic by
//! kind, 429s, the share of the rate limit and of the simulator's raw capacity, peak memory,
//! the oracle's verdict), the whole run as JSON, and the same as a table for a terminal.
//! The latency from a Graph change to its SCIM write is measured in [`super::latency`].

use comfy_table::Table;
use serde::Serialize;

use dirsync_proto::{Counts, GroupCounts};

use crate::scim_sim::RequestCounters;

use super::latency::Percentiles;

/// SCIM traffic of a cycle, summed over the orgs. `requests` are HTTP requests (a Bulk
/// request counts once); the kinds count user operations however they were sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ScimTraffic {
    pub requests: u64,
    pub bulk: u64,
    pub create: u64,
    pub patch: u64,
    pub delete: u64,
    pub get: u64,
    pub list: u64,
    pub group_reads: u64,
    pub group_writes: u64,
    pub throttled_429: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
}

impl ScimTraffic {
    /// The traffic between two snapshots of one org's counters.
    pub fn between(before: &RequestCounters, after: &RequestCounters) -> ScimTraffic {
        let d = |a: u64, b: u64| b.saturating_sub(a);
        ScimTraffic {
            requests: d(before.requests(), after.requests()),
            bulk: d(before.bulk, after.bulk),
            create: d(before.create, after.create),
            patch: d(before.patch, after.patch),
            delete: d(before.delete, after.delete),
            get: d(before.get, after.get),
            list: d(before.list, after.list),
            group_reads: d(
                before.group_total() - before.group_writes(),
                after.group_total() - after.group_writes(),
            ),
            group_writes: d(before.group_writes(), after.group_writes()),
            throttled_429: d(before.throttled, after.throttled),
            errors_4xx: d(before.errors_4xx, after.errors_4xx),
            errors_5xx: d(before.errors_5xx, after.errors_5xx),
        }
    }

    pub fn add(&mut self, o: &ScimTraffic) {
        self.requests += o.requests;
        self.bulk += o.bulk;
        self.create += o.create;
        self.patch += o.patch;
        self.delete += o.delete;
        self.get += o.get;
        self.list += o.list;
        self.group_reads += o.group_reads;
        self.group_writes += o.group_writes;
        self.throttled_429 += o.throttled_429;
        self.errors_4xx += o.errors_4xx;
        self.errors_5xx += o.errors_5xx;
    }
}

/// Peak resident memory (VmHWM) so far, MiB.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeakMemory {
    /// The harness process: both simulators, the oracle and, unless there are coordinator
    /// processes, the coordinator.
    pub harness_mib: u64,
    /// Each worker process, in start order (`null` when it could not be read).
    pub workers_mib: Vec<Option<u64>>,
    /// Each coordinator process, in start order (empty when the coordinator runs in the
    /// harness process).
    pub coordinators_mib: Vec<Option<u64>>,
}

/// The changes applied before a cycle, summed over the tenants: what was done, which may be
/// less than asked when too few users or groups qualified. The same counts as a step asks for.
pub type ChangesDone = super::StepSpec;

/// One cycle of every tenant.
#[derive(Debug, Clone, Serialize)]
pub struct CycleMeasure {
    pub cycle: String,
    pub tenants: usize,
    pub changes: ChangesDone,
    /// From the first tenant's run starting to the last one's end (runs go concurrently).
    pub wall_ms: u64,
    pub users: Counts,
    pub groups: GroupCounts,
    /// Users seen (synced, skipped and failed) per second of wall time.
    pub users_per_s: f64,
    pub scim: ScimTraffic,
    /// SCIM HTTP requests per synced user or group; `null` when nothing was synced.
    pub requests_per_synced_object: Option<f64>,
    /// 429 answers among SCIM requests, 0 to 1.
    pub share_429: f64,
    /// The busiest org's requests per second over the cycle, as a share of the configured
    /// per-org limit; `null` without a limit.
    pub rate_limit_share: Option<f64>,
    /// SCIM operations (creates, patches, deletes) per second as a share of the simulator's
    /// raw capacity for them ([`super::capacity`]); `null` when it was not measured.
    pub capacity_share: Option<f64>,
    /// From a tenant's change to each user's SCIM write in this cycle; `null`: no writes.
    pub change_to_write: Option<Percentiles>,
    pub peak_memory: PeakMemory,
    /// With coordinator processes: how many tenants' runs each process (in start order) was
    /// seen running, by its lease (read every 100 ms, so a shorter run may go unseen and the
    /// sum fall below `tenants`). Empty when the coordinator runs in the harness process.
    pub runs_by_coordinator: Vec<usize>,
    /// Every tenant's org matches the oracle's expectation.
    pub converged: bool,
    /// The first problems the oracle found, prefixed by the tenant's name.
    pub problems: Vec<String>,
    /// For a cycle with a `chaos` section: the faults and what they had to leave true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos: Option<super::chaos_verdict::ChaosVerdict>,
}

/// A whole harness run.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub tenants: usize,
    pub workers: usize,
    /// Coordinator processes; 0: the coordinator ran in the harness process.
    pub coordinators: usize,
    /// The capacity measurement the shares refer to, operations per second.
    pub scim_capacity_ops_per_s: Option<f64>,
    pub cycles: Vec<CycleMeasure>,
}

impl ScenarioReport {
    pub fn converged(&self) -> bool {
        self.cycles.iter().all(|c| c.converged)
    }

    /// Every cycle converged and every chaos verdict passed.
    pub fn passed(&self) -> bool {
        self.converged()
            && self
                .cycles
                .iter()
                .all(|c| c.chaos.as_ref().is_none_or(|v| v.passed))
    }

    /// The report as a table, one row per cycle.
    pub fn table(&self) -> Table {
        let mut table = Table::new();
        table.set_header(vec![
            "cycle",
            "wall s",
            "users seen",
            "synced",
            "failed",
            "users/s",
            "SCIM req",
            "bulk/create/patch/delete",
            "req/obj",
            "429 %",
            "rate limit %",
            "capacity %",
            "change→write p50/p95/p99 ms",
            "peak MiB harness / workers",
            "peak MiB coordinators (runs)",
            "converged",
        ]);
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}", v * 100.0));
        for c in &self.cycles {
            let mib = |all: &[Option<u64>]| -> Vec<String> {
                all.iter()
                    .map(|m| m.map_or("?".into(), |m| m.to_string()))
                    .collect()
            };
            let workers = mib(&c.peak_memory.workers_mib);
            let coordinators = if c.peak_memory.coordinators_mib.is_empty() {
                "- (in harness)".to_string()
            } else {
                mib(&c.peak_memory.coordinators_mib)
                    .iter()
                    .enumerate()
                    .map(|(i, m)| match c.runs_by_coordinator.get(i) {
                        Some(runs) => format!("{m} ({runs})"),
                        None => m.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            table.add_row(vec![
                c.cycle.clone(),
                format!("{:.2}", c.wall_ms as f64 / 1000.0),
                c.users.total().to_string(),
                c.users.synced.to_string(),
                c.users.failed.to_string(),
                format!("{:.0}", c.users_per_s),
                c.scim.requests.to_string(),
                format!(
                    "{}/{}/{}/{}",
                    c.scim.bulk, c.scim.create, c.scim.patch, c.scim.delete
                ),
                c.requests_per_synced_object
                    .map_or("-".into(), |r| format!("{r:.3}")),
                format!("{:.2}", c.share_429 * 100.0),
                pct(c.rate_limit_share),
                pct(c.capacity_share),
                c.change_to_write.map_or("-".into(), |l| {
                    format!("{}/{}/{}", l.p50_ms, l.p95_ms, l.p99_ms)
                }),
                format!("{} / {}", c.peak_memory.harness_mib, workers.join(",")),
                coordinators,
                if c.converged { "yes" } else { "NO" }.to_string(),
            ]);
        }
        table
    }
}

/// Peak resident memory of a process so far (`VmHWM`), MiB; `None` once it is gone.
pub fn peak_rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
