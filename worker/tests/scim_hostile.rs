//! Hostile SCIM answers fed to the worker's real SCIM client through a scripted fake SCIM
//! server: missing or unusable ids, wrong types, status strings that are not statuses, HTML
//! error pages, empty and truncated bodies. Each must be a clear error for that request or
//! user, never a panic; and a user must never be deactivated, deleted, or recorded under a
//! made-up Webex id because of garbage. Needs no PostgreSQL, Redis or RabbitMQ.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Value, json};

use dirsync_proto::SourceUser;
use dirsync_worker::error::WorkerError;
use dirsync_worker::outcome::{MirrorChange, Status};
use dirsync_worker::pipeline::{Planned, plan_batch};
use dirsync_worker::push::push_all;
use dirsync_worker::scim::{BulkOperation, BulkRequest, RetryPolicy, ScimClient, UserBody};

/// One scripted answer: status, content type, body.
type Answer = (u16, &'static str, Vec<u8>);

/// A SCIM server answering `"{METHOD} {resource}"` (`"POST Users"`, `"GET Users"`,
/// `"POST Bulk"`, `"PATCH Users"`, ...) as scripted, and logging every request.
#[derive(Clone, Default)]
struct FakeScim {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    /// (method, path, body) of every request.
    log: Arc<Mutex<Vec<(String, String, Value)>>>,
}

impl FakeScim {
    async fn start() -> (FakeScim, String) {
        let fake = FakeScim::default();
        let state = fake.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let state = state.clone();
            async move { state.answer(method, uri, body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, url)
    }

    fn answer(&self, method: Method, uri: Uri, body: Bytes) -> Response {
        let resource = uri.path().trim_start_matches("/v2/");
        let resource = resource.split('/').next().unwrap_or_default();
        let key = format!("{method} {resource}");
        self.log.lock().unwrap().push((
            method.to_string(),
            uri.path().to_string(),
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ));
        let Some((status, content_type, body)) = self.answers.lock().unwrap().get(&key).cloned()
        else {
            return (StatusCode::NOT_IMPLEMENTED, "not scripted").into_response();
        };
        (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response()
    }

    fn script(&self, key: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(key.to_string(), answer);
    }

    fn clear(&self) {
        self.answers.lock().unwrap().clear();
        self.log.lock().unwrap().clear();
    }

    fn requests(&self) -> Vec<(String, String, Value)> {
        self.log.lock().unwrap().clone()
    }
}

fn client(url: &str) -> ScimClient {
    let policy = RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(5),
        total_budget: Duration::from_secs(1),
    };
    let token = Arc::new(SecretString::from("tok".to_string()));
    ScimClient::new(reqwest::Client::new(), url, token, policy).unwrap()
}

fn json_answer(status: u16, body: &str) -> Answer {
    (status, "application/scim+json", body.as_bytes().to_vec())
}

fn html_answer(status: u16) -> Answer {
    let page = format!(
        "<!DOCTYPE html><html><head><title>Error</title></head><body>{}</body></html>",
        "<p>Something went wrong on our side.</p>".repeat(50)
    );
    (status, "text/html", page.into_bytes())
}

/// Successful answers whose body is no usable user resource.
fn unusable_user_bodies() -> Vec<(&'static str, Answer)> {
    vec![
        ("empty body", json_answer(201, "")),
        ("html page", html_answer(201)),
        (
            "truncated",
            json_answer(201, r#"{"id":"w1","userName":"a@x."#),
        ),
        ("id missing", json_answer(201, r#"{"userName":"a@x.com"}"#)),
        (
            "id a number",
            json_answer(201, r#"{"id":42,"userName":"a@x.com"}"#),
        ),
        ("id null", json_answer(201, r#"{"id":null}"#)),
        ("id empty", json_answer(201, r#"{"id":""}"#)),
        ("id blank", json_answer(201, r#"{"id":"  "}"#)),
        ("id with a new line", json_answer(201, r#"{"id":"w1\n"}"#)),
        (
            "userName a number",
            json_answer(201, r#"{"id":"w1","userName":7}"#),
        ),
        ("an array", json_answer(201, r#"[{"id":"w1"}]"#)),
    ]
}

#[tokio::test]
async fn an_unusable_created_user_is_a_response_error() {
    let (fake, url) = FakeScim::start().await;
    let client = client(&url);
    for (name, answer) in unusable_user_bodies() {
        fake.clear();
        fake.script("POST Users", answer);
        let got = client
            .create_user(&UserBody::of(&json!({"userName": "a@x.com"})))
            .await
            .map(|u| u.id);
        assert!(
            matches!(&got, Err(WorkerError::ScimResponse(m)) if m.starts_with("create user")),
            "{name}: {got:?}"
        );
        assert_eq!(fake.requests().len(), 1, "{name}: not sent again");
    }
}

#[tokio::test]
async fn hostile_search_answers_are_errors_or_no_match_never_somebody_else() {
    let (fake, url) = FakeScim::start().await;
    let client = client(&url);
    let errors = [
        ("empty body", json_answer(200, "")),
        ("html page", html_answer(200)),
        (
            "Resources an object",
            json_answer(200, r#"{"Resources":{"id":"w1"}}"#),
        ),
        (
            "totalResults a string",
            json_answer(200, r#"{"totalResults":"1","Resources":[]}"#),
        ),
        (
            "resource without id",
            json_answer(200, r#"{"Resources":[{"userName":"a@x.com"}]}"#),
        ),
        (
            "resource with an empty id",
            json_answer(200, r#"{"Resources":[{"id":"","userName":"a@x.com"}]}"#),
        ),
    ];
    for (name, answer) in errors {
        fake.clear();
        fake.script("GET Users", answer);
        let found = client.find_user_by_user_name("a@x.com").await;
        assert!(
            matches!(&found, Err(WorkerError::ScimResponse(m)) if m.starts_with("search users")),
            "{name}: {found:?}"
        );
        let names = client.existing_user_names(&["a@x.com"]).await;
        assert!(
            matches!(&names, Err(WorkerError::ScimResponse(_))),
            "{name}: {names:?}"
        );
    }
    // A server that ignores the filter must not make us adopt another user.
    let loose = [
        (
            "other users only",
            r#"{"Resources":[{"id":"w9","userName":"b@x.com"}]}"#,
        ),
        ("userName missing", r#"{"Resources":[{"id":"w9"}]}"#),
        (
            "userName null",
            r#"{"Resources":[{"id":"w9","userName":null}]}"#,
        ),
        ("no Resources", r#"{"totalResults":3}"#),
    ];
    for (name, body) in loose {
        fake.clear();
        fake.script("GET Users", json_answer(200, body));
        let found = client.find_user_by_user_name("a@x.com").await.unwrap();
        assert_eq!(found, None, "{name}");
        let names = client.existing_user_names(&["a@x.com"]).await.unwrap();
        assert!(names.is_empty(), "{name}: {names:?}");
    }
}

#[tokio::test]
async fn error_pages_become_short_status_errors() {
    let (fake, url) = FakeScim::start().await;
    let client = client(&url);
    // (answer, status, detail starts with)
    let cases = [
        (html_answer(500), 500, "<!DOCTYPE html>"),
        (html_answer(404), 404, "<!DOCTYPE html>"),
        (json_answer(400, ""), 400, "http status 400"),
        (
            json_answer(409, r#"{"status":409,"scimType":7,"detail":["x"]}"#),
            409,
            "{\"status\":409",
        ),
        (
            json_answer(400, "\u{1}\u{1b}[31m{\"detail\":"),
            400,
            "  [31m{",
        ),
        (
            json_answer(
                400,
                &json!({"detail": format!("\u{1b}]0;owned\u{7}{}", "x".repeat(100_000))})
                    .to_string(),
            ),
            400,
            " ]0;owned x",
        ),
    ];
    for (answer, status, detail_start) in cases {
        fake.clear();
        fake.script("PATCH Users", answer);
        let err = client
            .patch_user("w1", &[("displayName".to_string(), json!("A"))].into())
            .await
            .unwrap_err();
        let WorkerError::ScimStatus {
            status: got,
            detail,
            ..
        } = &err
        else {
            panic!("{status}: {err:?}");
        };
        assert_eq!(*got, status);
        assert!(detail.starts_with(detail_start), "{status}: {detail}");
        assert!(
            detail.chars().count() <= 201,
            "{status}: {} chars",
            detail.chars().count()
        );
    }
}

fn bulk_of_three() -> BulkRequest {
    let mut requests = BulkRequest::split(vec![
        BulkOperation::Create {
            resource: UserBody::of(&json!({"userName": "a@x.com"})),
        },
        BulkOperation::Patch {
            webex_id: "w2".into(),
            changes: [("active".to_string(), json!(false))].into(),
        },
        BulkOperation::Delete {
            webex_id: "w3".into(),
        },
    ]);
    requests.remove(0)
}

#[tokio::test]
async fn hostile_bulk_answers_are_errors_of_the_request() {
    let (fake, url) = FakeScim::start().await;
    let client = client(&url);
    let cases = [
        ("empty body", json_answer(200, "")),
        ("html page", html_answer(200)),
        (
            "truncated",
            json_answer(200, r#"{"Operations":[{"bulkId":"op-0","status":"201""#),
        ),
        (
            "Operations a string",
            json_answer(200, r#"{"Operations":"all done"}"#),
        ),
        (
            "status missing",
            json_answer(200, r#"{"Operations":[{"bulkId":"op-0"}]}"#),
        ),
        (
            "status a word",
            json_answer(
                200,
                r#"{"Operations":[{"bulkId":"op-0","status":"created"}]}"#,
            ),
        ),
        (
            "status with a reason",
            json_answer(
                200,
                r#"{"Operations":[{"bulkId":"op-0","status":"201 Created"}]}"#,
            ),
        ),
        (
            "status an object",
            json_answer(
                200,
                r#"{"Operations":[{"bulkId":"op-0","status":{"code":"201"}}]}"#,
            ),
        ),
        (
            "status negative",
            json_answer(200, r#"{"Operations":[{"bulkId":"op-0","status":-201}]}"#),
        ),
        (
            "status too large",
            json_answer(200, r#"{"Operations":[{"bulkId":"op-0","status":70000}]}"#),
        ),
        (
            "status a float",
            json_answer(200, r#"{"Operations":[{"bulkId":"op-0","status":201.5}]}"#),
        ),
        (
            "bulkId a number",
            json_answer(200, r#"{"Operations":[{"bulkId":0,"status":"201"}]}"#),
        ),
    ];
    for (name, answer) in cases {
        fake.clear();
        fake.script("POST Bulk", answer);
        let got = client.bulk(&bulk_of_three()).await;
        assert!(
            matches!(&got, Err(WorkerError::ScimResponse(m)) if m.starts_with("bulk")),
            "{name}: {got:?}"
        );
    }
}

#[tokio::test]
async fn bulk_answers_that_fit_no_operation_leave_it_unprocessed() {
    let (fake, url) = FakeScim::start().await;
    let client = client(&url);
    let answers = json!({"Operations": [
        // Unknown and repeated bulkIds, a method we did not send: none may settle an operation.
        {"bulkId": "op-7", "status": "201", "location": "http://s/v2/Users/w7"},
        {"bulkId": "op-0", "status": "409", "response": {"detail": "taken"}},
        {"bulkId": "op-0", "status": "201", "location": "http://s/v2/Users/w0"},
        {"method": "PUT", "status": "200", "location": "http://s/v2/Users/w2"},
        // The DELETE answered with a location that is not a user's.
        {"method": "DELETE", "status": "204", "location": "http://s/v2/Users/"}
    ]});
    fake.script("POST Bulk", json_answer(200, &answers.to_string()));
    let outcomes = client.bulk(&bulk_of_three()).await.unwrap().unwrap();
    let shown: Vec<String> = outcomes.iter().map(|o| format!("{o:?}")).collect();
    assert!(
        shown[0].starts_with("Failed(ScimStatus { status: 409"),
        "{shown:?}"
    );
    assert_eq!(shown[1], "NotProcessed", "{shown:?}");
    assert_eq!(shown[2], "Done { webex_id: None }", "{shown:?}");
}

fn new_user(id: &str, upn: &str) -> SourceUser {
    let Value::Object(attributes) =
        json!({"userPrincipalName": upn, "displayName": id, "accountEnabled": true})
    else {
        unreachable!("an object literal")
    };
    SourceUser {
        id: id.into(),
        removed: None,
        attributes,
    }
}

#[tokio::test]
async fn garbage_answers_to_creates_fail_the_users_and_touch_nobody_else() {
    let (fake, url) = FakeScim::start().await;
    let client = client(&url);
    let users = [new_user("e1", "a@x.com"), new_user("e2", "b@x.com")];
    let plans: Vec<_> = plan_batch(&users, &HashMap::new(), true)
        .into_iter()
        .map(|p| match p {
            Planned::Plan { entra_id, plan } => (entra_id, plan),
            other => panic!("{other:?}"),
        })
        .collect();
    for (name, answer) in unusable_user_bodies() {
        fake.clear();
        // The Bulk answer is garbage too, so every create goes again alone.
        fake.script("POST Bulk", html_answer(200));
        fake.script("POST Users", answer);
        fake.script("GET Users", json_answer(200, r#"{"Resources":[]}"#));
        let mut results = push_all(&client, plans.clone(), 4).await.unwrap();
        results.sort_by(|a, b| a.entra_id.cmp(&b.entra_id));
        for result in &results {
            assert!(
                matches!(result.status, Status::Failed(_)),
                "{name}: {}: {:?}",
                result.entra_id,
                result.status
            );
            assert!(
                !matches!(result.mirror, Some(MirrorChange::Upsert { .. })),
                "{name}: {} recorded under a made-up id",
                result.entra_id
            );
        }
        for (method, path, body) in fake.requests() {
            assert!(
                method == "POST" || method == "GET",
                "{name}: {method} {path} {body}"
            );
        }
    }
}
