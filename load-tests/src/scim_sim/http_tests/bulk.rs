//! HTTP tests of `POST /Bulk` and of the per-org token bucket.

use super::super::{BULK_REQUEST, BULK_RESPONSE, Faults, RateLimit};
use super::*;

const BULK: &str = "Bulk";

fn bulk_body(operations: Value) -> Value {
    json!({"schemas": [BULK_REQUEST], "failOnErrors": 100, "Operations": operations})
}

fn create_op(bulk_id: &str, user_name: &str) -> Value {
    json!({"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": user(user_name)})
}

impl Fixture {
    async fn bulk(&self, body: &Value) -> Reply {
        self.at(BULK, Method::POST, "", Some(body)).await
    }
}

/// (method, bulkId, status) of each answer.
fn answers(r: &Reply) -> Vec<(String, Option<String>, String)> {
    r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["method"].as_str().unwrap().to_owned(),
                a.get("bulkId").and_then(Value::as_str).map(str::to_owned),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn answer(method: &str, bulk_id: Option<&str>, status: &str) -> (String, Option<String>, String) {
    (
        method.to_owned(),
        bulk_id.map(str::to_owned),
        status.to_owned(),
    )
}

#[tokio::test]
async fn creates_patches_and_deletes_in_one_request() {
    let f = start().await;
    let patched = id_of(&f.create("pat@example.com").await);
    let deleted = id_of(&f.create("del@example.com").await);
    f.sim.reset_counters(ORG);
    let r = f
        .bulk(&bulk_body(json!([
            create_op("b1", "ada@example.com"),
            {"method": "PATCH", "path": format!("/Users/{patched}"),
             "data": patch_body(json!([{"op": "replace", "path": "title", "value": "Analyst"}]))},
            {"method": "DELETE", "path": format!("/Users/{deleted}")},
        ])))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["schemas"], json!([BULK_RESPONSE]));
    assert_eq!(
        answers(&r),
        [
            answer("POST", Some("b1"), "201"),
            answer("PATCH", None, "200"),
            answer("DELETE", None, "204")
        ]
    );
    let created = r.body["Operations"][0]["location"].as_str().unwrap();
    let created_id = created.rsplit_once("/v2/Users/").unwrap().1;
    assert!(r.body["Operations"][0]["version"].is_string());
    assert!(
        r.body["Operations"][1]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v2/Users/{patched}"))
    );
    // the operations did what the single requests do
    let users = f.sim.users(ORG);
    let by_id = |id: &str| users.iter().find(|u| u["id"] == json!(id)).cloned();
    assert_eq!(by_id(created_id).unwrap()["userName"], "ada@example.com");
    assert_eq!(by_id(&patched).unwrap()["title"], "Analyst");
    assert!(by_id(&deleted).is_none());
    let c = f.sim.counters(ORG);
    let counted = (c.bulk, c.bulk_operations, c.create, c.patch, c.delete);
    assert_eq!(counted, (1, 3, 1, 1, 1));
    assert_eq!(c.requests(), 1);
}

