//! The Webex org's Directory Connector state, read and blocked when an instance is set up.
//!
//! An org whose users Directory Connector syncs must not have a second writer: setup stops
//! and asks the operator to block it (the seed's "Block" dialog). Like the domain list
//! (`webex_domains.rs`), the endpoint is dirsync's own stand-in for Control Hub's:
//! `GET|PUT {root}/identity/organizations/{orgId}/v1/directory-connector`,
//! `{"enabled", "blocked"}`, with the org's SCIM token.

use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::CoordinatorError;
use crate::webex_api::{OrgEndpoint, failed, refused};

/// The org's Directory Connector state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryConnector {
    pub enabled: bool,
    pub blocked: bool,
}

impl DirectoryConnector {
    /// Directory Connector still writes the org's users.
    pub fn in_use(self) -> bool {
        self.enabled && !self.blocked
    }
}

/// A client of one org's Directory Connector setting.
#[derive(Debug)]
pub struct WebexOrg {
    endpoint: OrgEndpoint,
}

impl WebexOrg {
    /// The org of `scim_base_url`, reached with its SCIM `token`.
    pub fn new(
        http: reqwest::Client,
        scim_base_url: &str,
        token: SecretString,
    ) -> Result<Self, CoordinatorError> {
        Ok(Self {
            endpoint: OrgEndpoint::new(http, scim_base_url, "directory-connector", token)?,
        })
    }

    async fn answer(
        &self,
        what: &str,
        method: Method,
        body: Option<&serde_json::Value>,
    ) -> Result<DirectoryConnector, CoordinatorError> {
        match self.endpoint.send(what, method, body).await? {
            (s, body) if s.is_success() => {
                serde_json::from_slice(&body).map_err(|e| failed(what, format!("malformed: {e}")))
            }
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => {
                Err(CoordinatorError::Invalid(
                    "webex refused the scim token; check it (and that it is the org's)".into(),
                ))
            }
            (s, body) => Err(refused(what, s, &body)),
        }
    }

    /// Whether the org uses Directory Connector.
    pub async fn directory_connector(&self) -> Result<DirectoryConnector, CoordinatorError> {
        self.answer(
            "reading the org's directory connector state",
            Method::GET,
            None,
        )
        .await
    }

    /// Blocks Directory Connector for the org.
    pub async fn block_directory_connector(&self) -> Result<DirectoryConnector, CoordinatorError> {
        let body = serde_json::json!({ "blocked": true });
        self.answer("blocking directory connector", Method::PUT, Some(&body))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_use_means_enabled_and_not_blocked() {
        let dc = |enabled, blocked| DirectoryConnector { enabled, blocked };
        assert!(dc(true, false).in_use());
        assert!(!dc(true, true).in_use() && !dc(false, false).in_use());
    }
}
