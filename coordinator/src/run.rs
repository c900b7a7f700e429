//! One sync run of one tenant: enumerate, publish, wait for every batch, commit.
//!
//! The deltaLink advances only in [`RunStore::complete`], after every published batch has a
//! row in `batch_results`; a crash anywhere before that leaves the run open, and the next
//! attempt resumes it from its checkpointed cursor (batches are idempotent by run and seq).

mod avatars;
mod dry_run;
mod references;
mod scope;
mod tracker;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::Connection;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use dirsync_proto::{BatchMessage, Counts, GroupCounts, RunId, TenantId, Topology};

use crate::broker::{BatchPublisher, RunResults};
use crate::graph::rooms::mark_rooms;
use crate::graph::{DeltaPage, GraphClient, PageLink};
use crate::group_objects::group_batches;
use crate::inflight::InFlight;
use crate::quarantine;
use crate::reconcile::Deactivations;
use crate::runs::{RunKind, RunStore};
use crate::scope_store::ScopeStore;
use crate::{CoordinatorError, TenantStore};
use tracker::{Outbox, Tracker, publish_unrecorded, publish_unrecorded_built};

/// Live progress of a run, for progress displays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunProgress {
    pub run_id: Option<RunId>,
    pub pages: u32,
    pub batches_published: u32,
    pub batches_recorded: u32,
    pub users_published: u64,
    /// Entries of the users walk dropped as out of the tenant's scope.
    pub out_of_scope: u64,
    pub enumeration_done: bool,
}

/// What a finished run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunOutcome {
    pub run_id: RunId,
    pub kind: RunKind,
    pub batches: u32,
    pub counts: Counts,
    /// Group objects: synced, to be synced, failed.
    pub groups: GroupCounts,
    pub wall_ms: u64,
}

/// Runs syncs; shared by the scheduler, the command line and the demo.
#[derive(Debug, Clone)]
pub struct Runner {
    pool: PgPool,
    /// The broker connection, replaced by a new one when it is found broken at the start
    /// of a run (with [`Runner::with_reconnect`]).
    amqp: Arc<tokio::sync::Mutex<Arc<Connection>>>,
    amqp_url: Option<String>,
    topology: Topology,
    http: reqwest::Client,
    window: u32,
    /// RU per 10 s each tenant's Graph client keeps to.
    graph_budget: u32,
    /// Seconds from a user's last failure to its n-th retry (the last step repeats).
    escrow_retry: Vec<i32>,
    /// The deployment's quarantine thresholds; a tenant's own values override them.
    quarantine: quarantine::Thresholds,
    /// How avatar URLs are made, when this deployment serves avatars.
    avatars: Option<crate::avatars::AvatarSigner>,
    /// Most users whose photo one run looks at.
    avatar_budget: usize,
    /// Opens the tenant's sealed client secret; a run without it fails before it starts.
    secrets: Option<dirsync_proto::SecretsKey>,
}

/// Photos looked at per run by default: a 300,000-user tenant is gone through in 15 runs
/// (10 hours at the default interval), at 20,000 Graph requests a run.
pub const DEFAULT_AVATAR_CHECKS_PER_RUN: usize = 20_000;

/// Entra's retry schedule for objects in escrow: 6 h, 12 h, 24 h, then daily.
pub const DEFAULT_ESCROW_RETRY_SECS: [u32; 3] = [6 * 3600, 12 * 3600, 24 * 3600];

