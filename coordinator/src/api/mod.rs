//! The admin API: every operator workflow of the seed over HTTP, under `/api/v1`, behind
//! admin tokens ([`auth`]); the `dirsync` command line is its client.
//!
//! The OpenAPI document is generated from the handlers themselves (utoipa): each route is
//! registered with the description it is documented by, so the document cannot miss a
//! route, and the test that every route refuses a request without a valid token walks the
//! document. Errors have one shape ([`error::ErrorBody`]) and stable codes.

pub mod auth;
pub mod dead_letters;
pub mod domains;
pub mod dry_run;
pub mod error;
pub mod migrate;
pub mod progress;
pub mod provision;
pub mod runs;
pub mod search;
pub mod setup;
pub mod sso;
pub mod tenants;
pub mod views;

use axum::Router;
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{TenantStore, quarantine};

/// Where the API is mounted.
pub const BASE: &str = "/api/v1";

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub pool: PgPool,
    pub tenants: TenantStore,
    /// The deployment's quarantine thresholds (a tenant's own values override them).
    pub quarantine: quarantine::Thresholds,
    /// Seconds from a failure to its retries, to show when escrowed users are retried.
    pub escrow_retry: Vec<i32>,
    /// The workers' live run counters (`progress`); without it, progress is read from
    /// PostgreSQL.
    pub redis: Option<redis::aio::ConnectionManager>,
    /// Names the Redis keys of the counters.
    pub topology: dirsync_proto::Topology,
    /// For the calls a request makes to Graph and Webex.
    pub http: reqwest::Client,
    /// Provision on demand (the broker's priority lane); without it, that route answers 503.
    pub provisioner: Option<crate::provision::Provisioner>,
    /// Re-drives dead letters (the broker's batch queue); without it, that route answers 503.
    pub redriver: Option<crate::dead_letters::Redriver>,
}

impl ApiState {
    pub fn new(pool: PgPool, tenants: TenantStore) -> Self {
        Self {
            pool,
            tenants,
            quarantine: quarantine::Thresholds::ENTRA,
            escrow_retry: crate::escrow::schedule(&crate::run::DEFAULT_ESCROW_RETRY_SECS),
            redis: None,
            topology: dirsync_proto::Topology::default(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("the http client's configuration is static"),
            provisioner: None,
            redriver: None,
        }
    }

    /// Re-drives dead letters with `redriver`.
    pub fn with_redriver(mut self, redriver: crate::dead_letters::Redriver) -> Self {
        self.redriver = Some(redriver);
        self
    }

    /// Provisions users on demand with `provisioner`.
    pub fn with_provisioner(mut self, provisioner: crate::provision::Provisioner) -> Self {
        self.provisioner = Some(provisioner);
        self
    }

    /// A Graph client with `tenant`'s credentials for a request an operator waits for: a
    /// few quick retries, not a sync run's patience.
    pub(crate) fn graph(&self, tenant: &crate::Tenant) -> crate::graph::GraphClient {
        crate::graph::GraphClient::new(self.http.clone(), tenant).with_retries(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(2),
            2,
        )
    }

    /// Reads live progress from the Redis counters the workers of `topology` write.
    pub fn with_redis(
        mut self,
        conn: redis::aio::ConnectionManager,
        topology: dirsync_proto::Topology,
    ) -> Self {
        self.redis = Some(conn);
        self.topology = topology;
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "dirsync admin API", description = "Operate dirsync: instances, their configuration, syncs and their results."),
    modifiers(&BearerAuth),
    security(("admin_token" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes with their documentation, relative to [`BASE`].
fn documented() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tenants::list, setup::create))
        .routes(routes!(tenants::get, tenants::update, tenants::delete))
        .routes(routes!(setup::authorize))
        .routes(routes!(migrate::migrate))
        .routes(routes!(tenants::sync_now))
        .routes(routes!(tenants::scope, tenants::set_scope))
        .routes(routes!(tenants::mapping, tenants::set_mapping))
        .routes(routes!(tenants::set_guard))
        .routes(routes!(
            tenants::quarantine_thresholds,
            tenants::set_quarantine_thresholds
        ))
        .routes(routes!(tenants::escrow))
        .routes(routes!(tenants::status))
        .routes(routes!(progress::get))
        .routes(routes!(provision::provision))
        .routes(routes!(domains::list))
        .routes(routes!(domains::import))
        .routes(routes!(search::users))
        .routes(routes!(search::groups))
        .routes(routes!(sso::get, sso::set))
        .routes(routes!(dry_run::start, dry_run::list))
        .routes(routes!(dry_run::get))
        .routes(routes!(dry_run::report))
        .routes(routes!(runs::show))
        .routes(routes!(runs::approve))
        .routes(routes!(runs::reject))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::show))
        .routes(routes!(dead_letters::redrive))
}

/// The OpenAPI document of the API (paths relative to [`BASE`], which is its server).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = documented().split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new(BASE)]);
    doc
}

/// The API, every route behind an admin token, with its document at `/openapi.json`;
/// mount it at [`BASE`].
pub fn router(state: ApiState) -> Router {
    let (routes, _) = documented().split_for_parts();
    let doc = openapi();
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc) }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}
