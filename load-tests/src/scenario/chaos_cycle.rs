//! One cycle with a `chaos` section: the cycle and the chaos injector side by side, the
//! injector stopped when the cycle ends, then the chaos verdict.
//!
//! A tenant whose Webex token the section revokes (`revoke_scim_token`) is not among the
//! cycle's tenants: its org refuses the token before the cycle starts, the harness asks for
//! its run beside the cycle (it cannot complete), and the verdict looks at its quarantine
//! instead of its convergence. The token stays refused; the runner leaves the tenant out of
//! every later cycle ([`leave_out`]).

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::{CoordinatorError, TenantStore};

use crate::fleet::Stack;
use crate::graph_sim::UserState;

use super::Scenario;
use super::chaos::ChaosSpec;
use super::chaos_inject::Injector;
use super::chaos_verdict;
use super::coordinators::Coordinators;
use super::report::{ChangesDone, CycleMeasure};
use super::run::HarnessTenant;

/// The token a revoked tenant's org accepts instead of the tenant's own.
const REVOKED_TOKEN: &str = "revoked-token";
/// After the cycle, how long a revoked tenant may take to show its quarantine (it is
/// quarantined at the first refused batch, well before the other tenants are done).
const QUARANTINE_WAIT: Duration = Duration::from_secs(60);

/// Runs `cycle` (the sync of `tenants`) with `spec`'s faults injected into it; `expected`
/// is the users the cycle is expected to see (faults fire at fractions of it). `revoked`:
/// the tenants whose token `spec` revokes, not among `tenants`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn chaos_cycle(
    stack: &Stack,
    tenants: &[HarnessTenant],
    revoked: &[HarnessTenant],
    exe: &Path,
    coordinators: Option<&Coordinators>,
    spec: &ChaosSpec,
    expected: u64,
    cycle: impl Future<Output = anyhow::Result<CycleMeasure>>,
) -> anyhow::Result<CycleMeasure> {
    // The database's clock, like the runs' own timestamps.
    let since: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&stack.env.pool)
        .await?;
    if let Some(c) = coordinators {
        // Restarts before this cycle are not its own.
        c.take_uncaused_restarts();
    }
    // Before anything of the cycle runs: the walk's first batch already meets the 401.
    for t in revoked {
        stack.scim.add_org(&t.pairing.org_id, REVOKED_TOKEN);
    }
    let hold = Hold::default();
    let injector = Injector {
        stack,
        coordinators,
        exe,
        spec,
        tenant_ids: tenants.iter().map(|t| t.pairing.tenant_id.0).collect(),
        since,
        expected: expected.max(1),
        hold: &hold,
    };
    let done = CancellationToken::new();
    let stop_revoked = CancellationToken::new();
    let (measure, log, revoked_runs, ()) = tokio::join!(
        async {
            let measure = hold.run(cycle).await;
            done.cancel();
            measure
        },
        injector.run(done.clone()),
        revoked_runs(stack, coordinators, revoked, &stop_revoked),
        async {
            // The cycle never waits for a revoked tenant; past the bound its in-process
            // run is stopped, so it cannot hold the cycle either.
            done.cancelled().await;
            wait_quarantined(stack, revoked).await;
            stop_revoked.cancel();
        }
    );
    let mut measure = measure?;
    let log = log.context("injecting the cycle's faults")?;
    let revoked_runs = revoked_runs.context("asking for the revoked tenants' runs")?;
    let coordinator_restarts = coordinators.map_or(0, Coordinators::take_uncaused_restarts);
    measure.chaos = Some(
        chaos_verdict::judge(
            stack,
            tenants,
            since,
            log,
            coordinator_restarts,
            &chaos_verdict::Revoked {
                tenants: revoked,
                runs: revoked_runs,
            },
        )
        .await?,
    );
    Ok(measure)
}

/// Asks for a run of each revoked tenant: "sync now" for the coordinator processes (what
/// the admin API does), or a run in this process, stopped by `stop`. What became of each,
/// for the verdict's detail.
async fn revoked_runs(
    stack: &Stack,
    coordinators: Option<&Coordinators>,
    revoked: &[HarnessTenant],
    stop: &CancellationToken,
) -> anyhow::Result<Vec<String>> {
    if coordinators.is_some() {
        let store = TenantStore::new(stack.env.pool.clone());
        for t in revoked {
            store.request_sync(t.pairing.tenant_id).await?;
        }
        return Ok(vec![
            "asked for with \"sync now\"".to_string();
            revoked.len()
        ]);
    }
    let runs = revoked.iter().map(|t| async move {
        match stack
            .runner
            .sync_tenant(t.pairing.tenant_id, None, stop)
            .await
        {
            Err(CoordinatorError::Quarantined(reason)) => {
                format!("the run stopped waiting, quarantined: {reason}")
            }
            Err(CoordinatorError::Cancelled) => "the run was still going: stopped".to_string(),
            Err(e) => format!("the run failed: {e}"),
            Ok(outcome) => format!("the run completed ({}), refused token", outcome.run_id),
        }
    });
    Ok(futures_util::future::join_all(runs).await)
}

