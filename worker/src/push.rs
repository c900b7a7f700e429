//! Carries out one user's plan against SCIM and turns the result into a [`UserResult`]; a
//! batch's plans go through Bulk requests where the target has them (`push/bulk.rs`).
//!
//! The interesting cases: a create that meets a 409 uniqueness conflict adopts the org's
//! existing user with that userName (so a redelivered create never duplicates a user); a
//! patch of a user deleted out of band re-creates it; a delete or deactivation of a user
//! already gone is done.
//!
//! Only errors about the one user (bad data, a userName owned outside the org, …) make a
//! failed user; an error of the tenant's SCIM service (token refused, unreachable, throttled
//! past the retry budget) is returned, and fails the batch. Every write here is safe to
//! repeat when the batch comes back: a create meets 409 and adopts, a patch sets the same
//! values, a delete meets 404.
//!
//! A plan's first request and what follows from its answer are apart ([`settle`]), so that an
//! operation answered inside a Bulk request ends exactly as the single request would have.

use serde_json::Value;

use crate::diff::{Action, Plan};
use crate::error::WorkerError;
use crate::map::{ACTIVE, ScimAttributes, USER_NAME};
use crate::outcome::{MirrorChange, Status, UserResult};
use crate::scim::{ScimClient, UserBody, user_resource};

mod bulk;

pub use bulk::push_all;

/// The answer to a plan's first SCIM request: for a create, the new user's id when the
/// answer gave it.
pub(crate) type FirstAttempt = Result<Option<String>, WorkerError>;

/// Pushes one plan with single requests. Errors about this user become a failed user; the
/// error is returned when it is not about this user (see [`WorkerError::is_object_specific`]).
pub async fn push(
    client: &ScimClient,
    entra_id: String,
    plan: Plan,
) -> Result<UserResult, WorkerError> {
    let first = match &plan.action {
        Action::Skip(_) => return Ok(UserResult::skipped(entra_id)),
        Action::Fail(reason) => return Ok(UserResult::failed(entra_id, reason.clone())),
        Action::Create => match create_resource(&plan.effective) {
            Ok(resource) => client.create_user(&resource).await.map(|u| Some(u.id)),
            Err(e) => Err(e),
        },
        Action::Patch { webex_id, changes } => {
            client.patch_user(webex_id, changes).await.map(|()| None)
        }
        Action::Deactivate { webex_id } => client
            .patch_user(webex_id, &deactivation())
            .await
            .map(|()| None),
        Action::Delete { webex_id } => client.delete_user(webex_id).await.map(|()| None),
    };
    settle(client, entra_id, plan, first).await
}

/// The changes of a deactivation: `active` = false.
pub(crate) fn deactivation() -> ScimAttributes {
    ScimAttributes::from([(ACTIVE.to_string(), Value::Bool(false))])
}

/// The `POST /Users` body of a create; an error here is about the user.
pub(crate) fn create_resource(attributes: &ScimAttributes) -> Result<UserBody, WorkerError> {
    if !attributes.contains_key(USER_NAME) {
        return Err(WorkerError::MissingUserName);
    }
    user_resource(attributes)
}