impl Runner {
    pub fn new(pool: PgPool, amqp: Arc<Connection>, topology: Topology, window: u32) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("the http client's configuration is static");
        Self {
            pool,
            amqp: Arc::new(tokio::sync::Mutex::new(amqp)),
            amqp_url: None,
            topology,
            http,
            window: window.max(1),
            graph_budget: crate::graph::DEFAULT_RU_PER_10S,
            escrow_retry: DEFAULT_ESCROW_RETRY_SECS.map(|s| s as i32).to_vec(),
            quarantine: quarantine::Thresholds::ENTRA,
            avatars: None,
            avatar_budget: DEFAULT_AVATAR_CHECKS_PER_RUN,
            secrets: None,
        }
    }

    /// The deployment's key for tenant secrets (`DIRSYNC_SECRETS_KEY`); without it every
    /// run fails saying so.
    pub fn with_secrets(mut self, key: dirsync_proto::SecretsKey) -> Self {
        self.secrets = Some(key);
        self
    }

    /// [`Self::with_avatars`] when `signer` is set; without it, no avatars are synced.
    pub fn with_avatars_if(
        self,
        signer: Option<crate::avatars::AvatarSigner>,
        budget: usize,
    ) -> Self {
        match signer {
            Some(signer) => self.with_avatars(signer, budget),
            None => self,
        }
    }

    /// Reconnects to the broker at `amqp_url` when a run starts and the connection it has
    /// is broken (a broker restart, a dropped TCP connection), instead of failing every run
    /// until the process restarts.
    pub fn with_reconnect(mut self, amqp_url: &str) -> Self {
        self.amqp_url = Some(amqp_url.to_string());
        self
    }

    /// The database pool runs use.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The broker names runs use.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The broker connection runs use now (for diagnostics and tests).
    pub async fn broker_connection(&self) -> Arc<Connection> {
        self.amqp.lock().await.clone()
    }

    /// The broker connection for a run: the current one if it is up, else a new one (also
    /// what `/readyz` checks, [`crate::readiness`]).
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, CoordinatorError> {
        let mut current = self.amqp.lock().await;
        if !current.status().connected()
            && let Some(url) = &self.amqp_url
        {
            tracing::warn!("the broker connection is down, reconnecting");
            *current = Arc::new(crate::broker::connect(url).await?);
        }
        Ok(current.clone())
    }

    /// Serves avatars: tenants with "sync user avatars" get URLs made by `signer`, and each
    /// run looks at up to `budget` users' photos.
    pub fn with_avatars(mut self, signer: crate::avatars::AvatarSigner, budget: usize) -> Self {
        self.avatars = Some(signer);
        self.avatar_budget = budget;
        self
    }

    /// Retries users in escrow `schedule` seconds after their last failure (n-th retry:
    /// `schedule[n - 1]`, the last step repeating) instead of Entra's 6 h, 12 h, 24 h.
    pub fn with_escrow_retry(mut self, schedule: &[u32]) -> Self {
        self.escrow_retry = crate::escrow::schedule(schedule);
        self
    }

    /// Judges tenants without their own quarantine thresholds by `defaults` instead of
    /// Entra's.
    pub fn with_quarantine(mut self, defaults: quarantine::Thresholds) -> Self {
        self.quarantine = defaults;
        self
    }

    /// Runs (or resumes) one sync of `tenant` to completion.
    /// A refused credential (Graph, or Webex as seen by the workers) quarantines the tenant,
    /// and so does a completed run with too many failures.
    #[tracing::instrument(name = "run", skip_all, fields(tenant_id = %tenant_id, run_id = tracing::field::Empty, kind = tracing::field::Empty))]
    pub async fn sync_tenant(
        &self,
        tenant_id: TenantId,
        progress: Option<&watch::Sender<RunProgress>>,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, CoordinatorError> {
        let started = Instant::now();
        let mut kind = None;
        let result = self
            .sync_tenant_once(tenant_id, progress, cancel, &mut kind)
            .await;
        record_run(kind, &result, started.elapsed());
        match &result {
            Err(CoordinatorError::Quarantined(reason)) => {
                tracing::warn!(%reason, "webex refused the tenant's credentials, quarantined");
                quarantine::quarantine(&self.pool, tenant_id, "credentials", reason).await?;
            }
            Err(e) if e.is_credential_failure() => {
                tracing::warn!(error = %e, "graph refused the tenant's credentials, quarantined");
                quarantine::quarantine(&self.pool, tenant_id, "credentials", &e.to_string())
                    .await?;
            }
            Ok(outcome) => {
                let counts = outcome.counts;
                let thresholds =
                    quarantine::thresholds(&self.pool, tenant_id, self.quarantine).await?;
                if let Some(reason) = quarantine::judge(thresholds, counts.failed, counts.total()) {
                    tracing::warn!(%reason, "too many failures, tenant quarantined");
                    quarantine::quarantine(&self.pool, tenant_id, "failures", &reason).await?;
                }
            }
            Err(_) => {}
        }
        result
    }

    async fn sync_tenant_once(
        &self,
        tenant_id: TenantId,
        progress: Option<&watch::Sender<RunProgress>>,
        cancel: &CancellationToken,
        kind_seen: &mut Option<RunKind>,
    ) -> Result<RunOutcome, CoordinatorError> {
        let started = Instant::now();
        let attempt_started = chrono::Utc::now();
        let tenant = self.tenant(tenant_id).await?;
        if !tenant.authorized {
            return Err(crate::tenants::not_authorized(tenant_id));
        }
        let runs = RunStore::new(self.pool.clone());
        let graph = GraphClient::new(self.http.clone(), &tenant).with_budget(self.graph_budget);

        let open = match runs.open_run(tenant_id).await? {
            Some(open) => open,
            None => {
                // A scope widened in a way no delta shows (back to all users, rooms on)
                // has users that only a full walk finds.
                let (kind, link) = match &tenant.delta_link {
                    Some(delta) if !tenant.full_walk_requested => {
                        (RunKind::Incremental, delta.clone())
                    }
                    _ => (RunKind::Initial, graph.initial_users_url()),
                };
                let id = runs.create(tenant_id, kind, &link).await?;
                runs.open_run(tenant_id)
                    .await?
                    .filter(|o| o.id == id)
                    .ok_or_else(|| {
                        CoordinatorError::RunFailed(
                            id.to_string(),
                            "another run of this tenant started at the same time".into(),
                        )
                    })?
            }
        };
        let run = open.id;
        *kind_seen = Some(open.kind);
        tracing::Span::current().record("run_id", tracing::field::display(run));
        tracing::Span::current().record("kind", open.kind.as_str());
        tracing::info!(
            kind = open.kind.as_str(),
            resumed = open.batches_published > 0,
            "run started"
        );

        let amqp = self.connection().await?;
        let results = RunResults::subscribe(&amqp, &self.topology, run).await?;
        let mut tracker = Tracker {
            runs: runs.clone(),
            run,
            results,
            seen: HashSet::new(),
            recorded: 0,
            counts: Counts::default(),
            inflight: InFlight::default(),
            tenant: tenant_id,
            pool: self.pool.clone(),
            started: attempt_started,
        };
        (tracker.recorded, tracker.counts) = runs.recorded(run).await?;
        let mut state = RunProgress {
            run_id: Some(run),
            batches_published: open.batches_published,
            ..Default::default()
        };
        let report = |s: &RunProgress| {
            if let Some(p) = progress {
                p.send_replace(s.clone());
            }
        };

        let mut kind = open.kind;
        let deactivations = Deactivations::new(self.pool.clone());
        let scopes = ScopeStore::new(self.pool.clone());
        let (total, delta_link) = if open.enumerating {
            let mut outbox = Outbox {
                publisher: BatchPublisher::new(&amqp, &self.topology).await?,
                runs: runs.clone(),
                run,
                tenant: tenant_id,
                seq: open.batches_published,
                window: self.window,
                unconfirmed: Default::default(),
                times: Default::default(),
            };
            let mut graph_time = Duration::ZERO;
            let mut url = open
                .cursor_link
                .clone()
                .unwrap_or_else(|| graph.initial_users_url());
            if !open.staged.is_empty() {
                // A previous coordinator staged these batches and may have published them:
                // those not recorded yet go out again with the very same bytes (a duplicate
                // delivery is skipped by the workers once one copy is recorded).
                let seqs: Vec<u32> = open.staged.iter().map(|(seq, _)| *seq).collect();
                let recorded = runs.recorded_seqs(run, &seqs).await?;
                for (staged, bytes) in &open.staged {
                    if !recorded.contains(staged) {
                        let batch = BatchMessage::decode(bytes).map_err(|e| {
                            CoordinatorError::RunFailed(
                                run.to_string(),
                                format!("staged batch {staged} unreadable: {e}"),
                            )
                        })?;
                        tracker.inflight.track(*staged, &batch.users);
                        outbox
                            .publisher
                            .publish(tenant_id, run, *staged, bytes)
                            .await?;
                        tracing::info!(
                            seq = staged,
                            "republished a batch staged before the restart"
                        );
                    }
                    outbox.seq = outbox.seq.max(staged + 1);
                }
            }
            // Batches a previous coordinator published are not in this tracker's in-flight
            // set; let them be recorded before any page that may share their users goes out.
            tracker.settle(outbox.seq, cancel).await?;
            // Diverted entries are keyed by walk and page: a resync restarts the walk at the
            // same first page, which must not collide with the earlier walk's rows.
            let mut walk = crate::reconcile::walk_start(&self.pool, run).await?;
            let mut diverted = deactivations.diverted_users(run).await?;
            let filtered = tenant.scope.is_filtered();
            let rooms = rooms_of(&graph, &tenant, cancel).await?;
            if !open.scope_done {
                let round = if tenant.scope.needs_groups() {
                    Some(scope::groups_round(&graph, &tenant, cancel).await?)
                } else {
                    None
                };
                // A full users walk sees every user: only an incremental one needs the
                // users who enter the scope read one by one.
                scopes
                    .resolve(
                        run,
                        tenant_id,
                        &tenant.scope,
                        round.as_ref(),
                        kind == RunKind::Incremental,
                        &self.escrow_retry,
                    )
                    .await?;
            }
            {
                let entering = scope::Entering {
                    graph: &graph,
                    scopes: &scopes,
                    deactivations: &deactivations,
                    run,
                    kind,
                    cursor: &url,
                    walk,
                    rooms: &rooms,
                };
                state.users_published += entering
                    .send(&mut outbox, &mut tracker, &mut diverted, cancel)
                    .await?;
                state.batches_published = outbox.seq;
                report(&state);
            }
            // A fresh enumeration that is itself told to resync would loop forever.
            let mut resynced = false;
            // The next page, asked for while the current one was staged and published.
            let mut prefetched = None;
            loop {
                let fetched = match prefetched.take() {
                    Some(page) => page,
                    None => {
                        let (page, took) = fetch_page(&graph, &url, cancel).await?;
                        graph_time += took;
                        page
                    }
                };
                let mut page = match fetched {
                    Ok(page) => page,
                    Err(CoordinatorError::ResyncRequired(why)) if !resynced => {
                        // Batches already published stay valid; the walk restarts from scratch.
                        tracing::warn!(reason = %why, "delta state gone, full resync");
                        resynced = true;
                        runs.discard_delta_link(tenant_id).await?;
                        deactivations
                            .full_enumeration_starts(run, outbox.seq)
                            .await?;
                        walk = outbox.seq as i32;
                        kind = RunKind::Initial;
                        *kind_seen = Some(kind);
                        url = graph.initial_users_url();
                        continue;
                    }
                    Err(e) => {
                        // The run stays open: the batches it published remain its own, and
                        // the next attempt resumes from the checkpoint. A new run instead
                        // would race those batches' late, older writes.
                        tracing::warn!(error = %e, "enumeration interrupted, the run resumes on the next attempt");
                        return Err(e);
                    }
                };
                state.pages += 1;
                mark_rooms(&mut page.users, &rooms);
                if filtered && !page.users.is_empty() {
                    let ids: Vec<&str> = page.users.iter().map(|u| u.id.as_str()).collect();
                    let (in_scope, mirrored) = scopes.lookup(tenant_id, &ids).await?;
                    let kept = crate::scope::filter_page(
                        std::mem::take(&mut page.users),
                        &in_scope,
                        &mirrored,
                    );
                    page.users = kept.users;
                    state.out_of_scope += kept.dropped;
                }
                // Deactivating entries wait for the end of the run and the deletion guard.
                let page = deactivations
                    .divert_page(run, walk, &url, page, &mut diverted)
                    .await?;
                if !page.users.is_empty() {
                    state.users_published += page.users.len() as u64;
                    let after = match &page.link {
                        PageLink::Next(link) | PageLink::Delta(link) => link,
                    };
                    let send = outbox.send(&mut tracker, kind, page.users, after, &[], cancel);
                    match &page.link {
                        // Graph's answer and the stage and publish overlap: they take about
                        // as long, and neither needs the other.
                        PageLink::Next(next) => {
                            let (sent, next) = tokio::join!(send, fetch_page(&graph, next, cancel));
                            sent?;
                            let (page, took) = next?;
                            graph_time += took;
                            prefetched = Some(page);
                        }
                        PageLink::Delta(_) => send.await?,
                    }
                } else if let PageLink::Next(next) = &page.link {
                    runs.checkpoint(run, kind, next, outbox.seq, outbox.confirmed_below())
                        .await?;
                }
                state.batches_published = outbox.seq;
                state.batches_recorded = tracker.recorded;
                report(&state);
                match page.link {
                    PageLink::Next(next) => url = next,
                    PageLink::Delta(delta) => {
                        // Second pass: manager references deferred until their manager was
                        // in Webex. Staged like pages, so a resumed run resends the same.
                        outbox.flush().await?;
                        let t = outbox.times;
                        tracing::info!(
                            batches = outbox.seq,
                            graph_ms = graph_time.as_millis() as u64,
                            window_wait_ms = t.waiting.as_millis() as u64,
                            stage_ms = t.staging.as_millis() as u64,
                            publish_ms = t.publishing.as_millis() as u64,
                            walk_ms = started.elapsed().as_millis() as u64,
                            "walk done"
                        );
                        tracker.settle(outbox.seq, cancel).await?;
                        tracing::info!("walk recorded, reference pass");
                        let applied = references::send(
                            &self.pool,
                            tenant_id,
                            &mut outbox,
                            &mut tracker,
                            kind,
                            &delta,
                            cancel,
                        )
                        .await?;
                        if applied > 0 {
                            tracing::info!(users = applied, "deferred manager references sent");
                        }
                        if tenant.scope.avatars {
                            match &self.avatars {
                                Some(signer) => {
                                    let pass = avatars::AvatarPass {
                                        pool: &self.pool,
                                        graph: &graph,
                                        signer,
                                        tenant: tenant_id,
                                        budget: self.avatar_budget,
                                    };
                                    pass.send(&mut outbox, &mut tracker, kind, &delta, cancel)
                                        .await?;
                                }
                                None => tracing::warn!(
                                    "the tenant syncs avatars but this coordinator serves none \
                                     (set DIRSYNC_PUBLIC_URL and DIRSYNC_AVATAR_KEY)"
                                ),
                            }
                        }
                        outbox.flush().await?;
                        runs.finish_enumeration(run, outbox.seq, &delta).await?;
                        break (outbox.seq, delta);
                    }
                }
                if cancel.is_cancelled() {
                    return Err(CoordinatorError::Cancelled);
                }
            }
        } else {
            let total = open.total_batches.unwrap_or(open.batches_published);
            let delta = open.new_delta_link.clone().ok_or_else(|| {
                CoordinatorError::RunFailed(
                    run.to_string(),
                    "draining run without a deltaLink".into(),
                )
            })?;
            (total, delta)
        };
        state.enumeration_done = true;
        tracing::info!(batches = total, "enumeration done, waiting for workers");

        state.batches_recorded = tracker.recorded;
        report(&state);
        tracker.settle(total, cancel).await?;
        // Then the deactivations (and a full enumeration's gone users), if the guard allows.
        let held = deactivations.batches(run, tenant_id, kind, total).await?;
        let total = total
            + publish_unrecorded_built(&runs, &amqp, &self.topology, run, held.seqs(), |seq| {
                held.batch(seq)
            })
            .await?;
        tracker.settle(total, cancel).await?;
        // Then the group objects, once their members' Webex ids are all recorded.
        let groups = group_batches(&self.pool, run, tenant_id, &tenant.scope, total).await?;
        let total = total + publish_unrecorded(&runs, &amqp, &self.topology, &groups).await?;
        tracker.settle(total, cancel).await?;
        state.batches_recorded = tracker.recorded;
        report(&state);
        let group_counts = runs.recorded_groups(run).await?;
        runs.complete(run, tenant_id, &delta_link, tracker.counts, group_counts)
            .await?;
        let outcome = RunOutcome {
            run_id: run,
            kind,
            batches: total,
            counts: tracker.counts,
            groups: group_counts,
            wall_ms: started.elapsed().as_millis() as u64,
        };
        tracing::info!(
            synced = outcome.counts.synced,
            skipped = outcome.counts.skipped,
            failed = outcome.counts.failed,
            wall_ms = outcome.wall_ms,
            "run completed"
        );
        Ok(outcome)
    }

    /// The tenant with its secrets opened (this runner's key).
    async fn tenant(&self, tenant_id: TenantId) -> Result<crate::Tenant, CoordinatorError> {
        let mut tenants = TenantStore::new(self.pool.clone());
        if let Some(key) = &self.secrets {
            tenants = tenants.with_key(key.clone());
        }
        tenants.get(tenant_id).await
    }

    /// Makes every Graph client keep to `ru_per_10s` resource units per 10 s instead of
    /// Graph's L tier ([`crate::graph::DEFAULT_RU_PER_10S`]).
    pub fn with_graph_budget(mut self, ru_per_10s: u32) -> Self {
        self.graph_budget = ru_per_10s;
        self
    }
}

