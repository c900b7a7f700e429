//! The push step against the fake SCIM server: which SCIM errors make a failed user (about
//! that user) and which are returned to fail the whole batch (about the tenant's service).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use dirsync_proto::SourceUser;
use dirsync_worker::WorkerError;
use dirsync_worker::diff::{Action, Plan};
use dirsync_worker::map::{ScimAttributes, map_user};
use dirsync_worker::outcome::Status;
use dirsync_worker::push::push;
use dirsync_worker::scim::{RetryPolicy, ScimClient};
use secrecy::SecretString;
use serde_json::json;

use crate::fake_scim::{FakeScim, Fault, TOKEN};

/// Two attempts, short sleeps: enough to see a retryable status outlast the budget.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(50),
        total_budget: Duration::from_secs(1),
    }
}

fn client(base_url: &str) -> ScimClient {
    let token = Arc::new(SecretString::from(TOKEN.to_string()));
    ScimClient::new(reqwest::Client::new(), base_url, token, quick_retries()).unwrap()
}

fn mapped(upn: Option<&str>) -> ScimAttributes {
    let mut attributes = json!({"displayName": "Ada", "accountEnabled": true});
    if let Some(upn) = upn {
        attributes["userPrincipalName"] = json!(upn);
    }
    map_user(&SourceUser {
        id: "e-1".into(),
        removed: None,
        attributes: attributes.as_object().cloned().unwrap(),
    })
}

fn plan(action: Action, effective: ScimAttributes) -> Plan {
    Plan {
        action,
        json: serde_json::to_string(&effective).unwrap(),
        effective,
        content_hash: 1,
        recorded: false,
    }
}

fn create(upn: Option<&str>) -> Plan {
    plan(Action::Create, mapped(upn))
}

fn patch() -> Plan {
    let changes = ScimAttributes::from([("displayName".to_string(), json!("Ada K"))]);
    plan(
        Action::Patch {
            webex_id: "w-1".into(),
            changes,
        },
        mapped(Some("ada@x.com")),
    )
}

fn deactivate() -> Plan {
    plan(
        Action::Deactivate {
            webex_id: "w-1".into(),
        },
        mapped(Some("ada@x.com")),
    )
}

fn delete() -> Plan {
    plan(
        Action::Delete {
            webex_id: "w-1".into(),
        },
        mapped(Some("ada@x.com")),
    )
}

#[derive(Debug)]
enum Expect {
    /// A failed user whose reason contains this text.
    Failed(&'static str),
    /// An error returned for the batch, with this SCIM status.
    Tenant(u16),
}

struct Case {
    name: &'static str,
    plan: Plan,
    /// Status answered to every request.
    fault: Option<u16>,
    /// Whether the userName belongs to an account outside the org.
    foreign: bool,
    expect: Expect,
    /// Requests the server receives.
    requests: usize,
}

fn case(
    name: &'static str,
    plan: Plan,
    fault: Option<u16>,
    expect: Expect,
    requests: usize,
) -> Case {
    Case {
        name,
        plan,
        fault,
        foreign: false,
        expect,
        requests,
    }
}

#[tokio::test]
async fn only_errors_about_the_user_make_a_failed_user() {
    let ada = || create(Some("ada@x.com"));
    let cases = vec![
        case("create 401", ada(), Some(401), Expect::Tenant(401), 1),
        case("create 403", ada(), Some(403), Expect::Tenant(403), 1),
        case(
            "create 429 past budget",
            ada(),
            Some(429),
            Expect::Tenant(429),
            2,
        ),
        case(
            "create 503 past budget",
            ada(),
            Some(503),
            Expect::Tenant(503),
            2,
        ),
        case("patch 401", patch(), Some(401), Expect::Tenant(401), 1),
        case(
            "patch 502 past budget",
            patch(),
            Some(502),
            Expect::Tenant(502),
            2,
        ),
        case(
            "deactivate 403",
            deactivate(),
            Some(403),
            Expect::Tenant(403),
            1,
        ),
        case(
            "delete 503 past budget",
            delete(),
            Some(503),
            Expect::Tenant(503),
            2,
        ),
        case(
            "create 400",
            ada(),
            Some(400),
            Expect::Failed("scim 400"),
            1,
        ),
        case(
            "create 404",
            ada(),
            Some(404),
            Expect::Failed("scim 404"),
            1,
        ),
        case(
            "patch 400",
            patch(),
            Some(400),
            Expect::Failed("scim 400"),
            1,
        ),
        Case {
            foreign: true,
            ..case(
                "create foreign",
                ada(),
                None,
                Expect::Failed("outside this org"),
                2,
            )
        },
        case(
            "create without userName",
            create(None),
            None,
            Expect::Failed("without userName"),
            0,
        ),
    ];
    for Case {
        name,
        plan,
        fault,
        foreign,
        expect,
        requests,
    } in cases
    {
        let fake = FakeScim::start().await;
        {
            let mut s = fake.state.lock().unwrap();
            if let Some(status) = fault {
                s.fault = Some(Fault {
                    status: StatusCode::from_u16(status).unwrap(),
                    requests: 0..usize::MAX,
                });
            }
            if foreign {
                s.foreign.insert("ada@x.com".into());
            }
        }
        let result = push(&client(&fake.base_url), "e-1".into(), plan).await;
        match (&expect, result) {
            (Expect::Failed(text), Ok(r)) => {
                assert_eq!(r.entra_id, "e-1", "{name}");
                assert_eq!(r.mirror, None, "{name}");
                let Status::Failed(reason) = &r.status else {
                    panic!("{name}: {:?}", r.status)
                };
                assert!(reason.contains(text), "{name}: {reason}");
            }
            (Expect::Tenant(code), Err(e)) => {
                assert_eq!(e.scim_status(), Some(*code), "{name}: {e}");
                assert!(!e.is_object_specific(), "{name}: {e}");
            }
            (expect, got) => panic!("{name}: expected {expect:?}, got {got:?}"),
        }
        assert_eq!(fake.state.lock().unwrap().requests, requests, "{name}");
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_the_batch() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client(&format!("http://{addr}/org/v2"));
    let result = push(&client, "e-1".into(), create(Some("ada@x.com"))).await;
    assert!(
        matches!(result, Err(WorkerError::ScimTransport(_))),
        "{result:?}"
    );
}
