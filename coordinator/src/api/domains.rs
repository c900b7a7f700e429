//! `/api/v1/tenants/{id}/domains`: "Add with Entra ID" of Control Hub's domain settings.
//! The admin lists the Entra tenant's domains (with whether each is verified and whether the
//! Webex org has it), picks some and imports them; they then appear in the org's verified
//! domain list. Only domains Entra has verified are imported; the others are refused, each
//! with its reason, and the rest of the request goes on.

use std::collections::{BTreeSet, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use dirsync_proto::TenantId;

use super::ApiState;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::Tenant;
use crate::graph::domains::EntraDomain;
use crate::webex_domains::{Added, WebexDomains};

/// Most domains one import may name.
pub const MAX_IMPORT: usize = 1000;

/// A domain of the Entra tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Domain {
    pub name: String,
    /// Verified in Entra: only these can be imported.
    pub verified: bool,
    /// The tenant's default domain.
    pub default: bool,
    /// The tenant's initial `<name>.onmicrosoft.com` domain.
    pub initial: bool,
    /// Already in the Webex org's domain list.
    pub in_webex: bool,
}

/// Body of `POST /tenants/{id}/domains/import`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ImportRequest {
    /// Domain names, as listed by `GET /tenants/{id}/domains`.
    pub domains: Vec<String>,
}

/// What the import did with one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Added to the org's domain list.
    Added,
    /// The org had it already.
    AlreadyPresent,
    /// Not imported, for the reason given (not verified or not in Entra).
    Refused,
    /// Webex did not take it, for the reason given; the import may be tried again.
    Failed,
}

/// One domain's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub domain: String,
    pub result: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What to do with each requested domain, before Webex is asked to add any (pure): names are
/// compared without case, a name given twice counts once, and only a domain Entra lists as
/// verified and the org lacks is added.
pub fn plan_import(
    entra: &[EntraDomain],
    in_webex: &BTreeSet<String>,
    wanted: &[String],
) -> Vec<ImportResult> {
    let mut seen = HashSet::new();
    let mut plan = Vec::new();
    for raw in wanted {
        let name = raw.trim().to_ascii_lowercase();
        if !seen.insert(name.clone()) {
            continue;
        }
        let (result, reason) = match entra.iter().find(|d| d.name == name) {
            None => (
                Outcome::Refused,
                Some("not a domain of the entra tenant".to_string()),
            ),
            Some(d) if !d.verified => (
                Outcome::Refused,
                Some("not verified in entra: verify it there first".to_string()),
            ),
            Some(_) if in_webex.contains(&name) => (Outcome::AlreadyPresent, None),
            Some(_) => (Outcome::Added, None),
        };
        plan.push(ImportResult {
            domain: name,
            result,
            reason,
        });
    }
    plan
}

/// The tenant, its Entra domains and the org's domain client.
async fn sources(s: &ApiState, id: uuid::Uuid) -> ApiResult<(Vec<EntraDomain>, WebexDomains)> {
    let id = TenantId(id);
    let tenant: Tenant = s.tenants.get(id).await?;
    let token = s.tenants.scim_token(id).await?;
    let webex = WebexDomains::new(s.http.clone(), &tenant.scim_base_url, token)?;
    let graph = s.graph(&tenant);
    let entra = graph.domains().await?;
    Ok((entra, webex))
}

/// The Entra tenant's domains, whether each is verified and whether the Webex org has it.
#[utoipa::path(get, path = "/tenants/{id}/domains", tag = "domains",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Vec<Domain>), (status = 404, body = ErrorBody),
              (status = 502, body = ErrorBody)))]
