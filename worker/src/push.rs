//! Carries out one user's plan against SCIM and turns the result into a [`UserResult`].
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

use serde_json::Value;

use crate::diff::{Action, Plan};
use crate::error::WorkerError;
use crate::map::{ACTIVE, ScimAttributes, USER_NAME};
use crate::outcome::{MirrorChange, Status, UserResult};
use crate::scim::{ScimClient, user_resource};

/// Pushes one plan. Errors about this user become a failed user; the error is returned
/// when it is not about this user (see [`WorkerError::is_object_specific`]).
pub async fn push(
    client: &ScimClient,
    entra_id: String,
    plan: Plan,
) -> Result<UserResult, WorkerError> {
    let upsert = |webex_id: String, plan: &Plan| UserResult {
        entra_id: entra_id.clone(),
        status: Status::Synced,
        mirror: Some(MirrorChange::Upsert {
            webex_id,
            content_hash: plan.content_hash,
            active: plan.active(),
            attributes: plan.effective.clone(),
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

    match &plan.action {
        Action::Skip(_) => Ok(UserResult::skipped(entra_id.clone())),
        Action::Create => match create_or_adopt(client, &plan.effective).await {
            Ok(webex_id) => Ok(upsert(webex_id, &plan)),
            Err(e) => failed(e),
        },
        Action::Patch { webex_id, changes } => match client.patch_user(webex_id, changes).await {
            Ok(()) => Ok(upsert(webex_id.clone(), &plan)),
            // Deleted in Webex behind our back: an active user is re-created in full.
            Err(e) if e.scim_status() == Some(404) && plan.active() => {
                match create_or_adopt(client, &plan.effective).await {
                    Ok(webex_id) => Ok(upsert(webex_id, &plan)),
                    Err(e) => failed(e),
                }
            }
            Err(e) if e.scim_status() == Some(404) => Ok(removed(Status::Skipped)),
            Err(e) => failed(e),
        },
        Action::Deactivate { webex_id } => {
            let changes = ScimAttributes::from([(ACTIVE.to_string(), Value::Bool(false))]);
            match client.patch_user(webex_id, &changes).await {
                Ok(()) => Ok(upsert(webex_id.clone(), &plan)),
                // Nothing left to deactivate.
                Err(e) if e.scim_status() == Some(404) => Ok(removed(Status::Skipped)),
                Err(e) => failed(e),
            }
        }
        Action::Delete { webex_id } => match client.delete_user(webex_id).await {
            Ok(()) => Ok(removed(Status::Synced)),
            Err(e) if e.scim_status() == Some(404) => Ok(removed(Status::Synced)),
            Err(e) => failed(e),
        },
    }
}

/// Creates the user, or adopts the org's existing user with the same userName.
async fn create_or_adopt(
    client: &ScimClient,
    attributes: &ScimAttributes,
) -> Result<String, WorkerError> {
    if !attributes.contains_key(USER_NAME) {
        return Err(WorkerError::MissingUserName);
    }
    let resource = user_resource(attributes)?;
    match client.create_user(&resource).await {
        Ok(user) => Ok(user.id),
        Err(e) if e.scim_status() == Some(409) => {
            let Some(user_name) = attributes.get(USER_NAME).and_then(Value::as_str) else {
                return Err(e);
            };
            match client.find_user_by_user_name(user_name).await? {
                Some(existing) => {
                    // Every mapped attribute, so the adopted user gets our externalId.
                    client.patch_user(&existing.id, attributes).await?;
                    Ok(existing.id)
                }
                None => Err(WorkerError::ForeignAccount),
            }
        }
        Err(e) => Err(e),
    }
}
