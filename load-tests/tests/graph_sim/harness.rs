//! A simulator served on a loopback port, a reqwest client, and helpers to follow delta links
//! and compare entries with the simulator's ground truth.

use std::collections::{HashMap, HashSet};

use dirsync_load_tests::graph_sim::{GraphSim, GraphSimConfig, SimUser, TenantSpec};
use dirsync_load_tests::serve::{self, Served};
use dirsync_load_tests::synthetic::{Prop, PropSet};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const SCOPE: &str = "https://graph.microsoft.com/.default";

pub struct Harness {
    pub sim: GraphSim,
    pub served: Served,
    pub http: reqwest::Client,
    _shutdown: tokio_util::sync::DropGuard,
}

pub fn spec(tenant_id: &str, seed: u64, users: usize) -> TenantSpec {
    TenantSpec {
        tenant_id: tenant_id.into(),
        domain: format!("{tenant_id}.example"),
        client_id: format!("app-{tenant_id}"),
        client_secret: format!("secret-{tenant_id}"),
        seed,
        users,
    }
}

impl Harness {
    pub async fn start(config: GraphSimConfig, tenants: &[TenantSpec]) -> Harness {
        let sim = GraphSim::new(config);
        for tenant in tenants {
            sim.add_tenant(tenant.clone()).unwrap();
        }
        let shutdown = CancellationToken::new();
        let served = serve::spawn(sim.router(), serve::any_loopback_port(), shutdown.clone())
            .await
            .unwrap();
        Harness {
            sim,
            served,
            http: reqwest::Client::new(),
            _shutdown: shutdown.drop_guard(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.served.base_url())
    }

    pub async fn token_response(&self, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn token(&self, spec: &TenantSpec) -> String {
        let form = [
            ("client_id", spec.client_id.as_str()),
            ("client_secret", spec.client_secret.as_str()),
            ("scope", SCOPE),
            ("grant_type", "client_credentials"),
        ];
        let (status, body) = self.token_response(&spec.tenant_id, &form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, url: &str, token: &str, minimal: bool) -> (StatusCode, Value) {
        let mut request = self.http.get(url).bearer_auth(token);
        if minimal {
            request = request.header("Prefer", "return=minimal");
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Follows nextLinks from `url` to the deltaLink: (entries, page sizes, deltaLink).
    pub async fn round(
        &self,
        url: &str,
        token: &str,
        minimal: bool,
    ) -> (Vec<Value>, Vec<usize>, String) {
        let (mut entries, mut sizes, mut url) = (Vec::new(), Vec::new(), url.to_owned());
        loop {
            let (status, page) = self.get(&url, token, minimal).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let value = page["value"].as_array().unwrap();
            sizes.push(value.len());
            entries.extend(value.iter().cloned());
            let (next, delta) = (page.get("@odata.nextLink"), page.get("@odata.deltaLink"));
            assert!(
                next.is_some() != delta.is_some(),
                "exactly one link expected: {page}"
            );
            let link = next.or(delta).and_then(Value::as_str).unwrap().to_owned();
            assert!(link.starts_with(&self.url("/v1.0/users/delta?$")), "{link}");
            if delta.is_some() {
                assert!(link.contains("$deltatoken="));
                return (entries, sizes, link);
            }
            assert!(link.contains("$skiptoken="));
            url = link;
        }
    }
}

pub fn ids(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn by_id(users: &[SimUser]) -> HashMap<&str, &SimUser> {
    users.iter().map(|u| (u.user.id.as_str(), u)).collect()
}

/// A live entry carries every selected property as the ground truth has it (`null` or absent
/// when it has no value) and nothing else.
pub fn assert_represents(entry: &Value, truth: &SimUser, select: PropSet) {
    let object = entry.as_object().unwrap();
    assert!(object.get("@removed").is_none(), "{entry}");
    for prop in select.iter() {
        let key = if prop == Prop::Manager {
            "manager@delta"
        } else {
            prop.wire_name()
        };
        let got = object.get(key);
        match (truth.user.value(prop), prop) {
            (Some(Value::String(manager)), Prop::Manager) => {
                assert_eq!(
                    got,
                    Some(&json!([{"@odata.type": "#microsoft.graph.user", "id": manager}]))
                );
            }
            (Some(expected), _) => assert_eq!(got, Some(&expected), "{key} of {entry}"),
            (None, _) => assert!(got.is_none_or(Value::is_null), "{key} of {entry}"),
        }
    }
    let allowed: HashSet<&str> = select
        .iter()
        .map(|p| {
            if p == Prop::Manager {
                "manager@delta"
            } else {
                p.wire_name()
            }
        })
        .chain(["id"])
        .collect();
    for key in object.keys() {
        assert!(
            allowed.contains(key.as_str()),
            "unexpected {key} in {entry}"
        );
    }
}
