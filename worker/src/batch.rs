//! Processing of one decoded batch, from the idempotency check to the result event.
//!
//! Order matters for the guarantees: the PostgreSQL commit comes before the Redis counts,
//! which come before the result event, which comes before the ack (done by the caller).
//! A crash anywhere redelivers the batch; the stored `batch_results` row then
//! short-circuits the SCIM work and the later steps are repeated, each idempotent.
//!
//! A failure of the tenant's SCIM service (not of one user) fails the whole batch before
//! anything is recorded: the delivery is requeued and the run cannot finish until the batch
//! is pushed. Writes that succeeded before the failure are repeated harmlessly then (see
//! [`crate::push`]), and the counts come from that one complete attempt.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use dirsync_proto::{BatchMessage, BatchResultEvent, Counts, WIRE_VERSION};
use dirsync_telemetry::labels::ObjectAction;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tracing::{debug, warn};

use crate::broker::ResultPublisher;
use crate::config::WorkerSettings;
use crate::counters::RunCounters;
use crate::diff::MirrorUser;
use crate::dry_run;
use crate::error::WorkerError;
use crate::group_sync::{GroupOutcome, GroupResult, record_groups, sync_groups};
use crate::mirror::{load_mirror, load_webex_ids};
use crate::observe::{ObjectTally, object_action};
use crate::outcome::UserResult;
use crate::pipeline::{Deferred, Planned, Policy, managers_named, plan_batch_with};
use crate::push::push_all;
use crate::ratelimit::OrgRateLimiter;
use crate::record::{BatchKey, RefChanges, record_batch_with, stored_counts};
use crate::scim::{BulkSupport, ScimClient};
use crate::tenant::{Tenant, TenantCache};

/// Reason recorded for every user of a batch whose tenant does not exist.
pub const UNKNOWN_TENANT: &str = "unknown tenant";

/// Everything needed to process batches; shared by the concurrent batch tasks.
#[derive(Debug)]
pub struct BatchProcessor {
    pool: PgPool,
    redis: ConnectionManager,
    http: reqwest::Client,
    tenants: TenantCache,
    counters: RunCounters,
    publisher: ResultPublisher,
    settings: WorkerSettings,
    /// The fleet-wide SCIM budget per org, when configured.
    limiter: Option<OrgRateLimiter>,
    /// What each SCIM base URL said about Bulk, kept across batches.
    bulk_support: Mutex<HashMap<String, BulkSupport>>,
}

