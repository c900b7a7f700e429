//! End-to-end tests of the SCIM simulator over HTTP: the router served on a loopback port,
//! driven with reqwest as a SCIM client would. This file holds the shared fixture; `checks.rs`
//! the assertions that users and groups share.

mod access;
mod bulk;
mod checks;
mod group_access;
mod group_read;
mod group_write;
mod read;
mod write;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::group_schema::{CISCO_GROUP, CORE_GROUP};
use super::schema::{CORE_USER, ENTERPRISE_USER};
use super::{RequestCounters, ScimSim, ScimSimConfig};
use crate::serve;
use checks::*;

const ORG: &str = "5e000000-0000-4000-8000-000000000001";
const TOKEN: &str = "token-org-1";
const ORG2: &str = "5e000000-0000-4000-8000-000000000002";
const TOKEN2: &str = "token-org-2";
/// An org no test adds.
const UNKNOWN_ORG: &str = "5e000000-0000-4000-8000-0000000000ff";

/// The SCIM collections, as they stand in URLs (`…/v2/Users`, `…/v2/Groups`).
const USERS: &str = "Users";
const GROUPS: &str = "Groups";

struct Fixture {
    sim: ScimSim,
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn start_with(config: ScimSimConfig) -> Fixture {
    let sim = ScimSim::new(config);
    sim.add_org(ORG, TOKEN);
    sim.add_org(ORG2, TOKEN2);
    let shutdown = CancellationToken::new();
    let served = serve::spawn(sim.router(), serve::any_loopback_port(), shutdown.clone())
        .await
        .unwrap();
    Fixture {
        sim,
        base: served.base_url(),
        client: reqwest::Client::new(),
        shutdown,
    }
}

async fn start() -> Fixture {
    start_with(ScimSimConfig::default()).await
}

fn user(user_name: &str) -> Value {
    json!({"schemas": [CORE_USER], "userName": user_name, "userType": "user", "displayName": "Test User"})
}

fn group(display_name: &str) -> Value {
    json!({"schemas": [CORE_GROUP, CISCO_GROUP], "displayName": display_name})
}

/// `[{"value": id, "type": "user"}, …]`, our client's member list.
fn members(ids: &[String]) -> Value {
    ids.iter()
        .map(|id| json!({"value": id, "type": "user"}))
        .collect()
}

/// The member ids a group answer shows, in order (none without `members`).
fn member_ids(group: &Value) -> Vec<String> {
    group
        .get("members")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

impl Fixture {
    /// `…/identity/scim/{org}/v2/{endpoint}`.
    fn url(&self, endpoint: &str, org: &str) -> String {
        format!("{}/identity/scim/{org}/v2/{endpoint}", self.base)
    }

    fn users_url(&self, org: &str) -> String {
        self.url(USERS, org)
    }

    fn groups_url(&self, org: &str) -> String {
        self.url(GROUPS, org)
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A request to org 1's `/{endpoint}{suffix}`, with its token.
    async fn at(
        &self,
        endpoint: &str,
        method: Method,
        suffix: &str,
        body: Option<&Value>,
    ) -> Reply {
        let url = format!("{}{suffix}", self.url(endpoint, ORG));
        self.call(method, &url, Some(TOKEN), body).await
    }

    /// A request to org 1's `/Users{suffix}`.
    async fn org1(&self, method: Method, suffix: &str, body: Option<&Value>) -> Reply {
        self.at(USERS, method, suffix, body).await
    }

    /// A request to org 1's `/Groups{suffix}`.
    async fn groups(&self, method: Method, suffix: &str, body: Option<&Value>) -> Reply {
        self.at(GROUPS, method, suffix, body).await
    }

    /// A request to the unauthenticated `/_sim{path}` endpoints.
    async fn sim_call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let url = format!("{}/_sim{path}", self.base);
        self.call(method, &url, None, body).await
    }

    /// A `GET` of org 1's `/{endpoint}?{query}`.
    async fn list_at(&self, endpoint: &str, query: &str) -> Reply {
        self.at(endpoint, Method::GET, &format!("?{query}"), None)
            .await
    }

    async fn list(&self, query: &str) -> Reply {
        self.list_at(USERS, query).await
    }

    async fn patch_at(&self, endpoint: &str, id: &str, ops: Value) -> Reply {
        self.at(
            endpoint,
            Method::PATCH,
            &format!("/{id}"),
            Some(&patch_body(ops)),
        )
        .await
    }

    async fn patch(&self, id: &str, ops: Value) -> Reply {
        self.patch_at(USERS, id, ops).await
    }

    async fn patch_group(&self, id: &str, ops: Value) -> Reply {
        self.patch_at(GROUPS, id, ops).await
    }

    /// POSTs `body` to org 1's `/{endpoint}`, which must create it.
    async fn create_at(&self, endpoint: &str, body: &Value) -> Value {
        let r = self.at(endpoint, Method::POST, "", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    async fn create(&self, user_name: &str) -> Value {
        self.create_at(USERS, &user(user_name)).await
    }

    async fn create_group(&self, body: &Value) -> Value {
        self.create_at(GROUPS, body).await
    }

    /// Creates `n` users named `{prefix}{i}@example.com` in org 1 and returns their ids.
    async fn create_users(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let u = self.create(&format!("{prefix}{i}@example.com")).await;
            ids.push(id_of(&u));
        }
        ids
    }
}

/// The `id` of a user or group answer.
fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

fn assert_scim_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(r.body["status"], json!(status.to_string()));
    assert_eq!(
        r.body.get("scimType").and_then(Value::as_str),
        scim_type,
        "{}",
        r.body
    );
}

fn filter_query(filter: &str) -> String {
    format!(
        "filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    )
}
