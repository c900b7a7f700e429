//! The admin API over HTTP against the real PostgreSQL: every route refuses a request
//! without a valid admin token (the routes are walked from the OpenAPI document, so a new
//! route is covered as soon as it exists), and the instance workflows work through it.

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::TenantStore;
use dirsync_coordinator::api::{self, ApiState};
use dirsync_coordinator::http::{self, HttpState};
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::serve::{self, any_loopback_port};
use dirsync_load_tests::testkit::TestEnv;

/// The coordinator's HTTP face with the API, on a free port; its base URL.
async fn serve_api(env: &TestEnv, shutdown: &CancellationToken) -> String {
    let tenants = TenantStore::new(env.pool.clone()).with_key(env.secrets_key.clone());
    let state =
        HttpState::new(tenants.clone(), None).with_api(ApiState::new(env.pool.clone(), tenants));
    let served = serve::spawn(http::router(state), any_loopback_port(), shutdown.clone())
        .await
        .unwrap();
    format!("{}{}", served.base_url(), api::BASE)
}

struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[tokio::test]
async fn every_route_refuses_requests_without_a_valid_token() {
    let env = TestEnv::new("api_auth").await.unwrap();
    let shutdown = CancellationToken::new();
    let base = serve_api(&env, &shutdown).await;
    let (_, good) = api::auth::create(&env.pool, "ci").await.unwrap();
    let (revoked_id, revoked) = api::auth::create(&env.pool, "old").await.unwrap();
    api::auth::revoke(&env.pool, revoked_id).await.unwrap();
    let http = reqwest::Client::new();
    let client = |token: Option<&str>| Client {
        base: base.clone(),
        token: token.map(str::to_string),
        http: http.clone(),
    };

    let mut routes: Vec<(Method, String)> = vec![(Method::GET, "/openapi.json".into())];
    for (path, item) in api::openapi().paths.paths {
        let path = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        for (method, op) in [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::PATCH, &item.patch),
            (Method::DELETE, &item.delete),
        ] {
            if op.is_some() {
                routes.push((method, path.clone()));
            }
        }
    }
    assert!(
        routes.len() >= 20,
        "the document lists the routes: {routes:?}"
    );

    let made_up = format!("dsa_{}", "A".repeat(43));
    let refused = [
        None,
        Some("not-a-token"),
        Some(made_up.as_str()),
        Some(revoked.expose_secret()),
    ];
    for (method, path) in &routes {
        for token in refused {
            let (status, body) = client(token)
                .call(method.clone(), path, Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(body["error"], "unauthorized", "{method} {path}: {body}");
        }
        let (status, _) = client(Some(good.expose_secret()))
            .call(method.clone(), path, Some(json!({})))
            .await;
        assert_ne!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a good token"
        );
    }
    // The document itself, with a token.
    let (status, doc) = client(Some(good.expose_secret()))
        .call(Method::GET, "/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["paths"]["/tenants/{id}/status"]["get"].is_object(),
        "{doc}"
    );
    shutdown.cancel();
    env.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_workflows_through_the_api() {
    let stack = Stack::start_with_workers(&StackOptions::new("api_flows", 300), 1)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let (_, token) = api::auth::create(&stack.env.pool, "operator ann")
        .await
        .unwrap();
    let api = Client {
        base: serve_api(&stack.env, &shutdown).await,
        token: Some(token.expose_secret().to_string()),
        http: reqwest::Client::new(),
    };

    // Set up an instance; its secrets are never shown again.
    let secret = "graph-secret-that-must-not-leak";
    let scim_token = "scim-token-that-must-not-leak";
    let new = json!({
        "name": "Contoso EMEA",
        "entra_tenant_id": "contoso-emea.example",
        "graph_login_url": stack.graph_base_url(),
        "graph_base_url": stack.graph_base_url(),
        "client_id": "app-1",
        "client_secret": secret,
        "scim_base_url": "https://webexapis.com/identity/scim/org-9/v2",
        "scim_token": scim_token,
        "authorize": false,
    });
    let (status, created) = api.call(Method::POST, "/tenants", Some(new.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["authorized"], false, "saved, authorize later");
    assert_eq!(created["status"], "NotRun");
    let (_, listed) = api.call(Method::GET, "/tenants", None).await;
    let (_, one) = api.call(Method::GET, &format!("/tenants/{id}"), None).await;
    for shown in [&created, &listed, &one] {
        let text = shown.to_string();
        assert!(
            !text.contains(secret) && !text.contains(scim_token),
            "{text}"
        );
    }
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Bad input says what to fix.
    let mut bad = new.clone();
    bad["scim_base_url"] = json!("https://webexapis.com/identity/scim/org-9");
    let (status, error) = api.call(Method::POST, "/tenants", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid");
    assert!(
        error["message"].as_str().unwrap().contains("/v2"),
        "{error}"
    );

    // Edit: name, auto-sync, authorize, scope with the More options, mapping, guard,
    // quarantine thresholds.
    let path = |rest: &str| format!("/tenants/{id}{rest}");
    let (status, edited) = api
        .call(
            Method::PATCH,
            &path(""),
            Some(json!({"name": "Contoso Europe", "auto_sync": false, "clear_attributes": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        (
            &edited["name"],
            &edited["auto_sync"],
            &edited["clear_attributes"]
        ),
        (&json!("Contoso Europe"), &json!(false), &json!(true))
    );
    let (status, _) = api
        .call(Method::PATCH, &path(""), Some(json!({"name": " "})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, authorized) = api.call(Method::POST, &path("/authorize"), None).await;
    assert_eq!(authorized["authorized"], true);
    let scope = json!({"all": false, "users": ["u1"], "groups": ["g1"], "nested": true,
                       "group_objects": true, "rooms": true, "avatars": true});
    let (status, saved) = api
        .call(Method::PUT, &path("/scope"), Some(scope.clone()))
        .await;
    assert_eq!((status, &saved), (StatusCode::OK, &scope));
    assert_eq!(api.call(Method::GET, &path("/scope"), None).await.1, scope);
    let (status, empty) = api
        .call(
            Method::PUT,
            &path("/scope"),
            Some(
                json!({"all": false, "users": [], "groups": [], "nested": false,
                        "group_objects": false, "rooms": false}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{empty}");
    let broken = json!({"rules": [{"target": "title", "kind": "expression",
                                   "expression": "Join(\",\", [jobTitle]"}]});
    let (status, error) = api.call(Method::PUT, &path("/mapping"), Some(broken)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (&error["rule"], &error["position"]),
        (&json!(0), &json!(20)),
        "an expression error points at its rule and position: {error}"
    );
    let rules = json!({"rules": [
        {"target": "title", "kind": "expression", "expression": "ToUpper([jobTitle])"},
        {"target": "userName", "kind": "direct", "attribute": "userPrincipalName"}]});
    let (status, saved) = api.call(Method::PUT, &path("/mapping"), Some(rules)).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["rules"][0]["target"], "title");
    let (_, back) = api
        .call(Method::PUT, &path("/mapping"), Some(json!({"rules": null})))
        .await;
    assert_eq!(back["rules"], Value::Null, "back to the default mapping");
    let (status, _) = api
        .call(
            Method::PUT,
            &path("/guard"),
            Some(json!({"max_count": 50, "max_percent": 101})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .call(
            Method::PUT,
            &path("/guard"),
            Some(json!({"max_count": 50, "max_percent": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, q) = api
        .call(
            Method::PUT,
            &path("/quarantine-thresholds"),
            Some(json!({"max_percent": 20})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{q}");
    assert_eq!(
        (&q["max_percent"], &q["min_failures"]),
        (&json!(20), &json!(5000))
    );
    let (status, _) = api
        .call(
            Method::PUT,
            &path("/quarantine-thresholds"),
            Some(json!({"min_failures": 100, "max_failures": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, kept) = api
        .call(Method::GET, &path("/quarantine-thresholds"), None)
        .await;
    assert_eq!(
        kept["max_percent"], 20,
        "a refused change leaves them as they were"
    );
    let (status, _) = api.call(Method::POST, &path("/sync-now"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Job status and summary of a tenant that synced.
    let cycle = stack.cycle("initial", None).await.unwrap();
    assert!(cycle.converged);
    let synced = format!("/tenants/{}", stack.tenant_id);
    let (status, summary) = api
        .call(Method::GET, &format!("{synced}/status"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["status"], "Active");
    assert_eq!(summary["last_sync"]["users_synced"], cycle.users.synced);
    assert_eq!(summary["last_sync"]["users_skipped"], cycle.users.skipped);
    assert_eq!(summary["last_sync"]["users_failed"], 0);
    assert_eq!(summary["running"], Value::Null);
    // A completed run is not waiting for a decision; an unknown one does not exist.
    let run = summary["last_sync"]["run_id"].as_str().unwrap();
    let (status, _) = api
        .call(Method::POST, &format!("/runs/{run}/approve"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = api
        .call(Method::POST, &format!("/runs/{unknown}/reject"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete: gone from dirsync.
    let (status, _) = api.call(Method::DELETE, &path(""), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, error) = api.call(Method::GET, &path(""), None).await;
    assert_eq!(
        (status, &error["error"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    shutdown.cancel();
    stack.shutdown().await.unwrap();
}
