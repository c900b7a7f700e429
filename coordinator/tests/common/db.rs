//! A fresh, migrated PostgreSQL database per test, dropped when the test ends.

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use dirsync_proto::TenantId;

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
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

/// A fresh, migrated database, dropped on `Drop` (also when the test panics).
pub struct TestDb {
    pub pool: PgPool,
    name: String,
}

impl TestDb {
    /// A database named `{prefix}_{random}`.
    pub async fn new(prefix: &str) -> TestDb {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
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
            .max_connections(4)
            .connect(&with_database(&database_url(), &name))
            .await
            .unwrap();
        dirsync_coordinator::db::migrate(&pool).await.unwrap();
        TestDb { pool, name }
    }

    /// A new tenant row with placeholder Graph and SCIM settings.
    pub async fn tenant(&self) -> TenantId {
        let tenant = TenantId::new();
        sqlx::query(
            "INSERT INTO tenants (id, name, graph_tenant_id, graph_login_url, graph_base_url, client_id, \
             client_secret, scim_base_url, scim_token) \
             VALUES ($1, 't', 'g', 'http://login', 'http://graph', 'c', 's', 'http://scim/v2', 'tok')",
        )
        .bind(tenant.0)
        .execute(&self.pool)
        .await
        .unwrap();
        tenant
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be gone: a runtime of its own on
        // another thread drops the database, ending the pool's connections (FORCE).
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
