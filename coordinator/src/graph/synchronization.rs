//! An enterprise app's provisioning configuration, read from Graph's synchronization API to
//! migrate it into a dirsync instance: the app's job (`GET /servicePrincipals/{id}/
//! synchronization/jobs`), the job's schema (`…/jobs/{jobId}/schema`: the user object
//! mapping's `attributeMappings`), its secrets (`…/synchronization/secrets`: `BaseAddress`,
//! the SCIM endpoint, and `SyncAll`; Graph never returns `SecretToken`) and the users and
//! groups assigned to the app (`…/appRoleAssignedTo`).
//!
//! [`convert`] turns that into dirsync's scope and mapping rules (pure). Entra's source
//! attribute names are those of its AAD connector; most are Graph properties, a few are not
//! ([`graph_property`] translates those it knows, the others are refused with the reason, as
//! dirsync could not read them).

use serde::{Deserialize, Serialize};

use dirsync_proto::expr::Expr;
use dirsync_proto::mapping::{FIXED_TARGETS, MappingRule, MappingSource};

use super::GraphClient;
use crate::CoordinatorError;
use crate::scope::Scope;

/// Where an attribute mapping's value comes from, as Entra names the kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    Attribute,
    Constant,
    Function,
}

/// One attribute mapping of the app's user object mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntraMapping {
    pub target: String,
    pub kind: SourceKind,
    /// The source's `name` (the attribute, the constant's value or the function's name).
    pub name: String,
    /// The source's `expression` (e.g. `[userPrincipalName]`, `Join(" ", [givenName], …)`).
    pub expression: String,
    /// `Always`, `ObjectAddOnly`, `MultiValueAddOnly` or `ValueAddOnly`.
    pub flow_type: String,
    /// `defaultValue`, empty when none.
    pub default_value: String,
}

/// The app's provisioning configuration, as dirsync needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningConfig {
    pub job_id: String,
    pub template_id: String,
    /// The SCIM endpoint the app provisions (`BaseAddress`).
    pub base_address: Option<String>,
    /// "Sync all users and groups" rather than only the assigned ones (`SyncAll`).
    pub sync_all: bool,
    pub assigned_users: Vec<String>,
    pub assigned_groups: Vec<String>,
    /// The user object mapping's attribute mappings.
    pub mappings: Vec<EntraMapping>,
}

/// A mapping that was not migrated, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotMigrated {
    pub target: String,
    /// The source as Entra shows it.
    pub source: String,
    pub reason: String,
}

/// The configuration in dirsync's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub scope: Scope,
    pub rules: Vec<MappingRule>,
    /// Mappings of attributes dirsync sets itself (`externalId`, `active`, …): not needed.
    pub handled_by_dirsync: Vec<String>,
    /// Mappings dirsync cannot do.
    pub unsupported: Vec<NotMigrated>,
}

/// The Graph property an AAD-connector source attribute is read from, or `None` for one
/// dirsync cannot read. Names that are Graph properties map to themselves.
pub fn graph_property(aad: &str) -> Option<&'static str> {
    const RENAMED: &[(&str, &str)] = &[
        ("objectId", "id"),
        ("telephoneNumber", "businessPhones"),
        ("mobile", "mobilePhone"),
        ("facsimileTelephoneNumber", "faxNumber"),
        ("physicalDeliveryOfficeName", "officeLocation"),
        ("sn", "surname"),
        ("co", "country"),
        ("l", "city"),
        ("st", "state"),
    ];
    const SAME: &[&str] = &[
        "id",
        "userPrincipalName",
        "mail",
        "mailNickname",
        "displayName",
        "givenName",
        "surname",
        "jobTitle",
        "department",
        "companyName",
        "employeeId",
        "employeeType",
        "businessPhones",
        "mobilePhone",
        "faxNumber",
        "officeLocation",
        "streetAddress",
        "city",
        "state",
        "postalCode",
        "country",
        "usageLocation",
        "preferredLanguage",
        "accountEnabled",
        "otherMails",
        "proxyAddresses",
        "manager",
    ];
    if let Some((_, to)) = RENAMED
        .iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(aad))
    {
        return Some(to);
    }
    SAME.iter().find(|p| p.eq_ignore_ascii_case(aad)).copied()
}

