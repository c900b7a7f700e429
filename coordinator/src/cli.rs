//! The `dirsync` command line: register tenants, run syncs, serve the scheduler.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use dirsync_proto::{RunId, TenantId};

use crate::cloud::{Cloud, resolve_endpoints};
use crate::guard::Thresholds;
use crate::http::HttpState;
use crate::quarantine;
use crate::reconcile::{Deactivations, Decision};
use crate::scheduler::{self, Leases};
use crate::scope::Scope;
use crate::{CoordinatorConfig, CoordinatorError, NewTenant, Runner, TenantStore, broker, db};

#[derive(Debug, Parser)]
#[command(
    name = "dirsync",
    version,
    about = "Keeps Webex in sync with Microsoft Entra ID"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: CoordinatorConfig,
    #[command(subcommand)]
    pub command: Command,
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
    /// Run id, as printed by `sync` or in the logs.
    pub run: RunId,
    /// Who decides, recorded with the decision.
    #[arg(long, env = "USER", default_value = "operator")]
    pub by: String,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register an Entra tenant and a Webex org; prints the new tenant id.
    Add(AddTenant),
    /// List tenants.
    List,
    /// Authorize a tenant saved with `--authorize-later`, so that it starts syncing.
    Authorize { tenant: TenantId },
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

#[derive(clap::Args)]
pub struct AddTenant {
    /// Instance name.
    #[arg(long)]
    pub name: String,
    /// Entra tenant id (GUID or domain).
    #[arg(long)]
    pub entra_tenant_id: String,
    /// Microsoft cloud of the Entra tenant; picks the login and Graph roots.
    #[arg(long, value_enum, default_value_t = Cloud::Global)]
    pub cloud: Cloud,
    /// Custom login root (a simulator, a private endpoint); needs --graph-base-url too and
    /// replaces the cloud's.
    #[arg(long)]
    pub graph_login_url: Option<String>,
    /// Custom Microsoft Graph root; needs --graph-login-url too and replaces the cloud's.
    #[arg(long)]
    pub graph_base_url: Option<String>,
    /// Application (client) id.
    #[arg(long)]
    pub client_id: String,
    /// Client secret (prefer the environment variable to keep it out of the process list).
    #[arg(long, env = "DIRSYNC_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: String,
    /// SCIM root up to /v2, e.g. https://webexapis.com/identity/scim/{orgId}/v2.
    #[arg(long)]
    pub scim_url: String,
    /// SCIM bearer token (prefer the environment variable).
    #[arg(long, env = "DIRSYNC_SCIM_TOKEN", hide_env_values = true)]
    pub scim_token: String,
    /// Delete Webex users that Entra hard-deletes (by default they are only deactivated).
    #[arg(long)]
    pub allow_hard_delete: bool,
    /// Save the configuration without authorizing it: the tenant is not synced until
    /// `dirsync tenant authorize`.
    #[arg(long)]
    pub authorize_later: bool,
}

impl std::fmt::Debug for AddTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddTenant")
            .field("name", &self.name)
            .field("entra_tenant_id", &self.entra_tenant_id)
            .field("cloud", &self.cloud)
            .field("graph_login_url", &self.graph_login_url)
            .field("graph_base_url", &self.graph_base_url)
            .field("client_id", &self.client_id)
            .field("scim_url", &self.scim_url)
            .field("allow_hard_delete", &self.allow_hard_delete)
            .finish_non_exhaustive()
    }
}

impl TryFrom<AddTenant> for NewTenant {
    type Error = CoordinatorError;

    /// Resolves the cloud into the URLs the tenant is stored with.
    fn try_from(a: AddTenant) -> Result<Self, CoordinatorError> {
        let endpoints = resolve_endpoints(
            a.cloud,
            a.graph_login_url.as_deref(),
            a.graph_base_url.as_deref(),
        )?;
        Ok(NewTenant {
            name: a.name,
            graph_tenant_id: a.entra_tenant_id,
            graph_login_url: endpoints.login_url,
            graph_base_url: endpoints.graph_base_url,
            client_id: a.client_id,
            client_secret: SecretString::from(a.client_secret),
            scim_base_url: a.scim_url,
            scim_token: SecretString::from(a.scim_token),
            allow_hard_delete: a.allow_hard_delete,
        })
    }
}

