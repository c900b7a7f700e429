//! The I/O of a provision on demand (see [`super`]): reading the user and its mirror row,
//! the `on_demand` run, publishing on the priority lane and waiting for the result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::Connection;
use sqlx::PgPool;

use dirsync_proto::{BatchMessage, Counts, RunId, SourceUser, TenantId, Topology, WIRE_VERSION};

use super::{
    Action, DEFAULT_WAIT, MirrorRow, ON_DEMAND, ProvisionOutcome, ProvisionResult, in_scope,
    outcome_of, precheck,
};
use crate::broker::{BatchPublisher, RunResults};
use crate::graph::GraphClient;
use crate::graph::rooms::mark_rooms;
use crate::{CoordinatorError, Tenant};

/// How often the wait also looks at PostgreSQL, in case the result event was lost.
const POLL: Duration = Duration::from_millis(500);

/// The broker connection of the provisions and their one publisher to the priority lane
/// (a confirm channel serves concurrent publishes; one per call would pile up channels).
#[derive(Debug)]
struct Broker {
    connection: Arc<Connection>,
    publisher: Arc<BatchPublisher>,
}

/// Provisions users on demand: the broker connection (made on first use, remade when it
/// broke) and the topology of the fleet. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Provisioner {
    pool: PgPool,
    topology: Topology,
    amqp_url: String,
    broker: Arc<tokio::sync::Mutex<Option<Broker>>>,
    wait: Duration,
}

impl Provisioner {
    pub fn new(pool: PgPool, amqp_url: &str, topology: Topology) -> Self {
        Self {
            pool,
            topology,
            amqp_url: amqp_url.to_string(),
            broker: Arc::new(tokio::sync::Mutex::new(None)),
            wait: DEFAULT_WAIT,
        }
    }

    /// Waits `wait` for the workers instead of [`DEFAULT_WAIT`].
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The connection and the publisher, remade when either broke.
    async fn broker(&self) -> Result<(Arc<Connection>, Arc<BatchPublisher>), CoordinatorError> {
        let mut current = self.broker.lock().await;
        if let Some(b) = current.as_ref()
            && b.connection.status().connected()
            && b.publisher.is_open()
        {
            return Ok((b.connection.clone(), b.publisher.clone()));
        }
        let connection = match current.take() {
            Some(b) if b.connection.status().connected() => b.connection,
            _ => Arc::new(crate::broker::connect(&self.amqp_url).await?),
        };
        let publisher = Arc::new(BatchPublisher::priority(&connection, &self.topology).await?);
        *current = Some(Broker {
            connection: connection.clone(),
            publisher: publisher.clone(),
        });
        Ok((connection, publisher))
    }

    /// Provisions the user `key` (object id or user principal name) of `tenant` now.
    pub async fn provision(
        &self,
        tenant: &Tenant,
        graph: &GraphClient,
        key: &str,
    ) -> Result<ProvisionOutcome, CoordinatorError> {
        let start = Instant::now();
        if !tenant.authorized {
            return Err(crate::tenants::not_authorized(tenant.id));
        }
        let mut user = graph
            .read_user(key)
            .await?
            .ok_or_else(|| CoordinatorError::UserNotFound(key.trim().to_string()))?;
        if tenant.scope.rooms {
            mark_rooms(std::slice::from_mut(&mut user), &graph.room_emails().await?);
        }
        let upn = user.str_attr("userPrincipalName").map(str::to_string);
        let before = self.mirror_row(tenant.id, &user.id).await?;
        let member = self.scope_member(tenant, &user.id).await?;
        let answer = |result, action, reason, webex_id, run_id| ProvisionOutcome {
            result,
            action,
            entra_id: user.id.clone(),
            user_principal_name: upn.clone(),
            webex_id,
            reason,
            run_id,
            elapsed_ms: start.elapsed().as_millis() as u64,
        };
        if let Some(reason) = precheck(
            &user,
            in_scope(&tenant.scope, &user, member),
            before.as_ref(),
        ) {
            let webex_id = before.as_ref().map(|m| m.webex_id.clone());
            return Ok(answer(
                ProvisionResult::Skipped,
                Action::None,
                Some(reason),
                webex_id,
                None,
            ));
        }
        let run = self.open_run(tenant.id).await?;
        let recorded = match self.push(tenant.id, run, user.clone()).await {
            Ok(counts) => counts,
            Err(e) => {
                self.fail_run(run, &e.to_string()).await?;
                return Err(e);
            }
        };
        let failure = self.failure(run, &user.id).await?;
        let after = self.mirror_row(tenant.id, &user.id).await?;
        self.complete_run(run, recorded).await?;
        let (result, action, reason) =
            outcome_of(recorded, failure, before.as_ref(), after.as_ref());
        let webex_id = after.map(|m| m.webex_id);
        Ok(answer(result, action, reason, webex_id, Some(run.0)))
    }

