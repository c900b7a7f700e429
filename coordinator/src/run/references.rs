//! The reference pass at the end of a run's walk (see [`crate::references`]): the manager
//! references workers deferred are sent again, as follow-up entries, once their manager is
//! in Webex.
//!
//! In an initial cycle about half of the users come before their manager in Graph's order,
//! so the pass is a large part of the run: its batches are bigger than the walk's (they
//! carry one attribute each), and the next page of references is read while the current
//! batch is staged and published.

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use dirsync_proto::{RunId, SourceUser, TenantId};

use super::tracker::{Outbox, Tracker};
use crate::CoordinatorError;
use crate::references::pending;
use crate::runs::RunKind;

/// References in one follow-up batch: an entry is a user id and a manager id, and the
/// worker sends them as Bulk PATCHes of 100.
pub const REFERENCES_PER_BATCH: usize = 500;

/// Sends every deferred reference whose manager is in Webex now; returns how many.
#[tracing::instrument(name = "reference_pass", skip_all)]
pub(super) async fn send(
    pool: &PgPool,
    tenant: TenantId,
    outbox: &mut Outbox,
    tracker: &mut Tracker,
    kind: RunKind,
    delta: &str,
    cancel: &CancellationToken,
) -> Result<u64, CoordinatorError> {
    let mut applied = 0u64;
    let run = outbox.run;
    let mut page = Some(pending(pool, tenant, run, None, REFERENCES_PER_BATCH).await?);
    while let Some((refs, next)) = page.take() {
        let following = read_after(pool, tenant, run, next);
        page = if refs.is_empty() {
            following.await?
        } else {
            applied += refs.len() as u64;
            let (sent, following) = tokio::join!(
                outbox.send(tracker, kind, refs, delta, &[], cancel),
                following
            );
            sent?;
            following?
        };
    }
    Ok(applied)
}

/// The page of references after `after` (none when the previous page was the last).
async fn read_after(
    pool: &PgPool,
    tenant: TenantId,
    run: RunId,
    after: Option<String>,
) -> Result<Option<(Vec<SourceUser>, Option<String>)>, CoordinatorError> {
    match after {
        Some(after) => Ok(Some(
            pending(pool, tenant, run, Some(&after), REFERENCES_PER_BATCH).await?,
        )),
        None => Ok(None),
    }
}
