//! `dirsync tenant provision <tenant> <user>`: provision one user on demand and print the
//! result. Exit status: 0 when the user was provisioned or skipped (the reason says why),
//! 1 when Webex refused it (the reason is the SCIM error) or the workers did not answer in
//! time; the other codes of `api_client::ExitCode` as usual (5: no such instance or user).

use reqwest::Method;
use serde_json::json;

use dirsync_proto::TenantId;

use crate::api_client::{ApiClient, ApiFailure, ExitCode};
use crate::output::{self, cell, fields};
use crate::provision::{ProvisionOutcome, ProvisionResult};

/// The result as the table shows it (pure).
pub fn outcome_text(o: &ProvisionOutcome) -> String {
    fields(&[
        ("RESULT", o.result.as_str().to_string()),
        ("ACTION", o.action.as_str().to_string()),
        ("ENTRA ID", o.entra_id.clone()),
        (
            "USER PRINCIPAL NAME",
            cell(o.user_principal_name.as_deref()),
        ),
        ("WEBEX ID", cell(o.webex_id.as_deref())),
        ("REASON", cell(o.reason.as_deref())),
        ("ELAPSED", format!("{} ms", o.elapsed_ms)),
    ])
}

pub async fn provision(
    api: &ApiClient,
    tenant: TenantId,
    user: &str,
    json: bool,
) -> Result<(), ApiFailure> {
    let outcome: ProvisionOutcome = api
        .call(
            Method::POST,
            &format!("/tenants/{tenant}/provision"),
            Some(&json!({ "user": user })),
        )
        .await?;
    output::print(json, &outcome, outcome_text);
    if outcome.result == ProvisionResult::Failed {
        return Err(ApiFailure {
            code: ExitCode::Failed,
            message: format!(
                "provisioning {} failed: {}",
                outcome.entra_id,
                outcome.reason.as_deref().unwrap_or("no reason given")
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::Action;

    #[test]
    fn the_table_shows_the_result_and_why() {
        let failed = ProvisionOutcome {
            result: ProvisionResult::Failed,
            action: Action::None,
            entra_id: "u1".into(),
            user_principal_name: Some("ada@contoso.example".into()),
            webex_id: None,
            reason: Some("scim 409 uniqueness: userName taken".into()),
            run_id: None,
            elapsed_ms: 215,
        };
        let text = outcome_text(&failed);
        for want in [
            "RESULT",
            "failed",
            "ada@contoso.example",
            "scim 409 uniqueness: userName taken",
            "215 ms",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        let created = ProvisionOutcome {
            result: ProvisionResult::Success,
            action: Action::Created,
            webex_id: Some("w1".into()),
            reason: None,
            ..failed
        };
        let text = outcome_text(&created);
        assert!(text.contains("success") && text.contains("created") && text.contains("w1"));
    }
}
