//! Isolated resources on the real PostgreSQL, RabbitMQ and Redis, for tests and the demo.
//!
//! Each [`TestEnv`] gets its own database (migrated), its own queue/exchange/key prefix and
//! its own random secrets key (`DIRSYNC_SECRETS_KEY`), and removes the first two in
//! [`TestEnv::cleanup`], so runs can go side by side and leave nothing behind.

use anyhow::Context;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use sqlx::{Connection, PgConnection, PgPool};
use url::Url;

use dirsync_proto::{SecretsKey, Topology};
use secrecy::ExposeSecret;

/// Default service URLs of the development machine; overridden by the usual variables.
pub const DEFAULT_DATABASE_URL: &str = "postgres://root@127.0.0.1:5432/test";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// One isolated set of resources.
#[derive(Debug)]
pub struct TestEnv {
    pub database_url: String,
    pub amqp_url: String,
    pub redis_url: String,
    pub prefix: String,
    pub pool: PgPool,
    /// Seals this environment's tenant secrets; handed to its coordinator and workers.
    pub secrets_key: SecretsKey,
    admin_url: String,
    db_name: String,
}

impl TestEnv {
    /// Creates a fresh database and prefix named after `label` and a random suffix.
    pub async fn new(label: &str) -> anyhow::Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let db_name = format!("dirsync_{clean}_{suffix}");
        let admin_url = env_or("DATABASE_URL", DEFAULT_DATABASE_URL);
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .context("connecting to postgresql")?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{db_name}\""
        )))
        .execute(&mut admin)
        .await
        .context("creating the test database")?;
        admin.close().await?;
        let mut url = Url::parse(&admin_url)?;
        url.set_path(&db_name);
        let database_url = url.to_string();
        let pool = dirsync_coordinator::db::connect(&database_url).await?;
        Ok(Self {
            database_url,
            amqp_url: env_or("AMQP_URL", DEFAULT_AMQP_URL),
            redis_url: env_or("REDIS_URL", DEFAULT_REDIS_URL),
            prefix: format!("t-{clean}-{suffix}"),
            pool,
            secrets_key: SecretsKey::generate()?,
            admin_url,
            db_name,
        })
    }

    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone())
    }

    /// Environment variables that point a coordinator or worker process at these resources.
    /// The coordinator's admin API over this environment on a free loopback port, judging
    /// quarantine by `quarantine` (the deployment's thresholds), until `shutdown`; its base
    /// URL and a fresh admin token.
    pub async fn serve_admin_api(
        &self,
        quarantine: dirsync_coordinator::quarantine::Thresholds,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<(String, secrecy::SecretString)> {
        use dirsync_coordinator::{api, http};
        let tenants = dirsync_coordinator::TenantStore::new(self.pool.clone())
            .with_key(self.secrets_key.clone());
        let state = api::ApiState {
            quarantine,
            ..api::ApiState::new(self.pool.clone(), tenants.clone())
        };
        let router = http::router(http::HttpState::new(tenants, None).with_api(state));
        let served =
            crate::serve::spawn(router, crate::serve::any_loopback_port(), shutdown.clone())
                .await?;
        let (_, token) = api::auth::create(&self.pool, "test").await?;
        Ok((format!("{}{}", served.base_url(), api::BASE), token))
    }

    pub fn process_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.database_url.clone()),
            ("AMQP_URL", self.amqp_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("DIRSYNC_PREFIX", self.prefix.clone()),
            (
                "DIRSYNC_SECRETS_KEY",
                self.secrets_key.to_base64().expose_secret().to_owned(),
            ),
            // The simulators listen on the loopback interface (`allowed_hosts`).
            ("DIRSYNC_ALLOWED_HOSTS", "127.0.0.1".to_string()),
            // Worker processes of one machine: each its own free port for /metrics and probes.
            ("WORKER_HTTP_ADDR", "127.0.0.1:0".to_string()),
            // The simulated org has no budget unless a test gives it one: measure the fleet,
            // not the deployment default. The caller's environment still wins.
            (
                "DIRSYNC_SCIM_RATE_PER_ORG",
                std::env::var("DIRSYNC_SCIM_RATE_PER_ORG").unwrap_or_else(|_| "0".into()),
            ),
        ]
    }

    /// A worker's batch processor on this environment's database, Redis and broker, built
    /// as a worker process builds it, for tests that hand it batches directly.
    pub async fn batch_processor(
        &self,
        amqp: &lapin::Connection,
        settings: dirsync_worker::WorkerSettings,
    ) -> anyhow::Result<dirsync_worker::batch::BatchProcessor> {
        let redis =
            redis::aio::ConnectionManager::new(redis::Client::open(self.redis_url.as_str())?)
                .await?;
        let results = dirsync_worker::broker::ResultPublisher::new(
            amqp.create_channel().await?,
            self.topology(),
        )
        .await?;
        Ok(dirsync_worker::batch::BatchProcessor::new(
            self.pool.clone(),
            redis,
            dirsync_worker::scim::http_client(std::time::Duration::from_secs(10))?,
            dirsync_worker::counters::RunCounters::new(self.topology(), settings.counts_ttl),
            results,
            settings,
        ))
    }

    /// Drops the database, the queue and exchange, and the Redis keys.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.db_name
        )))
        .execute(&mut admin)
        .await?;
        let topology = self.topology();
        let amqp =
            lapin::Connection::connect(&self.amqp_url, lapin::ConnectionProperties::default())
                .await?;
        let channel = amqp.create_channel().await?;
        for queue in [
            topology.batch_queue(),
            topology.priority_queue(),
            topology.dead_letter_queue(),
        ] {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [topology.results_exchange(), topology.dead_letter_exchange()] {
            channel
                .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                .await?;
        }
        amqp.close(200, "cleanup".into()).await?;
        let client = redis::Client::open(self.redis_url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
        }
        Ok(())
    }
}
