//! Refusals and plumbing: bad state tokens, the token endpoint and bearer checks, tenant
//! isolation and the `/_sim/` admin endpoints.

use std::time::Duration;

use dirsync_load_tests::graph_sim::{GraphSimConfig, SimUser, UserState};
use dirsync_load_tests::synthetic::{ChangeReport, ChangeStep};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, SCOPE, spec};

#[tokio::test]
async fn bad_state_tokens_answer_sync_state_not_found() {
    let (a, b) = (spec("ta", 6, 450), spec("tb", 7, 10));
    let config = GraphSimConfig {
        delta_token_lifetime: Duration::from_millis(2_500),
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, &[a.clone(), b.clone()]).await;
    let (token_a, token_b) = (h.token(&a).await, h.token(&b).await);
    let (_, page) = h.get(&h.url("/v1.0/users/delta"), &token_a, false).await;
    let next_link = page["@odata.nextLink"].as_str().unwrap().to_owned();
    let skiptoken = next_link.split("$skiptoken=").nth(1).unwrap().to_owned();
    let (_, _, delta_link) = h.round(&next_link, &token_a, false).await;
    let deltatoken = delta_link.split("$deltatoken=").nth(1).unwrap().to_owned();

    let base = h.url("/v1.0/users/delta");
    // (url, bearer)
    let cases = [
        (format!("{base}?$deltatoken=FIXTURE-DELTA-0001"), &token_a),
        (format!("{base}?$skiptoken=garbage"), &token_a),
        (format!("{base}?$deltatoken={skiptoken}"), &token_a),
        (format!("{base}?$skiptoken={deltatoken}"), &token_a),
        // Another tenant's state.
        (delta_link.clone(), &token_b),
        (next_link.clone(), &token_b),
    ];
    for (url, bearer) in &cases {
        let (status, body) = h.get(url, bearer, false).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(body["error"]["code"], "syncStateNotFound", "{url}");
        assert_eq!(
            body["error"]["message"],
            "The sync state generation is not found. The delta token is expired and data must be synchronized again."
        );
        assert!(body["error"]["innerError"]["request-id"].is_string());
    }
    // deltaLinks expire (7 days in Graph, 2.5 s here).
    assert_eq!(h.get(&delta_link, &token_a, false).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let (status, body) = h.get(&delta_link, &token_a, false).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("syncStateNotFound"))
    );
    assert_eq!(h.sim.requests("ta").unwrap().sync_state_not_found, 5);
    assert_eq!(h.sim.requests("tb").unwrap().sync_state_not_found, 2);
}

#[tokio::test]
async fn token_endpoint_and_bearer_checks() {
    let tenant = spec("auth", 8, 20);
    let config = GraphSimConfig {
        token_lifetime: Duration::from_millis(2_500),
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let good = |secret: &'static str, scope: &'static str| {
        [
            ("client_id", "app-auth"),
            ("client_secret", secret),
            ("scope", scope),
            ("grant_type", "client_credentials"),
        ]
    };
    // (tenant in path, form, status, OAuth error)
    let cases = [
        (
            "auth",
            good("wrong", SCOPE),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "auth",
            good("secret-auth", "User.Read"),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "nobody",
            good("secret-auth", SCOPE),
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
        ),
    ];
    for (path_tenant, form, status, error) in cases {
        let (got, body) = h.token_response(path_tenant, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{body}"
        );
        for field in [
            "error_description",
            "error_codes",
            "timestamp",
            "trace_id",
            "correlation_id",
        ] {
            assert!(body.get(field).is_some(), "{field} missing from {body}");
        }
        assert!(!body.to_string().contains("secret-auth"), "secret echoed");
    }
    // The domain name works in place of the tenant id.
    let (status, body) = h
        .token_response("auth.example", &good("secret-auth", SCOPE))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_u64()),
        (Some("Bearer"), Some(2))
    );
    assert!(body["ext_expires_in"].is_u64());
    let token = body["access_token"].as_str().unwrap().to_owned();

    let url = h.url("/v1.0/users/delta");
    assert_eq!(h.get(&url, &token, false).await.0, StatusCode::OK);
    let missing = h.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.headers().contains_key("www-authenticate"));
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    for (bearer, message) in [
        (
            token.as_str(),
            "Lifetime validation failed, the token is expired.",
        ),
        ("not-a-token", "Access token validation failure."),
    ] {
        let (status, body) = h.get(&url, bearer, false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
        assert_eq!(body["error"]["message"], message);
    }
    let counts = h.sim.requests("auth").unwrap();
    assert_eq!(
        (
            counts.tokens_issued,
            counts.tokens_rejected,
            counts.unauthorized
        ),
        (1, 2, 1)
    );
    assert_eq!(h.sim.unattributed_unauthorized(), 2);
}

#[tokio::test]
async fn tokens_only_read_their_own_tenant() {
    let (a, b) = (spec("one", 9, 120), spec("two", 9, 120));
    let h = Harness::start(GraphSimConfig::default(), &[a.clone(), b.clone()]).await;
    let (ea, _, _) = h
        .round(&h.url("/v1.0/users/delta"), &h.token(&a).await, false)
        .await;
    let (eb, _, _) = h
        .round(&h.url("/v1.0/users/delta"), &h.token(&b).await, false)
        .await;
    // Same seed, same ids: tell the tenants apart by their UPN domain.
    assert!(ea.iter().all(|e| {
        e["userPrincipalName"]
            .as_str()
            .unwrap()
            .ends_with("@one.example")
    }));
    assert!(eb.iter().all(|e| {
        e["userPrincipalName"]
            .as_str()
            .unwrap()
            .ends_with("@two.example")
    }));
}

#[tokio::test]
async fn admin_endpoints_drive_the_simulator() {
    let h = Harness::start(GraphSimConfig::default(), &[]).await;
    let tenant = spec("admin", 10, 250);
    let created = h
        .http
        .post(h.url("/_sim/tenants"))
        .json(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let duplicate = h
        .http
        .post(h.url("/_sim/tenants"))
        .json(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);

    let step = ChangeStep {
        updates: 3,
        restores: 9,
        ..ChangeStep::default()
    };
    let response = h
        .http
        .post(h.url("/_sim/tenants/admin/changes"))
        .json(&step)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: ChangeReport = response.json().await.unwrap();
    assert_eq!(
        (report.updates, report.restores, report.step),
        (3, 2, 1),
        "250 users start with 2 soft-deleted"
    );

    let users: Vec<SimUser> = h
        .http
        .get(h.url("/_sim/tenants/admin/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users, h.sim.snapshot("admin").unwrap());
    assert!(users.iter().all(|u| u.state == UserState::Live));

    for path in [
        "/_sim/tenants/nobody/users",
        "/_sim/tenants/nobody/requests",
    ] {
        assert_eq!(
            h.http.get(h.url(path)).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let unknown = h
        .http
        .post(h.url("/_sim/tenants/nobody/changes"))
        .json(&step)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let counts: Value = h
        .http
        .get(h.url("/_sim/tenants/admin/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["delta_pages"], json!(0));
}
