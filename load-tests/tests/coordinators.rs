//! Two coordinators racing for ten due tenants: leases keep every tenant to one run at a
//! time, both coordinators get work and keep to their run limit, and every org converges.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::scheduler::{self, Leases, ServeReport};
use dirsync_coordinator::{Runner, broker, db};
use dirsync_load_tests::fleet::{Pairing, Stack, StackOptions};
use dirsync_load_tests::oracle;
use dirsync_load_tests::testkit::TestEnv;

const TENANTS: usize = 10;
const RUNS_PER_COORDINATOR: usize = 3;
const COORDINATORS: [&str; 2] = ["coord-a", "coord-b"];

/// A coordinator as a separate process would have it: its own pool, broker connection and
/// lease owner name.
async fn coordinator(env: &TestEnv, owner: &str) -> anyhow::Result<(Runner, Leases)> {
    let pool = db::connect(&env.database_url).await?;
    let amqp = broker::connect(&env.amqp_url).await?;
    let runner = Runner::new(pool.clone(), Arc::new(amqp), env.topology(), 64)
        .with_secrets(env.secrets_key.clone());
    Ok((runner, Leases::new(pool, owner)))
}

/// Leases held right now, by owner.
async fn leases_by_owner(env: &TestEnv) -> anyhow::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT lease_owner, count(*) FROM tenants WHERE lease_owner IS NOT NULL GROUP BY lease_owner",
    )
    .fetch_all(&env.pool)
    .await?;
    Ok(rows.into_iter().collect())
}

async fn tenants_with_a_completed_run(env: &TestEnv) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(DISTINCT tenant_id) FROM runs WHERE state = 'completed'")
            .fetch_one(&env.pool)
            .await?,
    )
}

/// Runs both serve loops until every tenant has a completed run, then cancels them; returns
/// their reports and the most leases each owner was seen holding at once.
async fn race(env: &TestEnv) -> anyhow::Result<(Vec<ServeReport>, HashMap<String, i64>)> {
    let stop = CancellationToken::new();
    let mut loops = Vec::new();
    for owner in COORDINATORS {
        let (runner, leases) = coordinator(env, owner).await?;
        loops.push(tokio::spawn(scheduler::serve(
            runner,
            leases,
            RUNS_PER_COORDINATOR,
            stop.clone(),
        )));
    }
    let mut most_held: HashMap<String, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let waited = loop {
        for (owner, held) in leases_by_owner(env).await? {
            let most = most_held.entry(owner).or_default();
            *most = (*most).max(held);
        }
        if tenants_with_a_completed_run(env).await? == TENANTS as i64 {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "not every tenant synced within the deadline"
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    stop.cancel();
    let mut reports = Vec::new();
    for serving in loops {
        let report = tokio::time::timeout(Duration::from_secs(60), serving)
            .await
            .context("a serve loop did not stop after cancellation")???;
        reports.push(report);
    }
    waited?;
    Ok((reports, most_held))
}

/// Every check of the race; an error (not a panic) so that the resources are cleaned up.
async fn scenario(stack: &Stack, pairings: &[Pairing]) -> anyhow::Result<()> {
    let env = &stack.env;
    let (reports, most_held) = race(env).await?;

    for (owner, report) in COORDINATORS.iter().zip(&reports) {
        ensure!(report.completed >= 1, "{owner} ran no tenant: {reports:?}");
        ensure!(
            report.failed == 0 && report.interrupted == 0,
            "{owner}: {report:?}"
        );
        let most = most_held.get(*owner).copied().unwrap_or(0);
        ensure!(
            most <= RUNS_PER_COORDINATOR as i64,
            "{owner} held {most} leases at once, limit {RUNS_PER_COORDINATOR}"
        );
    }
    let completed: u64 = reports.iter().map(|r| r.completed).sum();
    ensure!(
        completed == TENANTS as u64,
        "the coordinators completed {completed} runs for {TENANTS} tenants: one ran twice"
    );
    ensure!(
        most_held.values().any(|&n| n > 1),
        "no coordinator ever ran two tenants at once: {most_held:?}"
    );
    ensure!(
        leases_by_owner(env).await?.is_empty(),
        "leases left behind after the serve loops stopped"
    );

    type RunRow = (
        uuid::Uuid,
        String,
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    let rows: Vec<RunRow> = sqlx::query_as(
        "SELECT tenant_id, state, started_at, finished_at FROM runs ORDER BY tenant_id, started_at",
    )
    .fetch_all(&env.pool)
    .await?;
    for pairing in pairings {
        let runs: Vec<&RunRow> = rows.iter().filter(|r| r.0 == pairing.tenant_id.0).collect();
        let count = |state: &str| runs.iter().filter(|r| r.1 == state).count();
        ensure!(
            count("completed") == 1 && count("failed") == 0,
            "tenant {}: runs {runs:?}",
            pairing.tenant_id
        );
        for pair in runs.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            ensure!(
                earlier.3.is_some_and(|finished| finished <= later.2),
                "tenant {}: runs overlap: {earlier:?} and {later:?}",
                pairing.tenant_id
            );
        }
        let verdict = oracle::check(
            &stack.graph.snapshot(&pairing.entra_tenant)?,
            &stack.scim.users(&pairing.org_id),
            true,
        );
        ensure!(
            verdict.converged,
            "tenant {} did not converge: {verdict:?}",
            pairing.tenant_id
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_share_ten_tenants_without_overlapping_runs() {
    // Small pages make every run several batches long.
    let opts = StackOptions {
        page_size: 50,
        seed: 1,
        ..StackOptions::new("coordinators", 100)
    };
    let stack = Stack::start(&opts).await.unwrap();
    let mut pairings = vec![Pairing {
        tenant_id: stack.tenant_id,
        entra_tenant: stack.entra_tenant.clone(),
        org_id: stack.org_id.clone(),
    }];
    // next_run_at defaults to now: every tenant is due at once.
    for i in 1..TENANTS {
        let tenant = stack
            .add_tenant(&format!("tenant {i}"), 100 + 20 * i, i as u64 + 1)
            .await
            .unwrap();
        pairings.push(tenant);
    }
    stack
        .spawn_worker(std::path::Path::new(env!("CARGO_BIN_EXE_demo")))
        .unwrap();

    let outcome = scenario(&stack, &pairings).await;

    stack.shutdown().await.unwrap();
    outcome.unwrap();
}