/// One page of the users walk and how long Graph took to answer, or `Cancelled`.
async fn fetch_page(
    graph: &GraphClient,
    url: &str,
    cancel: &CancellationToken,
) -> Result<(Result<DeltaPage, CoordinatorError>, Duration), CoordinatorError> {
    let asked = Instant::now();
    tokio::select! {
        page = graph.users_page(url) => Ok((page, asked.elapsed())),
        _ = cancel.cancelled() => Err(CoordinatorError::Cancelled),
    }
}

/// The room addresses of a tenant that syncs rooms (else none). Rooms are few: read once per
/// attempt, then matched page by page.
async fn rooms_of(
    graph: &GraphClient,
    tenant: &crate::Tenant,
    cancel: &CancellationToken,
) -> Result<HashSet<String>, CoordinatorError> {
    if !tenant.scope.rooms {
        return Ok(HashSet::new());
    }
    tokio::select! {
        rooms = graph.room_emails() => rooms,
        _ = cancel.cancelled() => Err(CoordinatorError::Cancelled),
    }
}

/// A finished run attempt in the `dirsync.runs` and `dirsync.run.duration` metrics (none
/// for an attempt that ended before it had a run).
fn record_run(
    kind: Option<RunKind>,
    result: &Result<RunOutcome, CoordinatorError>,
    took: Duration,
) {
    use dirsync_telemetry::labels::{RunKind as Kind, RunOutcome as Outcome};
    let Some(kind) = kind else {
        return;
    };
    let kind = match kind {
        RunKind::Initial => Kind::Initial,
        RunKind::Incremental => Kind::Incremental,
    };
    let outcome = match result {
        Ok(_) => Outcome::Completed,
        Err(CoordinatorError::AwaitingApproval { .. }) => Outcome::Held,
        Err(CoordinatorError::Cancelled) => Outcome::Cancelled,
        Err(_) => Outcome::Failed,
    };
    dirsync_telemetry::metrics().run_finished(kind, outcome, took);
}