pub async fn list(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<Vec<Domain>>> {
    let (entra, webex) = sources(&s, id).await?;
    let in_webex = webex.list().await?;
    Ok(Json(
        entra
            .into_iter()
            .map(|d| Domain {
                in_webex: in_webex.contains(&d.name),
                name: d.name,
                verified: d.verified,
                default: d.default,
                initial: d.initial,
            })
            .collect(),
    ))
}

/// Imports Entra verified domains into the Webex org's domain list; the result of each
/// domain in the order given (`added`, `already_present`, or `refused` / `failed` with a
/// reason).
#[utoipa::path(post, path = "/tenants/{id}/domains/import", tag = "domains",
    request_body = ImportRequest,
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Vec<ImportResult>), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn import(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(body): ApiJson<ImportRequest>,
) -> ApiResult<Json<Vec<ImportResult>>> {
    if body.domains.is_empty() {
        return Err(ApiError::invalid("domains must name at least one domain"));
    }
    if body.domains.len() > MAX_IMPORT {
        return Err(ApiError::invalid(format!(
            "at most {MAX_IMPORT} domains per import"
        )));
    }
    let (entra, webex) = sources(&s, id).await?;
    let in_webex = webex.list().await?;
    let mut results = plan_import(&entra, &in_webex, &body.domains);
    for r in results.iter_mut().filter(|r| r.result == Outcome::Added) {
        match webex.add(&r.domain).await {
            Ok(Added::Added) => {}
            Ok(Added::AlreadyPresent) => r.result = Outcome::AlreadyPresent,
            Err(e) => {
                tracing::warn!(tenant = %id, domain = %r.domain, error = %e, "domain import failed");
                r.result = Outcome::Failed;
                r.reason = Some(e.to_string());
            }
        }
    }
    tracing::info!(
        tenant = %id,
        added = results.iter().filter(|r| r.result == Outcome::Added).count(),
        "entra domains imported into the webex org"
    );
    Ok(Json(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entra(name: &str, verified: bool) -> EntraDomain {
        EntraDomain {
            name: name.into(),
            verified,
            default: false,
            initial: false,
            authentication_type: "Managed".into(),
            supported_services: vec![],
        }
    }

    #[test]
    fn the_plan_of_an_import() {
        let tenant = [
            entra("contoso.com", true),
            entra("sales.contoso.com", true),
            entra("new.contoso.com", false),
        ];
        let org: BTreeSet<String> = ["sales.contoso.com".to_string()].into();
        // (requested, [(domain, outcome, with a reason)])
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, Outcome, bool)]);
        let cases: &[Case] = &[
            (&["contoso.com"], &[("contoso.com", Outcome::Added, false)]),
            (
                &["Sales.Contoso.com"],
                &[("sales.contoso.com", Outcome::AlreadyPresent, false)],
            ),
            (
                &["new.contoso.com"],
                &[("new.contoso.com", Outcome::Refused, true)],
            ),
            (
                &["fabrikam.com"],
                &[("fabrikam.com", Outcome::Refused, true)],
            ),
            // Twice, in another case: once.
            (
                &["contoso.com", " CONTOSO.com", "fabrikam.com"],
                &[
                    ("contoso.com", Outcome::Added, false),
                    ("fabrikam.com", Outcome::Refused, true),
                ],
            ),
        ];
        for (wanted, want) in cases {
            let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
            let got: Vec<_> = plan_import(&tenant, &org, &wanted)
                .into_iter()
                .map(|r| (r.domain, r.result, r.reason.is_some()))
                .collect();
            let want: Vec<_> = want
                .iter()
                .map(|(d, o, reason)| (d.to_string(), *o, *reason))
                .collect();
            assert_eq!(got, want, "{wanted:?}");
        }
    }

    #[test]
    fn refusals_say_why() {
        let tenant = [entra("new.contoso.com", false)];
        let plan = plan_import(
            &tenant,
            &BTreeSet::new(),
            &["new.contoso.com".into(), "other.com".into()],
        );
        assert!(plan[0].reason.as_deref().unwrap().contains("not verified"));
        assert!(plan[1].reason.as_deref().unwrap().contains("not a domain"));
    }
}
