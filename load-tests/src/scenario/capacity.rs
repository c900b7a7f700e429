//! The SCIM simulator's raw capacity: the operations a fleet sends (creates, then one patch of
//! each user, in Bulk requests of 100 like the workers, or singly without Bulk) straight
//! from `clients` concurrent clients, with no Graph, broker, database or rate limit in the
//! way. A fleet's throughput is reported as a share of this ([`super::report`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::SecretString;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use dirsync_worker::map::ScimAttributes;
use dirsync_worker::scim::{
    BulkOperation, BulkOutcome, BulkRequest, RetryPolicy, ScimClient, user_resource,
};

use crate::fleet::with_latency_jitter;
use crate::scim_sim::{ScimSim, ScimSimConfig};
use crate::serve::{self, any_loopback_port};

/// What to measure with.
#[derive(Debug, Clone, Copy)]
pub struct CapacityOptions {
    pub users: usize,
    pub clients: usize,
    /// Added to every request, as the scenario's `fleet.scim.latency_ms`.
    pub latency_ms: u64,
    /// Up to this much more per request, as `fleet.scim.latency_jitter_ms`.
    pub latency_jitter_ms: u64,
    pub bulk: bool,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    pub users: usize,
    pub clients: usize,
    pub latency_ms: u64,
    pub latency_jitter_ms: u64,
    pub bulk: bool,
    pub create_ops_per_s: f64,
    pub patch_ops_per_s: f64,
    /// Creates and patches together over both phases' time.
    pub ops_per_s: f64,
    /// HTTP requests sent.
    pub requests: u64,
    pub wall_ms: u64,
}

/// Runs the measurement on a simulator of its own.
pub async fn measure(opts: CapacityOptions) -> anyhow::Result<Capacity> {
    anyhow::ensure!(
        opts.users > 0 && opts.clients > 0,
        "users and clients must be at least 1"
    );
    let shutdown = CancellationToken::new();
    let sim = ScimSim::new(ScimSimConfig {
        bulk: opts.bulk,
        ..ScimSimConfig::default()
    });
    let (org, token) = ("capacity-org", "capacity-token");
    sim.add_org(org, token);
    let served = serve::spawn(
        with_latency_jitter(
            sim.router(),
            Duration::from_millis(opts.latency_ms),
            Duration::from_millis(opts.latency_jitter_ms),
        ),
        any_loopback_port(),
        shutdown.clone(),
    )
    .await?;
    let client = ScimClient::new(
        reqwest::Client::new(),
        &format!("{}/identity/scim/{org}/v2", served.base_url()),
        Arc::new(SecretString::from(token)),
        RetryPolicy::default(),
    )?;
    let started = Instant::now();
    let creates = (0..opts.users)
        .map(|i| {
            let attrs = attributes(&[
                ("userName", format!("capacity.{i}@capacity.example")),
                ("userType", "user".into()),
                ("displayName", format!("Capacity User {i}")),
                ("title", "Tester".into()),
            ]);
            Ok(BulkOperation::Create {
                resource: user_resource(&attrs)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ids = run_phase(&client, creates, opts).await?;
    let create_secs = started.elapsed().as_secs_f64().max(0.001);
    let patches = ids
        .into_iter()
        .map(|webex_id| BulkOperation::Patch {
            webex_id,
            changes: attributes(&[("title", "Senior Tester".into())]),
        })
        .collect();
    let patch_started = Instant::now();
    run_phase(&client, patches, opts).await?;
    let patch_secs = patch_started.elapsed().as_secs_f64().max(0.001);
    let counters = sim.counters(org);
    shutdown.cancel();
    let _ = served.task.await;
    anyhow::ensure!(
        counters.create as usize == opts.users && counters.patch as usize == opts.users,
        "the simulator saw {} creates and {} patches of {} users",
        counters.create,
        counters.patch,
        opts.users
    );
    Ok(Capacity {
        users: opts.users,
        clients: opts.clients,
        latency_ms: opts.latency_ms,
        latency_jitter_ms: opts.latency_jitter_ms,
        bulk: opts.bulk,
        create_ops_per_s: opts.users as f64 / create_secs,
        patch_ops_per_s: opts.users as f64 / patch_secs,
        ops_per_s: 2.0 * opts.users as f64 / (create_secs + patch_secs),
        requests: counters.requests(),
        wall_ms: started.elapsed().as_millis() as u64,
    })
}

fn attributes(pairs: &[(&str, String)]) -> ScimAttributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect()
}

/// Sends `operations` from `opts.clients` concurrent clients; the ids of created users.
async fn run_phase(
    client: &ScimClient,
    operations: Vec<BulkOperation>,
    opts: CapacityOptions,
) -> anyhow::Result<Vec<String>> {
    if opts.bulk {
        let requests = BulkRequest::split(operations);
        fan_out(&requests, opts.clients, |r| bulk(client, r)).await
    } else {
        // Without Bulk every operation is a request of its own.
        fan_out(&operations, opts.clients, |op| single(client, op)).await
    }
}

/// Works through `items` with `clients` concurrent loops, each taking the next item.
async fn fan_out<'a, T, F, Fut>(
    items: &'a [T],
    clients: usize,
    send: F,
) -> anyhow::Result<Vec<String>>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<String>>>,
{
    let next = AtomicUsize::new(0);
    let loops = (0..clients).map(|_| async {
        let mut ids = Vec::new();
        while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
            ids.extend(send(item).await?);
        }
        anyhow::Ok(ids)
    });
    let mut ids = Vec::new();
    for part in futures_util::future::join_all(loops).await {
        ids.extend(part?);
    }
    Ok(ids)
}

async fn bulk(client: &ScimClient, request: &BulkRequest) -> anyhow::Result<Vec<String>> {
    let outcomes = client
        .bulk(request)
        .await?
        .context("the simulator has no Bulk endpoint")?;
    outcomes
        .into_iter()
        .filter_map(|o| match o {
            BulkOutcome::Done { webex_id } => webex_id.map(Ok),
            BulkOutcome::Failed(e) => Some(Err(anyhow::anyhow!("bulk operation: {e}"))),
            BulkOutcome::NotProcessed => Some(Err(anyhow::anyhow!("operation not processed"))),
        })
        .collect()
}

async fn single(client: &ScimClient, op: &BulkOperation) -> anyhow::Result<Vec<String>> {
    Ok(match op {
        BulkOperation::Create { resource } => vec![client.create_user(resource).await?.id],
        BulkOperation::Patch { webex_id, changes } => {
            client.patch_user(webex_id, changes).await?;
            Vec::new()
        }
        BulkOperation::Delete { .. } => anyhow::bail!("the measurement deletes nothing"),
    })
}
