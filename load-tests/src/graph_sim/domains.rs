//! `GET /v1.0/domains`: the tenant's domains as Graph lists them (`domain-list`), a `value`
//! array of domain objects whose `id` is the domain name, with `isVerified`, `isDefault`,
//! `isInitial`, `isRoot`, `authenticationType` and `supportedServices`.
//!
//! Every tenant starts with two verified domains: the one of its [`super::TenantSpec`]
//! (the default, the users' UPN suffix) and the initial `<name>.onmicrosoft.com` that Entra
//! gives every tenant at creation, `<name>` being the first label of the spec's domain. The
//! harness adds more with [`GraphSim::add_domain`], verified or not. Graph does not page this
//! list, and neither does the simulator; the request is neither throttled nor counted (the
//! directory's RU buckets are for delta reads here).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::envelope::RequestIds;
use super::{GraphSim, GraphSimError, TenantSpec};

/// One domain of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimDomain {
    /// Lower-case, as Graph shows domain names.
    pub name: String,
    pub verified: bool,
    pub default: bool,
    pub initial: bool,
}

/// A tenant's domains in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct Domains {
    list: Vec<SimDomain>,
}

impl Domains {
    /// The domains a new tenant has: its own (default) and the initial onmicrosoft one.
    pub(crate) fn for_tenant(spec: &TenantSpec) -> Domains {
        let own = spec.domain.to_ascii_lowercase();
        let label = own.split('.').next().unwrap_or(&own).to_string();
        let initial = format!("{label}.onmicrosoft.com");
        let mut list = vec![SimDomain {
            name: own.clone(),
            verified: true,
            default: true,
            initial: own == initial,
        }];
        if own != initial {
            list.push(SimDomain {
                name: initial,
                verified: true,
                default: false,
                initial: true,
            });
        }
        Domains { list }
    }

    /// Adds a domain, or sets whether a known one is verified (verifying a domain added
    /// earlier is how Entra's flow goes).
    pub(crate) fn add(&mut self, name: &str, verified: bool) -> Result<(), GraphSimError> {
        let name = valid_name(name)?;
        match self.list.iter_mut().find(|d| d.name == name) {
            Some(known) => known.verified = verified,
            None => self.list.push(SimDomain {
                name,
                verified,
                default: false,
                initial: false,
            }),
        }
        Ok(())
    }

    pub(crate) fn list(&self) -> &[SimDomain] {
        &self.list
    }

    /// The `domain-list` answer.
    pub(crate) fn render(&self) -> Value {
        let value: Vec<Value> = self.list.iter().map(render_domain).collect();
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#domains",
            "value": value,
        })
    }
}

/// A domain name: letters, digits and hyphens in at least two dot-separated labels.
fn valid_name(name: &str) -> Result<String, GraphSimError> {
    crate::domain_name::normalized(name)
        .ok_or_else(|| GraphSimError::InvalidSpec(format!("{name:?} is not a domain name")))
}

fn render_domain(d: &SimDomain) -> Value {
    // Services are configured only once a domain is verified.
    let services: &[&str] = if d.verified {
        &["Email", "OfficeCommunicationsOnline"]
    } else {
        &[]
    };
    json!({
        "authenticationType": "Managed",
        "availabilityStatus": null,
        "id": d.name,
        "isAdminManaged": true,
        "isDefault": d.default,
        "isInitial": d.initial,
        "isRoot": true,
        "isVerified": d.verified,
        "passwordNotificationWindowInDays": 14,
        "passwordValidityPeriodInDays": 2147483647,
        "supportedServices": services,
        "state": null,
    })
}

impl GraphSim {
    /// Adds a domain to the tenant (or sets whether a known one is verified); `GET
    /// /v1.0/domains` lists it from now on.
    pub fn add_domain(
        &self,
        tenant_id: &str,
        name: &str,
        verified: bool,
    ) -> Result<(), GraphSimError> {
        self.tenant(tenant_id)?.domains().add(name, verified)
    }

    /// The tenant's domain names with whether each is verified, in list order.
    pub fn domains(&self, tenant_id: &str) -> Result<Vec<(String, bool)>, GraphSimError> {
        let tenant = self.tenant(tenant_id)?;
        let domains = tenant.domains();
        Ok(domains
            .list()
            .iter()
            .map(|d| (d.name.clone(), d.verified))
            .collect())
    }
}

/// `GET /v1.0/domains` for the tenant of the bearer token.
pub(crate) async fn list(State(sim): State<GraphSim>, headers: HeaderMap) -> Response {
    let ids = RequestIds::new(&headers);
    let tenant = match super::http::authenticated(&sim, &headers, &ids) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let body = tenant.domains().render();
    ids.stamp(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(domain: &str) -> TenantSpec {
        TenantSpec {
            tenant_id: "t1".into(),
            domain: domain.into(),
            client_id: "app".into(),
            client_secret: "s".into(),
            seed: 1,
            users: 0,
        }
    }

    #[test]
    fn a_tenant_starts_with_its_domain_and_the_initial_one() {
        let domains = Domains::for_tenant(&spec("Contoso.example"));
        let names: Vec<_> = domains.list().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["contoso.example", "contoso.onmicrosoft.com"]);
        assert!(domains.list()[0].default && !domains.list()[0].initial);
        assert!(domains.list()[1].initial && !domains.list()[1].default);
        assert!(domains.list().iter().all(|d| d.verified));
        // A tenant whose domain is its initial one has it once, as both.
        let only = Domains::for_tenant(&spec("fabrikam.onmicrosoft.com"));
        assert_eq!(only.list().len(), 1);
        assert!(only.list()[0].default && only.list()[0].initial);
    }

    #[test]
    fn adding_a_known_domain_sets_its_verification() {
        let mut domains = Domains::for_tenant(&spec("contoso.example"));
        domains.add("Sales.Contoso.example", false).unwrap();
        domains.add("sales.contoso.example", true).unwrap();
        assert_eq!(domains.list().len(), 3);
        assert!(domains.list()[2].verified);
        for bad in ["", "nodot", "a..b", "-a.b", "a b.c", "a/b.c"] {
            assert!(domains.add(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_answer_has_graphs_shape() {
        let mut domains = Domains::for_tenant(&spec("contoso.example"));
        domains.add("new.example", false).unwrap();
        let body = domains.render();
        let value = body["value"].as_array().unwrap();
        assert_eq!(value.len(), 3);
        assert_eq!(value[0]["id"], "contoso.example");
        assert_eq!(value[0]["isDefault"], true);
        assert_eq!(value[0]["authenticationType"], "Managed");
        assert_eq!(value[1]["isInitial"], true);
        assert_eq!(value[2]["isVerified"], false);
        assert_eq!(value[2]["supportedServices"], json!([]));
        assert_eq!(
            value[0]["supportedServices"],
            json!(["Email", "OfficeCommunicationsOnline"])
        );
    }
}
