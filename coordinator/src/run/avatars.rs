//! The avatar pass at the end of a run's walk (see [`crate::avatars`]): look at the photos of
//! up to a budget of active users, and send the users whose Webex avatar URL must change.

use futures_util::{StreamExt, stream};
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use dirsync_proto::{PARTIAL_ATTRIBUTE, PHOTO_ATTRIBUTE, SourceUser, TenantId};

use super::tracker::{Outbox, Tracker};
use crate::CoordinatorError;
use crate::avatars::{self, AvatarSigner, Candidate};
use crate::graph::GraphClient;
use crate::guard::USERS_PER_BATCH;
use crate::runs::RunKind;

/// Photo requests in flight at once for one run.
const CONCURRENCY: usize = 8;

/// After this many failed photo requests the pass gives up for this run (Graph's photo
/// service is likely down); the users come round again on a later run.
const MAX_ERRORS: usize = 50;

/// What one pass did, for the run's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct AvatarPassReport {
    pub checked: u64,
    pub changed: u64,
    pub errors: u64,
}

pub(super) struct AvatarPass<'a> {
    pub pool: &'a PgPool,
    pub graph: &'a GraphClient,
    pub signer: &'a AvatarSigner,
    pub tenant: TenantId,
    /// Most users looked at in one run.
    pub budget: usize,
}

impl AvatarPass<'_> {
    /// Looks at the photos and sends the changes as follow-up entries of the run.
    #[tracing::instrument(name = "avatar_pass", skip_all)]
    pub(super) async fn send(
        &self,
        outbox: &mut Outbox,
        tracker: &mut Tracker,
        kind: RunKind,
        delta: &str,
        cancel: &CancellationToken,
    ) -> Result<AvatarPassReport, CoordinatorError> {
        let mut report = AvatarPassReport::default();
        // Users looked at from now on are not candidates again in this pass.
        let (since,): (chrono::DateTime<chrono::Utc>,) =
            sqlx::query_as("SELECT now()").fetch_one(self.pool).await?;
        while (report.checked as usize) < self.budget && (report.errors as usize) < MAX_ERRORS {
            let want = USERS_PER_BATCH.min(self.budget - report.checked as usize);
            let candidates = avatars::candidates(self.pool, self.tenant, want, since).await?;
            if candidates.is_empty() {
                break;
            }
            let looked = tokio::select! {
                looked = self.look(&candidates) => looked,
                _ = cancel.cancelled() => return Err(CoordinatorError::Cancelled),
            };
            let looked = match looked {
                Ok(looked) => looked,
                Err(CoordinatorError::Invalid(why)) => {
                    tracing::warn!(reason = %why, "avatar pass stopped");
                    report.errors += 1;
                    break;
                }
                Err(e) => return Err(e),
            };
            let mut entries = Vec::new();
            for (candidate, etag) in candidates.iter().zip(looked) {
                match etag {
                    Ok(etag) => {
                        if let Some(url) =
                            avatars::change(self.signer, self.tenant, candidate, etag.as_deref())
                        {
                            entries.push(entry(&candidate.entra_id, url));
                        }
                    }
                    Err(_) => report.errors += 1,
                }
            }
            let ids: Vec<String> = candidates.into_iter().map(|c| c.entra_id).collect();
            avatars::checked(self.pool, self.tenant, &ids).await?;
            report.checked += ids.len() as u64;
            report.changed += entries.len() as u64;
            if !entries.is_empty() {
                outbox
                    .send(tracker, kind, entries, delta, &[], cancel)
                    .await?;
            }
        }
        if report.errors > 0 {
            tracing::warn!(
                errors = report.errors,
                "photo requests failed; those users are looked at again on a later run"
            );
        }
        tracing::info!(
            checked = report.checked,
            changed = report.changed,
            "avatar pass done"
        );
        Ok(report)
    }

    /// The entity tag of each candidate's photo, in order. A refused credential ends the
    /// run attempt; a refused permission ends the pass (`Invalid`); other errors are the
    /// user's alone.
    async fn look(
        &self,
        candidates: &[Candidate],
    ) -> Result<Vec<Result<Option<String>, CoordinatorError>>, CoordinatorError> {
        // Owned ids: futures that borrow from the stream's items are not `Send` for every
        // lifetime, which a spawned run needs.
        let graph = self.graph;
        let ids: Vec<String> = candidates.iter().map(|c| c.entra_id.clone()).collect();
        let looked: Vec<_> = stream::iter(ids)
            .map(|id| async move { graph.photo_etag(&id).await })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for e in looked.iter().filter_map(|r| r.as_ref().err()) {
            match e {
                // 403 is this permission alone (photos need ProfilePhoto.Read.All or
                // User.Read.All): the pass stops, the tenant is not quarantined for it.
                CoordinatorError::GraphStatus { status: 403, .. } => {
                    return Err(CoordinatorError::Invalid(format!(
                        "graph refused to read photos (grant the app ProfilePhoto.Read.All): {e}"
                    )));
                }
                e if e.is_credential_failure() => {
                    return Err(CoordinatorError::GraphAuth(e.to_string()));
                }
                _ => {}
            }
        }
        Ok(looked)
    }
}

/// A follow-up entry that sets (or with `None` removes) a user's avatar URL.
fn entry(entra_id: &str, url: Option<String>) -> SourceUser {
    let mut attributes = Map::new();
    attributes.insert(PARTIAL_ATTRIBUTE.into(), Value::Bool(true));
    attributes.insert(
        PHOTO_ATTRIBUTE.into(),
        url.map_or(Value::Null, Value::String),
    );
    SourceUser {
        id: entra_id.to_string(),
        removed: None,
        attributes,
    }
}
