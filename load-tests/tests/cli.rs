//! The `dirsync` command line, run in-process: register a tenant, sync it, list it.

use clap::Parser;
use tokio_util::sync::CancellationToken;

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
            _ => continue,
        };
        argv.push(flag.into());
        argv.push(value.clone());
    }
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
