//! The `dirsync` command line, run in-process: register a tenant, sync it, list it.

use clap::Parser;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::TenantStore;
use dirsync_coordinator::cli::{Cli, run};
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_proto::TenantId;

fn cli(stack: &Stack, args: &[&str]) -> Cli {
    let env = stack.env.process_env();
    let mut argv = vec!["dirsync".to_string()];
    for (name, value) in &env {
        let flag = match *name {
            "DATABASE_URL" => "--database-url",
            "AMQP_URL" => "--amqp-url",
            "REDIS_URL" => "--redis-url",
            "DIRSYNC_PREFIX" => "--prefix",
            "DIRSYNC_SECRETS_KEY" => "--secrets-key",
            "DIRSYNC_ALLOWED_HOSTS" => "--allowed-hosts",
            _ => continue,
        };
        argv.push(flag.into());
        argv.push(value.clone());
    }
    argv.extend([
        "--api-url".to_string(),
        stack.api_url(),
        "--api-token".to_string(),
        stack.api_token.expose_secret().to_string(),
    ]);
    argv.extend(args.iter().map(|s| s.to_string()));
    Cli::try_parse_from(argv).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_add_rejects_bad_input_with_a_clear_error() {
    let stack = Stack::start(&StackOptions::new("cli_bad", 10))
        .await
        .unwrap();
    let bad = cli(
        &stack,
        &[
            "tenant",
            "add",
            "--name",
            "x",
            "--entra-tenant-id",
            "t",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--scim-url",
            "https://webexapis.com/identity/scim/org",
            "--scim-token",
            "tok",
        ],
    );
    let err = run(bad, CancellationToken::new()).await.unwrap_err();
    let shown = format!("{err:#}");
    assert!(shown.contains("must end with /v2"), "{shown}");
    assert!(
        !shown.contains("tok\""),
        "secrets stay out of errors: {shown}"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_command_runs_a_registered_tenant() {
    let stack = Stack::start(&StackOptions::new("cli_sync", 300))
        .await
        .unwrap();
    stack
        .spawn_worker(std::path::Path::new(env!("CARGO_BIN_EXE_demo")))
        .unwrap();
    // The stack registered its tenant through the library; `sync` must find and run it.
    let id: TenantId = stack.tenant_id;
    run(
        cli(&stack, &["sync", &id.to_string()]),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(stack.verdict().unwrap().converged);
    run(cli(&stack, &["tenant", "list"]), CancellationToken::new())
        .await
        .unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1")
        .bind(id.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    assert_eq!(status, "Active");
    stack.shutdown().await.unwrap();
}

/// Runs a scheduler over the stack's database until it completes a run of the tenant, or
/// for `span` at most, and returns how many runs it completed.
async fn schedule_for(stack: &Stack, span: std::time::Duration) -> u64 {
    use dirsync_coordinator::scheduler::{Leases, serve};
    let completed = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM runs WHERE tenant_id = $1 AND state = 'completed'",
        )
        .bind(stack.tenant_id.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap()
    };
    let before = completed().await;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let leases = Leases::new(stack.env.pool.clone(), "scheduling-test");
    let serving = tokio::spawn(serve(stack.runner.clone(), leases, 2, cancel));
    let deadline = std::time::Instant::now() + span;
    while std::time::Instant::now() < deadline && completed().await == before {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.cancel();
    serving.await.unwrap().unwrap().completed
}

async fn tenant_field<T>(stack: &Stack, column: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {column} FROM tenants WHERE id = $1"
    )))
    .bind(stack.tenant_id.0)
    .fetch_one(&stack.env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_later_auto_sync_and_sync_now() {
    let stack = Stack::start(&StackOptions::new("cli_schedule", 200))
        .await
        .unwrap();
    stack
        .spawn_worker(std::path::Path::new(env!("CARGO_BIN_EXE_demo")))
        .unwrap();
    let id = stack.tenant_id.to_string();
    // Long enough for an idle scheduler to have looked twice; a run ends the wait early.
    let span = std::time::Duration::from_millis(3_000);
    let patience = std::time::Duration::from_secs(60);

    // "Save and authorize later": added through the command line, never synced until authorized.
    let scim = format!(
        "{}/v2",
        "https://webexapis.com/identity/scim/0ae87ade-8c8a-4952-af08-318798958d0c"
    );
    let later = cli(
        &stack,
        &[
            "tenant",
            "add",
            "--name",
            "later",
            "--entra-tenant-id",
            "t",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--scim-url",
            &scim,
            "--scim-token",
            "tok",
            "--authorize-later",
        ],
    );
    run(later, CancellationToken::new()).await.unwrap();
    let saved: bool = sqlx::query_scalar("SELECT authorized FROM tenants WHERE name = 'later'")
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    assert!(!saved, "--authorize-later saves an unauthorized tenant");
    sqlx::query("DELETE FROM tenants WHERE name = 'later'")
        .execute(&stack.env.pool)
        .await
        .unwrap();

    // The stack's own tenant, turned into one saved for later.
    TenantStore::new(stack.env.pool.clone())
        .set_authorized(stack.tenant_id, false)
        .await
        .unwrap();
    assert_eq!(tenant_field::<String>(&stack, "status").await, "NotRun");
    assert_eq!(
        schedule_for(&stack, span).await,
        0,
        "an unauthorized tenant is never scheduled"
    );
    let refused = run(cli(&stack, &["sync", &id]), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("not authorized"),
        "{refused:#}"
    );

    run(
        cli(&stack, &["tenant", "authorize", &id]),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        schedule_for(&stack, patience).await,
        1,
        "authorized and due: synced once"
    );
    assert_eq!(tenant_field::<String>(&stack, "status").await, "Active");
    assert!(stack.verdict().unwrap().converged);

    // Auto-sync off: due or not, the scheduler leaves the tenant alone ...
    run(
        cli(&stack, &["tenant", "auto-sync", &id, "off"]),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE tenants SET next_run_at = now() WHERE id = $1")
        .bind(stack.tenant_id.0)
        .execute(&stack.env.pool)
        .await
        .unwrap();
    assert_eq!(schedule_for(&stack, span).await, 0, "auto-sync off");
    // ... until someone asks for a sync now, which is honoured once.
    run(
        cli(&stack, &["tenant", "sync-now", &id]),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        schedule_for(&stack, patience).await,
        1,
        "sync now runs once with auto-sync off"
    );
    assert!(
        !tenant_field::<bool>(&stack, "sync_requested").await,
        "the request is cleared"
    );
    assert_eq!(schedule_for(&stack, span).await, 0);
    stack.shutdown().await.unwrap();
}
