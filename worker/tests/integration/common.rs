//! Isolated resources for one test: a fresh PostgreSQL database with the migrations
//! applied (dropped when the guard goes, even if the test panics), a unique prefix for
//! Redis keys and broker names, and rows for a tenant and a run.

use std::time::Duration;

use dirsync_proto::{RunId, SecretField, SecretsKey, TenantId, Topology};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A unique topology, so queues, exchanges and Redis keys never collide between tests.
/// The secrets key of the tests' tenants: [`TestDb::seed`] seals tokens with it, and
/// `RunningWorker::start` gives it to workers that have none.
pub fn secrets_key() -> SecretsKey {
    SecretsKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
}

pub fn unique_topology() -> Topology {
    Topology::new(format!("wtest-{}", Uuid::new_v4().simple()))
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = base.rsplit_once('/').map_or(base, |(head, _)| head);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A fresh database, dropped on `Drop`.
pub struct TestDb {
    pub pool: PgPool,
    name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = format!("w_{}", Uuid::new_v4().simple());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&database_url())
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&with_database(&database_url(), &name))
            .await
            .unwrap();
        dirsync_worker::MIGRATOR.run(&pool).await.unwrap();
        TestDb { pool, name }
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        with_database(&database_url(), &self.name)
    }

    /// Inserts a tenant pointing at `scim_base_url` and an open run of it.
    pub async fn seed(
        &self,
        scim_base_url: &str,
        token: &str,
        allow_hard_delete: bool,
    ) -> (TenantId, RunId) {
        let tenant = TenantId::new();
        let run = RunId::new();
        let token = secrets_key()
            .seal(tenant, SecretField::ScimToken, token)
            .unwrap();
        sqlx::query(
            "INSERT INTO tenants (id, name, graph_tenant_id, graph_login_url, graph_base_url, client_id, \
             client_secret, scim_base_url, scim_token, allow_hard_delete) \
             VALUES ($1, 'test', 'g', 'http://login', 'http://graph', 'c', 's', $2, $3, $4)",
        )
        .bind(tenant.0)
        .bind(scim_base_url)
        .bind(token)
        .bind(allow_hard_delete)
        .execute(&self.pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO runs (id, tenant_id, kind) VALUES ($1, $2, 'initial')")
            .bind(run.0)
            .bind(tenant.0)
            .execute(&self.pool)
            .await
            .unwrap();
        (tenant, run)
    }

    /// The users a run recorded as failed, as (entra id, reason), by entra id.
    pub async fn failed_objects(&self, run: RunId) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT entra_id, reason FROM failed_objects WHERE run_id = $1 ORDER BY entra_id",
        )
        .bind(run.0)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await; a short-lived runtime on another thread does the cleanup, so it
        // also runs when the test panicked. The pool's connections belong to the test's
        // runtime, which this thread blocks: FORCE ends them instead of closing the pool.
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&database_url())
                    .await
                {
                    let drop_db = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(AssertSqlSafe(drop_db)).execute(&admin).await;
                    admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

pub async fn redis() -> redis::aio::ConnectionManager {
    let client = redis::Client::open(redis_url()).unwrap();
    redis::aio::ConnectionManager::new(client).await.unwrap()
}

/// Removes a test's broker resources and Redis keys on `Drop`, so they go even when an
/// assertion fails half-way.
pub struct TopologyGuard {
    pub topology: Topology,
    pub runs: Vec<RunId>,
}

impl Drop for TopologyGuard {
    fn drop(&mut self) {
        let topology = self.topology.clone();
        let runs = std::mem::take(&mut self.runs);
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
                use lapin::types::ShortString;
                let props = lapin::ConnectionProperties::default();
                if let Ok(amqp) = lapin::Connection::connect(&amqp_url(), props).await
                    && let Ok(channel) = amqp.create_channel().await
                {
                    for queue in [
                        topology.batch_queue(),
                        topology.priority_queue(),
                        topology.dead_letter_queue(),
                    ] {
                        let _ = channel
                            .queue_delete(ShortString::from(queue), QueueDeleteOptions::default())
                            .await;
                    }
                    for exchange in [topology.results_exchange(), topology.dead_letter_exchange()] {
                        let _ = channel
                            .exchange_delete(
                                ShortString::from(exchange),
                                ExchangeDeleteOptions::default(),
                            )
                            .await;
                    }
                    let _ = amqp.close(200, ShortString::from("cleanup")).await;
                }
                if let Ok(client) = redis::Client::open(redis_url())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    for run in runs {
                        let _: Result<(), _> = redis::cmd("DEL")
                            .arg(topology.run_counts_key(run))
                            .arg(topology.run_counted_key(run))
                            .query_async(&mut conn)
                            .await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Deletes the Redis keys of a run.
pub async fn delete_run_keys(
    conn: &mut redis::aio::ConnectionManager,
    topology: &Topology,
    run: RunId,
) {
    let _: () = redis::cmd("DEL")
        .arg(topology.run_counts_key(run))
        .arg(topology.run_counted_key(run))
        .query_async(conn)
        .await
        .unwrap();
}

#[test]
fn database_url_swap() {
    assert_eq!(
        with_database("postgres://root@h:5432/test", "x"),
        "postgres://root@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://root@h/test?sslmode=disable", "x"),
        "postgres://root@h/x?sslmode=disable"
    );
}
