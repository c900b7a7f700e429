//! Graph's synchronization API for enterprise apps that provision a SCIM endpoint, as far as
//! reading an app's configuration goes: `GET /v1.0/servicePrincipals/{id}/synchronization/
//! jobs` (one `scim` job), `…/jobs/{jobId}/schema` (a user object mapping with the app's
//! attribute mappings), `…/synchronization/secrets` (`BaseAddress` and `SyncAll`; like
//! Graph, never the `SecretToken` value) and `…/appRoleAssignedTo` (the assigned users and
//! groups). The harness registers apps with [`GraphSim::add_provisioning_app`]; an unknown
//! service principal is Graph's 404.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::envelope::RequestIds;
use super::{GraphSim, GraphSimError};

/// Where a mapping's value comes from, as Entra names the kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Attribute,
    Constant,
    Function,
}

/// When a mapping applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowType {
    Always,
    ObjectAddOnly,
    MultiValueAddOnly,
}

/// One attribute mapping: target, source kind, source text (attribute name, constant value
/// or function expression), flow type and default value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMapping {
    pub target: String,
    pub kind: SourceKind,
    pub source: String,
    pub flow: FlowType,
    pub default: Option<String>,
}

impl SimMapping {
    pub fn new(target: &str, kind: SourceKind, source: &str) -> Self {
        SimMapping {
            target: target.into(),
            kind,
            source: source.into(),
            flow: FlowType::Always,
            default: None,
        }
    }
}

/// An enterprise app with provisioning configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningApp {
    pub service_principal_id: String,
    /// The SCIM endpoint it provisions (`BaseAddress`).
    pub base_address: String,
    /// "Sync all users and groups" rather than only the assigned ones.
    pub sync_all: bool,
    pub assigned_users: Vec<String>,
    pub assigned_groups: Vec<String>,
    pub mappings: Vec<SimMapping>,
}

impl ProvisioningApp {
    fn job_id(&self) -> String {
        format!("scim.{}", self.service_principal_id)
    }

    fn jobs(&self) -> Value {
        json!({"value": [{
            "id": self.job_id(),
            "templateId": "scim",
            "schedule": {"expiration": null, "interval": "PT40M", "state": "Active"},
            "status": {"code": "Active", "countSuccessiveCompleteFailures": 0,
                       "escrowsPruned": false, "quarantine": null},
            "synchronizationJobSettings": [],
        }]})
    }

    fn schema(&self) -> Value {
        let mappings: Vec<Value> = self.mappings.iter().map(render_mapping).collect();
        json!({
            "id": self.job_id(),
            "version": "Date:2026-01-01T00:00:00Z~1",
            "directories": [],
            "synchronizationRules": [{
                "id": "6c409270-f78a-4bc6-af23-7cf3ab6482fe",
                "name": "USER_OUTBOUND_USER",
                "sourceDirectoryName": "Azure Active Directory",
                "targetDirectoryName": "customappsso",
                "objectMappings": [
                    {"enabled": true, "flowTypes": "Add, Update, Delete",
                     "name": "Provision Microsoft Entra ID Groups", "sourceObjectName": "Group",
                     "targetObjectName": "Group", "attributeMappings": [], "scope": null},
                    {"enabled": true, "flowTypes": "Add, Update, Delete",
                     "name": "Provision Microsoft Entra ID Users", "sourceObjectName": "User",
                     "targetObjectName": "User", "attributeMappings": mappings, "scope": null},
                ],
            }],
        })
    }

    fn secrets(&self) -> Value {
        json!({"value": [
            {"key": "BaseAddress", "value": self.base_address},
            {"key": "SyncAll", "value": if self.sync_all { "true" } else { "false" }},
            {"key": "SyncNotificationSettings", "value": "{\"Enabled\":false}"},
        ]})
    }

    fn assignments(&self) -> Value {
        let of = |ids: &[String], kind: &str| -> Vec<Value> {
            ids.iter()
                .map(|id| {
                    json!({"id": format!("assignment-{id}"), "principalId": id,
                           "principalType": kind, "resourceId": self.service_principal_id,
                           "appRoleId": "00000000-0000-0000-0000-000000000000"})
                })
                .collect()
        };
        let mut value = of(&self.assigned_users, "User");
        value.extend(of(&self.assigned_groups, "Group"));
        json!({"value": value})
    }
}

