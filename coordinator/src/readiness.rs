//! The coordinator's readiness, `GET /readyz`: PostgreSQL answers `SELECT 1` and the
//! broker connection runs use is open: 200, else 503 naming what failed. Same answer as the
//! worker's `/readyz` (`{"status": "ready" | "not_ready", "checks": {"postgres": "ok",
//! "redis": "ok", "broker": "ok"}}`, each check `ok` or `failed`), each check bounded by
//! [`dirsync_telemetry::readiness::CHECK_TIMEOUT`] so that a hung dependency fails the
//! probe instead of hanging it.
//!
//! What makes the process unready is what it cannot work without, the worker's rule too: the
//! worker needs Redis (its run counters and rate limits), the coordinator does not, since
//! progress and dead-letter counts fall back to PostgreSQL. So Redis is reported (`failed`,
//! or `not_connected` when it was unreachable at start and the coordinator reads PostgreSQL
//! until restarted) but keeps no coordinator out of service: taking every coordinator out
//! of its Service over a Redis outage would stop the admin API and the avatar URLs, which
//! need no Redis.
//!
//! The broker check is the connection the scheduler's runs use. When it is broken it is
//! replaced, exactly as the next run would replace it ([`Runner::with_reconnect`]): a
//! probe opens a connection only while the current one is broken, never otherwise, and
//! a coordinator that lost RabbitMQ turns ready again once it is back even when no run is
//! due (runs alone would reconnect only when one starts). The broker, unlike Redis, is
//! required: without it the coordinator cannot sync anything, so while RabbitMQ is down every
//! coordinator leaves its Service, admin API and avatar URLs included (liveness stays green,
//! so none is restarted, and they come back with the broker).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use redis::aio::ConnectionManager;
use serde_json::json;

use crate::Runner;