/// The user's result once its plan's first request was answered `first`, making the
/// follow-up requests that answer calls for (adoption, re-creation). The plan is consumed:
/// its attributes' JSON moves into the mirror change rather than being written again.
pub(crate) async fn settle(
    client: &ScimClient,
    entra_id: String,
    plan: Plan,
    first: FirstAttempt,
) -> Result<UserResult, WorkerError> {
    let active = plan.active();
    let Plan {
        action,
        effective,
        content_hash,
        json,
        recorded,
    } = plan;
    let created = matches!(action, Action::Create);
    let upsert = |webex_id: String, attributes_json: String| UserResult {
        entra_id: entra_id.clone(),
        status: Status::Synced,
        mirror: Some(MirrorChange::Upsert {
            webex_id,
            content_hash,
            active,
            attributes_json,
            created,
        }),
    };
    let removed = |status: Status| UserResult {
        entra_id: entra_id.clone(),
        status,
        mirror: Some(MirrorChange::Remove),
    };
    let failed = |e: WorkerError| {
        if e.is_object_specific() {
            Ok(UserResult::failed(entra_id.clone(), e.reason()))
        } else {
            Err(e)
        }
    };
    let not_found = |e: &WorkerError| e.scim_status() == Some(404);

    match (action, first) {
        (Action::Skip(_), _) => Ok(UserResult::skipped(entra_id.clone())),
        (Action::Fail(reason), _) => Ok(UserResult::failed(entra_id.clone(), reason)),
        (Action::Create, Ok(Some(webex_id))) => Ok(upsert(webex_id, json)),
        (Action::Create, Ok(None)) => match created_id(client, &effective).await {
            Ok(webex_id) => Ok(upsert(webex_id, json)),
            Err(e) => failed(e),
        },
        (Action::Create, Err(e)) => match adopt_on_conflict(client, &effective, e).await {
            Ok(webex_id) => Ok(upsert(webex_id, json)),
            Err(e) => failed(e),
        },
        (Action::Patch { .. }, Ok(_)) if recorded => Ok(UserResult {
            entra_id: entra_id.clone(),
            status: Status::Synced,
            mirror: None,
        }),
        (Action::Patch { webex_id, .. }, Ok(_)) => Ok(upsert(webex_id, json)),
        // Deleted in Webex behind our back: an active user is re-created in full.
        (Action::Patch { .. }, Err(e)) if not_found(&e) && active => {
            match create_or_adopt(client, &effective).await {
                Ok(webex_id) => Ok(upsert(webex_id, json)),
                Err(e) => failed(e),
            }
        }
        (Action::Patch { .. }, Err(e)) if not_found(&e) => Ok(removed(Status::Skipped)),
        (Action::Patch { .. }, Err(e)) => failed(e),
        (Action::Deactivate { webex_id }, Ok(_)) => Ok(upsert(webex_id, json)),
        // Nothing left to deactivate.
        (Action::Deactivate { .. }, Err(e)) if not_found(&e) => Ok(removed(Status::Skipped)),
        (Action::Deactivate { .. }, Err(e)) => failed(e),
        (Action::Delete { .. }, Ok(_)) => Ok(removed(Status::Synced)),
        (Action::Delete { .. }, Err(e)) if not_found(&e) => Ok(removed(Status::Synced)),
        (Action::Delete { .. }, Err(e)) => failed(e),
    }
}

/// Creates the user, or adopts the org's existing user with the same userName.
async fn create_or_adopt(
    client: &ScimClient,
    attributes: &ScimAttributes,
) -> Result<String, WorkerError> {
    let resource = create_resource(attributes)?;
    match client.create_user(&resource).await {
        Ok(user) => Ok(user.id),
        Err(e) => adopt_on_conflict(client, attributes, e).await,
    }
}

/// After a failed create: on a 409, adopts the org's existing user with that userName;
/// any other error stands.
async fn adopt_on_conflict(
    client: &ScimClient,
    attributes: &ScimAttributes,
    e: WorkerError,
) -> Result<String, WorkerError> {
    if e.scim_status() != Some(409) {
        return Err(e);
    }
    let Some(user_name) = attributes.get(USER_NAME).and_then(Value::as_str) else {
        return Err(e);
    };
    match client.find_user_by_user_name(user_name).await? {
        Some(existing) => {
            // Every mapped attribute, so the adopted user gets our externalId; entries the
            // adopted user lacks (a work address, a mobile number) are added, not replaced.
            let changes = crate::diff::entries_to_add(attributes.clone(), &existing.entry_paths());
            client.patch_user(&existing.id, &changes).await?;
            Ok(existing.id)
        }
        None => Err(WorkerError::ForeignAccount),
    }
}

/// The id of a user just created by a Bulk operation whose answer had no `location`.
async fn created_id(
    client: &ScimClient,
    attributes: &ScimAttributes,
) -> Result<String, WorkerError> {
    let user_name = attributes
        .get(USER_NAME)
        .and_then(Value::as_str)
        .ok_or(WorkerError::MissingUserName)?;
    match client.find_user_by_user_name(user_name).await? {
        Some(user) => Ok(user.id),
        None => Err(WorkerError::ScimResponse(
            "bulk create answered without the user's location".into(),
        )),
    }
}
