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
    stack.scim.add_org("org-9", scim_token);
    let new = json!({
        "name": "Contoso EMEA",
        "entra_tenant_id": "contoso-emea.example",
        "graph_login_url": stack.graph_base_url(),
        "graph_base_url": stack.graph_base_url(),
        "client_id": "app-1",
        "client_secret": secret,
        "scim_base_url": format!("{}/identity/scim/org-9/v2", stack.scim_sim_url()),
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
    bad["scim_base_url"] = json!(format!("{}/identity/scim/org-9", stack.scim_sim_url()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_default_or_custom_and_directory_connector() {
    let stack = Stack::start_with_workers(&StackOptions::new("api_setup", 60), 1)
        .await
        .unwrap();
    let instance = |org: &str, extra: Value| {
        let mut body = json!({
            "name": format!("instance of {org}"),
            "entra_tenant_id": "contoso.example",
            "graph_login_url": stack.graph_base_url(),
            "graph_base_url": stack.graph_base_url(),
            "client_id": "app-1",
            "client_secret": "s",
            "scim_base_url": format!("{}/identity/scim/{org}/v2", stack.scim_sim_url()),
            "scim_token": format!("token of {org}"),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for org in ["org-dc", "org-plain", "org-later"] {
        stack.scim.add_org(org, &format!("token of {org}"));
    }
    stack.scim.set_directory_connector("org-dc", true);
    stack.scim.set_directory_connector("org-later", true);
    let count = || async {
        let (_, list) = stack.api(Method::GET, "/tenants", None).await.unwrap();
        list.as_array().unwrap().len()
    };
    let before = count().await;

    // An org that uses Directory Connector: set-up stops and asks to block it ...
    let (status, refused) = stack
        .api(
            Method::POST,
            "/tenants",
            Some(instance("org-dc", json!({}))),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"], "directory_connector");
    assert_eq!(count().await, before, "nothing saved");
    assert!(!stack.scim.directory_connector("org-dc").blocked);
    // ... blocking it is recorded; "sync default settings": all users, avatars, auto-sync.
    let (status, created) = stack
        .api(
            Method::POST,
            "/tenants",
            Some(instance(
                "org-dc",
                json!({"block_directory_connector": true}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(stack.scim.directory_connector("org-dc").blocked);
    assert_eq!(created["directory_connector_blocked_by"], "stack");
    assert!(created["directory_connector_blocked_at"].is_string());
    assert_eq!(created["setup_mode"], "default");
    assert_eq!(
        (&created["auto_sync"], &created["authorized"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(
        (&created["scope"]["all"], &created["scope"]["avatars"]),
        (&json!(true), &json!(true))
    );

    // A custom setup takes the scope and auto-sync given; a default one refuses them.
    let custom = json!({"setup": "custom", "auto_sync": false,
                        "scope": {"all": false, "users": ["u1"], "groups": [], "nested": false,
                                  "group_objects": false, "rooms": true, "avatars": false}});
    let (status, created) = stack
        .api(
            Method::POST,
            "/tenants",
            Some(instance("org-plain", custom.clone())),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["setup_mode"], "custom");
    assert_eq!(created["auto_sync"], false);
    assert_eq!(created["scope"]["users"], json!(["u1"]));
    assert_eq!(created["directory_connector_blocked_at"], Value::Null);
    let (status, _) = stack
        .api(
            Method::POST,
            "/tenants",
            Some(instance(
                "org-plain",
                json!({"scope": custom["scope"].clone()}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Mappings are not part of the set-up: edited once the instance exists.
    let (status, refused) = stack
        .api(
            Method::POST,
            "/tenants",
            Some(instance("org-plain", json!({"mapping": []}))),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `mapping`"),
        "{refused}"
    );

    // "Save and authorize later" does not look at the org; authorizing does.
    let (status, later) = stack
        .api(
            Method::POST,
            "/tenants",
            Some(instance("org-later", json!({"authorize": false}))),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{later}");
    let id = later["id"].as_str().unwrap();
    let (status, refused) = stack
        .api(Method::POST, &format!("/tenants/{id}/authorize"), None)
        .await
        .unwrap();
    assert_eq!(
        (status, &refused["error"]),
        (StatusCode::CONFLICT, &json!("directory_connector"))
    );
    let (status, authorized) = stack
        .api(
            Method::POST,
            &format!("/tenants/{id}/authorize?block_directory_connector=true"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{authorized}");
    assert_eq!(authorized["authorized"], true);
    assert_eq!(authorized["directory_connector_blocked_by"], "stack");

    // Users Directory Connector made that are outside the scope are left alone by syncs.
    let scim = stack.scim_client().await.unwrap();
    let dc_user =
        dirsync_load_tests::fleet::create_scim_user(&scim, "made.by.dc@elsewhere.example")
            .await
            .unwrap();
    let before = stack
        .scim
        .users(&stack.org_id)
        .into_iter()
        .find(|u| u["id"] == dc_user.as_str())
        .unwrap();
    let cycle = stack.cycle("initial", None).await.unwrap();
    assert_eq!(cycle.users.failed, 0);
    // The oracle sees every Entra user right; the only user it does not know is that one.
    assert_eq!(
        cycle.verdict.problems,
        vec!["webex user made.by.dc@elsewhere.example has no externalId".to_string()]
    );
    let after = stack
        .scim
        .users(&stack.org_id)
        .into_iter()
        .find(|u| u["id"] == dc_user.as_str())
        .unwrap();
    assert_eq!(before, after, "untouched");
    stack.shutdown().await.unwrap();
}
