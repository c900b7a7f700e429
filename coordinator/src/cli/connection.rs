//! The Entra tenant and Webex org an instance connects, as `tenant add` and `tenant migrate`
//! both take them on the command line.

use crate::CoordinatorError;
use crate::cloud::{Cloud, resolve_endpoints};

#[derive(clap::Args)]
pub struct InstanceArgs {
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
    /// Save the configuration without authorizing it: the tenant is not synced until
    /// `dirsync tenant authorize`.
    #[arg(long)]
    pub authorize_later: bool,
    /// Block the Webex org's Directory Connector if it uses one (set-up stops otherwise).
    #[arg(long)]
    pub block_directory_connector: bool,
}

impl std::fmt::Debug for InstanceArgs {
    /// Never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceArgs")
            .field("name", &self.name)
            .field("entra_tenant_id", &self.entra_tenant_id)
            .field("cloud", &self.cloud)
            .field("graph_login_url", &self.graph_login_url)
            .field("graph_base_url", &self.graph_base_url)
            .field("client_id", &self.client_id)
            .field("scim_url", &self.scim_url)
            .finish_non_exhaustive()
    }
}

impl InstanceArgs {
    /// The request body's connection fields plus `extra`'s: the cloud resolved into its
    /// roots here, so a bad combination of flags is refused before anything is sent.
    pub fn body(&self, extra: serde_json::Value) -> Result<serde_json::Value, CoordinatorError> {
        let endpoints = resolve_endpoints(
            self.cloud,
            self.graph_login_url.as_deref(),
            self.graph_base_url.as_deref(),
        )?;
        let mut body = serde_json::json!({
            "name": self.name,
            "entra_tenant_id": self.entra_tenant_id,
            "graph_login_url": endpoints.login_url,
            "graph_base_url": endpoints.graph_base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scim_base_url": self.scim_url,
            "scim_token": self.scim_token,
            "authorize": !self.authorize_later,
            "block_directory_connector": self.block_directory_connector,
        });
        if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        Ok(body)
    }
}