/// Rewrites the `[attribute]` references of an expression to Graph properties (text in
/// quotes is left alone); the names it could not translate are returned instead.
fn translate_expression(expression: &str) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(expression.len());
    let mut unknown = Vec::new();
    let mut chars = expression.chars();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            '\\' if in_quotes => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '[' if !in_quotes => {
                let name: String = chars.by_ref().take_while(|&c| c != ']').collect();
                match graph_property(name.trim()) {
                    Some(p) => out.push_str(&format!("[{p}]")),
                    None => unknown.push(name.trim().to_string()),
                }
            }
            c => out.push(c),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

/// One attribute mapping as a dirsync rule, or why it cannot be one.
pub fn convert_mapping(m: &EntraMapping) -> Result<MappingRule, String> {
    let create_only = match m.flow_type.as_str() {
        "" | "Always" => false,
        "ObjectAddOnly" => true,
        other => return Err(format!("flow type {other} is not supported")),
    };
    let source = match m.kind {
        SourceKind::Attribute => {
            let property = graph_property(&m.name).ok_or_else(|| {
                format!(
                    "source attribute {} is not a graph property dirsync reads",
                    m.name
                )
            })?;
            MappingSource::Direct {
                attribute: property.to_string(),
            }
        }
        SourceKind::Constant => MappingSource::Constant {
            value: m.name.clone(),
        },
        SourceKind::Function => {
            let expression = translate_expression(&m.expression).map_err(|names| {
                format!(
                    "the expression reads attributes dirsync cannot: {}",
                    names.join(", ")
                )
            })?;
            Expr::parse(&expression).map_err(|e| format!("the expression: {e}"))?;
            MappingSource::Expression { expression }
        }
    };
    Ok(MappingRule {
        target: m.target.trim().to_string(),
        source,
        create_only,
        default_if_null: Some(m.default_value.clone()).filter(|d| !d.is_empty()),
    })
}

/// The source of a mapping as Entra shows it, for reports.
fn shown(m: &EntraMapping) -> String {
    match m.kind {
        SourceKind::Constant => format!("\"{}\"", m.name),
        _ if !m.expression.is_empty() => m.expression.clone(),
        _ => m.name.clone(),
    }
}

/// The configuration in dirsync's terms (pure): the scope (all users, or the assigned users
/// and groups) and a rule per mapping dirsync can do; the others are listed, not dropped.
pub fn convert(config: &ProvisioningConfig) -> Converted {
    let scope = if config.sync_all {
        Scope::default()
    } else {
        Scope {
            all: false,
            users: config.assigned_users.clone(),
            groups: config.assigned_groups.clone(),
            ..Scope::default()
        }
    };
    let mut converted = Converted {
        scope,
        rules: Vec::new(),
        handled_by_dirsync: Vec::new(),
        unsupported: Vec::new(),
    };
    for m in &config.mappings {
        let target = m.target.trim();
        if FIXED_TARGETS.iter().any(|f| f.eq_ignore_ascii_case(target)) {
            converted.handled_by_dirsync.push(target.to_string());
            continue;
        }
        match convert_mapping(m) {
            Ok(rule) => converted.rules.push(rule),
            Err(reason) => converted.unsupported.push(NotMigrated {
                target: target.to_string(),
                source: shown(m),
                reason,
            }),
        }
    }
    converted
}

// Wire shapes of the synchronization API; properties dirsync does not use are ignored.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireJob {
    id: String,
    #[serde(default)]
    template_id: String,
}

