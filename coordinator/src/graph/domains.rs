//! The tenant's domains: `GET /v1.0/domains` (`domain-list`, permission `Domain.Read.All`),
//! for importing the Entra verified domains into the Webex org's domain list.
//!
//! The answer is a `value` array of domain objects whose `id` is the domain name; Graph does
//! not page it, but a nextLink is followed should one come.

use serde::{Deserialize, Serialize};

use super::GraphClient;
use crate::CoordinatorError;

/// One domain of the tenant, as the import needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntraDomain {
    /// The fully qualified name, lower-cased (Graph's `id`).
    pub name: String,
    /// Ownership proven (`isVerified`); only verified domains may be imported.
    pub verified: bool,
    /// The tenant's default domain for new users (`isDefault`).
    pub default: bool,
    /// The `<name>.onmicrosoft.com` domain Entra created with the tenant (`isInitial`).
    pub initial: bool,
    /// `Managed` or `Federated`.
    pub authentication_type: String,
    /// E.g. `Email`, `OfficeCommunicationsOnline`.
    pub supported_services: Vec<String>,
}

/// A domain object on the wire; properties the import does not use are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDomain {
    id: String,
    #[serde(default)]
    is_verified: bool,
    #[serde(default)]
    is_default: bool,
    #[serde(default)]
    is_initial: bool,
    #[serde(default)]
    authentication_type: Option<String>,
    #[serde(default)]
    supported_services: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WirePage {
    value: Vec<WireDomain>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// One page of the domain list: its domains and the nextLink, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainsPage {
    pub domains: Vec<EntraDomain>,
    pub next: Option<String>,
}

/// Parses a `domain-list` answer. A domain without a name is refused: it could be neither
/// shown nor imported.
pub fn parse_domains_page(body: &[u8]) -> Result<DomainsPage, CoordinatorError> {
    let page: WirePage = serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::GraphPage(format!("domain list: {e}")))?;
    let domains = page
        .value
        .into_iter()
        .map(|d| {
            let name = d.id.trim().to_ascii_lowercase();
            if name.is_empty() {
                return Err(CoordinatorError::GraphPage(
                    "domain list: a domain without an id".into(),
                ));
            }
            Ok(EntraDomain {
                name,
                verified: d.is_verified,
                default: d.is_default,
                initial: d.is_initial,
                authentication_type: d.authentication_type.unwrap_or_default(),
                supported_services: d.supported_services.unwrap_or_default(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(DomainsPage {
        domains,
        next: page.next_link,
    })
}

impl GraphClient {
    /// The first request of the domain list.
    pub fn domains_url(&self) -> String {
        format!("{}/v1.0/domains", self.graph_base_url())
    }

    /// Every domain of the tenant, verified or not, in Graph's order.
    pub async fn domains(&self) -> Result<Vec<EntraDomain>, CoordinatorError> {
        let mut domains = Vec::new();
        let mut url = self.domains_url();
        loop {
            let page = self.fetch(&url, parse_domains_page).await?;
            domains.extend(page.domains);
            match page.next {
                Some(next) => url = next,
                None => return Ok(domains),
            }
        }
    }

    /// The tenant's verified domains, the ones an org may import.
    pub async fn verified_domains(&self) -> Result<Vec<EntraDomain>, CoordinatorError> {
        let mut domains = self.domains().await?;
        domains.retain(|d| d.verified);
        Ok(domains)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example answer of Graph's `domain-list` page, trimmed to two domains.
    const GRAPH_EXAMPLE: &str = r#"{
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#domains",
        "value": [
            {"authenticationType": "Managed", "availabilityStatus": null, "id": "Contoso.com",
             "isAdminManaged": true, "isDefault": true, "isInitial": false, "isRoot": true,
             "isVerified": true, "supportedServices": ["Email", "OfficeCommunicationsOnline"],
             "passwordValidityPeriodInDays": 2147483647,
             "passwordNotificationWindowInDays": 14, "state": null},
            {"authenticationType": "Federated", "id": "new.contoso.com", "isDefault": false,
             "isInitial": false, "isVerified": false, "supportedServices": []}
        ]
    }"#;

    #[test]
    fn domain_objects_become_entra_domains() {
        let page = parse_domains_page(GRAPH_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(page.next, None);
        assert_eq!(
            page.domains,
            vec![
                EntraDomain {
                    name: "contoso.com".into(),
                    verified: true,
                    default: true,
                    initial: false,
                    authentication_type: "Managed".into(),
                    supported_services: vec!["Email".into(), "OfficeCommunicationsOnline".into()],
                },
                EntraDomain {
                    name: "new.contoso.com".into(),
                    verified: false,
                    default: false,
                    initial: false,
                    authentication_type: "Federated".into(),
                    supported_services: vec![],
                },
            ]
        );
    }

    #[test]
    fn pages_and_malformed_answers() {
        // (body, Ok((domains, nextLink)) or refused)
        type Case<'a> = (&'a str, Result<(usize, Option<&'a str>), ()>);
        let cases: &[Case] = &[
            (r#"{"value": []}"#, Ok((0, None))),
            (
                r#"{"value": [{"id": "a.example"}], "@odata.nextLink": "https://g/next"}"#,
                Ok((1, Some("https://g/next"))),
            ),
            (r#"{"value": [{"id": " "}]}"#, Err(())),
            (r#"{"value": [{"isVerified": true}]}"#, Err(())),
            (r#"{"error": {"code": "x"}}"#, Err(())),
            ("<html>", Err(())),
        ];
        for (body, want) in cases {
            let got = parse_domains_page(body.as_bytes())
                .map(|p| (p.domains.len(), p.next))
                .map_err(|_| ());
            let want = want.map(|(n, next)| (n, next.map(str::to_string)));
            assert_eq!(got, want, "{body}");
        }
    }
}
