//! Following a run's batches (which are recorded, which users are in flight) and sending
//! new ones within the run's window.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use dirsync_proto::{BatchMessage, Counts, RunId, SourceUser, TenantId, WIRE_VERSION};

use crate::CoordinatorError;
use crate::broker::{BatchPublisher, RunResults, Unconfirmed};
use crate::inflight::InFlight;
use crate::runs::{RunKind, RunStore, Staged};

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

/// Batches sent whose broker confirm is still awaited, at most: a confirm takes a quorum
/// queue's disk write, so the walk goes on while up to this many are on their way.
const UNCONFIRMED: usize = 8;

/// Publishes a run's batches in sequence: at most `window` unrecorded at once, and a batch
/// that shares a user with an unrecorded one waits for it. Each batch is staged in
/// `staged_batches` before it is sent (`runs.stage`) and stays there until the broker
/// confirmed it; up to [`UNCONFIRMED`] are on their way at once.
pub(super) struct Outbox {
    pub(super) publisher: BatchPublisher,
    pub(super) runs: RunStore,
    pub(super) run: RunId,
    pub(super) tenant: TenantId,
    /// The next batch's sequence number.
    pub(super) seq: u32,
    pub(super) window: u32,
    /// Sent batches whose confirm is still to be awaited, oldest first.
    pub(super) unconfirmed: VecDeque<Unconfirmed>,
    /// Where this attempt's sends spent their time, for the "walk done" line.
    pub(super) times: SendTimes,
}

/// Time spent by [`Outbox::send`]: waiting for the window or an overlapping batch, staging
/// the batch in PostgreSQL, sending it and awaiting the broker's confirms.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SendTimes {
    pub(super) waiting: Duration,
    pub(super) staging: Duration,
    pub(super) publishing: Duration,
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
        let started = Instant::now();
        tracker.drain();
        while self.seq.saturating_sub(tracker.recorded) >= self.window
            || tracker.inflight.overlaps(&users)
        {
            tracker.wait(cancel).await?;
        }
        let waited = Instant::now();
        self.times.waiting += waited - started;
        while self.unconfirmed.len() >= UNCONFIRMED {
            self.confirm_oldest().await?;
        }
        let confirmed = Instant::now();
        self.times.publishing += confirmed - waited;
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
        let staged = Staged {
            run: self.run,
            kind,
            cursor_after: after,
            seq: self.seq,
            bytes: &bytes,
            confirmed_below: self.confirmed_below(),
        };
        if entering.is_empty() {
            self.runs.stage(&staged).await?;
        } else {
            self.runs.stage_entering(&staged, entering).await?;
        }
        let staged = Instant::now();
        self.times.staging += staged - confirmed;
        let sent = self
            .publisher
            .send(self.tenant, self.run, self.seq, &bytes)
            .await?;
        self.unconfirmed.push_back(sent);
        self.times.publishing += staged.elapsed();
        self.seq += 1;
        Ok(())
    }

    /// The lowest sequence number whose confirm is still awaited (every batch below it is
    /// the broker's).
    pub(super) fn confirmed_below(&self) -> u32 {
        self.unconfirmed.front().map_or(self.seq, Unconfirmed::seq)
    }

    /// Awaits the confirm of every batch sent: before the walk is declared done, and before
    /// waiting for batches to be recorded (a refused publish must fail the run, not stall it).
    pub(super) async fn flush(&mut self) -> Result<(), CoordinatorError> {
        let started = Instant::now();
        while !self.unconfirmed.is_empty() {
            self.confirm_oldest().await?;
        }
        self.times.publishing += started.elapsed();
        Ok(())
    }

    async fn confirm_oldest(&mut self) -> Result<(), CoordinatorError> {
        if let Some(oldest) = self.unconfirmed.pop_front() {
            oldest.confirmed().await?;
        }
        Ok(())
    }
}

/// Publishes those of `batches` (a run's group objects, rebuilt identically on resume) that
/// are not recorded yet; returns how many batches the run gained.
pub(super) async fn publish_unrecorded(
    runs: &RunStore,
    amqp: &lapin::Connection,
    topology: &dirsync_proto::Topology,
    batches: &[BatchMessage],
) -> Result<u32, CoordinatorError> {
    let Some(first) = batches.first() else {
        return Ok(0);
    };
    let seqs = first.seq..first.seq + batches.len() as u32;
    publish_unrecorded_built(runs, amqp, topology, first.run_id, seqs, |seq| {
        std::future::ready(Ok(batches[(seq - first.seq) as usize].clone()))
    })
    .await
}

/// Publishes the batches `seqs` of `run` that are not recorded yet, each built by `build`
/// (identically on resume) only when it goes out, so that no more than one is in memory;
/// returns how many batches the run gained.
pub(super) async fn publish_unrecorded_built<Built>(
    runs: &RunStore,
    amqp: &lapin::Connection,
    topology: &dirsync_proto::Topology,
    run: RunId,
    seqs: std::ops::Range<u32>,
    build: impl Fn(u32) -> Built,
) -> Result<u32, CoordinatorError>
where
    Built: Future<Output = Result<BatchMessage, CoordinatorError>>,
{
    if seqs.is_empty() {
        return Ok(0);
    }
    let all: Vec<u32> = seqs.clone().collect();
    let recorded = runs.recorded_seqs(run, &all).await?;
    let publisher = BatchPublisher::new(amqp, topology).await?;
    for seq in seqs.clone() {
        if !recorded.contains(&seq) {
            publisher.publish_batch(&build(seq).await?).await?;
        }
    }
    Ok(seqs.len() as u32)
}