/// Runs a parsed command line; `shutdown` is cancelled on SIGTERM or Ctrl-C by the caller.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<()> {
    if let Command::SecretsKey(SecretsKeyCommand::Generate) = cli.command {
        let key = dirsync_proto::SecretsKey::generate()?.to_base64();
        println!("{}", secrecy::ExposeSecret::expose_secret(&key));
        return Ok(());
    }
    let pool = db::connect(&cli.config.database_url)
        .await
        .context("connecting to postgresql")?;
    match cli.command {
        Command::Migrate => println!("migrations applied"),
        // Handled above, before connecting.
        Command::SecretsKey(SecretsKeyCommand::Generate) => {}
        Command::Tenant(TenantCommand::Add(add)) => {
            let authorized = !add.authorize_later;
            let tenant = NewTenant::try_from(add)?;
            let id = TenantStore::new(pool)
                .with_key(cli.config.secrets_key()?)
                .create_with(&tenant, authorized)
                .await
                .context("registering the tenant")?;
            println!("{id}");
        }
        Command::Tenant(TenantCommand::Authorize { tenant }) => {
            TenantStore::new(pool).set_authorized(tenant, true).await?;
            println!("{tenant} authorized");
        }
        Command::Tenant(TenantCommand::AutoSync { tenant, state }) => {
            TenantStore::new(pool)
                .set_auto_sync(tenant, state == OnOff::On)
                .await?;
            println!(
                "auto-sync of {tenant}: {}",
                if state == OnOff::On { "on" } else { "off" }
            );
        }
        Command::Tenant(TenantCommand::ClearAttributes { tenant, state }) => {
            let on = state == OnOff::On;
            TenantStore::new(pool)
                .set_clear_attributes(tenant, on)
                .await?;
            println!(
                "clear attributes of {tenant}: {}",
                if on { "on" } else { "off" }
            );
        }
        Command::Tenant(TenantCommand::Mapping {
            tenant,
            file,
            default,
        }) => {
            let store = TenantStore::new(pool);
            if default {
                store.set_mapping(tenant, None).await?;
                println!("mapping of {tenant}: the default");
            } else if let Some(file) = file {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let rules = serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a list of mapping rules", file.display())
                })?;
                store.set_mapping(tenant, Some(rules)).await?;
                println!("mapping of {tenant}: saved, applies from the next run");
            } else {
                match store.mapping(tenant).await? {
                    Some(rules) => println!("{}", serde_json::to_string_pretty(&rules)?),
                    None => println!("the default mapping (the seed's attribute table)"),
                }
            }
        }
        Command::Tenant(TenantCommand::Escrow { tenant }) => {
            let schedule = crate::escrow::schedule(&cli.config.escrow_retry_secs);
            let entries = crate::escrow::list(&pool, tenant, &schedule).await?;
            println!("{}", serde_json::to_string(&entries)?);
        }
        Command::Tenant(TenantCommand::SyncNow { tenant }) => {
            TenantStore::new(pool).request_sync(tenant).await?;
            println!("{tenant} will be synced by the next free coordinator");
        }
        Command::Tenant(TenantCommand::List) => {
            let tenants = TenantStore::new(pool).list().await?;
            println!("{:<36}  {:<10}  {:<6}  NAME", "ID", "STATUS", "SYNCED");
            for (id, name, status, synced) in tenants {
                println!(
                    "{id:<36}  {status:<10}  {:<6}  {name}",
                    if synced { "yes" } else { "no" }
                );
            }
        }
        Command::Sync { tenant } => {
            let runner = runner(&cli.config, pool.clone()).await?;
            let leases = Leases::new(pool, owner_name())
                .with_lease(std::time::Duration::from_secs(cli.config.lease_secs));
            anyhow::ensure!(
                leases.claim(tenant).await?,
                "tenant {tenant} is being synced by another coordinator"
            );
            let outcome = leases
                .hold(tenant, runner.sync_tenant(tenant, None, &shutdown))
                .await?;
            println!("{}", serde_json::to_string(&outcome)?);
        }
        Command::Tenant(TenantCommand::Guard {
            tenant,
            max_count,
            max_percent,
        }) => {
            let thresholds = Thresholds {
                max_count,
                max_percent,
            };
            TenantStore::new(pool).set_guard(tenant, thresholds).await?;
            println!("guard of {tenant}: {max_count} users, {max_percent}%");
        }
        Command::Tenant(TenantCommand::QuarantineThresholds {
            tenant,
            min_failures,
            max_percent,
            max_failures,
            default,
        }) => {
            let defaults = cli.config.quarantine_thresholds()?;
            let change = quarantine::Overrides {
                min_failures,
                max_percent,
                max_failures,
            };
            let own = if default {
                quarantine::set_thresholds(&pool, tenant, None, defaults).await?
            } else if change != quarantine::Overrides::default() {
                quarantine::set_thresholds(&pool, tenant, Some(change), defaults).await?
            } else {
                quarantine::overrides(&pool, tenant).await?
            };
            println!(
                "quarantine thresholds of {tenant}: {}",
                quarantine::describe(own, defaults)
            );
        }
        Command::Tenant(TenantCommand::Scope(args)) => {
            let tenant = args.tenant;
            let scope = TenantStore::new(pool)
                .set_scope(tenant, args.into())
                .await?;
            println!("{}", serde_json::to_string(&scope)?);
        }
        Command::Run(RunCommand::Approve(d)) => {
            let tenant = Deactivations::new(pool)
                .decide(d.run, Decision::Approved, &d.by)
                .await?;
            println!("run {} approved; `dirsync sync {tenant}` pushes it", d.run);
        }
        Command::Run(RunCommand::Reject(d)) => {
            let tenant = Deactivations::new(pool)
                .decide(d.run, Decision::Rejected, &d.by)
                .await?;
            println!(
                "run {} rejected; `dirsync sync {tenant}` completes it",
                d.run
            );
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
        Command::Run(RunCommand::Show { run }) => {
            let held = Deactivations::new(pool).show(run).await?;
            println!("{}", serde_json::to_string(&held)?);
        }
        Command::Serve => {
            let runner = runner(&cli.config, pool.clone()).await?;
            let tenants = TenantStore::new(pool.clone()).with_key(cli.config.secrets_key()?);
            let api = crate::api::ApiState {
                quarantine: cli.config.quarantine_thresholds()?,
                escrow_retry: crate::escrow::schedule(&cli.config.escrow_retry_secs),
                ..crate::api::ApiState::new(pool.clone(), tenants.clone())
            };
            let http = HttpState::new(tenants, cli.config.avatar_signer()?).with_api(api);
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
            let report = scheduler::serve(runner, leases, max_runs, shutdown.clone()).await;
            // The scheduler stops on shutdown or on an error; the HTTP face goes with it.
            shutdown.cancel();
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
            .with_escrow_retry(&config.escrow_retry_secs)
            .with_quarantine(config.quarantine_thresholds()?)
            .with_avatars_if(config.avatar_signer()?, config.avatar_checks_per_run)
            .with_secrets(config.secrets_key()?),
    )
}

/// A lease owner name that identifies this process in the `tenants` table.
pub fn owner_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tenant add` with the required flags plus `extra`, resolved to what would be stored.
    fn add(extra: &[&str]) -> Result<NewTenant, String> {
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
            Command::Tenant(TenantCommand::Add(a)) => {
                NewTenant::try_from(a).map_err(|e| e.to_string())
            }
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn run_decisions_and_guard_parse() {
        let run = "0ae87ade-8c8a-4952-af08-318798958d0c";
        // (argv after `dirsync`, what it parses to, or a piece of the error)
        let cases: [(&[&str], Result<&str, &str>); 6] = [
            (
                &["run", "approve", run, "--by", "alice"],
                Ok("approve 0ae87ade-8c8a-4952-af08-318798958d0c by alice"),
            ),
            (
                &["run", "reject", run, "--by", "bob"],
                Ok("reject 0ae87ade-8c8a-4952-af08-318798958d0c by bob"),
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
                    Command::Run(RunCommand::Approve(d)) => {
                        format!("approve {} by {}", d.run, d.by)
                    }
                    Command::Run(RunCommand::Reject(d)) => format!("reject {} by {}", d.run, d.by),
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
                    (t.graph_login_url.as_str(), t.graph_base_url.as_str()),
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
