//! `dirsync tenant migrate`: an instance from an existing Cisco Webex enterprise app's
//! provisioning configuration (its scope and attribute mappings), through
//! `POST /tenants/migrate`. It fails, saying so, when the app provisions another Webex org.

use reqwest::Method;

use crate::api::migrate::Migrated;
use crate::api_client::{ApiClient, ApiFailure, ExitCode};
use crate::output::{self, table};

/// The app to migrate and the instance to create.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub instance: super::connection::InstanceArgs,
    /// The existing enterprise app: the object id of its service principal.
    #[arg(long)]
    pub service_principal_id: String,
    /// Leave out the app's mappings that dirsync cannot do (they are listed) instead of
    /// refusing the migration.
    #[arg(long)]
    pub skip_unsupported: bool,
}

impl MigrateArgs {
    /// The body of `POST /tenants/migrate`.
    pub fn body(&self) -> Result<serde_json::Value, ApiFailure> {
        self.instance
            .body(serde_json::json!({
                "service_principal_id": self.service_principal_id,
                "skip_unsupported": self.skip_unsupported,
            }))
            .map_err(|e| ApiFailure {
                code: ExitCode::Invalid,
                message: e.to_string(),
            })
    }
}

pub async fn migrate(api: &ApiClient, args: &MigrateArgs, json: bool) -> Result<(), ApiFailure> {
    let body = args.body()?;
    let migrated: Migrated = api
        .call(Method::POST, "/tenants/migrate", Some(&body))
        .await?;
    output::print(json, &migrated, migrated_text);
    Ok(())
}

fn migrated_text(m: &Migrated) -> String {
    let r = &m.report;
    let scope = if r.all_users {
        "all users".to_string()
    } else {
        format!("{} users, {} groups", r.users, r.groups)
    };
    let mut out = format!(
        "{}\n\nmigrated from provisioning job {}: {scope}; {} mappings",
        super::instance::instance_fields(&m.instance),
        r.job_id,
        r.mappings
    );
    if !r.handled_by_dirsync.is_empty() {
        out.push_str(&format!(
            "; set by dirsync itself: {}",
            r.handled_by_dirsync.join(", ")
        ));
    }
    if !r.not_migrated.is_empty() {
        let rows: Vec<Vec<String>> = r
            .not_migrated
            .iter()
            .map(|n| vec![n.target.clone(), n.reason.clone()])
            .collect();
        out.push_str("\n\n");
        out.push_str(&table(&["NOT MIGRATED", "WHY"], &rows));
    }
    out.push_str("\n\nnext: `dirsync tenant dry-run` to see what a sync would do");
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command, TenantCommand};

    fn parse(extra: &[&str]) -> Result<serde_json::Value, String> {
        let mut argv = vec![
            "dirsync",
            "tenant",
            "migrate",
            "--name",
            "Contoso",
            "--entra-tenant-id",
            "contoso",
            "--client-id",
            "app",
            "--client-secret",
            "s3cret",
            "--service-principal-id",
            "sp-1",
            "--scim-url",
            "https://scim.example/identity/scim/o/v2",
            "--scim-token",
            "tok",
        ];
        argv.extend(extra);
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Tenant(TenantCommand::Migrate(m)) => m.body().map_err(|e| e.message),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn the_command_line_becomes_the_migration_request() {
        let body = parse(&["--skip-unsupported", "--authorize-later"]).unwrap();
        assert_eq!(body["service_principal_id"], "sp-1");
        assert_eq!(body["skip_unsupported"], true);
        assert_eq!(body["authorize"], false);
        assert_eq!(body["block_directory_connector"], false);
        assert_eq!(body["graph_base_url"], "https://graph.microsoft.com");
        assert_eq!(
            body["scim_base_url"],
            "https://scim.example/identity/scim/o/v2"
        );
        let err = parse(&["--graph-login-url", "http://127.0.0.1:1"]).unwrap_err();
        assert!(err.contains("graph"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let argv = [
            "dirsync",
            "tenant",
            "migrate",
            "--name",
            "C",
            "--entra-tenant-id",
            "c",
            "--client-id",
            "app",
            "--client-secret",
            "hunter2",
            "--service-principal-id",
            "sp",
            "--scim-url",
            "u",
            "--scim-token",
            "t0ken",
        ];
        let cli = format!("{:?}", Cli::try_parse_from(argv).unwrap());
        assert!(!cli.contains("hunter2") && !cli.contains("t0ken"), "{cli}");
    }
}
