//! Revoking the admin consent of dirsync's app in the tenant ("Delete instance" with "revoke
//! consent"): the app's service principal (enterprise application) is deleted,
//! `DELETE /v1.0/servicePrincipals(appId='{client_id}')` (`serviceprincipal-delete`, 204),
//! with the app's own token (permission `Application.ReadWrite.OwnedBy` or higher). Granting
//! the permissions again needs an admin's consent.
//!
//! A principal that is gone already counts as revoked: Graph answers 404, or, more likely,
//! the token endpoint refuses the app with `AADSTS7000229` (missing service principal) or
//! `AADSTS700016` (app not found in the directory) before the request is sent. Any other
//! failure is the caller's to report; nothing is retried, an admin is waiting.

use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use secrecy::ExposeSecret;

use super::GraphClient;
use super::client::{classify_error, parse_retry_after};
use crate::CoordinatorError;

/// What revoking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The service principal was deleted now.
    Now,
    /// There was none (revoked earlier, e.g. in Entra by an admin).
    Already,
}

/// The AADSTS codes of a token refusal that means "the app has no principal here".
const NO_PRINCIPAL: [&str; 2] = ["AADSTS7000229", "AADSTS700016"];

/// Whether a token refusal says the app has no service principal in the tenant (pure).
pub fn principal_gone(e: &CoordinatorError) -> bool {
    match e {
        CoordinatorError::GraphAuth(detail) => NO_PRINCIPAL.iter().any(|code| {
            detail
                .match_indices(code)
                // Not the prefix of a longer code (`AADSTS7000229` is no `AADSTS700016`).
                .any(|(at, _)| !detail[at + code.len()..].starts_with(|c: char| c.is_ascii_digit()))
        }),
        _ => false,
    }
}

/// The answer to the `DELETE` (pure): 204 (or any success) deleted it, 404 found none.
pub fn deletion_outcome(
    status: StatusCode,
    retry_after: Option<std::time::Duration>,
    body: &[u8],
) -> Result<Revoked, CoordinatorError> {
    match status {
        s if s.is_success() => Ok(Revoked::Now),
        StatusCode::NOT_FOUND => Ok(Revoked::Already),
        s => Err(classify_error(s, retry_after, body)),
    }
}

/// `…/v1.0/servicePrincipals(appId='{client_id}')`, the quote doubled as OData escapes it.
pub fn principal_url(graph_base_url: &str, client_id: &str) -> String {
    format!(
        "{}/v1.0/servicePrincipals(appId='{}')",
        graph_base_url.trim_end_matches('/'),
        client_id.replace('\'', "''")
    )
}

impl GraphClient {
    /// Deletes the app's own service principal in the tenant.
    pub async fn revoke_consent(&self) -> Result<Revoked, CoordinatorError> {
        let token = match self.token().await {
            Ok(token) => token,
            Err(e) if principal_gone(&e) => return Ok(Revoked::Already),
            Err(e) => return Err(e),
        };
        let response = self
            .http()
            .delete(principal_url(self.graph_base_url(), self.client_id()))
            .header(AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
            .send()
            .await?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let body = response.bytes().await?;
        deletion_outcome(status, retry_after, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_principal_is_recognised() {
        let auth = |d: &str| CoordinatorError::GraphAuth(d.into());
        let cases = [
            (
                auth(
                    "http 401 Unauthorized: AADSTS7000229: The client application a is missing service principal in the tenant t.",
                ),
                true,
            ),
            (
                auth(
                    "http 400 Bad Request: AADSTS700016: Application with identifier 'a' was not found in the directory 't'.",
                ),
                true,
            ),
            (
                auth("http 401 Unauthorized: AADSTS7000215: Invalid client secret provided."),
                false,
            ),
            (
                auth("http 400 Bad Request: AADSTS7000160: something else"),
                false,
            ),
            (
                auth("http 400 Bad Request: AADSTS90002: Tenant 't' not found."),
                false,
            ),
            (
                CoordinatorError::GraphStatus {
                    status: 404,
                    code: "AADSTS7000229".into(),
                    message: String::new(),
                    retry_after: None,
                },
                false,
            ),
        ];
        for (e, gone) in cases {
            assert_eq!(principal_gone(&e), gone, "{e}");
        }
    }

    #[test]
    fn the_deletion_answer() {
        let ok = |s: u16| deletion_outcome(StatusCode::from_u16(s).unwrap(), None, b"");
        assert_eq!(ok(204).unwrap(), Revoked::Now);
        assert_eq!(ok(200).unwrap(), Revoked::Now);
        assert_eq!(ok(404).unwrap(), Revoked::Already);
        let refused = deletion_outcome(
            StatusCode::FORBIDDEN,
            None,
            br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&refused, CoordinatorError::GraphStatus { status: 403, code, .. } if code == "Authorization_RequestDenied"),
            "{refused}"
        );
        assert!(ok(503).unwrap_err().is_retryable());
    }

    #[test]
    fn the_principal_url() {
        assert_eq!(
            principal_url("https://graph.microsoft.com/", "0000-1"),
            "https://graph.microsoft.com/v1.0/servicePrincipals(appId='0000-1')"
        );
        assert_eq!(
            principal_url("http://127.0.0.1:9", "a'b"),
            "http://127.0.0.1:9/v1.0/servicePrincipals(appId='a''b')"
        );
    }
}