fn render_mapping(m: &SimMapping) -> Value {
    let (kind, name, expression) = match m.kind {
        SourceKind::Attribute => ("Attribute", m.source.clone(), format!("[{}]", m.source)),
        SourceKind::Constant => ("Constant", m.source.clone(), format!("\"{}\"", m.source)),
        SourceKind::Function => {
            let name = m.source.split('(').next().unwrap_or_default().trim();
            ("Function", name.to_string(), m.source.clone())
        }
    };
    let flow = match m.flow {
        FlowType::Always => "Always",
        FlowType::ObjectAddOnly => "ObjectAddOnly",
        FlowType::MultiValueAddOnly => "MultiValueAddOnly",
    };
    json!({
        "defaultValue": m.default.clone().unwrap_or_default(),
        "exportMissingReferences": false,
        "flowBehavior": "FlowWhenChanged",
        "flowType": flow,
        "matchingPriority": if m.target == "userName" { 1 } else { 0 },
        "targetAttributeName": m.target,
        "source": {"expression": expression, "name": name, "type": kind, "parameters": []},
    })
}

impl GraphSim {
    /// Registers (or replaces) an enterprise app with provisioning in the tenant.
    pub fn add_provisioning_app(
        &self,
        tenant_id: &str,
        app: ProvisioningApp,
    ) -> Result<(), GraphSimError> {
        let tenant = self.tenant(tenant_id)?;
        let mut apps = tenant.provisioning();
        apps.retain(|a| a.service_principal_id != app.service_principal_id);
        apps.push(app);
        Ok(())
    }
}

/// Which of the app's resources a request reads.
#[derive(Clone, Copy)]
enum Resource {
    Jobs,
    Schema,
    Secrets,
    Assignments,
}

fn answer(
    sim: &GraphSim,
    headers: &HeaderMap,
    sp: &str,
    job: Option<&str>,
    r: Resource,
) -> Response {
    let ids = RequestIds::new(headers);
    let tenant = match super::http::authenticated(sim, headers, &ids) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let app = tenant
        .provisioning()
        .iter()
        .find(|a| a.service_principal_id == sp)
        .cloned();
    let Some(app) = app else {
        return ids.graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{sp}' does not exist or one of its queried reference-property objects are not present."),
        );
    };
    if job.is_some_and(|j| j != app.job_id()) {
        return ids.graph_error(StatusCode::NOT_FOUND, "NotFound", "The job was not found.");
    }
    let body = match r {
        Resource::Jobs => app.jobs(),
        Resource::Schema => app.schema(),
        Resource::Secrets => app.secrets(),
        Resource::Assignments => app.assignments(),
    };
    ids.stamp(axum::Json(body).into_response())
}

pub(crate) async fn jobs(
    State(sim): State<GraphSim>,
    Path(sp): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(&sim, &headers, &sp, None, Resource::Jobs)
}

pub(crate) async fn schema(
    State(sim): State<GraphSim>,
    Path((sp, job)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(&sim, &headers, &sp, Some(&job), Resource::Schema)
}

pub(crate) async fn secrets(
    State(sim): State<GraphSim>,
    Path(sp): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(&sim, &headers, &sp, None, Resource::Secrets)
}

pub(crate) async fn assignments(
    State(sim): State<GraphSim>,
    Path(sp): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(&sim, &headers, &sp, None, Resource::Assignments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_render_in_graphs_shape() {
        let cases = [
            (
                SimMapping::new("userName", SourceKind::Attribute, "userPrincipalName"),
                "Attribute",
                "userPrincipalName",
                "[userPrincipalName]",
            ),
            (
                SimMapping::new("title", SourceKind::Constant, "Staff"),
                "Constant",
                "Staff",
                "\"Staff\"",
            ),
            (
                SimMapping::new(
                    "displayName",
                    SourceKind::Function,
                    "Join(\" \", [givenName], [surname])",
                ),
                "Function",
                "Join",
                "Join(\" \", [givenName], [surname])",
            ),
        ];
        for (m, kind, name, expression) in cases {
            let v = render_mapping(&m);
            assert_eq!(v["source"]["type"], kind);
            assert_eq!(v["source"]["name"], name);
            assert_eq!(v["source"]["expression"], expression);
            assert_eq!(v["flowType"], "Always");
            assert_eq!(v["targetAttributeName"], m.target);
        }
    }
}