#[tokio::test]
async fn failed_operations_answer_with_errors_and_fail_on_errors_stops() {
    let f = start().await;
    f.create("taken@example.com").await;
    let ops = json!([
        create_op("b1", "taken@example.com"),
        {"method": "PATCH", "path": "/Users/no-such-user", "data": patch_body(json!([]))},
        {"method": "PUT", "path": "/Users/x", "data": user("x@example.com")},
        {"method": "POST", "path": "/Users", "data": user("nobulkid@example.com")},
        create_op("b5", "fine@example.com"),
    ]);
    // (failOnErrors, answers)
    let all = vec![
        answer("POST", Some("b1"), "409"),
        answer("PATCH", None, "404"),
        answer("PUT", None, "400"),
        answer("POST", None, "400"),
        answer("POST", Some("b5"), "201"),
    ];
    let r = f
        .bulk(&json!({"schemas": [BULK_REQUEST], "failOnErrors": 2, "Operations": ops}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(answers(&r), all[..2]);
    let error = &r.body["Operations"][0]["response"];
    assert_eq!(error["status"], "409");
    assert_eq!(error["scimType"], "uniqueness");
    let cisco = &error["urn:scim:schemas:extension:cisco:webexidentity:api:messages:2.0:Error"];
    assert!(
        cisco["trackingId"].is_string() && cisco["details"].is_string(),
        "{error}"
    );
    // without failOnErrors every operation is carried out
    let r = f
        .bulk(&json!({"schemas": [BULK_REQUEST], "operations": ops}))
        .await;
    assert_eq!(answers(&r), all);
}

#[tokio::test]
async fn refuses_malformed_and_oversized_requests() {
    let f = start().await;
    let ops = |n: usize| -> Value {
        (0..n)
            .map(|i| create_op(&format!("b{i}"), &format!("u{i}@example.com")))
            .collect()
    };
    // (body, status, scimType)
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"Operations": []}), 400, Some("invalidSyntax")),
        (
            json!({"schemas": [BULK_REQUEST]}),
            400,
            Some("invalidSyntax"),
        ),
        (
            json!({"schemas": [BULK_REQUEST], "failOnErrors": 0, "Operations": []}),
            400,
            Some("invalidSyntax"),
        ),
        (
            json!({"schemas": [BULK_REQUEST], "failOnErrors": 101, "Operations": []}),
            400,
            Some("invalidSyntax"),
        ),
        (bulk_body(ops(101)), 413, None),
    ];
    for (body, status, scim_type) in cases {
        let r = f.bulk(&body).await;
        assert_scim_error(&r, status, scim_type);
    }
    assert!(
        f.sim.users(ORG).is_empty(),
        "nothing of a refused request is done"
    );
    let r = f.bulk(&bulk_body(ops(100))).await;
    assert_eq!(r.status, 200);
    assert_eq!(f.sim.users(ORG).len(), 100);
    let r = f
        .call(
            Method::POST,
            &f.url(BULK, ORG),
            Some("wrong"),
            Some(&bulk_body(ops(1))),
        )
        .await;
    assert_scim_error(&r, 401, None);
}

#[tokio::test]
async fn an_empty_bucket_answers_429_with_retry_after() {
    let f = start_with(ScimSimConfig {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 3,
        }),
        ..ScimSimConfig::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(f.list("count=1").await.status);
    }
    // a Bulk request takes one token like any other
    let r = f
        .bulk(&bulk_body(json!([create_op("b", "a@example.com")])))
        .await;
    statuses.push(r.status);
    assert_eq!(statuses[..3], [200, 200, 200]);
    assert_eq!(statuses[3..], [429, 429, 429], "one token a second");
    let c = f.sim.counters(ORG);
    assert_eq!(
        (c.throttled, c.errors_4xx, c.bulk, c.bulk_operations),
        (3, 3, 1, 0)
    );
    assert_eq!(r.headers["retry-after"], "1");
    assert_scim_error(&r, 429, None);
    // another org has its own bucket
    let url = format!("{}?count=1", f.url(USERS, ORG2));
    assert_eq!(
        f.call(Method::GET, &url, Some(TOKEN2), None).await.status,
        200
    );
}

#[tokio::test]
async fn random_faults_answer_503_and_429_and_are_counted() {
    let f = start_with(ScimSimConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..ScimSimConfig::default()
    })
    .await;
    let r = f.list("count=1").await;
    assert_scim_error(&r, 503, None);
    assert_eq!(f.sim.counters(ORG).errors_5xx, 1);
    // changed at run time: every request throttled, with the configured Retry-After
    f.sim.set_faults(Faults {
        throttle_rate: 1.0,
        retry_after_secs: 3,
        ..Faults::default()
    });
    let r = f
        .bulk(&bulk_body(json!([create_op("b", "a@example.com")])))
        .await;
    assert_scim_error(&r, 429, None);
    assert_eq!(r.headers["retry-after"], "3");
    assert!(f.sim.users(ORG).is_empty(), "nothing of the bulk applied");
    let c = f.sim.counters(ORG);
    assert_eq!((c.throttled, c.errors_4xx, c.errors_5xx), (1, 1, 1));
    f.sim.set_faults(Faults::default());
    assert_eq!(f.list("count=1").await.status, 200);
}

#[tokio::test]
async fn a_target_without_bulk_answers_404_there_and_serves_users() {
    let f = start_with(ScimSimConfig {
        bulk: false,
        ..ScimSimConfig::default()
    })
    .await;
    let refused = f
        .bulk(&bulk_body(json!([create_op("b1", "a@x.com")])))
        .await;
    assert_eq!(refused.status, 404);
    assert!(f.sim.users(ORG).is_empty(), "nothing of the bulk applied");
    let created = f
        .at("Users", Method::POST, "", Some(&user("a@x.com")))
        .await;
    assert_eq!(created.status, 201);
}
