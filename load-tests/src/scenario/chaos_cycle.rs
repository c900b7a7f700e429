//! One cycle with a `chaos` section: the cycle and the chaos injector side by side, the
//! injector stopped when the cycle ends, then the chaos verdict.

use std::future::Future;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::fleet::Stack;
use crate::graph_sim::UserState;

use super::chaos::ChaosSpec;
use super::chaos_inject::Injector;
use super::chaos_verdict;
use super::coordinators::Coordinators;
use super::report::{ChangesDone, CycleMeasure};
use super::run::HarnessTenant;

/// Runs `cycle` with `spec`'s faults injected into it; `expected` is the users the cycle is
/// expected to see (faults fire at fractions of it).
pub(super) async fn chaos_cycle(
    stack: &Stack,
    tenants: &[HarnessTenant],
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
    let injector = Injector {
        stack,
        coordinators,
        exe,
        spec,
        tenant_ids: tenants.iter().map(|t| t.pairing.tenant_id.0).collect(),
        since,
        expected: expected.max(1),
    };
    let done = CancellationToken::new();
    let (measure, log) = tokio::join!(
        async {
            let measure = cycle.await;
            done.cancel();
            measure
        },
        injector.run(done.clone())
    );
    let mut measure = measure?;
    let log = log.context("injecting the cycle's faults")?;
    let coordinator_restarts = coordinators.map_or(0, Coordinators::take_uncaused_restarts);
    measure.chaos =
        Some(chaos_verdict::judge(stack, tenants, since, log, coordinator_restarts).await?);
    Ok(measure)
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
