//! The `dirsync` command line. Operator commands (`tenant ...`, `run ...`) call the admin
//! API of a running coordinator (`instance.rs`), printing tables or `--json`, with exit codes
//! scripts can rely on (`api_client::ExitCode`); set-up and process commands (`migrate`,
//! `serve`, `sync`, `admin-token`, `secrets-key`) work on the database directly.

mod connection;
mod dead_letters;
mod dry_run;
mod instance;
mod migrate;
mod provision;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use dirsync_proto::{RunId, TenantId};

use crate::api_client::{ApiClient, ApiFailure, ExitCode};
use crate::http::HttpState;
use crate::scheduler::{self, Leases};
use crate::scope::Scope;
use crate::{CoordinatorConfig, CoordinatorError, Runner, TenantStore, broker, db};

#[derive(Debug, Parser)]
#[command(
    name = "dirsync",
    version,
    about = "Keeps Webex in sync with Microsoft Entra ID"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: CoordinatorConfig,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the operator commands find the admin API, and how they print.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The admin API of a coordinator (`dirsync serve`).
    #[arg(
        long,
        env = "DIRSYNC_API_URL",
        default_value = "http://127.0.0.1:8480/api/v1",
        global = true
    )]
    pub api_url: String,
    /// An admin token (`dirsync admin-token create`).
    #[arg(long, env = "DIRSYNC_API_TOKEN", hide_env_values = true, global = true)]
    pub api_token: Option<SecretString>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ApiArgs {
    fn client(&self) -> Result<ApiClient, ApiFailure> {
        let token = self.api_token.clone().ok_or_else(|| ApiFailure {
            code: ExitCode::Unauthorized,
            message: "set DIRSYNC_API_TOKEN (or --api-token) to an admin token; create one with \
                      `dirsync admin-token create --name <who>`"
                .into(),
        })?;
        Ok(ApiClient::new(&self.api_url, token))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants (instances).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Run one sync of a tenant now and print its outcome as JSON.
    Sync {
        /// Tenant id, as printed by `tenant add`.
        tenant: TenantId,
    },
    /// Run the scheduler: claim due tenants and sync them until interrupted; serve the
    /// admin API and avatars on DIRSYNC_HTTP_ADDR.
    Serve,
    /// Manage the admin API's bearer tokens (stored hashed; shown once at creation).
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
    /// Decide on runs held by the accidental-deletion guard.
    #[command(subcommand)]
    Run(RunCommand),
    /// The key that seals tenant secrets at rest (DIRSYNC_SECRETS_KEY).
    #[command(subcommand)]
    SecretsKey(SecretsKeyCommand),
    /// Poison batches the queues dead-lettered: list, show, re-drive.
    #[command(subcommand)]
    DeadLetter(dead_letters::DeadLetterCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretsKeyCommand {
    /// Print a fresh key (base64 of 32 random bytes), for DIRSYNC_SECRETS_KEY of every
    /// coordinator and worker; needs no database.
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create a token and print it (it is not shown again).
    Create {
        /// Who or what uses it; recorded with the decisions made with it.
        #[arg(long)]
        name: String,
    },
    /// List the tokens (never the tokens themselves).
    List,
    /// Revoke a token by its id.
    Revoke { id: uuid::Uuid },
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Allow a held run's deactivations; the next sync of its tenant pushes them.
    Approve(Decide),
    /// Refuse a held run's deactivations; the next sync completes the run without them.
    Reject(Decide),
    /// Print a run's guard state and the users of its deactivations as JSON.
    Show {
        /// Run id, as printed by `sync` or in the logs.
        run: RunId,
    },
}

#[derive(Debug, clap::Args)]
pub struct Decide {
    /// Run id, as printed by `sync`, `tenant status` or in the logs. The decision is
    /// recorded with the name of the admin token used.
    pub run: RunId,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register an Entra tenant and a Webex org; prints the new tenant id.
    Add(AddTenant),
    /// List tenants.
    List,
    /// Show a tenant's settings (never its secrets).
    Show { tenant: TenantId },
    /// Job status and the summary of the last sync (users and groups synced, skipped,
    /// failed; the failed objects and why), and the sync in progress.
    Status {
        tenant: TenantId,
        /// Most failed objects listed.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The running sync's progress (else the last completed one's) from the workers' live
    /// counters: batches recorded of published, users synced, skipped and failed.
    Progress {
        tenant: TenantId,
        /// Poll every second with a progress bar until the sync is completed.
        #[arg(long)]
        watch: bool,
    },
    /// Dry run: what a sync would do, without writing to Webex. Waits with a progress bar,
    /// then saves the report (CSV: Object Type, Action Type, Azure ID, Azure Name, Webex
    /// Name, Reason) and prints its counts. With --report, saves an earlier dry run's report.
    DryRun {
        tenant: TenantId,
        /// Where to save the report (default: dry-run-<id>.csv in this directory; `-` for
        /// standard output).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        /// Only ask for it and print its id; follow it with `tenant dry-runs`.
        #[arg(long, conflicts_with = "report")]
        detach: bool,
        /// Save the report of this earlier dry run instead of starting one.
        #[arg(long, value_name = "DRY_RUN_ID")]
        report: Option<uuid::Uuid>,
    },
    /// The instance's last dry runs: status, progress and counts by action.
    DryRuns { tenant: TenantId },
    /// Create an instance from an existing Cisco Webex enterprise app's provisioning
    /// (scope and attribute mappings); fails if the app provisions another Webex org.
    Migrate(Box<migrate::MigrateArgs>),
    /// Provision one user to Webex now, outside the sync cycle (by Entra object id or user
    /// principal name): prints success, skipped (and why) or failed (and the SCIM error).
    /// Exit 0 when provisioned or skipped, 1 when it failed; run it again to retry.
    Provision { tenant: TenantId, user: String },
    /// Search the Entra tenant's users by name or mail, to choose them for the scope.
    SearchUsers {
        tenant: TenantId,
        text: String,
        /// Most hits shown (1 to 100).
        #[arg(long, default_value_t = 25)]
        limit: u32,
    },
    /// Search the Entra tenant's groups by name or mail, to choose them for the scope.
    SearchGroups {
        tenant: TenantId,
        text: String,
        /// Most hits shown (1 to 100).
        #[arg(long, default_value_t = 25)]
        limit: u32,
    },
    /// The Entra tenant's domains and whether the Webex org has each; with --import, add
    /// those verified domains to the org's domain list.
    Domains {
        tenant: TenantId,
        /// A domain to import (repeatable).
        #[arg(long = "import", value_name = "DOMAIN")]
        import: Vec<String>,
    },
    /// The org's Entra ID single sign-on; `on` is refused while SAML SSO is enabled.
    Sso {
        tenant: TenantId,
        state: Option<OnOff>,
    },
    /// "Edit instance name".
    Rename { tenant: TenantId, name: String },
    /// "Delete instance": its configuration and state leave dirsync; Webex users stay.
    Delete {
        tenant: TenantId,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Authorize a tenant saved with `--authorize-later`, so that it starts syncing.
    Authorize {
        tenant: TenantId,
        /// Block the Webex org's Directory Connector if it uses one.
        #[arg(long)]
        block_directory_connector: bool,
    },
    /// Turn scheduled cycles on or off (off keeps the configuration).
    AutoSync { tenant: TenantId, state: OnOff },
    /// "Clear attributes": on, a value removed in Entra is removed in Webex too (off, the
    /// default: Webex keeps it).
    ClearAttributes { tenant: TenantId, state: OnOff },
    /// Show the tenant's attribute mapping, or replace it from a JSON file of rules
    /// (`[{"target": "title", "kind": "direct", "attribute": "jobTitle"}, ...]`; kinds direct,
    /// constant, expression, none; `create_only`, `default_if_null`), or go back to the default.
    Mapping {
        tenant: TenantId,
        /// The rules to save; they are checked first (expressions with error positions).
        #[arg(long, conflicts_with = "default")]
        file: Option<std::path::PathBuf>,
        /// Back to the default mapping (the seed's attribute table).
        #[arg(long)]
        default: bool,
    },
    /// The users in escrow (failed for a reason of their own) and when they are retried.
    Escrow { tenant: TenantId },
    /// Ask the coordinators (`dirsync serve`) to sync the tenant now, even with auto-sync off.
    SyncNow { tenant: TenantId },
    /// Set the accidental-deletion guard: a run that would deactivate or delete more users
    /// than either threshold waits for `dirsync run approve|reject`.
    Guard {
        tenant: TenantId,
        /// At most this many users per run (default 500).
        #[arg(long)]
        max_count: u32,
        /// At most this percentage of the tenant's active users per run (default 10;
        /// ignored for 10 users or fewer).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
        max_percent: u32,
    },
    /// Show or set the failure thresholds that quarantine the tenant: a completed run is
    /// judged from --min-failures failures, and more than --max-percent % of its objects
    /// failed or more than --max-failures failures quarantine. Values not given stay;
    /// --default goes back to the deployment's (`DIRSYNC_QUARANTINE_*`). Prints the
    /// effective thresholds.
    QuarantineThresholds {
        tenant: TenantId,
        /// Failures from which the share is judged (Entra: 5,000; small tenants are judged
        /// from fewer, see `DIRSYNC_QUARANTINE_FLOOR_PERCENT`).
        #[arg(long, conflicts_with = "default", value_parser = clap::value_parser!(u64).range(1..))]
        min_failures: Option<u64>,
        /// A larger percentage of failed objects quarantines (Entra: 40).
        #[arg(long, conflicts_with = "default", value_parser = clap::value_parser!(u64).range(1..=100))]
        max_percent: Option<u64>,
        /// More failures than this quarantine whatever the share (Entra: 40,000).
        #[arg(long, conflicts_with = "default", value_parser = clap::value_parser!(u64).range(1..))]
        max_failures: Option<u64>,
        /// Back to the deployment's thresholds.
        #[arg(long)]
        default: bool,
    },
    /// Set who is synced (applies from the next run): all users, or chosen users and the
    /// members of chosen groups. Users who leave the scope are deactivated, never deleted.
    Scope(ScopeArgs),
}

/// The scope of a tenant on the command line.
#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    pub tenant: TenantId,
    /// "Select all users" (the default scope); conflicts with --user and --group.
    #[arg(long, conflicts_with_all = ["users", "groups", "nested"])]
    pub all: bool,
    /// A chosen user, by Entra object id (repeatable).
    #[arg(long = "user", value_name = "ID")]
    pub users: Vec<String>,
    /// A chosen group, by Entra object id (repeatable): its user members are in scope.
    #[arg(long = "group", value_name = "ID")]
    pub groups: Vec<String>,
    /// "Sync children groups": also members of groups nested in the chosen ones.
    #[arg(long)]
    pub nested: bool,
    /// "Sync group objects": sync the chosen groups themselves too.
    #[arg(long)]
    pub group_objects: bool,
    /// "Identify and sync room objects".
    #[arg(long)]
    pub rooms: bool,
    /// "Sync user avatars": Entra photos become Webex avatars (needs DIRSYNC_PUBLIC_URL and
    /// DIRSYNC_AVATAR_KEY on the coordinators).
    #[arg(long)]
    pub avatars: bool,
}

impl From<ScopeArgs> for Scope {
    fn from(a: ScopeArgs) -> Scope {
        Scope {
            all: a.all || (a.users.is_empty() && a.groups.is_empty()),
            users: a.users,
            groups: a.groups,
            nested: a.nested,
            group_objects: a.group_objects,
            rooms: a.rooms,
            avatars: a.avatars,
        }
    }
}

/// A switch's state on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Args)]
pub struct AddTenant {
    #[command(flatten)]
    pub instance: connection::InstanceArgs,
    /// Delete Webex users that Entra hard-deletes (by default they are only deactivated).
    #[arg(long)]
    pub allow_hard_delete: bool,
    /// A custom setup (all users, nothing else, until `tenant scope`), instead of "sync
    /// default settings" (all users, avatars on, auto-sync on).
    #[arg(long)]
    pub custom: bool,
}

impl AddTenant {
    /// The body of `POST /tenants`.
    pub fn body(&self) -> Result<serde_json::Value, CoordinatorError> {
        self.instance.body(serde_json::json!({
            "allow_hard_delete": self.allow_hard_delete,
            "setup": if self.custom { "custom" } else { "default" },
        }))
    }
}

impl Cli {
    /// Whether the command is an operator's call to the admin API (`tenant …`, `run …`).
    pub fn calls_api(&self) -> bool {
        matches!(self.command, Command::Tenant(_) | Command::Run(_))
    }
}

/// The process exit code for a failed command: the API failure's code (see
/// [`ExitCode`]), 1 for anything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<ApiFailure>().map_or(1, |f| f.code as u8)
}

/// Runs a parsed command line; `shutdown` is cancelled on SIGTERM or Ctrl-C by the caller.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<()> {
    let json = cli.api.json;
    match cli.command {
        Command::SecretsKey(SecretsKeyCommand::Generate) => {
            let key = dirsync_proto::SecretsKey::generate()?.to_base64();
            println!("{}", secrecy::ExposeSecret::expose_secret(&key));
            return Ok(());
        }
        Command::Tenant(command) => {
            return Ok(instance::tenant(&cli.api.client()?, command, json).await?);
        }
        Command::Run(command) => {
            return Ok(instance::run(&cli.api.client()?, command, json).await?);
        }
        Command::DeadLetter(command) => {
            return Ok(dead_letters::dead_letter(&cli.api.client()?, command, json).await?);
        }
        _ => {}
    }
    cli.config.install_allowed_hosts()?;
    let pool = db::connect(&cli.config.database_url)
        .await
        .context("connecting to postgresql")?;
    match cli.command {
        Command::Migrate => println!("migrations applied"),
        // Handled above, without the database.
        Command::SecretsKey(_) | Command::Tenant(_) | Command::Run(_) | Command::DeadLetter(_) => {}
        Command::Sync { tenant } => {
            cli.config.install_graph_app_budget()?;
            let runner = runner(&cli.config, pool.clone()).await?;
            let leases = Leases::new(pool.clone(), owner_name())
                .with_lease(std::time::Duration::from_secs(cli.config.lease_secs));
            anyhow::ensure!(
                leases.claim(tenant).await?,
                "tenant {tenant} is being synced by another coordinator"
            );
            // A batch the queues dead-letter must still be recorded for the run to end.
            let dead_letters = tokio::spawn(crate::dead_letters::serve(
                pool.clone(),
                cli.config.amqp_url.clone(),
                cli.config.topology(),
                redis_counters(&cli.config.redis_url).await,
                shutdown.child_token(),
            ));
            let outcome = leases
                .hold(tenant, runner.sync_tenant(tenant, None, &shutdown))
                .await;
            dead_letters.abort();
            let outcome = outcome?;
            println!("{}", serde_json::to_string(&outcome)?);
        }
        Command::AdminToken(AdminTokenCommand::Create { name }) => {
            let (id, token) = crate::api::auth::create(&pool, &name).await?;
            eprintln!("admin token {id} ({name}); keep it secret, it is not shown again:");
            println!("{}", token.expose_secret());
        }
        Command::AdminToken(AdminTokenCommand::List) => {
            for t in crate::api::auth::list(&pool).await? {
                println!("{}", serde_json::to_string(&t)?);
            }
        }
        Command::AdminToken(AdminTokenCommand::Revoke { id }) => {
            crate::api::auth::revoke(&pool, id).await?;
            println!("admin token {id} revoked");
        }
        Command::Serve => {
            cli.config.install_graph_app_budget()?;
            let runner = runner(&cli.config, pool.clone()).await?;
            let tenants = TenantStore::new(pool.clone()).with_key(cli.config.secrets_key()?);
            let api = crate::api::ApiState {
                quarantine: cli.config.quarantine_thresholds()?,
                escrow_retry: crate::escrow::schedule(&cli.config.escrow_retry_secs),
                ..crate::api::ApiState::new(pool.clone(), tenants.clone())
            }
            .with_provisioner(crate::provision::Provisioner::new(
                pool.clone(),
                &cli.config.amqp_url,
                cli.config.topology(),
            ));
            // Live progress reads the workers' Redis counters; without Redis, PostgreSQL.
            let redis = redis::Client::open(cli.config.redis_url.as_str())?;
            let api = match redis::aio::ConnectionManager::new(redis).await {
                Ok(conn) => api.with_redis(conn, cli.config.topology()),
                Err(e) => {
                    tracing::warn!(error = %e, "redis unreachable; progress read from postgresql");
                    api
                }
            };
            // Poison batches: recorded as failed so their runs complete, kept for re-drives.
            let counters = redis_counters(&cli.config.redis_url).await;
            let api = api.with_redriver(crate::dead_letters::Redriver::new(
                pool.clone(),
                &cli.config.amqp_url,
                cli.config.topology(),
                counters.clone(),
            ));
            let dead_letters = tokio::spawn(crate::dead_letters::serve(
                pool.clone(),
                cli.config.amqp_url.clone(),
                cli.config.topology(),
                counters,
                shutdown.clone(),
            ));
            // `/readyz`: PostgreSQL and the runs' broker connection; Redis only reported.
            let readiness = crate::readiness::Readiness::new(runner.clone(), api.redis.clone());
            let http = HttpState::new(tenants, cli.config.avatar_signer()?)
                .with_api(api)
                .with_readiness(readiness);
            let listener = tokio::net::TcpListener::bind(cli.config.http_addr)
                .await
                .with_context(|| format!("listening on {}", cli.config.http_addr))?;
            tracing::info!(addr = %cli.config.http_addr, "http listening");
            let http_shutdown = shutdown.clone();
            let http_task = tokio::spawn(async move {
                axum::serve(listener, crate::http::router(http))
                    .with_graceful_shutdown(http_shutdown.cancelled_owned())
                    .await
            });
            let leases = Leases::new(pool, owner_name())
                .with_lease(std::time::Duration::from_secs(cli.config.lease_secs));
            let max_runs = cli.config.max_concurrent_runs as usize;
            // Dry runs asked for through the API, one at a time, beside the scheduled runs.
            let dry_runs = tokio::spawn(crate::dry_runs::serve(
                runner.clone(),
                owner_name(),
                shutdown.clone(),
            ));
            let gauges = tokio::spawn(crate::fleet_metrics::serve(
                runner.clone(),
                shutdown.clone(),
            ));
            let report = scheduler::serve(runner, leases, max_runs, shutdown.clone()).await;
            // The scheduler stops on shutdown or on an error; the HTTP face goes with it.
            shutdown.cancel();
            dry_runs.await.context("dry run task")?;
            dead_letters.await.context("dead-letter task")?;
            gauges.await.context("fleet gauges task")?;
            http_task
                .await
                .context("http task")?
                .context("http server")?;
            let report = report?;
            tracing::info!(
                completed = report.completed,
                failed = report.failed,
                interrupted = report.interrupted,
                "scheduler stopped"
            );
        }
    }
    Ok(())
}

async fn runner(config: &CoordinatorConfig, pool: sqlx::PgPool) -> anyhow::Result<Runner> {
    let amqp = broker::connect(&config.amqp_url)
        .await
        .context("connecting to rabbitmq")?;
    Ok(
        Runner::new(pool, Arc::new(amqp), config.topology(), config.run_window)
            .with_reconnect(&config.amqp_url)
            .with_escrow_retry(&config.escrow_retry_secs)
            .with_quarantine(config.quarantine_thresholds()?)
            .with_avatars_if(config.avatar_signer()?, config.avatar_checks_per_run)
            .with_secrets(config.secrets_key()?),
    )
}

/// The live run counters for the dead-letter consumer; `None` (logged) when Redis is
/// unreachable: PostgreSQL stays the source of truth.
async fn redis_counters(url: &str) -> Option<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url)
        .inspect_err(|e| tracing::warn!(error = %e, "invalid redis url; dead letters counted in postgresql only"))
        .ok()?;
    redis::aio::ConnectionManager::new(client)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "redis unreachable; dead letters counted in postgresql only"))
        .ok()
}