/// What `/readyz` checks. Cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    runner: Runner,
    redis: Option<ConnectionManager>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Checks the database pool and broker connection of `runner`, and `redis` (the admin
    /// API's connection; `None` when it was unreachable at start).
    pub fn new(runner: Runner, redis: Option<ConnectionManager>) -> Self {
        Self { runner, redis }
    }

    /// Whether the coordinator is ready, and the answer's body.
    pub async fn check(&self) -> (bool, serde_json::Value) {
        let postgres = dirsync_telemetry::readiness::check("postgres", async {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(self.runner.pool())
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let broker = dirsync_telemetry::readiness::check("broker", async {
            let connection = self.runner.connection().await.map_err(|e| e.to_string())?;
            if connection.status().connected() {
                Ok(())
            } else {
                Err("the broker connection is closed".to_owned())
            }
        });
        let redis = async {
            let conn = self.redis.clone()?;
            Some(
                dirsync_telemetry::readiness::check("redis", async move {
                    let mut conn = conn;
                    redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
                .await,
            )
        };
        let (postgres, broker, redis) = tokio::join!(postgres, broker, redis);
        let state = |ok: bool| if ok { "ok" } else { "failed" };
        // Redis is reported, never required (see the module doc).
        let ready = postgres && broker;
        let body = json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {
                "postgres": state(postgres),
                "redis": redis.map_or("not_connected", state),
                "broker": state(broker),
            },
        });
        (ready, body)
    }
}

/// The `/readyz` answer; without a [`Readiness`] (an HTTP face built without one, as in
/// tests and the demo fleet) the process is never ready, like a worker still starting.
pub async fn answer(readiness: Option<&Readiness>) -> Response {
    let (ready, body) = match readiness {
        Some(readiness) => readiness.check().await,
        None => (false, json!({"status": "starting"})),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    //! Against the local PostgreSQL, Redis and RabbitMQ (`DATABASE_URL`, `REDIS_URL`,
    //! `AMQP_URL`, the services' defaults otherwise). The checks only read (`SELECT 1`,
    //! `PING`, an open connection): nothing is created, so nothing needs isolating or
    //! cleaning up; the topology's prefix is unique all the same. Dependencies that fail are
    //! the test's own: a port nothing listens on, a listener that never answers, a
    //! forwarder that is cut.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use sqlx::PgPool;
    use sqlx::postgres::PgPoolOptions;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;
    use tokio_util::sync::CancellationToken;

    use dirsync_proto::Topology;

    use super::*;
    use crate::TenantStore;
    use crate::http::{self, HttpState};

    fn env_or(name: &str, default: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_owned())
    }

    fn database_url() -> String {
        env_or("DATABASE_URL", "postgres://root@127.0.0.1:5432/test")
    }

    fn amqp_url() -> String {
        env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
    }

    fn redis_url() -> String {
        env_or("REDIS_URL", "redis://127.0.0.1:6379")
    }

    async fn live_pool() -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&database_url())
            .await
            .expect("postgresql is running")
    }

    /// A pool whose connections go to `addr` (made on first use).
    fn pool_at(addr: SocketAddr) -> PgPool {
        PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy(&format!("postgres://root@{addr}/test"))
            .unwrap()
    }

    async fn runner(pool: PgPool) -> Runner {
        let amqp = crate::broker::connect(&amqp_url())
            .await
            .expect("rabbitmq is running");
        let prefix = format!("readyz-{}", uuid::Uuid::new_v4().simple());
        Runner::new(pool, Arc::new(amqp), Topology::new(prefix), 1)
    }

    async fn live_redis() -> ConnectionManager {
        redis_at(&redis_url()).await
    }

    async fn redis_at(url: &str) -> ConnectionManager {
        let client = redis::Client::open(url).unwrap();
        ConnectionManager::new(client)
            .await
            .expect("redis is running")
    }

    /// A loopback address nothing listens on.
    async fn dead_addr() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    /// `/readyz` of an HTTP face with `readiness`: (status, body).
    async fn probe(readiness: Option<Readiness>) -> (u16, serde_json::Value) {
        let pool = pool_at(dead_addr().await);
        let mut state = HttpState::new(TenantStore::new(pool), None);
        if let Some(readiness) = readiness {
            state = state.with_readiness(readiness);
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, http::router(state))
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        let response = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap();
        shutdown.cancel();
        server.await.unwrap().unwrap();
        (status, body)
    }

    /// Forwards a loopback port to `target` until cut: a dependency that goes away while
    /// the coordinator holds a connection to it.
    struct Forwarder {
        addr: SocketAddr,
        task: JoinHandle<()>,
    }

    impl Forwarder {
        async fn start(target: String) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let task = tokio::spawn(async move {
                let mut open = tokio::task::JoinSet::new();
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let target = target.clone();
                    open.spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            });
            Self { addr, task }
        }

        /// Closes the listener and every forwarded connection (the join set aborts them
        /// when the task is dropped).
        async fn cut(self) {
            self.task.abort();
            let _ = self.task.await;
        }
    }

    #[tokio::test]
    async fn ready_when_every_dependency_answers() {
        let readiness = Readiness::new(runner(live_pool().await).await, Some(live_redis().await));
        let (status, body) = probe(Some(readiness)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({
                "status": "ready",
                "checks": {"postgres": "ok", "redis": "ok", "broker": "ok"},
            })
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_is_named() {
        let readiness = Readiness::new(
            runner(pool_at(dead_addr().await)).await,
            Some(live_redis().await),
        );
        let (status, body) = probe(Some(readiness)).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not_ready");
        assert_eq!(
            body["checks"],
            json!({"postgres": "failed", "redis": "ok", "broker": "ok"})
        );
    }

    #[tokio::test]
    async fn a_database_that_never_answers_fails_the_check_instead_of_hanging_it() {
        // Accepts connections and never says a word: the startup handshake waits forever.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut connections = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                connections.push(stream);
            }
        });
        let readiness = Readiness::new(runner(pool_at(addr)).await, Some(live_redis().await));
        let (status, body) = probe(Some(readiness)).await;
        held.abort();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["checks"]["postgres"], "failed");
        assert_eq!(body["checks"]["broker"], "ok");
    }

    #[tokio::test]
    async fn a_closed_broker_connection_is_named_unless_it_can_be_replaced() {
        let runner = runner(live_pool().await).await;
        let first = runner.broker_connection().await;
        first.close(200, "test".into()).await.unwrap();

        // No reconnect configured: the connection runs would use is closed.
        let (status, body) = probe(Some(Readiness::new(runner.clone(), None))).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["checks"]["broker"], "failed");
        assert_eq!(body["checks"]["postgres"], "ok");

        // A broker that cannot be reached: still failed.
        let dead = format!("amqp://guest:guest@{}/%2f", dead_addr().await);
        let unreachable = runner.clone().with_reconnect(&dead);
        let (status, body) = probe(Some(Readiness::new(unreachable, None))).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["checks"]["broker"], "failed");

        // The broker is there: the probe replaces the connection, as the next run would.
        let reconnecting = runner.clone().with_reconnect(&amqp_url());
        let (status, body) = probe(Some(Readiness::new(reconnecting, None))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["broker"], "ok");
        let now = runner.broker_connection().await;
        assert!(
            !Arc::ptr_eq(&first, &now),
            "the closed connection was replaced"
        );
        assert!(now.status().connected());
        now.close(200, "test done".into()).await.unwrap();
    }

    #[tokio::test]
    async fn redis_is_reported_but_never_makes_the_coordinator_unready() {
        // Unreachable at start: the coordinator reads progress from PostgreSQL.
        let runner = runner(live_pool().await).await;
        let (status, body) = probe(Some(Readiness::new(runner.clone(), None))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["redis"], "not_connected");

        // Lost after start.
        let mut url = url::Url::parse(&redis_url()).unwrap();
        let target = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(6379)
        );
        let forwarder = Forwarder::start(target).await;
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(forwarder.addr.port())).unwrap();
        let redis = redis_at(url.as_str()).await;
        let readiness = Readiness::new(runner, Some(redis));
        let (status, body) = probe(Some(readiness.clone())).await;
        assert_eq!((status, &body["checks"]["redis"]), (200, &json!("ok")));
        forwarder.cut().await;
        let (status, body) = probe(Some(readiness)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["redis"], "failed");
    }

    #[tokio::test]
    async fn an_http_face_without_readiness_is_never_ready() {
        let (status, body) = probe(None).await;
        assert_eq!(status, 503);
        assert_eq!(body, json!({"status": "starting"}));
    }
}
