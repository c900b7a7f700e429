//! Migrations run at start-up and must be safe when several processes start at once.

use dirsync_load_tests::testkit::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_start_ups_migrate_once() {
    // Start from an empty schema, then four "processes" start against it at once.
    let env = TestEnv::new("migrations").await.unwrap();
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .execute(&env.pool)
        .await
        .unwrap();
    let starts = (0..4).map(|_| dirsync_coordinator::db::connect(&env.database_url));
    for result in futures_util::future::join_all(starts).await {
        result.expect("a concurrent start-up failed to migrate");
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN \
         ('tenants', 'runs', 'mirror_users', 'batch_results', 'failed_objects')",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let shipped = dirsync_worker::MIGRATOR.iter().count() as i64;
    assert_eq!(
        (applied, tables),
        (shipped, 5),
        "every migration applied once"
    );
    env.cleanup().await.unwrap();
}