impl BatchProcessor {
    pub fn new(
        pool: PgPool,
        redis: ConnectionManager,
        http: reqwest::Client,
        counters: RunCounters,
        publisher: ResultPublisher,
        settings: WorkerSettings,
    ) -> Self {
        let tenants = TenantCache::new(settings.tenant_cache_ttl, settings.secrets.clone());
        let limiter = settings
            .scim_rate
            .as_ref()
            .map(|r| OrgRateLimiter::new(redis.clone(), &r.topology, r.rate));
        BatchProcessor {
            pool,
            redis,
            http,
            tenants,
            counters,
            publisher,
            settings,
            limiter,
            bulk_support: Mutex::new(HashMap::new()),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn publisher(&self) -> &ResultPublisher {
        &self.publisher
    }

    /// Runs steps 2 to 8 for one batch and returns the counts it is recorded with.
    pub async fn process(&self, batch: &BatchMessage) -> Result<Counts, WorkerError> {
        // The org and credentials come from the tenant the batch names, the recording goes
        // to the run it names: both must be the same tenant's.
        check_run_tenant(&self.pool, batch).await?;
        if batch.dry_run {
            return self.process_dry_run(batch).await;
        }
        let key = BatchKey {
            tenant: batch.tenant_id,
            run: batch.run_id,
            seq: batch.seq,
        };
        let counts = match stored_counts(&self.pool, key.run, key.seq).await? {
            Some(counts) => {
                debug!("batch already recorded, finishing its later steps");
                counts
            }
            None if !batch.groups.is_empty() => {
                let results = self.sync_groups(batch).await?;
                let recorded = record_groups(&self.pool, key, &results).await?;
                if !recorded.newly_recorded {
                    debug!("another delivery recorded this batch first");
                }
                recorded.counts
            }
            None => {
                let pushed = self.sync_users(batch).await?;
                let recorded =
                    record_batch_with(&self.pool, key, &pushed.results, &pushed.refs).await?;
                if recorded.newly_recorded {
                    let objects = ObjectTally::of_users(&pushed.results, &pushed.actions);
                    if pushed.refs.partial_pass {
                        objects.failures_only().record();
                    } else {
                        objects.record();
                    }
                } else {
                    debug!("another delivery recorded this batch first");
                }
                recorded.counts
            }
        };
        let mut redis = self.redis.clone();
        self.counters
            .add_once(&mut redis, key.run, key.seq, counts)
            .await?;
        self.announce(batch, counts).await?;
        Ok(counts)
    }

    /// A dry run's batch: its report rows, committed once, then its result event. Neither
    /// Webex nor the sync's state is written, and its counts stay out of Redis.
    async fn process_dry_run(&self, batch: &BatchMessage) -> Result<Counts, WorkerError> {
        let counts = match dry_run::stored(&self.pool, batch).await? {
            Some(counts) => counts,
            None if !dry_run::exists(&self.pool, batch).await? => {
                debug!("the dry run is gone, dropping its batch");
                return Ok(Counts::default());
            }
            None => {
                let Some((tenant, client)) = self.client(batch).await? else {
                    return Ok(Counts::default());
                };
                let report = dry_run::report(&self.pool, &tenant, &client, batch).await?;
                dry_run::record(&self.pool, batch, &report).await?
            }
        };
        self.announce(batch, counts).await?;
        Ok(counts)
    }

    /// Tells the batch's coordinator that the batch is recorded (publisher confirm).
    async fn announce(&self, batch: &BatchMessage, counts: Counts) -> Result<(), WorkerError> {
        let event = BatchResultEvent {
            version: WIRE_VERSION,
            tenant_id: batch.tenant_id,
            run_id: batch.run_id,
            seq: batch.seq,
            counts,
        };
        self.publisher.publish(&event).await
    }

    /// Pushes the batch's group objects. A batch of an unknown tenant fails each group.
    pub async fn sync_groups(&self, batch: &BatchMessage) -> Result<Vec<GroupResult>, WorkerError> {
        let Some((_, client)) = self.client(batch).await? else {
            return Ok(batch
                .groups
                .iter()
                .map(|g| GroupResult {
                    entra_id: g.id.clone(),
                    outcome: GroupOutcome::Failed(UNKNOWN_TENANT.into()),
                    mirror: None,
                })
                .collect());
        };
        sync_groups(&self.pool, &client, batch.tenant_id, &batch.groups).await
    }

    /// The batch's tenant and its SCIM client; `None` for a tenant that does not exist.
    async fn client(
        &self,
        batch: &BatchMessage,
    ) -> Result<Option<(Arc<Tenant>, ScimClient)>, WorkerError> {
        let Some(tenant) = self.tenants.get(&self.pool, batch.tenant_id).await? else {
            warn!("batch for an unknown tenant");
            return Ok(None);
        };
        match ScimClient::new(
            self.http.clone(),
            &tenant.scim_base_url,
            tenant.scim_token.clone(),
            self.settings.retry.clone(),
        ) {
            Ok(client) => {
                let bulk = self
                    .bulk_support
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(tenant.scim_base_url.clone())
                    .or_default()
                    .clone();
                let client = client.with_bulk_support(bulk);
                // A base URL outside `allowed_hosts` is refused for good, not requeued.
                let client = match &self.settings.allowed_hosts {
                    Some(allowed) => client.with_allowed_hosts(allowed.clone())?,
                    None => client,
                };
                let client = match &self.limiter {
                    Some(limiter) => client.with_rate_limiter(limiter.clone()),
                    None => client,
                };
                Ok(Some((tenant, client)))
            }
            // Fixing the tenant's configuration lets the requeued batch through.
            Err(e) => Err(WorkerError::TenantScim(Box::new(e))),
        }
    }

    /// Maps, diffs and pushes every user of the batch, one result per entry. SCIM errors
    /// about one user become a failed user; an error of the tenant's SCIM service stops the
    /// push and comes back as [`WorkerError::TenantScim`], like any error that makes the
    /// whole batch worth retrying later (e.g. the database is unreachable).
    pub async fn sync_users(&self, batch: &BatchMessage) -> Result<PushedUsers, WorkerError> {
        let Some((tenant, client)) = self.client(batch).await? else {
            let failed = batch
                .users
                .iter()
                .map(|u| UserResult::failed(u.id.clone(), UNKNOWN_TENANT))
                .collect();
            return Ok(PushedUsers::unplanned(failed));
        };

        let (planned, deferred, mirror) =
            match plan_users(&self.pool, &tenant, &batch.users).await? {
                Ok(plan) => plan,
                Err(reason) => {
                    let failed = batch
                        .users
                        .iter()
                        .map(|u| UserResult::failed(u.id.clone(), reason))
                        .collect();
                    return Ok(PushedUsers::unplanned(failed));
                }
            };
        let refs = RefChanges::of_batch(&batch.users, &mirror, deferred);

        let mut results = Vec::new();
        let mut plans = Vec::new();
        for planned in planned {
            match planned {
                Planned::Superseded { entra_id } => results.push(UserResult::skipped(entra_id)),
                Planned::Plan { entra_id, plan } => plans.push((entra_id, plan)),
            }
        }
        let actions = plans
            .iter()
            .map(|(entra_id, plan)| (entra_id.clone(), object_action(&plan.action)))
            .collect();
        // The first tenant-level error ends the push, dropping the requests in flight: their
        // users are pushed again with the whole batch.
        let pushed = push_all(&client, plans, self.settings.scim_concurrency)
            .await
            .map_err(|e| WorkerError::TenantScim(Box::new(e)))?;
        results.extend(pushed);
        Ok(PushedUsers {
            results,
            refs,
            actions,
        })
    }
}

/// Refuses (for good) a batch whose run or dry run belongs to another tenant than the one
/// it names. A run that does not exist is left to the recording step (a foreign key).
async fn check_run_tenant(pool: &PgPool, batch: &BatchMessage) -> Result<(), WorkerError> {
    let sql = if batch.dry_run {
        "SELECT tenant_id FROM dry_runs WHERE id = $1"
    } else {
        "SELECT tenant_id FROM runs WHERE id = $1"
    };
    let owner: Option<uuid::Uuid> = sqlx::query_scalar(sql)
        .bind(batch.run_id.0)
        .fetch_optional(pool)
        .await?;
    match owner {
        Some(owner) if owner != batch.tenant_id.0 => Err(WorkerError::ForeignRun {
            tenant: batch.tenant_id,
            run: batch.run_id,
            owner: dirsync_proto::TenantId(owner),
        }),
        _ => Ok(()),
    }
}

/// A batch's users once pushed: one result per entry, the manager references to record,
/// and the action planned for each user that was planned (for `dirsync.objects`).
#[derive(Debug, Clone, Default)]
pub struct PushedUsers {
    pub results: Vec<UserResult>,
    pub refs: RefChanges,
    pub actions: HashMap<String, ObjectAction>,
}

impl PushedUsers {
    /// Results of users that never got a plan (unknown tenant, broken mapping).
    fn unplanned(results: Vec<UserResult>) -> Self {
        Self {
            results,
            ..Self::default()
        }
    }
}

/// A batch's users planned against the mirror, the manager references deferred, and the
/// mirror rows they were planned against.
pub type PlannedUsers = (Vec<Planned>, Vec<Deferred>, HashMap<String, MirrorUser>);

/// Plans `users` as a sync of `tenant` would: its mapping and policy, the mirror rows of
/// the users and the Webex ids of the managers they name (one query each). The inner
/// error is the tenant's mapping that cannot be used, the reason every user fails.
pub async fn plan_users<'t>(
    pool: &PgPool,
    tenant: &'t Tenant,
    users: &[dirsync_proto::SourceUser],
) -> Result<Result<PlannedUsers, &'t str>, WorkerError> {
    let mapping = match &tenant.mapping {
        Ok(mapping) => mapping.clone(),
        Err(reason) => return Ok(Err(reason)),
    };
    let ids: Vec<String> = users
        .iter()
        .map(|u| u.id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mirror = load_mirror(pool, tenant.id, &ids).await?;
    let policy = Policy {
        mapping,
        allow_hard_delete: tenant.allow_hard_delete,
        clear_attributes: tenant.clear_attributes,
        managers: load_webex_ids(pool, tenant.id, &managers_named(users, &mirror)).await?,
    };
    let (planned, deferred) = plan_batch_with(users, &mirror, &policy);
    Ok(Ok((planned, deferred, mirror)))
}