    /// Publishes the one-user batch on the priority lane and waits for it to be recorded;
    /// returns its counts.
    async fn push(
        &self,
        tenant: TenantId,
        run: RunId,
        user: SourceUser,
    ) -> Result<Counts, CoordinatorError> {
        let (amqp, publisher) = self.broker().await?;
        // Subscribed first, so the result event cannot pass before anyone listens.
        let mut results = RunResults::subscribe(&amqp, &self.topology, run).await?;
        let batch = BatchMessage {
            version: WIRE_VERSION,
            tenant_id: tenant,
            run_id: run,
            seq: 0,
            users: vec![user],
            groups: Vec::new(),
            dry_run: false,
        };
        publisher.publish_batch(&batch).await?;
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                event = results.events.recv() => {
                    if let Some(event) = event {
                        return Ok(event.counts);
                    }
                    // The subscription ended (the channel closed): PostgreSQL still says.
                    tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL)).await;
                }
                _ = poll.tick() => {}
                () = tokio::time::sleep_until(deadline) => {
                    return match self.recorded(run).await? {
                        Some(counts) => Ok(counts),
                        None => Err(CoordinatorError::WorkersTimedOut(self.wait.as_secs())),
                    };
                }
            }
            if let Some(counts) = self.recorded(run).await? {
                return Ok(counts);
            }
        }
    }

    async fn open_run(&self, tenant: TenantId) -> Result<RunId, CoordinatorError> {
        let run = RunId::new();
        sqlx::query(
            "INSERT INTO runs (id, tenant_id, kind, state, batches_published, total_batches) \
             VALUES ($1, $2, $3, 'draining', 1, 1)",
        )
        .bind(run.0)
        .bind(tenant.0)
        .bind(ON_DEMAND)
        .execute(&self.pool)
        .await?;
        Ok(run)
    }

    async fn complete_run(&self, run: RunId, counts: Counts) -> Result<(), CoordinatorError> {
        sqlx::query(
            "UPDATE runs SET state = 'completed', synced = $2, skipped = $3, failed = $4, \
             finished_at = now() WHERE id = $1 AND kind = 'on_demand'",
        )
        .bind(run.0)
        .bind(counts.synced as i64)
        .bind(counts.skipped as i64)
        .bind(counts.failed as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_run(&self, run: RunId, error: &str) -> Result<(), CoordinatorError> {
        sqlx::query(
            "UPDATE runs SET state = 'failed', error = $2, finished_at = now() \
             WHERE id = $1 AND kind = 'on_demand'",
        )
        .bind(run.0)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The counts of the run's one batch, once recorded.
    async fn recorded(&self, run: RunId) -> Result<Option<Counts>, CoordinatorError> {
        let row: Option<(i32, i32, i32)> = sqlx::query_as(
            "SELECT synced, skipped, failed FROM batch_results WHERE run_id = $1 AND seq = 0",
        )
        .bind(run.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(synced, skipped, failed)| Counts {
            synced: synced.max(0) as u64,
            skipped: skipped.max(0) as u64,
            failed: failed.max(0) as u64,
        }))
    }

    async fn failure(&self, run: RunId, user: &str) -> Result<Option<String>, CoordinatorError> {
        Ok(sqlx::query_scalar(
            "SELECT reason FROM failed_objects WHERE run_id = $1 AND entra_id = $2 LIMIT 1",
        )
        .bind(run.0)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn mirror_row(
        &self,
        tenant: TenantId,
        user: &str,
    ) -> Result<Option<MirrorRow>, CoordinatorError> {
        let row: Option<(String, bool)> = sqlx::query_as(
            "SELECT webex_id, active FROM mirror_users WHERE tenant_id = $1 AND entra_id = $2",
        )
        .bind(tenant.0)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(webex_id, active)| MirrorRow { webex_id, active }))
    }

    /// Whether the scope the last run resolved holds the user (filtered scopes only).
    async fn scope_member(&self, tenant: &Tenant, user: &str) -> Result<bool, CoordinatorError> {
        if tenant.scope.all {
            return Ok(true);
        }
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM scope_members WHERE tenant_id = $1 AND entra_id = $2)",
        )
        .bind(tenant.id.0)
        .bind(user)
        .fetch_one(&self.pool)
        .await?)
    }
}
