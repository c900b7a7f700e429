//! Following a run's batches (which are recorded, which users are in flight) and sending
//! new ones within the run's window.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use dirsync_proto::{BatchMessage, Counts, RunId, SourceUser, TenantId, WIRE_VERSION};

use crate::CoordinatorError;
use crate::broker::{BatchPublisher, RunResults};
use crate::inflight::InFlight;
use crate::runs::{RunKind, RunStore};

/// How often the tracker re-reads PostgreSQL when no result event arrives.
const POLL: Duration = Duration::from_millis(500);

/// Follows a run's batches: which are recorded, and which users are in flight.
pub(super) struct Tracker {
    pub(super) runs: RunStore,
    pub(super) run: RunId,
    pub(super) results: RunResults,
    /// Sequence numbers known to be recorded.
    pub(super) seen: HashSet<u32>,
    pub(super) recorded: u32,
    pub(super) counts: Counts,
    pub(super) inflight: InFlight,
    /// The tenant, and when this attempt started: a credential refusal seen by a worker
    /// after that stops the attempt.
    pub(super) tenant: TenantId,
    pub(super) pool: sqlx::PgPool,
    pub(super) started: chrono::DateTime<chrono::Utc>,
}

impl Tracker {
    pub(super) fn mark_recorded(&mut self, seq: u32) {
        self.seen.insert(seq);
        self.inflight.recorded(seq);
        self.recorded = self.recorded.max(self.seen.len() as u32);
    }

    /// Takes the result events already delivered, without waiting. Each event is sent only
    /// after its batch committed, so the distinct sequence numbers seen are a lower bound
    /// of what PostgreSQL holds.
    pub(super) fn drain(&mut self) {
        while let Ok(e) = self.results.events.try_recv() {
            self.mark_recorded(e.seq);
        }
    }

    /// Waits for at least one more result event, or re-reads PostgreSQL after a quiet spell
    /// (events can be missed: a restarted coordinator, a broker restart).
    pub(super) async fn wait(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<(), CoordinatorError> {
        tokio::select! {
            _ = cancel.cancelled() => return Err(CoordinatorError::Cancelled),
            event = self.results.events.recv() => match event {
                Some(e) => {
                    self.mark_recorded(e.seq);
                    self.drain();
                    return Ok(());
                }
                // The event stream is gone: fall back to polling, at the polling pace.
                None => tokio::time::sleep(POLL).await,
            },
            _ = tokio::time::sleep(POLL) => {}
        }
        self.refresh().await
    }

    /// Reads the authoritative count, sums and in-flight state from PostgreSQL.
    pub(super) async fn refresh(&mut self) -> Result<(), CoordinatorError> {
        // Batches of a tenant whose Webex token is refused are requeued by the workers and
        // never recorded: stop waiting for them (the run stays open and resumes later).
        if let Some(reason) =
            crate::quarantine::credentials_refused_since(&self.pool, self.tenant, self.started)
                .await?
        {
            return Err(CoordinatorError::Quarantined(reason));
        }
        let (n, counts) = self.runs.recorded(self.run).await?;
        self.recorded = self.recorded.max(n);
        self.counts = counts;
        if !self.inflight.is_empty() {
            for seq in self
                .runs
                .recorded_seqs(self.run, &self.inflight.pending())
                .await?
            {
                self.mark_recorded(seq);
            }
        }
        Ok(())
    }

    /// Waits until PostgreSQL holds all `total` batches; the counts are then final.
    pub(super) async fn settle(
        &mut self,
        total: u32,
        cancel: &CancellationToken,
    ) -> Result<(), CoordinatorError> {
        loop {
            while self.recorded < total {
                self.wait(cancel).await?;
            }
            let (n, counts) = self.runs.recorded(self.run).await?;
            self.recorded = n;
            self.counts = counts;
            if n >= total {
                return Ok(());
            }
        }
    }
}

/// Publishes a run's batches in sequence: at most `window` unrecorded at once, and a batch
/// that shares a user with an unrecorded one waits for it. Each batch is staged in the run
/// row before it is published (`runs.stage`).
pub(super) struct Outbox {
    pub(super) publisher: BatchPublisher,
    pub(super) runs: RunStore,
    pub(super) run: RunId,
    pub(super) tenant: TenantId,
    /// The next batch's sequence number.
    pub(super) seq: u32,
    pub(super) window: u32,
}

impl Outbox {
    /// Sends `users` as the next batch; the walk continues at `after`. `entering` names the
    /// users entering the scope that this batch carries (see `runs.stage_entering`).
    pub(super) async fn send(
        &mut self,
        tracker: &mut Tracker,
        kind: RunKind,
        users: Vec<SourceUser>,
        after: &str,
        entering: &[String],
        cancel: &CancellationToken,
    ) -> Result<(), CoordinatorError> {
        tracker.drain();
        while self.seq.saturating_sub(tracker.recorded) >= self.window
            || tracker.inflight.overlaps(&users)
        {
            tracker.wait(cancel).await?;
        }
        tracker.inflight.track(self.seq, &users);
        let bytes = BatchMessage {
            version: WIRE_VERSION,
            tenant_id: self.tenant,
            run_id: self.run,
            seq: self.seq,
            users,
            groups: Vec::new(),
            dry_run: false,
        }
        .encode();
        if entering.is_empty() {
            self.runs
                .stage(self.run, kind, after, self.seq, &bytes)
                .await?;
        } else {
            self.runs
                .stage_entering(self.run, kind, after, self.seq, &bytes, entering)
                .await?;
        }
        self.publisher
            .publish(self.tenant, self.run, self.seq, &bytes)
            .await?;
        self.seq += 1;
        Ok(())
    }
}

/// Publishes those of `batches` (a run's deactivations or group objects, rebuilt identically
/// on resume) that are not recorded yet; returns how many batches the run gained.
pub(super) async fn publish_unrecorded(
    runs: &RunStore,
    amqp: &lapin::Connection,
    topology: &dirsync_proto::Topology,
    batches: &[BatchMessage],
) -> Result<u32, CoordinatorError> {
    let Some(first) = batches.first() else {
        return Ok(0);
    };
    let seqs: Vec<u32> = batches.iter().map(|b| b.seq).collect();
    let recorded = runs.recorded_seqs(first.run_id, &seqs).await?;
    let publisher = BatchPublisher::new(amqp, topology).await?;
    for batch in batches {
        if !recorded.contains(&batch.seq) {
            publisher.publish_batch(batch).await?;
        }
    }
    Ok(batches.len() as u32)
}
