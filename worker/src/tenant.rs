//! A tenant's Webex connection settings, read from PostgreSQL and cached briefly.
//!
//! Batches carry only the tenant id; the base URL and token always come from the tenant's
//! own row, so a batch can only ever be pushed to its own org. The cache keeps a busy
//! worker from reading the same row for every batch; its short lifetime bounds how long a
//! rotated token or a changed policy takes to be seen.
//!
//! The token is stored sealed (`dirsync_proto::sealed`) and opened here with the
//! deployment's key; a legacy plain-text token (from before sealing) is still used as is,
//! and the coordinator seals it in place the next time it reads the tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirsync_proto::{ProtoError, SecretField, SecretsKey, TenantId};
use secrecy::SecretString;
use sqlx::PgPool;

use dirsync_proto::mapping::{Mapping, MappingRule};

use crate::error::WorkerError;

/// What the worker needs to know about a tenant.
#[derive(Debug)]
pub struct Tenant {
    pub id: TenantId,
    pub scim_base_url: String,
    /// Never logged: `SecretString`'s `Debug` is redacted.
    pub scim_token: Arc<SecretString>,
    pub allow_hard_delete: bool,
    /// "Clear attributes": a property that becomes null removes the Webex value.
    pub clear_attributes: bool,
    /// The tenant's own attribute mapping, compiled once per load; `Ok(None)`: the default
    /// mapping. `Err` says why the stored rules do not compile (they are checked when saved,
    /// so only a hand edit gets here): the tenant's users fail with it.
    pub mapping: Result<Option<Arc<Mapping>>, String>,
}

/// Reads a tenant's row and opens its token with `key`; `None` when there is no such
/// tenant. Without a key only a legacy plain-text token can be read.
pub async fn load_tenant(
    pool: &PgPool,
    key: Option<&SecretsKey>,
    id: TenantId,
) -> Result<Option<Tenant>, WorkerError> {
    type Row = (
        String,
        String,
        bool,
        bool,
        Option<sqlx::types::Json<Vec<MappingRule>>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT scim_base_url, scim_token, allow_hard_delete, clear_attributes, mapping \
         FROM tenants WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?;
    let Some((scim_base_url, token, allow_hard_delete, clear_attributes, rules)) = row else {
        return Ok(None);
    };
    let token = match key {
        Some(key) => {
            key.open_or_legacy(id, SecretField::ScimToken, &token)
                .map_err(WorkerError::Secrets)?
                .0
        }
        None if dirsync_proto::sealed::is_sealed(&token) => {
            return Err(WorkerError::Secrets(ProtoError::MissingSecretsKey));
        }
        None => SecretString::from(token),
    };
    Ok(Some(Tenant {
        id,
        scim_base_url,
        scim_token: Arc::new(token),
        allow_hard_delete,
        clear_attributes,
        mapping: match rules {
            None => Ok(None),
            Some(rules) => Mapping::compile(rules.0)
                .map(|m| Some(Arc::new(m)))
                .map_err(|e| format!("the tenant's attribute mapping is invalid: {e}")),
        },
    }))
}

type Entry = (Instant, Option<Arc<Tenant>>);

/// Tenant rows cached for a short time, absences included.
#[derive(Debug)]
pub struct TenantCache {
    ttl: Duration,
    key: Option<SecretsKey>,
    entries: Mutex<HashMap<TenantId, Entry>>,
}

impl TenantCache {
    /// `key` opens the tenants' sealed SCIM tokens (see [`load_tenant`]).
    pub fn new(ttl: Duration, key: Option<SecretsKey>) -> Self {
        TenantCache {
            ttl,
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant, from the cache when fresh, else from the database.
    pub async fn get(
        &self,
        pool: &PgPool,
        id: TenantId,
    ) -> Result<Option<Arc<Tenant>>, WorkerError> {
        if let Some(hit) = self.cached(id) {
            return Ok(hit);
        }
        let tenant = load_tenant(pool, self.key.as_ref(), id)
            .await?
            .map(Arc::new);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        entries.insert(id, (Instant::now(), tenant.clone()));
        Ok(tenant)
    }

    fn cached(&self, id: TenantId) -> Option<Option<Arc<Tenant>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, t)| t.clone())
    }
}

/// Records that the tenant's Webex org refused its credentials: the tenant is quarantined
/// at once, and the coordinator stops waiting for the run's batches (it backs the tenant off
/// and resumes the run later). Repeated refusals only move `quarantine_updated_at`.
pub async fn record_refused_credentials(
    pool: &PgPool,
    id: TenantId,
    reason: &str,
) -> Result<(), WorkerError> {
    sqlx::query(
        "UPDATE tenants SET status = 'Quarantine', quarantine_kind = 'credentials', \
         quarantine_reason = $2, quarantined_since = coalesce(quarantined_since, now()), \
         quarantine_updated_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id.0)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}
