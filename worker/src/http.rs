//! The worker process's HTTP endpoint: `GET /metrics` (the Prometheus scrape of the
//! process's OpenTelemetry metrics), `GET /healthz` (the process is alive) and
//! `GET /readyz` (PostgreSQL answers `SELECT 1`, Redis answers `PING`, the broker
//! connection and the worker's channels are open: 200, else 503 naming what failed).
//!
//! Started by [`crate::run_with_metrics`], never by [`crate::Worker`] itself, so tests that
//! run workers in-process open no port. Several workers on one host often share one
//! configuration (the demo fleet spawns N processes with identical environments): when the
//! configured port is taken, the endpoint moves to a free port of the same interface, logged
//! at WARN, instead of failing the worker. Any other bind failure leaves the worker without
//! an endpoint (also logged): the endpoint observes the worker, it must never stop it.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dirsync_telemetry::{MetricsHandle, PROMETHEUS_CONTENT_TYPE};
use lapin::{Channel, Connection};
use redis::aio::ConnectionManager;
use serde_json::json;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What `/readyz` checks, filled in once the worker is connected (and again each time it
/// reconnects to the broker); until then the worker is not ready. Clones share it.
#[derive(Clone, Default)]
pub struct Readiness {
    deps: Arc<RwLock<Option<Arc<Deps>>>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("connected", &self.current().is_some())
            .finish()
    }
}

struct Deps {
    pool: PgPool,
    redis: ConnectionManager,
    broker: BrokerStatus,
}

/// The broker connection and the worker's channels, watched without owning them.
#[derive(Clone)]
pub struct BrokerStatus {
    connection: lapin::ConnectionStatus,
    channels: Vec<Channel>,
}

impl std::fmt::Debug for BrokerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerStatus")
            .field("connected", &self.connected())
            .finish()
    }
}

impl BrokerStatus {
    pub fn new(connection: &Connection, channels: Vec<Channel>) -> Self {
        Self {
            connection: connection.status().clone(),
            channels,
        }
    }

    fn connected(&self) -> bool {
        self.connection.connected() && self.channels.iter().all(|c| c.status().connected())
    }
}

impl Readiness {
    /// The worker is connected: `/readyz` checks these from now on (until the next call).
    pub fn connected(&self, pool: PgPool, redis: ConnectionManager, broker: BrokerStatus) {
        let deps = Arc::new(Deps {
            pool,
            redis,
            broker,
        });
        *self.deps.write().unwrap_or_else(PoisonError::into_inner) = Some(deps);
    }

    fn current(&self) -> Option<Arc<Deps>> {
        self.deps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Each dependency's state (`ok` or `failed`), and whether all are ok.
    async fn check(&self) -> (bool, serde_json::Value) {
        let Some(deps) = self.current() else {
            return (false, json!({"status": "starting"}));
        };
        let postgres = dirsync_telemetry::readiness::check("postgres", async {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&deps.pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let redis = dirsync_telemetry::readiness::check("redis", async {
            let mut conn = deps.redis.clone();
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let (postgres, redis) = tokio::join!(postgres, redis);
        let broker = deps.broker.connected();
        let state = |ok: bool| if ok { "ok" } else { "failed" };
        let ready = postgres && redis && broker;
        let body = json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {
                "postgres": state(postgres),
                "redis": state(redis),
                "broker": state(broker),
            },
        });
        (ready, body)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Option<MetricsHandle>,
    readiness: Readiness,
}

/// The routes; `/metrics` answers 404 when the process has no metrics (telemetry not
/// started, e.g. a worker embedded in a test binary).
pub fn router(metrics: Option<MetricsHandle>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(AppState { metrics, readiness })
}

async fn scrape(State(state): State<AppState>) -> Response {
    match state.metrics {
        Some(metrics) => {
            // Rendering gathers every instrument: off the async workers.
            match tokio::task::spawn_blocking(move || metrics.render()).await {
                Ok(body) => {
                    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], body).into_response()
                }
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        )
            .into_response(),
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    let (ready, body) = state.readiness.check().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// The endpoint, listening.
#[derive(Debug)]
pub struct HttpEndpoint {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpEndpoint {
    /// Binds `addr` (a free port of its interface when its port is taken) and serves until
    /// `shutdown` is cancelled. `None` when nothing could be bound: the worker goes on
    /// without an endpoint.
    pub async fn start(
        addr: SocketAddr,
        metrics: Option<MetricsHandle>,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Option<Self> {
        let listener = match bind(addr).await {
            Ok(listener) => listener,
            Err(error) => {
                warn!(%addr, %error, "cannot listen for /metrics, /healthz and /readyz; going on without them");
                return None;
            }
        };
        let addr = listener.local_addr().unwrap_or(addr);
        info!(%addr, "http endpoint listening (/metrics, /healthz, /readyz)");
        let app = router(metrics, readiness);
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(error) = served {
                warn!(%error, "the http endpoint stopped");
            }
        });
        Some(Self { addr, task })
    }

    /// Where it listens (with the port actually bound).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until it has stopped (after the shutdown token given to `start` is cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Binds `addr`; when its port is in use, a free port of the same interface.
async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 => {
            let fallback = SocketAddr::new(addr.ip(), 0);
            let listener = TcpListener::bind(fallback).await?;
            warn!(
                configured = %addr,
                actual = %listener.local_addr()?,
                "the http endpoint's port is taken (another worker on this host?); listening on a free port instead"
            );
            Ok(listener)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_moves_the_endpoint_to_a_free_one() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let endpoint = HttpEndpoint::start(addr, None, Readiness::default(), shutdown.clone())
            .await
            .expect("the endpoint starts elsewhere");
        assert_eq!(endpoint.addr().ip(), addr.ip());
        assert_ne!(endpoint.addr().port(), addr.port());

        let base = format!("http://{}", endpoint.addr());
        let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(ready.status(), 503, "not connected yet");
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "starting");
        let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(metrics.status(), 404, "no telemetry in this process");

        shutdown.cancel();
        endpoint.stopped().await;
        drop(taken);
    }
}