/// Waits until every revoked tenant is quarantined for its credentials, at most
/// [`QUARANTINE_WAIT`]; the verdict judges what it finds then.
async fn wait_quarantined(stack: &Stack, revoked: &[HarnessTenant]) {
    if revoked.is_empty() {
        return;
    }
    let ids: Vec<uuid::Uuid> = revoked.iter().map(|t| t.pairing.tenant_id.0).collect();
    let deadline = tokio::time::Instant::now() + QUARANTINE_WAIT;
    while tokio::time::Instant::now() < deadline {
        let quarantined: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FROM tenants WHERE id = ANY($1) AND status = 'Quarantine' \
             AND quarantine_kind = 'credentials'",
        )
        .bind(&ids)
        .fetch_one(&stack.env.pool)
        .await;
        if quarantined.is_ok_and(|n| n as usize == ids.len()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tenants whose token `spec` revokes: every copy of the entry it names.
pub(super) fn revoked_tenants(
    spec: Option<&ChaosSpec>,
    scenario: &Scenario,
    tenants: &[HarnessTenant],
) -> Vec<HarnessTenant> {
    let Some(name) = spec.and_then(|s| s.revoke_scim_token.as_deref()) else {
        return Vec::new();
    };
    tenants
        .iter()
        .filter(|t| scenario.tenants[t.entry].name == name)
        .cloned()
        .collect()
}

/// `tenants` and their `changed_at` without those at the positions `out`, renumbered: a
/// cycle's tenants are numbered by their place in its list.
pub(super) fn leave_out(
    tenants: &[HarnessTenant],
    changed_at: &[Option<DateTime<Utc>>],
    out: &[usize],
) -> (Vec<HarnessTenant>, Vec<Option<DateTime<Utc>>>) {
    tenants
        .iter()
        .zip(changed_at)
        .filter(|(t, _)| !out.contains(&t.index))
        .enumerate()
        .map(|(index, (t, at))| (HarnessTenant { index, ..t.clone() }, *at))
        .unzip()
}

/// Holds a future still while engaged: it is not polled, so it takes no lock and reaps no
/// process. The injector engages it around a coordinator's SIGTERM, so the cycle's wait
/// loop does not find the exited process first and restart it as if it had crashed.
#[derive(Default)]
pub(super) struct Hold {
    engaged: AtomicBool,
    waker: std::sync::Mutex<Option<Waker>>,
}

/// Releases its [`Hold`] when dropped.
pub(super) struct Engaged<'a>(&'a Hold);

impl Hold {
    pub(super) fn engage(&self) -> Engaged<'_> {
        self.engaged.store(true, Ordering::SeqCst);
        Engaged(self)
    }

    async fn run<F: Future>(&self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            if self.engaged.load(Ordering::SeqCst) {
                *self.waker.lock().expect("hold waker lock") = Some(cx.waker().clone());
                // Released between the two loads: its wake may have missed the waker.
                if self.engaged.load(Ordering::SeqCst) {
                    return Poll::Pending;
                }
            }
            work.as_mut().poll(cx)
        })
        .await
    }
}

impl Drop for Engaged<'_> {
    fn drop(&mut self) {
        self.0.engaged.store(false, Ordering::SeqCst);
        if let Some(waker) = self.0.waker.lock().expect("hold waker lock").take() {
            waker.wake();
        }
    }
}

/// Live users of every tenant: what an initial cycle sees (less for a tenant with a scope).
pub(super) fn live_users(stack: &Stack, tenants: &[HarnessTenant]) -> anyhow::Result<u64> {
    let mut n = 0;
    for t in tenants {
        n += stack.graph.with_users(&t.pairing.entra_tenant, |users| {
            users.iter().filter(|u| u.state == UserState::Live).count() as u64
        })?;
    }
    Ok(n)
}

/// Users a change step touched: about what an incremental cycle sees.
pub(super) fn changed_users(c: &ChangesDone) -> u64 {
    (c.updates + c.soft_deletes + c.hard_deletes + c.new_users + c.restores + c.disables) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Pairing;
    use dirsync_proto::TenantId;

    fn tenant(name: &str, index: usize) -> HarnessTenant {
        HarnessTenant {
            name: name.into(),
            entry: index,
            index,
            pairing: Pairing {
                tenant_id: TenantId(uuid::Uuid::new_v4()),
                entra_tenant: name.into(),
                org_id: name.into(),
            },
            allow_hard_delete: true,
            scope: None,
        }
    }

    #[test]
    fn tenants_left_out_are_gone_and_the_rest_renumbered() {
        let tenants = [tenant("a", 0), tenant("b", 1), tenant("c", 2)];
        let at = Some(Utc::now());
        let (kept, changed_at) = leave_out(&tenants, &[None, None, at], &[1]);
        let names: Vec<(&str, usize)> = kept.iter().map(|t| (t.name.as_str(), t.index)).collect();
        assert_eq!(names, [("a", 0), ("c", 1)]);
        assert_eq!(
            changed_at,
            [None, at],
            "each change time stays with its tenant"
        );
        assert_eq!(leave_out(&tenants, &[None; 3], &[]).0.len(), 3);
    }

    #[tokio::test]
    async fn a_held_future_is_not_polled_until_released() {
        let hold = Hold::default();
        let polled = AtomicBool::new(false);
        let engaged = hold.engage();
        let mut work = std::pin::pin!(hold.run(async {
            polled.store(true, Ordering::SeqCst);
            7
        }));
        assert!(futures_util::poll!(work.as_mut()).is_pending());
        assert!(!polled.load(Ordering::SeqCst), "not polled while held");
        drop(engaged);
        assert_eq!(work.await, 7);
        assert!(polled.load(Ordering::SeqCst));
    }
}
