//! PostgreSQL connection and migrations.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::CoordinatorError;

/// Connects and brings the schema up to date. Safe when several processes start at once:
/// sqlx serialises migrations with a PostgreSQL advisory lock.
pub async fn connect(database_url: &str) -> Result<PgPool, CoordinatorError> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(database_url)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the workspace's migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), CoordinatorError> {
    sqlx::migrate!("../migrations").run(pool).await?;
    Ok(())
}