#[derive(Deserialize)]
struct WireList<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSchema {
    #[serde(default)]
    synchronization_rules: Vec<WireRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRule {
    #[serde(default)]
    object_mappings: Vec<WireObjectMapping>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireObjectMapping {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    source_object_name: String,
    #[serde(default)]
    attribute_mappings: Vec<WireAttributeMapping>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAttributeMapping {
    target_attribute_name: String,
    source: WireSource,
    #[serde(default)]
    flow_type: Option<String>,
    #[serde(default)]
    default_value: Option<String>,
}

#[derive(Deserialize)]
struct WireSource {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    expression: Option<String>,
    #[serde(rename = "type")]
    kind: SourceKind,
}

#[derive(Deserialize)]
struct WireSecret {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAssignment {
    principal_id: String,
    #[serde(default)]
    principal_type: String,
}

fn malformed(what: &str, e: serde_json::Error) -> CoordinatorError {
    CoordinatorError::GraphPage(format!("{what}: {e}"))
}

/// The app's provisioning jobs: (id, templateId).
pub fn parse_jobs(body: &[u8]) -> Result<Vec<(String, String)>, CoordinatorError> {
    let list: WireList<WireJob> =
        serde_json::from_slice(body).map_err(|e| malformed("synchronization jobs", e))?;
    Ok(list
        .value
        .into_iter()
        .map(|j| (j.id, j.template_id))
        .collect())
}

/// The user object mapping's attribute mappings (the enabled mapping whose source object
/// is `User`); none when the schema has no such mapping.
pub fn parse_schema(body: &[u8]) -> Result<Option<Vec<EntraMapping>>, CoordinatorError> {
    let schema: WireSchema =
        serde_json::from_slice(body).map_err(|e| malformed("synchronization schema", e))?;
    let users = schema
        .synchronization_rules
        .into_iter()
        .flat_map(|r| r.object_mappings)
        .find(|m| m.enabled && m.source_object_name.eq_ignore_ascii_case("User"));
    Ok(users.map(|m| {
        m.attribute_mappings
            .into_iter()
            .map(|a| EntraMapping {
                target: a.target_attribute_name,
                kind: a.source.kind,
                name: a.source.name.unwrap_or_default(),
                expression: a.source.expression.unwrap_or_default(),
                flow_type: a.flow_type.unwrap_or_default(),
                default_value: a.default_value.unwrap_or_default(),
            })
            .collect()
    }))
}

/// The secrets' `BaseAddress` and whether `SyncAll` is on (off when absent, as Entra's
/// default is "sync only assigned users and groups").
pub fn parse_secrets(body: &[u8]) -> Result<(Option<String>, bool), CoordinatorError> {
    let list: WireList<WireSecret> =
        serde_json::from_slice(body).map_err(|e| malformed("synchronization secrets", e))?;
    let value = |key: &str| {
        list.value
            .iter()
            .find(|s| s.key.eq_ignore_ascii_case(key))
            .and_then(|s| s.value.clone())
    };
    let sync_all = value("SyncAll").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Ok((value("BaseAddress"), sync_all))
}

/// A page of the app's assignments: (assigned user ids, group ids), nextLink.
pub type AssignmentsPage = ((Vec<String>, Vec<String>), Option<String>);

/// One page of `appRoleAssignedTo`: the assigned users and groups (service principals are
/// not in a scope), and the nextLink.
pub fn parse_assignments(body: &[u8]) -> Result<AssignmentsPage, CoordinatorError> {
    let list: WireList<WireAssignment> =
        serde_json::from_slice(body).map_err(|e| malformed("app role assignments", e))?;
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    for a in list.value {
        match a.principal_type.as_str() {
            "User" => users.push(a.principal_id),
            "Group" => groups.push(a.principal_id),
            _ => {}
        }
    }
    Ok(((users, groups), list.next_link))
}

impl GraphClient {
    /// The provisioning configuration of the app whose service principal is `sp`.
    pub async fn provisioning_config(
        &self,
        sp: &str,
    ) -> Result<ProvisioningConfig, CoordinatorError> {
        if sp.is_empty() || !sp.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(CoordinatorError::Invalid(format!(
                "{sp:?} is not a service principal id"
            )));
        }
        let root = format!("{}/v1.0/servicePrincipals/{sp}", self.graph_base_url());
        let jobs = self
            .fetch(&format!("{root}/synchronization/jobs"), parse_jobs)
            .await?;
        let Some((job_id, template_id)) = jobs.into_iter().next() else {
            return Err(CoordinatorError::Invalid(format!(
                "service principal {sp} has no provisioning job"
            )));
        };
        let schema_url = format!(
            "{root}/synchronization/jobs/{}/schema",
            url::form_urlencoded::byte_serialize(job_id.as_bytes()).collect::<String>()
        );
        let mappings = self
            .fetch(&schema_url, parse_schema)
            .await?
            .ok_or_else(|| {
                CoordinatorError::Invalid(format!(
                    "the provisioning job {job_id} has no enabled user mapping"
                ))
            })?;
        let (base_address, sync_all) = self
            .fetch(&format!("{root}/synchronization/secrets"), parse_secrets)
            .await?;
        let (mut assigned_users, mut assigned_groups) = (Vec::new(), Vec::new());
        let mut url = Some(format!("{root}/appRoleAssignedTo"));
        while let Some(next) = url {
            let ((users, groups), link) = self.fetch(&next, parse_assignments).await?;
            assigned_users.extend(users);
            assigned_groups.extend(groups);
            url = link;
        }
        Ok(ProvisioningConfig {
            job_id,
            template_id,
            base_address,
            sync_all,
            assigned_users,
            assigned_groups,
            mappings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(
        target: &str,
        kind: SourceKind,
        source: &str,
        flow: &str,
        default: &str,
    ) -> EntraMapping {
        let (name, expression) = match kind {
            SourceKind::Attribute => (source.to_string(), format!("[{source}]")),
            SourceKind::Constant => (source.to_string(), format!("\"{source}\"")),
            SourceKind::Function => (String::new(), source.to_string()),
        };
        EntraMapping {
            target: target.into(),
            kind,
            name,
            expression,
            flow_type: flow.into(),
            default_value: default.into(),
        }
    }

    #[test]
    fn mappings_become_rules_or_say_why_not() {
        use SourceKind::*;
        let direct = |a: &str| MappingSource::Direct {
            attribute: a.into(),
        };
        // (mapping, Ok((source, create_only, default)) or a word of the reason)
        type Want = Result<(MappingSource, bool, Option<&'static str>), &'static str>;
        let cases: Vec<(EntraMapping, Want)> = vec![
            (
                mapping("userName", Attribute, "userPrincipalName", "Always", ""),
                Ok((direct("userPrincipalName"), false, None)),
            ),
            (
                mapping(
                    "phoneNumbers[type eq \"work\"].value",
                    Attribute,
                    "telephoneNumber",
                    "Always",
                    "",
                ),
                Ok((direct("businessPhones"), false, None)),
            ),
            (
                mapping("displayName", Attribute, "objectId", "ObjectAddOnly", "x"),
                Ok((direct("id"), true, Some("x"))),
            ),
            (
                mapping("title", Constant, "Staff", "Always", ""),
                Ok((
                    MappingSource::Constant {
                        value: "Staff".into(),
                    },
                    false,
                    None,
                )),
            ),
            (
                mapping(
                    "nickName",
                    Function,
                    "Join(\" \", [givenName], [sn])",
                    "",
                    "",
                ),
                Ok((
                    MappingSource::Expression {
                        expression: "Join(\" \", [givenName], [surname])".into(),
                    },
                    false,
                    None,
                )),
            ),
            (
                // Brackets inside quotes are text, not references.
                mapping("locale", Function, "Append([mail], \"[x]\")", "Always", ""),
                Ok((
                    MappingSource::Expression {
                        expression: "Append([mail], \"[x]\")".into(),
                    },
                    false,
                    None,
                )),
            ),
            (
                mapping("x", Attribute, "extensionAttribute1", "Always", ""),
                Err("extensionAttribute1"),
            ),
            (
                mapping(
                    "x",
                    Function,
                    "ToUpper([msExchHideFromAddressLists])",
                    "Always",
                    "",
                ),
                Err("msExchHideFromAddressLists"),
            ),
            (
                mapping("x", Function, "ToUpper([mail]", "Always", ""),
                Err("expression"),
            ),
            (
                mapping("emails", Attribute, "mail", "MultiValueAddOnly", ""),
                Err("MultiValueAddOnly"),
            ),
        ];
        for (m, want) in cases {
            let got = convert_mapping(&m);
            match (got, want) {
                (Ok(rule), Ok((source, create_only, default))) => {
                    assert_eq!(rule.target, m.target);
                    assert_eq!(rule.source, source, "{m:?}");
                    assert_eq!(rule.create_only, create_only, "{m:?}");
                    assert_eq!(rule.default_if_null.as_deref(), default, "{m:?}");
                }
                (Err(reason), Err(word)) => assert!(reason.contains(word), "{reason}"),
                (got, _) => panic!("{m:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn convert_keeps_scope_and_lists_what_it_leaves() {
        let config = ProvisioningConfig {
            job_id: "scim.1".into(),
            template_id: "scim".into(),
            base_address: None,
            sync_all: false,
            assigned_users: vec!["u1".into()],
            assigned_groups: vec!["g1".into()],
            mappings: vec![
                mapping(
                    "userName",
                    SourceKind::Attribute,
                    "userPrincipalName",
                    "Always",
                    "",
                ),
                mapping(
                    "externalId",
                    SourceKind::Attribute,
                    "mailNickname",
                    "Always",
                    "",
                ),
                mapping(
                    "title",
                    SourceKind::Attribute,
                    "extensionAttribute1",
                    "Always",
                    "",
                ),
            ],
        };
        let c = convert(&config);
        assert!(!c.scope.all);
        assert_eq!(
            (c.scope.users.as_slice(), c.scope.groups.as_slice()),
            (&["u1".to_string()][..], &["g1".to_string()][..])
        );
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.handled_by_dirsync, ["externalId"]);
        assert_eq!(c.unsupported.len(), 1);
        assert_eq!(c.unsupported[0].target, "title");
        assert_eq!(c.unsupported[0].source, "[extensionAttribute1]");
        let all = convert(&ProvisioningConfig {
            sync_all: true,
            ..config
        });
        assert!(all.scope.all);
    }

    #[test]
    fn wire_answers_parse() {
        let jobs = br#"{"value": [{"id": "scim.e3b8", "templateId": "scim",
            "schedule": {"interval": "PT40M", "state": "Active"}, "status": {"code": "Active"}}]}"#;
        assert_eq!(
            parse_jobs(jobs).unwrap(),
            [("scim.e3b8".to_string(), "scim".to_string())]
        );
        let schema = br#"{"synchronizationRules": [{"objectMappings": [
            {"enabled": true, "sourceObjectName": "Group", "attributeMappings": []},
            {"enabled": true, "sourceObjectName": "User", "attributeMappings": [
                {"targetAttributeName": "userName", "flowType": "Always", "defaultValue": "",
                 "flowBehavior": "FlowWhenChanged",
                 "source": {"expression": "[userPrincipalName]", "name": "userPrincipalName",
                            "type": "Attribute", "parameters": []}}]}]}]}"#;
        let m = parse_schema(schema).unwrap().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].kind, m[0].name.as_str()),
            (SourceKind::Attribute, "userPrincipalName")
        );
        assert_eq!(
            parse_schema(br#"{"synchronizationRules": []}"#).unwrap(),
            None
        );
        let secrets = br#"{"value": [{"key": "BaseAddress", "value": "https://x/v2"},
            {"key": "SyncAll", "value": "true"}, {"key": "SecretToken"}]}"#;
        assert_eq!(
            parse_secrets(secrets).unwrap(),
            (Some("https://x/v2".into()), true)
        );
        assert_eq!(parse_secrets(br#"{"value": []}"#).unwrap(), (None, false));
        let page = br#"{"value": [{"principalId": "u1", "principalType": "User"},
            {"principalId": "g1", "principalType": "Group"},
            {"principalId": "s1", "principalType": "ServicePrincipal"}],
            "@odata.nextLink": "https://g/next"}"#;
        assert_eq!(
            parse_assignments(page).unwrap(),
            (
                (vec!["u1".to_string()], vec!["g1".to_string()]),
                Some("https://g/next".into())
            )
        );
        assert!(parse_jobs(b"<html>").is_err());
    }
}
