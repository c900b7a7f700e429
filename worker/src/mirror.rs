//! Reads the mirror rows of a batch's users in one query, and the Webex ids of the users
//! its entries refer to.

use std::collections::HashMap;

use dirsync_proto::TenantId;
use sqlx::PgPool;

use crate::diff::MirrorUser;
use crate::error::WorkerError;
use crate::hash::from_db;
use crate::map::ScimAttributes;

type Row = (String, String, i64, bool, sqlx::types::Json<ScimAttributes>);

/// The mirror rows of the given Entra ids, keyed by Entra id. Ids without a row are absent.
pub async fn load_mirror(
    pool: &PgPool,
    tenant: TenantId,
    entra_ids: &[String],
) -> Result<HashMap<String, MirrorUser>, WorkerError> {
    if entra_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT entra_id, webex_id, content_hash, active, attributes FROM mirror_users \
         WHERE tenant_id = $1 AND entra_id = ANY($2)",
    )
    .bind(tenant.0)
    .bind(entra_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(entra_id, webex_id, hash, active, attributes)| {
            let user = MirrorUser {
                webex_id,
                content_hash: from_db(hash),
                active,
                attributes: attributes.0,
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
        "SELECT entra_id, webex_id FROM mirror_users WHERE tenant_id = $1 AND entra_id = ANY($2)",
    )
    .bind(tenant.0)
    .bind(entra_ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect())
}
