//! The worker's push through SCIM Bulk against the Webex SCIM simulator: creates go 100 to a
//! request, every operation ends as its single request would (adoption on 409, re-creation
//! or a dropped mirror row on 404, `remove` for cleared attributes), and a target without
//! `/Bulk` gets single requests, asked once per target.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use dirsync_load_tests::scim_sim::{ScimSim, ScimSimConfig};
use dirsync_load_tests::serve;
use dirsync_worker::diff::{Action, Plan};
use dirsync_worker::map::ScimAttributes;
use dirsync_worker::outcome::{MirrorChange, Status, UserResult};
use dirsync_worker::push::push_all;
use dirsync_worker::scim::{BulkSupport, RetryPolicy, ScimClient, user_resource};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ORG: &str = "5e000000-0000-4000-8000-0000000000b1";
const TOKEN: &str = "bulk-token";

struct Target {
    sim: ScimSim,
    base: String,
    shutdown: CancellationToken,
}

impl Drop for Target {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn target(router: impl FnOnce(axum::Router) -> axum::Router) -> Target {
    let sim = ScimSim::new(ScimSimConfig::default());
    sim.add_org(ORG, TOKEN);
    let shutdown = CancellationToken::new();
    let served = serve::spawn(
        router(sim.router()),
        serve::any_loopback_port(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    Target {
        sim,
        base: format!("{}/identity/scim/{ORG}/v2", served.base_url()),
        shutdown,
    }
}

fn client(base: &str) -> ScimClient {
    let token = Arc::new(SecretString::from(TOKEN.to_string()));
    ScimClient::new(reqwest::Client::new(), base, token, RetryPolicy::default()).unwrap()
}

fn attrs(value: Value) -> ScimAttributes {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn user(i: usize) -> ScimAttributes {
    let name = format!("u{i}@contoso.example");
    attrs(json!({
        "userName": name, "emails[type eq \"work\"].value": name, "displayName": format!("User {i}"),
        "title": "Engineer", "externalId": format!("e{i}"), "userType": "user", "active": true
    }))
}

fn plan(action: Action, effective: ScimAttributes) -> Plan {
    Plan {
        action,
        json: serde_json::to_string(&effective).unwrap(),
        effective,
        content_hash: 7,
        recorded: false,
    }
}

/// Webex ids by userName (lower-case), from the simulator.
fn ids_by_name(sim: &ScimSim) -> HashMap<String, String> {
    sim.users(ORG)
        .into_iter()
        .map(|u| {
            (
                u["userName"].as_str().unwrap().to_lowercase(),
                u["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn upserted_id(r: &UserResult) -> &str {
    match &r.mirror {
        Some(MirrorChange::Upsert { webex_id, .. }) => webex_id,
        other => panic!("{}: not an upsert: {other:?}", r.entra_id),
    }
}

fn by_entra(results: Vec<UserResult>) -> HashMap<String, UserResult> {
    results
        .into_iter()
        .map(|r| (r.entra_id.clone(), r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_cost_one_request_per_hundred_users() {
    let t = target(|r| r).await;
    let client = client(&t.base);
    let plans = (0..500)
        .map(|i| (format!("e{i}"), plan(Action::Create, user(i))))
        .collect();
    let results = by_entra(push_all(&client, plans, 4).await.unwrap());

    let ids = ids_by_name(&t.sim);
    assert_eq!(ids.len(), 500);
    for i in 0..500 {
        let r = &results[&format!("e{i}")];
        assert_eq!(r.status, Status::Synced);
        assert_eq!(upserted_id(r), ids[&format!("u{i}@contoso.example")]);
    }
    let c = t.sim.counters(ORG);
    let per_user = c.requests() as f64 / 500.0;
    println!(
        "500 creates: {} requests ({} bulk), {per_user:.3} requests per created user",
        c.requests(),
        c.bulk
    );
    assert_eq!((c.bulk, c.bulk_operations, c.create), (5, 500, 500));
    assert_eq!(c.requests(), 5, "nothing but the five Bulk requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_ends_as_its_single_request_would() {
    let t = target(|r| r).await;
    let client = client(&t.base);
    // u0..u9 exist; u0 is deleted behind our back, u1 too (to be deactivated), u2 is in the
    // org already before our create of it (adopted); u3..u9 are patched or deactivated.
    let mut webex = HashMap::new();
    for i in 0..10 {
        let created = client
            .create_user(&user_resource(&user(i)).unwrap())
            .await
            .unwrap();
        webex.insert(i, created.id);
    }
    client.delete_user(&webex[&0]).await.unwrap();
    client.delete_user(&webex[&1]).await.unwrap();
    t.sim.reset_counters(ORG);

    let patch = |i: usize, changes: Value| {
        let mut effective = user(i);
        for (k, v) in attrs(changes.clone()) {
            if v.is_null() {
                effective.remove(&k);
            } else {
                effective.insert(k, v);
            }
        }
        plan(
            Action::Patch {
                webex_id: webex[&i].clone(),
                changes: attrs(changes),
            },
            effective,
        )
    };
    let deactivate = |i: usize| {
        let mut effective = user(i);
        effective.insert("active".into(), json!(false));
        plan(
            Action::Deactivate {
                webex_id: webex[&i].clone(),
            },
            effective,
        )
    };
    let mut no_user_name = user(99);
    no_user_name.remove("userName");
    let plans = vec![
        // 404 on an active user's patch: re-created in full
        ("e0".to_string(), patch(0, json!({"displayName": "Zero"}))),
        // 404 on a deactivation: nothing left, the mirror row goes
        ("e1".to_string(), deactivate(1)),
        // 409 on a create: the existing user is adopted
        ("e2".to_string(), plan(Action::Create, user(2))),
        // a changed value and a cleared one
        (
            "e3".to_string(),
            patch(3, json!({"displayName": "Three", "title": null})),
        ),
        ("e4".to_string(), deactivate(4)),
        (
            "e5".to_string(),
            plan(
                Action::Delete {
                    webex_id: webex[&5].clone(),
                },
                ScimAttributes::new(),
            ),
        ),
        // a create that cannot be built fails alone
        ("e99".to_string(), plan(Action::Create, no_user_name)),
        ("e10".to_string(), plan(Action::Create, user(10))),
    ];
    let results = by_entra(push_all(&client, plans, 4).await.unwrap());
    let ids = ids_by_name(&t.sim);
    let users: HashMap<String, Value> = t
        .sim
        .users(ORG)
        .into_iter()
        .map(|u| (u["id"].as_str().unwrap().to_owned(), u))
        .collect();

    let e0 = &results["e0"];
    assert_eq!(e0.status, Status::Synced);
    assert_ne!(upserted_id(e0), webex[&0], "a new user");
    assert_eq!(users[upserted_id(e0)]["displayName"], "Zero");

    assert_eq!(results["e1"].status, Status::Skipped);
    assert_eq!(results["e1"].mirror, Some(MirrorChange::Remove));

    assert_eq!(results["e2"].status, Status::Synced);
    assert_eq!(
        upserted_id(&results["e2"]),
        webex[&2],
        "adopted, not duplicated"
    );

    assert_eq!(upserted_id(&results["e3"]), webex[&3]);
    assert_eq!(users[&webex[&3]]["displayName"], "Three");
    assert!(users[&webex[&3]].get("title").is_none(), "title removed");

    assert_eq!(upserted_id(&results["e4"]), webex[&4]);
    assert_eq!(users[&webex[&4]]["active"], false);

    assert_eq!(results["e5"].status, Status::Synced);
    assert_eq!(results["e5"].mirror, Some(MirrorChange::Remove));
    assert!(!users.contains_key(&webex[&5]));

    assert!(
        matches!(&results["e99"].status, Status::Failed(reason) if reason.contains("userName")),
        "{:?}",
        results["e99"]
    );
    assert_eq!(
        upserted_id(&results["e10"]),
        ids["u10@contoso.example"].as_str()
    );
    assert_eq!(results.len(), 8);

    let c = t.sim.counters(ORG);
    println!("mixed batch: {c:?}");
    // One Bulk request for e0, e1, e2, e3, e4, e10; then e0's create, e2's lookup and
    // patch, e5's delete alone.
    assert_eq!((c.bulk, c.bulk_operations), (1, 6));
    assert_eq!(c.requests(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_bulk_gets_single_requests() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let t = target(move |router| {
        router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let seen = seen.clone();
            async move {
                if request.uri().path().ends_with("/Bulk") {
                    seen.fetch_add(1, Ordering::Relaxed);
                    return StatusCode::NOT_IMPLEMENTED.into_response();
                }
                let response: Response = next.run(request).await;
                response
            }
        }))
    })
    .await;
    // Two batches, each with its own client as the worker makes them, sharing what the
    // target said about Bulk.
    let support = BulkSupport::default();
    for batch in 0..2 {
        let client = client(&t.base).with_bulk_support(support.clone());
        let plans = (0..150)
            .map(|i| {
                let i = batch * 1000 + i;
                (format!("e{i}"), plan(Action::Create, user(i)))
            })
            .collect();
        let results = push_all(&client, plans, 8).await.unwrap();
        assert_eq!(results.len(), 150);
        assert!(results.iter().all(|r| r.status == Status::Synced));
    }
    assert_eq!(attempts.load(Ordering::Relaxed), 1, "asked once per target");
    assert!(!support.is_supported());
    let c = t.sim.counters(ORG);
    assert_eq!((c.create, c.bulk, c.requests()), (300, 0, 300));
    assert_eq!(t.sim.users(ORG).len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bulk_request_is_sent_again_alone_and_a_refused_token_fails_the_batch() {
    // The target refuses the Bulk request as a whole with a 400, as for a body it cannot
    // take: its operations go alone, and Bulk stays in use for later requests.
    let t =
        target(|router| {
            router.layer(middleware::from_fn(|request: Request, next: Next| async move {
            if request.uri().path().ends_with("/Bulk") {
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                  "status": "400", "detail": "bad bulk"});
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            }
            next.run(request).await
        }))
        })
        .await;
    let client = client(&t.base);
    let plans = (0..120)
        .map(|i| (format!("e{i}"), plan(Action::Create, user(i))))
        .collect();
    let results = push_all(&client, plans, 8).await.unwrap();
    assert_eq!(results.len(), 120);
    assert!(results.iter().all(|r| r.status == Status::Synced));
    assert!(client.bulk_supported());
    assert_eq!(t.sim.counters(ORG).create, 120);

    // A token the org refuses is the tenant's problem, not the users'.
    let token = Arc::new(SecretString::from("not-the-token".to_string()));
    let refused = ScimClient::new(
        reqwest::Client::new(),
        &t.base,
        token,
        RetryPolicy::default(),
    )
    .unwrap();
    let plans = vec![("e500".to_string(), plan(Action::Create, user(500)))];
    let plain = target(|r| r).await;
    let refused_here = ScimClient::new(
        reqwest::Client::new(),
        &plain.base,
        Arc::new(SecretString::from("not-the-token".to_string())),
        RetryPolicy::default(),
    )
    .unwrap();
    for client in [&refused, &refused_here] {
        let e = push_all(client, plans.clone(), 8).await.unwrap_err();
        assert_eq!(e.scim_status(), Some(401), "{e}");
    }
    assert!(plain.sim.users(ORG).is_empty());
}