/// A lease owner name that identifies this process in the `tenants` table.
pub fn owner_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tenant add` with the required flags plus `extra`, as the body sent to the API.
    fn add(extra: &[&str]) -> Result<serde_json::Value, String> {
        let mut argv = vec![
            "dirsync",
            "tenant",
            "add",
            "--name",
            "Contoso",
            "--entra-tenant-id",
            "contoso",
            "--client-id",
            "app",
            "--client-secret",
            "s3cret",
            "--scim-url",
            "https://webexapis.com/identity/scim/org/v2",
            "--scim-token",
            "tok",
        ];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match cli.command {
            Command::Tenant(TenantCommand::Add(a)) => a.body().map_err(|e| e.to_string()),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn run_decisions_and_guard_parse() {
        let run = "0ae87ade-8c8a-4952-af08-318798958d0c";
        // (argv after `dirsync`, what it parses to, or a piece of the error)
        let cases: [(&[&str], Result<&str, &str>); 6] = [
            (
                &["run", "approve", run],
                Ok("approve 0ae87ade-8c8a-4952-af08-318798958d0c"),
            ),
            (
                &["run", "reject", run, "--json"],
                Ok("reject 0ae87ade-8c8a-4952-af08-318798958d0c"),
            ),
            (
                &["run", "show", run],
                Ok("show 0ae87ade-8c8a-4952-af08-318798958d0c"),
            ),
            (&["run", "approve", "not-a-uuid"], Err("invalid value")),
            (
                &[
                    "tenant",
                    "guard",
                    run,
                    "--max-count",
                    "50",
                    "--max-percent",
                    "5",
                ],
                Ok("guard 50 5"),
            ),
            (
                &[
                    "tenant",
                    "guard",
                    run,
                    "--max-count",
                    "50",
                    "--max-percent",
                    "101",
                ],
                Err("101"),
            ),
        ];
        for (args, expected) in cases {
            let argv = std::iter::once("dirsync").chain(args.iter().copied());
            let got = Cli::try_parse_from(argv)
                .map(|cli| match cli.command {
                    Command::Run(RunCommand::Approve(d)) => format!("approve {}", d.run),
                    Command::Run(RunCommand::Reject(d)) => format!("reject {}", d.run),
                    Command::Run(RunCommand::Show { run }) => format!("show {run}"),
                    Command::Tenant(TenantCommand::Guard {
                        max_count,
                        max_percent,
                        ..
                    }) => format!("guard {max_count} {max_percent}"),
                    other => format!("{other:?}"),
                })
                .map_err(|e| e.to_string());
            match (expected, &got) {
                (Ok(want), Ok(parsed)) => assert_eq!(parsed, want, "{args:?}"),
                (Err(needle), Err(message)) => {
                    assert!(message.contains(needle), "{args:?}: {message}")
                }
                _ => panic!("{args:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn quarantine_thresholds_parse() {
        let tenant = "8c7d0c5e-2f7b-4f7e-9a3c-1d2e3f4a5b6c";
        // (flags after the tenant, (min failures, max percent, max failures, default) or a
        // piece of the error)
        type Parsed = (Option<u64>, Option<u64>, Option<u64>, bool);
        let cases: [(&[&str], Result<Parsed, &str>); 8] = [
            (&[], Ok((None, None, None, false))),
            (
                &["--min-failures", "10", "--max-percent", "15"],
                Ok((Some(10), Some(15), None, false)),
            ),
            (
                &["--max-failures", "500"],
                Ok((None, None, Some(500), false)),
            ),
            (&["--default"], Ok((None, None, None, true))),
            (&["--max-percent", "0"], Err("0 is not in 1..=100")),
            (&["--max-percent", "101"], Err("101 is not in 1..=100")),
            (&["--min-failures", "0"], Err("0 is not in 1..")),
            (
                &["--default", "--max-failures", "5"],
                Err("cannot be used with"),
            ),
        ];
        for (flags, expected) in cases {
            let argv = ["dirsync", "tenant", "quarantine-thresholds", tenant];
            let got = Cli::try_parse_from(argv.iter().chain(flags))
                .map_err(|e| e.to_string())
                .and_then(|cli| match cli.command {
                    Command::Tenant(TenantCommand::QuarantineThresholds {
                        min_failures,
                        max_percent,
                        max_failures,
                        default,
                        ..
                    }) => Ok((min_failures, max_percent, max_failures, default)),
                    other => Err(format!("parsed as {other:?}")),
                });
            match (expected, &got) {
                (Ok(want), Ok(parsed)) => assert_eq!(parsed, &want, "{flags:?}"),
                (Err(needle), Err(message)) => {
                    assert!(message.contains(needle), "{flags:?}: {message}")
                }
                _ => panic!("{flags:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn scope_parses_into_the_tenant_scope() {
        let parse = |args: &[&str]| -> Result<Scope, String> {
            let argv = [
                "dirsync",
                "tenant",
                "scope",
                "8c7d0c5e-2f7b-4f7e-9a3c-1d2e3f4a5b6c",
            ];
            match Cli::try_parse_from(argv.iter().chain(args)) {
                Ok(Cli {
                    command: Command::Tenant(TenantCommand::Scope(a)),
                    ..
                }) => Ok(a.into()),
                Ok(_) => Err("another command".into()),
                Err(e) => Err(e.to_string()),
            }
        };
        assert_eq!(parse(&[]).unwrap(), Scope::default());
        assert_eq!(parse(&["--all"]).unwrap(), Scope::default());
        let chosen =
            parse(&["--user", "u1", "--group", "g1", "--group", "g2", "--nested"]).unwrap();
        assert_eq!(
            chosen,
            Scope {
                all: false,
                users: vec!["u1".into()],
                groups: vec!["g1".into(), "g2".into()],
                nested: true,
                ..Scope::default()
            }
        );
        assert!(parse(&["--all", "--group", "g1"]).is_err());
    }

    #[test]
    fn tenant_add_picks_graph_endpoints() {
        /// Extra flags, and the stored (login, Graph) roots or a piece of the error.
        type Case = (
            &'static [&'static str],
            Result<(&'static str, &'static str), &'static str>,
        );
        let ok = |login: &'static str, graph: &'static str| Ok((login, graph));
        let cases: [Case; 6] = [
            (
                &[],
                ok(
                    "https://login.microsoftonline.com",
                    "https://graph.microsoft.com",
                ),
            ),
            (
                &["--cloud", "global"],
                ok(
                    "https://login.microsoftonline.com",
                    "https://graph.microsoft.com",
                ),
            ),
            (
                &["--cloud", "gcc-high"],
                ok(
                    "https://login.microsoftonline.us",
                    "https://graph.microsoft.us",
                ),
            ),
            (
                &[
                    "--graph-login-url",
                    "http://127.0.0.1:8081",
                    "--graph-base-url",
                    "http://127.0.0.1:8081",
                ],
                ok("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            ),
            (
                &["--graph-base-url", "http://127.0.0.1:8081"],
                Err("must be given together"),
            ),
            (&["--cloud", "mooncake"], Err("invalid value 'mooncake'")),
        ];
        for (extra, expected) in cases {
            let got = add(extra);
            match (expected, &got) {
                (Ok(pair), Ok(t)) => assert_eq!(
                    (
                        t["graph_login_url"].as_str().unwrap(),
                        t["graph_base_url"].as_str().unwrap()
                    ),
                    pair,
                    "{extra:?}"
                ),
                (Err(needle), Err(message)) => {
                    assert!(message.contains(needle), "{extra:?}: {message}")
                }
                _ => panic!("{extra:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}
