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

use std::collections::HashSet;
use std::sync::Arc;

use dirsync_proto::{BatchMessage, BatchResultEvent, Counts, WIRE_VERSION};
use futures_util::stream;
use futures_util::{StreamExt, TryStreamExt};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tracing::{debug, warn};

use crate::broker::ResultPublisher;
use crate::config::WorkerSettings;
use crate::counters::RunCounters;
use crate::error::WorkerError;
use crate::group_sync::{GroupOutcome, GroupResult, record_groups, sync_groups};
use crate::mirror::load_mirror;
use crate::outcome::UserResult;
use crate::pipeline::{Planned, plan_batch};
use crate::push::push;
use crate::record::{BatchKey, record_batch, stored_counts};
use crate::scim::ScimClient;
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
        let tenants = TenantCache::new(settings.tenant_cache_ttl);
        BatchProcessor {
            pool,
            redis,
            http,
            tenants,
            counters,
            publisher,
            settings,
        }
    }

    pub fn publisher(&self) -> &ResultPublisher {
        &self.publisher
    }

    /// Runs steps 2 to 8 for one batch and returns the counts it is recorded with.
    pub async fn process(&self, batch: &BatchMessage) -> Result<Counts, WorkerError> {
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
                let results = self.sync_users(batch).await?;
                let recorded = record_batch(&self.pool, key, &results).await?;
                if !recorded.newly_recorded {
                    debug!("another delivery recorded this batch first");
                }
                recorded.counts
            }
        };
        let mut redis = self.redis.clone();
        self.counters
            .add_once(&mut redis, key.run, key.seq, counts)
            .await?;
        let event = BatchResultEvent {
            version: WIRE_VERSION,
            tenant_id: key.tenant,
            run_id: key.run,
            seq: key.seq,
            counts,
        };
        self.publisher.publish(&event).await?;
        Ok(counts)
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
            Ok(client) => Ok(Some((tenant, client))),
            // Fixing the tenant's configuration lets the requeued batch through.
            Err(e) => Err(WorkerError::TenantScim(Box::new(e))),
        }
    }

    /// Maps, diffs and pushes every user of the batch, one result per entry. SCIM errors
    /// about one user become a failed user; an error of the tenant's SCIM service stops the
    /// push and comes back as [`WorkerError::TenantScim`], like any error that makes the
    /// whole batch worth retrying later (e.g. the database is unreachable).
    pub async fn sync_users(&self, batch: &BatchMessage) -> Result<Vec<UserResult>, WorkerError> {
        let Some((tenant, client)) = self.client(batch).await? else {
            return Ok(batch
                .users
                .iter()
                .map(|u| UserResult::failed(u.id.clone(), UNKNOWN_TENANT))
                .collect());
        };

        let ids: Vec<String> = batch
            .users
            .iter()
            .map(|u| u.id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .map(str::to_string)
            .collect();
        let mirror = load_mirror(&self.pool, tenant.id, &ids).await?;
        let planned = plan_batch(&batch.users, &mirror, tenant.allow_hard_delete);

        let client = &client;
        // The first tenant-level error ends the stream, dropping the pushes in flight: their
        // users are pushed again with the whole batch.
        stream::iter(planned)
            .map(|planned| async move {
                match planned {
                    Planned::Superseded { entra_id } => Ok(UserResult::skipped(entra_id)),
                    Planned::Plan { entra_id, plan } => push(client, entra_id, plan)
                        .await
                        .map_err(|e| WorkerError::TenantScim(Box::new(e))),
                }
            })
            .buffer_unordered(self.settings.scim_concurrency.max(1))
            .try_collect()
            .await
    }
}
