//! The verdict on a cycle that ran with chaos: besides the oracle's convergence (judged by
//! the runner for every cycle), every fault fired and held what it must; no Webex user is
//! duplicated (two users of one `externalId` in an org); the counts are exact (each run's
//! summary equals the sum of its `batch_results` rows, and a full enumeration of a tenant
//! without a scope saw each live user exactly once); the coordinator run killed mid-walk was
//! resumed (the same run completed, no second run started), and so was the one whose
//! coordinator was stopped with SIGTERM; no tenant is quarantined but those whose Webex token
//! the cycle revoked, and those are, for their credentials; and no process had to be
//! restarted that the harness did not kill.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::fleet::Stack;
use crate::graph_sim::UserState;

use super::chaos::FaultKind;
use super::chaos_inject::{ChaosLog, FaultOutcome, SigtermedCoordinator};
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
    /// The coordinator stopped with SIGTERM: its exit, its leases before and after.
    pub sigtermed_coordinator: Option<SigtermedCoordinator>,
    /// Its run: completed as the same run, alone in its cycle.
    pub sigterm_resumed: Option<bool>,
    /// The tenants whose Webex token the cycle revoked, as the cycle left them.
    pub revoked: Vec<RevokedTenant>,
    /// Other tenants not `Active` at the cycle's end (`name: status (kind)`); must be none.
    pub quarantined_healthy: Vec<String>,
    /// Worker and coordinator processes that exited without being killed by the harness.
    pub uncaused_restarts: usize,
    /// Everything above held.
    pub passed: bool,
    /// Why not, when it did not.
    pub problems: Vec<String>,
}

/// A tenant whose Webex org refused its token through the cycle.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedTenant {
    pub tenant: String,
    pub status: String,
    pub quarantine_kind: Option<String>,
    pub quarantine_reason: Option<String>,
    /// From the cycle's start to its quarantine.
    pub quarantined_after_ms: Option<i64>,
    /// What became of the run the harness asked for.
    pub run: String,
    /// `Quarantine` for its `credentials`.
    pub ok: bool,
}

/// The tenants whose token the cycle revoked (not among the cycle's tenants), and what
/// became of the run asked for each.
pub struct Revoked<'a> {
    pub tenants: &'a [HarnessTenant],
    pub runs: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct StateRow {
    id: uuid::Uuid,
    status: String,
    quarantine_kind: Option<String>,
    quarantine_reason: Option<String>,
    quarantined_after_ms: Option<f64>,
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
/// cycle's start by the database's clock; `coordinator_restarts` the uncaused ones;
/// `revoked` the tenants whose token it revoked (not among `tenants`).
pub async fn judge(
    stack: &Stack,
    tenants: &[HarnessTenant],
    since: DateTime<Utc>,
    mut log: ChaosLog,
    coordinator_restarts: usize,
    revoked: &Revoked<'_>,
) -> anyhow::Result<ChaosVerdict> {
    let (quarantined_healthy, revoked) = quarantines(stack, tenants, since, revoked).await?;
    if !revoked.is_empty() {
        // In place before the cycle started: first in firing order.
        log.faults.insert(
            0,
            FaultOutcome {
                fault: FaultKind::RevokeScimToken,
                injected: true,
                ok: revoked.iter().all(|r| r.ok),
                at_users_done: Some(0),
                detail: revoked
                    .iter()
                    .map(|r| {
                        format!(
                            "{}: its org answered 401 to its token from the cycle's start; {} ({}) {} ms into the cycle: {}; {}",
                            r.tenant,
                            r.status,
                            r.quarantine_kind.as_deref().unwrap_or("no kind"),
                            r.quarantined_after_ms.map_or("-".into(), |ms| ms.to_string()),
                            r.quarantine_reason.as_deref().unwrap_or("no reason"),
                            r.run
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        );
    }
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
    let completed_alone = |tenant_id: uuid::Uuid, run_id: uuid::Uuid| {
        rows.iter().filter(|r| r.tenant_id == tenant_id).count() == 1
            && rows
                .iter()
                .any(|r| r.id == run_id && r.state == "completed")
    };
    let resumed = log.killed_run.as_ref().map(|k| {
        let same = completed_alone(k.tenant_id, k.run_id);
        if !same {
            problems.push(format!(
                "run {} killed mid-walk was not resumed to completion as the same run",
                k.run_id
            ));
        }
        same
    });
    let sigterm_resumed = log.sigtermed_coordinator.as_ref().map(|s| {
        let same = completed_alone(s.run.tenant_id, s.run.run_id);
        if !same {
            problems.push(format!(
                "run {} whose coordinator was stopped with SIGTERM was not resumed to completion as the same run",
                s.run.run_id
            ));
        }
        same
    });
    for q in &quarantined_healthy {
        problems.push(format!("{q}: a healthy tenant is not Active"));
    }
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
        sigtermed_coordinator: log.sigtermed_coordinator,
        sigterm_resumed,
        revoked,
        quarantined_healthy,
        uncaused_restarts,
        passed: problems.is_empty(),
        problems,
    })
}

/// The tenants that must not be quarantined and are (`name: status (kind)`), and the revoked
/// tenants as the cycle left them.
async fn quarantines(
    stack: &Stack,
    tenants: &[HarnessTenant],
    since: DateTime<Utc>,
    revoked: &Revoked<'_>,
) -> anyhow::Result<(Vec<String>, Vec<RevokedTenant>)> {
    let ids: Vec<uuid::Uuid> = tenants
        .iter()
        .chain(revoked.tenants)
        .map(|t| t.pairing.tenant_id.0)
        .collect();
    let rows: Vec<StateRow> = sqlx::query_as(
        "SELECT id, status, quarantine_kind, quarantine_reason, \
         (extract(epoch FROM quarantined_since - $2) * 1000)::float8 AS quarantined_after_ms \
         FROM tenants WHERE id = ANY($1)",
    )
    .bind(&ids)
    .bind(since)
    .fetch_all(&stack.env.pool)
    .await?;
    let state = |t: &HarnessTenant| {
        rows.iter()
            .find(|r| r.id == t.pairing.tenant_id.0)
            .ok_or_else(|| anyhow::anyhow!("tenant {} is gone from the tenants table", t.name))
    };
    let mut healthy = Vec::new();
    for t in tenants {
        let s = state(t)?;
        if s.status != "Active" {
            healthy.push(format!(
                "{}: {} ({})",
                t.name,
                s.status,
                s.quarantine_kind.as_deref().unwrap_or("no kind")
            ));
        }
    }
    let mut out = Vec::new();
    for (t, run) in revoked.tenants.iter().zip(&revoked.runs) {
        let s = state(t)?;
        out.push(RevokedTenant {
            tenant: t.name.clone(),
            status: s.status.clone(),
            quarantine_kind: s.quarantine_kind.clone(),
            quarantine_reason: s.quarantine_reason.clone(),
            quarantined_after_ms: s.quarantined_after_ms.map(|ms| ms.round() as i64),
            run: run.clone(),
            ok: s.status == "Quarantine" && s.quarantine_kind.as_deref() == Some("credentials"),
        });
    }
    Ok((healthy, out))
}

/// Live users of a tenant in Entra: what a full enumeration sees.
fn live_users(stack: &Stack, t: &HarnessTenant) -> anyhow::Result<u64> {
    Ok(stack.graph.with_users(&t.pairing.entra_tenant, |users| {
        users.iter().filter(|u| u.state == UserState::Live).count() as u64
    })?)
}
