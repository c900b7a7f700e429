//! The verdict on a cycle that ran with chaos: besides the oracle's convergence (judged by
//! the runner for every cycle), every fault fired and held what it must; no Webex user is
//! duplicated (two users of one `externalId` in an org); the counts are exact (each run's
//! summary equals the sum of its `batch_results` rows, and a full enumeration of a tenant
//! without a scope saw each live user exactly once); the coordinator run killed mid-walk was
//! resumed (the same run completed, no second run started); and no process had to be
//! restarted that the harness did not kill.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::fleet::Stack;
use crate::graph_sim::UserState;

use super::chaos_inject::{ChaosLog, FaultOutcome};
use super::run::HarnessTenant;

/// One run's counts, against PostgreSQL's `batch_results` and, for a full enumeration, the
/// tenant's live users.
#[derive(Debug, Clone, Serialize)]
pub struct RunCounts {
    pub tenant: String,
    pub run_id: uuid::Uuid,
    /// synced + skipped + failed of the run's summary.
    pub summary: u64,
    /// The same, summed over the run's `batch_results` rows.
    pub batch_results: u64,
    /// Live users in Entra, for an initial run of a tenant without a scope (each seen once).
    pub entries: Option<u64>,
    pub exact: bool,
}

/// The chaos half of a cycle's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosVerdict {
    pub faults: Vec<FaultOutcome>,
    pub counts: Vec<RunCounts>,
    pub counts_exact: bool,
    /// Webex users sharing an `externalId` with another of the same org.
    pub webex_duplicates: u64,
    /// The run whose coordinator was killed: completed as the same run, alone in its cycle.
    pub resumed: Option<bool>,
    /// Worker and coordinator processes that exited without being killed by the harness.
    pub uncaused_restarts: usize,
    /// Everything above held.
    pub passed: bool,
    /// Why not, when it did not.
    pub problems: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: uuid::Uuid,
    tenant_id: uuid::Uuid,
    kind: String,
    state: String,
    summary: i64,
    recorded: i64,
}

/// Judges a chaos cycle from the injector's log and the state it left behind. `since` is the
/// cycle's start by the database's clock; `coordinator_restarts` the uncaused ones.
pub async fn judge(
    stack: &Stack,
    tenants: &[HarnessTenant],
    since: DateTime<Utc>,
    log: ChaosLog,
    coordinator_restarts: usize,
) -> anyhow::Result<ChaosVerdict> {
    let mut problems = Vec::new();
    for f in &log.faults {
        if !f.injected {
            problems.push(format!("{:?} was never injected: {}", f.fault, f.detail));
        } else if !f.ok {
            problems.push(format!("{:?} did not hold: {}", f.fault, f.detail));
        }
    }
    let ids: Vec<uuid::Uuid> = tenants.iter().map(|t| t.pairing.tenant_id.0).collect();
    let rows: Vec<RunRow> = sqlx::query_as(
        "SELECT r.id, r.tenant_id, r.kind, r.state, \
         coalesce(r.synced + r.skipped + r.failed, -1)::bigint AS summary, \
         (SELECT coalesce(sum(b.synced + b.skipped + b.failed), 0) FROM batch_results b \
          WHERE b.run_id = r.id)::bigint AS recorded \
         FROM runs r WHERE r.tenant_id = ANY($1) AND r.started_at >= $2 AND r.kind <> 'on_demand'",
    )
    .bind(&ids)
    .bind(since)
    .fetch_all(&stack.env.pool)
    .await?;
    let mut counts = Vec::new();
    for t in tenants {
        let runs: Vec<&RunRow> = rows
            .iter()
            .filter(|r| r.tenant_id == t.pairing.tenant_id.0)
            .collect();
        if runs.len() != 1 {
            problems.push(format!(
                "{}: {} runs in the cycle, not one",
                t.name,
                runs.len()
            ));
        }
        for r in runs {
            let entries = (r.kind == "initial" && t.scope.is_none())
                .then(|| live_users(stack, t))
                .transpose()?;
            let exact = r.state == "completed"
                && r.summary == r.recorded
                && entries.is_none_or(|e| e == r.recorded.max(0) as u64);
            if !exact {
                problems.push(format!(
                    "{}: run {} ({}) counts {} in its summary, {} in batch_results, {:?} live users",
                    t.name, r.id, r.state, r.summary, r.recorded, entries
                ));
            }
            counts.push(RunCounts {
                tenant: t.name.clone(),
                run_id: r.id,
                summary: r.summary.max(0) as u64,
                batch_results: r.recorded.max(0) as u64,
                entries,
                exact,
            });
        }
    }
    let counts_exact = counts.iter().all(|c| c.exact) && counts.len() == tenants.len();
    let mut webex_duplicates = 0;
    for t in tenants {
        let mut seen = std::collections::HashSet::new();
        let mut dup = 0;
        stack.scim.for_each_user(&t.pairing.org_id, |u| {
            if let Some(id) = u["externalId"].as_str()
                && !seen.insert(id.to_string())
            {
                dup += 1;
            }
        });
        if dup > 0 {
            problems.push(format!("{}: {dup} duplicated Webex users", t.name));
        }
        webex_duplicates += dup;
    }
    let resumed = log.killed_run.as_ref().map(|k| {
        let same = rows.iter().filter(|r| r.tenant_id == k.tenant_id).count() == 1
            && rows
                .iter()
                .any(|r| r.id == k.run_id && r.state == "completed");
        if !same {
            problems.push(format!(
                "run {} killed mid-walk was not resumed to completion as the same run",
                k.run_id
            ));
        }
        same
    });
    let uncaused_restarts = log.uncaused_worker_restarts + coordinator_restarts;
    if uncaused_restarts > 0 {
        problems.push(format!(
            "{uncaused_restarts} processes exited without being killed and were restarted"
        ));
    }
    Ok(ChaosVerdict {
        faults: log.faults,
        counts,
        counts_exact,
        webex_duplicates,
        resumed,
        uncaused_restarts,
        passed: problems.is_empty(),
        problems,
    })
}

/// Live users of a tenant in Entra: what a full enumeration sees.
fn live_users(stack: &Stack, t: &HarnessTenant) -> anyhow::Result<u64> {
    Ok(stack.graph.with_users(&t.pairing.entra_tenant, |users| {
        users.iter().filter(|u| u.state == UserState::Live).count() as u64
    })?)
}
