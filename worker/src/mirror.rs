//! Reads the mirror rows of a batch's users in one query, and the Webex ids of the users
//! its entries refer to.
//!
//! The keys are joined from an `UNNEST`ed array rather than matched with `entra_id =
//! ANY($2)`: for the latter, a custom plan (a connection's first five executions of a
//! statement) can put only `tenant_id` in the index condition and filter every row of the
//! tenant, when the table's statistics still say a tenant is a small share of it (a table
//! filled by an initial cycle that autovacuum has not analyzed yet): 110 ms against 9 ms
//! for 400 keys at 100,000 users. The join always probes the primary key once per key.
//!
//! The deferral of each user is read through a `LATERAL` subquery with `LIMIT 1`, which
//! can only be a probe per row. As a plain join, PostgreSQL hashed the tenant's whole range
//! of `deferred_refs` instead for every batch: the table is narrow, so it looks cheap to
//! scan, and an initial cycle fills it faster than statistics follow (a plan cached while
//! it was empty, or one made without statistics, scanned 140,000 rows to find 200).

use std::collections::HashMap;

use dirsync_proto::TenantId;
use sqlx::PgPool;

use crate::diff::MirrorUser;
use crate::error::WorkerError;
use crate::hash::from_db;
use crate::map::ScimAttributes;

type Row = (
    String,
    String,
    i64,
    bool,
    sqlx::types::Json<ScimAttributes>,
    Option<String>,
);

/// The mirror rows of the given Entra ids, keyed by Entra id, with the manager each one
/// waits for (`deferred_refs`). Ids without a row are absent.
pub async fn load_mirror(
    pool: &PgPool,
    tenant: TenantId,
    entra_ids: &[String],
) -> Result<HashMap<String, MirrorUser>, WorkerError> {
    if entra_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.entra_id, m.webex_id, m.content_hash, m.active, m.attributes, d.manager_id \
         FROM UNNEST($2::text[]) AS k(entra_id) \
         JOIN mirror_users m ON m.tenant_id = $1 AND m.entra_id = k.entra_id \
         LEFT JOIN LATERAL (SELECT d.manager_id FROM deferred_refs d \
             WHERE d.tenant_id = $1 AND d.entra_id = k.entra_id LIMIT 1) d ON true",
    )
    .bind(tenant.0)
    .bind(entra_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(entra_id, webex_id, hash, active, attributes, deferred)| {
            let user = MirrorUser {
                webex_id,
                content_hash: from_db(hash),
                active,
                attributes: attributes.0,
                deferred_manager: deferred,
            };
            (entra_id, user)
        })
        .collect())
}

/// The Webex ids of the given Entra ids that dirsync has in Webex (active or not), for
/// references such as managers.
pub async fn load_webex_ids(
    pool: &PgPool,
    tenant: TenantId,
    entra_ids: &[String],
) -> Result<HashMap<String, String>, WorkerError> {
    if entra_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(sqlx::query_as(
        "SELECT m.entra_id, m.webex_id FROM UNNEST($2::text[]) AS k(entra_id) \
         JOIN mirror_users m ON m.tenant_id = $1 AND m.entra_id = k.entra_id",
    )
    .bind(tenant.0)
    .bind(entra_ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect())
}
