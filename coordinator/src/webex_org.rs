//! The Webex org's Directory Connector state, read and blocked when an instance is set up.
//!
//! An org whose users Directory Connector syncs must not have a second writer: setup stops
//! and asks the operator to block it (the seed's "Block" dialog). Like the domain list
//! (`webex_domains.rs`), the endpoint is dirsync's own stand-in for Control Hub's:
//! `GET|PUT {root}/identity/organizations/{orgId}/v1/directory-connector`,
//! `{"enabled", "blocked"}`, with the org's SCIM token.

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::CoordinatorError;
use crate::webex_domains::org_api_url;

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

/// A client of one org's settings.
pub struct WebexOrg {
    http: reqwest::Client,
    url: String,
    token: SecretString,
}

impl std::fmt::Debug for WebexOrg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebexOrg")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, detail: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::WebexDomains(format!("{what}: {detail}"))
}

impl WebexOrg {
    /// The org of `scim_base_url`, reached with its SCIM `token`.
    pub fn new(
        http: reqwest::Client,
        scim_base_url: &str,
        token: SecretString,
    ) -> Result<Self, CoordinatorError> {
        Ok(Self {
            http,
            url: org_api_url(scim_base_url, "directory-connector")?,
            token,
        })
    }

    async fn answer(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<DirectoryConnector, CoordinatorError> {
        let response = request
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| failed(what, e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| failed(what, e))?;
        match status {
            s if s.is_success() => {
                serde_json::from_slice(&body).map_err(|e| failed(what, format!("malformed: {e}")))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(CoordinatorError::Invalid(
                "webex refused the scim token; check it (and that it is the org's)".into(),
            )),
            s => Err(failed(
                what,
                format!(
                    "http {}: {}",
                    s.as_u16(),
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            )),
        }
    }

    /// Whether the org uses Directory Connector.
    pub async fn directory_connector(&self) -> Result<DirectoryConnector, CoordinatorError> {
        self.answer(
            "reading the org's directory connector state",
            self.http.get(&self.url),
        )
        .await
    }

    /// Blocks Directory Connector for the org.
    pub async fn block_directory_connector(&self) -> Result<DirectoryConnector, CoordinatorError> {
        self.answer(
            "blocking directory connector",
            self.http
                .put(&self.url)
                .json(&serde_json::json!({ "blocked": true })),
        )
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
