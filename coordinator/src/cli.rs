//! The `dirsync` command line: register tenants, run syncs, serve the scheduler.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use dirsync_proto::TenantId;

use crate::cloud::{Cloud, resolve_endpoints};
use crate::scheduler::{self, Leases};
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
    /// Run the scheduler: claim due tenants and sync them until interrupted.
    Serve,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register an Entra tenant and a Webex org; prints the new tenant id.
    Add(AddTenant),
    /// List tenants.
    List,
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
    let pool = db::connect(&cli.config.database_url)
        .await
        .context("connecting to postgresql")?;
    match cli.command {
        Command::Migrate => println!("migrations applied"),
        Command::Tenant(TenantCommand::Add(add)) => {
            let tenant = NewTenant::try_from(add)?;
            let id = TenantStore::new(pool)
                .create(&tenant)
                .await
                .context("registering the tenant")?;
            println!("{id}");
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
            let leases = Leases::new(pool, owner_name());
            anyhow::ensure!(
                leases.claim(tenant).await?,
                "tenant {tenant} is being synced by another coordinator"
            );
            let outcome = leases
                .hold(tenant, runner.sync_tenant(tenant, None, &shutdown))
                .await?;
            println!("{}", serde_json::to_string(&outcome)?);
        }
        Command::Serve => {
            let runner = runner(&cli.config, pool.clone()).await?;
            let leases = Leases::new(pool, owner_name());
            let max_runs = cli.config.max_concurrent_runs as usize;
            let report = scheduler::serve(runner, leases, max_runs, shutdown).await?;
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
    Ok(Runner::new(
        pool,
        Arc::new(amqp),
        config.topology(),
        config.run_window,
    ))
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
