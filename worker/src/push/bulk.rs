//! Pushes a batch's plans, creates, patches and deactivations in SCIM Bulk requests of at most
//! 100 operations, the rest (deletes, skips) and everything for a target without Bulk in
//! single requests.
//!
//! Each operation's answer goes through the same [`settle`] as a single request's, so a user
//! ends the same either way: a 409 on a create adopts, a 404 on a patch re-creates or drops
//! the mirror row. An operation the Bulk answer leaves out or fails with a retryable status
//! is sent again alone, with the single request's retries. A Bulk request refused as a whole
//! for a reason that may be one operation's (400, 413, an unreadable answer) is also sent
//! again operation by operation, so that the one bad user fails alone; a refusal about the
//! tenant's service (401/403, throttling past the retry budget, unreachable) fails the batch.

use futures_util::{StreamExt, TryStreamExt, stream};

use super::{FirstAttempt, create_resource, deactivation, push, settle};
use crate::diff::{Action, Plan};
use crate::error::WorkerError;
use crate::outcome::UserResult;
use crate::scim::{BulkOperation, BulkOutcome, BulkRequest, ScimClient};

/// What remains to do for one user once the Bulk requests are answered.
enum Step {
    /// Send its plan alone.
    Single(String, Plan),
    /// Its first request was answered; settle the answer.
    Settle(String, Plan, FirstAttempt),
}

/// Pushes every plan, at most `concurrency` SCIM requests at a time, one result per plan
/// (in no particular order). Errors about one user become a failed user; an error of the
/// tenant's SCIM service is returned.
pub async fn push_all(
    client: &ScimClient,
    plans: Vec<(String, Plan)>,
    concurrency: usize,
) -> Result<Vec<UserResult>, WorkerError> {
    let concurrency = concurrency.max(1);
    let mut steps = Vec::new();
    let mut bulked: Vec<Option<(String, Plan)>> = Vec::new();
    let mut operations = Vec::new();
    for (entra_id, plan) in plans {
        if !client.bulk_supported() {
            steps.push(Step::Single(entra_id, plan));
            continue;
        }
        match operation(&plan) {
            None => steps.push(Step::Single(entra_id, plan)),
            Some(Ok(op)) => {
                operations.push(op);
                bulked.push(Some((entra_id, plan)));
            }
            // What the single create would have met before sending anything.
            Some(Err(e)) => steps.push(Step::Settle(entra_id, plan, Err(e))),
        }
    }

    let mut requests = BulkRequest::split(operations).into_iter();
    // Until the target has answered one Bulk request, one goes alone: a target without Bulk
    // is then asked once, not once per request in flight.
    let mut answered = Vec::new();
    if !client.bulk_confirmed()
        && let Some(request) = requests.next()
    {
        answered.push(send_bulk(client, request).await?);
    }
    let rest: Vec<_> = stream::iter(requests)
        .map(|request| send_bulk(client, request))
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    answered.extend(rest);
    for (first, outcomes) in answered {
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let Some((entra_id, plan)) = bulked.get_mut(first + i).and_then(Option::take) else {
                continue;
            };
            steps.push(match outcome {
                Some(BulkOutcome::Done { webex_id }) => Step::Settle(entra_id, plan, Ok(webex_id)),
                Some(BulkOutcome::Failed(e)) if !e.is_retryable() => {
                    Step::Settle(entra_id, plan, Err(e))
                }
                Some(BulkOutcome::Failed(_) | BulkOutcome::NotProcessed) | None => {
                    Step::Single(entra_id, plan)
                }
            });
        }
    }

    stream::iter(steps)
        .map(|step| async move {
            match step {
                Step::Single(entra_id, plan) => push(client, entra_id, plan).await,
                Step::Settle(entra_id, plan, first) => settle(client, entra_id, plan, first).await,
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// Sends one Bulk request: the index of its first operation and each operation's outcome,
/// `None` for an operation to send alone.
async fn send_bulk(
    client: &ScimClient,
    request: BulkRequest,
) -> Result<(usize, Vec<Option<BulkOutcome>>), WorkerError> {
    let outcomes = match client.bulk(&request).await {
        Ok(Some(outcomes)) => outcomes.into_iter().map(Some).collect(),
        Ok(None) => (0..request.len()).map(|_| None).collect(),
        Err(e) if e.is_object_specific() => {
            tracing::debug!(error = %e, "bulk request refused, sending its operations alone");
            (0..request.len()).map(|_| None).collect()
        }
        Err(e) => return Err(e),
    };
    Ok((request.first(), outcomes))
}

/// The Bulk operation of a plan: `None` for what goes alone (skips, deletes), an error for a
/// create whose resource cannot be built.
fn operation(plan: &Plan) -> Option<Result<BulkOperation, WorkerError>> {
    match &plan.action {
        Action::Create => Some(
            create_resource(&plan.effective).map(|resource| BulkOperation::Create { resource }),
        ),
        Action::Patch { webex_id, changes } => Some(Ok(BulkOperation::Patch {
            webex_id: webex_id.clone(),
            changes: changes.clone(),
        })),
        Action::Deactivate { webex_id } => Some(Ok(BulkOperation::Patch {
            webex_id: webex_id.clone(),
            changes: deactivation(),
        })),
        // Deletes are irreversible: one request each keeps a mistake small.
        Action::Delete { .. } | Action::Skip(_) | Action::Fail(_) => None,
    }
}
