//! The coordinator's HTTP face: `/healthz` (the process answers), `/readyz` (PostgreSQL and
//! the broker answer; [`crate::readiness`]), `/metrics` (Prometheus); the admin API under
//! `/api/v1` ([`crate::api`]); and `/avatars/{tenant}/{user}/{tag}`, which serves a user's
//! Entra photo to Webex under the URL the avatar pass gave it ([`crate::avatars`]).
//!
//! An avatar answer is the photo Graph has now, and only while the URL's tag matches the
//! photo's entity tag: a stale or forged URL is a 404, as is any tenant that does not sync
//! avatars. Graph failures are a 502, which Webex may retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use dirsync_proto::TenantId;

use crate::avatars::AvatarSigner;
use crate::graph::GraphClient;
use crate::readiness::Readiness;
use crate::{CoordinatorError, TenantStore};

/// How long a tenant's Graph client (and its token) is reused: credentials changed in the
/// meantime apply after at most this long.
const CLIENT_TTL: Duration = Duration::from_secs(600);

/// Graph clients by tenant, with when each was made.
type GraphClients = Arc<Mutex<HashMap<TenantId, (Arc<GraphClient>, Instant)>>>;

/// What the routes need.
#[derive(Clone)]
pub struct HttpState {
    tenants: TenantStore,
    http: reqwest::Client,
    avatars: Option<AvatarSigner>,
    graph_budget: u32,
    clients: GraphClients,
    api: Option<crate::api::ApiState>,
    readiness: Option<Readiness>,
}

impl HttpState {
    /// `tenants` reads the tenants (with the deployment's secrets key); `avatars`: the
    /// deployment's avatar signer (`None`: no avatars are served).
    pub fn new(tenants: TenantStore, avatars: Option<AvatarSigner>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the http client's configuration is static");
        Self {
            tenants,
            http,
            avatars,
            graph_budget: crate::graph::DEFAULT_RU_PER_10S,
            clients: Arc::default(),
            api: None,
            readiness: None,
        }
    }

    /// Serves the admin API too.
    pub fn with_api(mut self, api: crate::api::ApiState) -> Self {
        self.api = Some(api);
        self
    }

    /// Answers `/readyz` with these checks (without them, `/readyz` is always 503).
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    async fn graph(&self, tenant: &crate::Tenant) -> Arc<GraphClient> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.retain(|_, (_, made)| made.elapsed() < CLIENT_TTL);
        clients
            .entry(tenant.id)
            .or_insert_with(|| {
                let client =
                    GraphClient::new(self.http.clone(), tenant).with_budget(self.graph_budget);
                (Arc::new(client), Instant::now())
            })
            .0
            .clone()
    }
}

/// The routes, ready to serve.
pub fn router(state: HttpState) -> Router {
    let api = state.api.clone();
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/avatars/{tenant}/{user}/{tag}", get(avatar))
        .with_state(state);
    match api {
        Some(api) => router.nest(crate::api::BASE, crate::api::router(api)),
        None => router,
    }
}

async fn ready(State(state): State<HttpState>) -> Response {
    crate::readiness::answer(state.readiness.as_ref()).await
}

/// The Prometheus scrape of this process's metrics (no token: like `/healthz`, it is meant
/// for the deployment's own network; it carries no tenant data, only bounded labels).
async fn metrics() -> Response {
    match dirsync_telemetry::scrape() {
        Some(scrape) => (
            [(
                header::CONTENT_TYPE,
                dirsync_telemetry::PROMETHEUS_CONTENT_TYPE,
            )],
            scrape.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "telemetry not started").into_response(),
    }
}

async fn avatar(
    State(state): State<HttpState>,
    Path((tenant, user, tag)): Path<(String, String, String)>,
) -> Response {
    match photo(&state, &tenant, &user, &tag).await {
        Ok(Some(bytes)) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            // The URL names this very photo: a new photo gets a new URL.
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400, immutable"),
            );
            response
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "avatar not served");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}

/// The photo the URL names, if it is still the user's photo.
async fn photo(
    state: &HttpState,
    tenant: &str,
    user: &str,
    tag: &str,
) -> Result<Option<Vec<u8>>, CoordinatorError> {
    let Some(signer) = &state.avatars else {
        return Ok(None);
    };
    let Ok(tenant_id) = tenant.parse::<uuid::Uuid>().map(TenantId) else {
        return Ok(None);
    };
    let tenant = match state.tenants.get(tenant_id).await {
        Ok(tenant) if tenant.scope.avatars && tenant.authorized => tenant,
        Ok(_) | Err(CoordinatorError::TenantNotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let graph = state.graph(&tenant).await;
    let etag = match graph.photo_etag(user).await {
        Ok(Some(etag)) => etag,
        Ok(None) | Err(CoordinatorError::Invalid(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !signer.verify(tenant_id, user, &etag, tag) {
        return Ok(None);
    }
    graph.photo(user).await
}
