//! Admin tokens: random bearer tokens, stored only as their SHA-256 hash.
//!
//! A token is 32 random bytes, shown once at creation as `dsa_` + base64url. It has the
//! entropy of a key, so a plain hash (not a slow password hash) is what makes a leaked
//! table useless. Every admin API request passes [`require_token`]; a revoked token is
//! refused like an unknown one.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::ApiState;
use super::error::ApiError;
use crate::CoordinatorError;

const PREFIX: &str = "dsa_";

/// A token as listed (never the token itself).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: uuid::Uuid,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked: bool,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a token named `name` (who or what uses it); the token is returned once.
pub async fn create(
    pool: &PgPool,
    name: &str,
) -> Result<(uuid::Uuid, SecretString), CoordinatorError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(CoordinatorError::Invalid(
            "a token needs a name of 1 to 200 characters (who or what uses it)".into(),
        ));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CoordinatorError::Invalid(format!("no randomness for a token: {e}")))?;
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let id = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO admin_tokens (id, name, token_hash) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(hash(&token))
        .execute(pool)
        .await?;
    Ok((id, SecretString::from(token)))
}

/// Every token, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<TokenInfo>, CoordinatorError> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at, last_used_at, revoked_at IS NOT NULL AS revoked \
         FROM admin_tokens ORDER BY created_at DESC",
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes a token: it is refused from the next request on.
pub async fn revoke(pool: &PgPool, id: uuid::Uuid) -> Result<(), CoordinatorError> {
    let n = sqlx::query(
        "UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(CoordinatorError::Invalid(format!("no admin token {id}")));
    }
    Ok(())
}

/// The name of the live token `token` is, if it is one; notes its use.
pub async fn verify(
    pool: &PgPool,
    token: &SecretString,
) -> Result<Option<String>, CoordinatorError> {
    let token = token.expose_secret();
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let name: Option<String> = sqlx::query_scalar(
        "UPDATE admin_tokens SET last_used_at = now() \
         WHERE token_hash = $1 AND revoked_at IS NULL RETURNING name",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(name)
}

/// Who made the request: the name of its token, for the records (e.g. who approved a run).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Refuses a request without a live admin token; passes the caller's name on.
pub async fn require_token(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| SecretString::from(token.trim().to_string()));
    let Some(bearer) = bearer else {
        return ApiError::unauthorized().into_response();
    };
    match verify(&state.pool, &bearer).await {
        Ok(Some(name)) => {
            request.extensions_mut().insert(Caller(name));
            next.run(request).await
        }
        Ok(None) => ApiError::unauthorized().into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
