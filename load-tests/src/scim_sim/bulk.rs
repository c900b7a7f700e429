//! `POST /identity/scim/{orgId}/v2/Bulk` (webex-scim.md §4, RFC 7644 §3.7): user operations
//! carried out one after the other with the same code as the single requests.
//!
//! Choices:
//! - The request is refused as a whole (400 `invalidSyntax`) when it is not a BulkRequest
//!   object with an `Operations` array (`operations` accepted too), or when `failOnErrors` is
//!   not an integer 1–100; more than [`BULK_OPERATIONS_MAX`] operations is 413.
//! - Anything wrong with one operation (method other than POST/PATCH/DELETE, POST without
//!   `bulkId`, missing `data`, a path other than `/Users` for POST or `/Users/{id}` otherwise)
//!   is that operation's 400, and counts toward `failOnErrors` like any failed operation.
//! - After `failOnErrors` failed operations the rest are not processed and not answered.
//! - Each answer carries `method`, `bulkId` when the operation had one, `status` as a string,
//!   `location` and `version` of the user on success, and on failure a `response` with the
//!   RFC error body plus the Cisco error extension.
//! - `bulkId:` references and `/Groups` operations are not simulated (400 per operation).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::call::{ScimCall, json_response, parse_json};
use super::counters::RequestKind;
use super::error::{ScimError, ScimType};
use super::json::{get_ci, get_mut_ci, remove_ci};
use super::store::{Org, Store};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// Most operations in one Bulk request (webex-scim.md §4).
pub const BULK_OPERATIONS_MAX: usize = 100;
const CISCO_ERROR: &str = "urn:scim:schemas:extension:cisco:webexidentity:api:messages:2.0:Error";

pub(super) async fn bulk(call: ScimCall, body: Bytes) -> Response {
    // Up to 100 operations is long work for one request: off the async threads, so the
    // simulator (and whatever shares its runtime, like the demo's coordinator) keeps going.
    tokio::task::spawn_blocking(move || bulk_blocking(&call, &body))
        .await
        // A panic in the operations is the simulator's bug: raise it as a handler's would.
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn bulk_blocking(call: &ScimCall, body: &Bytes) -> Response {
    call.handle(RequestKind::Bulk, |store, org| {
        let request = parse_json(body)?;
        let (fail_on_errors, operations) = parse_request(request)?;
        let base_url = call.base_url();
        let mut answers = Vec::with_capacity(operations.len());
        let mut errors = 0;
        for op in operations {
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break;
            }
            let answer = run(store, org, &base_url, op);
            if answer.get("response").is_some() {
                errors += 1;
            }
            answers.push(answer);
        }
        Ok(json_response(
            json!({"schemas": [BULK_RESPONSE], "Operations": answers}),
        ))
    })
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidSyntax, detail)
}

/// `failOnErrors` (if given) and the operations of a BulkRequest, moved out of it: each
/// operation's `data` then goes to the store without a copy.
fn parse_request(request: Value) -> Result<(Option<usize>, Vec<Value>), ScimError> {
    let Value::Object(mut object) = request else {
        return Err(syntax("a BulkRequest must be an object"));
    };
    let declared = get_ci(&object, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(BULK_REQUEST)));
    if !declared {
        return Err(syntax(format!("schemas must contain {BULK_REQUEST}")));
    }
    let fail_on_errors = match get_ci(&object, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=100) => Some(n as usize),
            _ => return Err(syntax("failOnErrors must be an integer from 1 to 100")),
        },
    };
    let Some(Value::Array(operations)) = get_mut_ci(&mut object, "Operations").map(Value::take)
    else {
        return Err(syntax("Operations must be an array"));
    };
    if operations.len() > BULK_OPERATIONS_MAX {
        return Err(ScimError::TooLarge(format!(
            "{} operations exceed the maximum of {BULK_OPERATIONS_MAX}",
            operations.len()
        )));
    }
    Ok((fail_on_errors, operations))
}

/// Carries out one operation and returns its answer.
fn run(store: &Store, org: &Org, base_url: &str, op: Value) -> Value {
    let mut fields = match op {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    // Taken out first: the other fields are only read.
    let data = remove_ci(&mut fields, "data");
    let text = |name| get_ci(&fields, name).and_then(Value::as_str);
    let method = text("method").unwrap_or_default().to_ascii_uppercase();
    let bulk_id = text("bulkId");
    let mut answer = Map::new();
    answer.insert("method".into(), json!(method));
    if let Some(id) = bulk_id {
        answer.insert("bulkId".into(), json!(id));
    }
    let outcome = carry_out(store, org, base_url, &fields, data, &method, bulk_id);
    match outcome {
        Ok((status, user)) => {
            answer.insert("status".into(), json!(status.as_u16().to_string()));
            if let Some(Value::Object(mut meta)) =
                user.and_then(|mut u| u.get_mut("meta").map(Value::take))
            {
                for key in ["location", "version"] {
                    if let Some(v) = meta.remove(key) {
                        answer.insert(key.into(), v);
                    }
                }
            }
        }
        Err((location, e)) => {
            answer.insert("status".into(), json!(e.status().as_u16().to_string()));
            if let Some(location) = location {
                answer.insert("location".into(), json!(location));
            }
            answer.insert("response".into(), error_response(&e));
        }
    }
    Value::Object(answer)
}

/// A failed operation: the user's location when the path named one, and the error.
type Failure = (Option<String>, ScimError);

fn carry_out(
    store: &Store,
    org: &Org,
    base_url: &str,
    fields: &Map<String, Value>,
    data: Option<Value>,
    method: &str,
    bulk_id: Option<&str>,
) -> Result<(StatusCode, Option<Value>), Failure> {
    let fail = |e: ScimError| (None, e);
    let path = get_ci(fields, "path").and_then(Value::as_str).unwrap_or("");
    let user_id = path
        .strip_prefix("/Users/")
        .filter(|id| !id.is_empty() && !id.contains('/'));
    let location = user_id.map(|id| format!("{base_url}/identity/scim/{}/v2/Users/{id}", org.id));
    let fail_at = |e: ScimError| (location.clone(), e);
    match method {
        "POST" => {
            if path != "/Users" {
                return Err(fail(syntax(format!(
                    "POST path must be /Users, got {path:?}"
                ))));
            }
            if bulk_id.is_none_or(str::is_empty) {
                return Err(fail(syntax("bulkId is required for POST")));
            }
            let data = data.ok_or_else(|| fail(syntax("data is required for POST")))?;
            org.counters.count_bulk_operation(RequestKind::Create);
            let user = store.create(org, base_url, data).map_err(fail)?;
            Ok((StatusCode::CREATED, Some(user)))
        }
        "PATCH" => {
            let id = user_id.ok_or_else(|| fail(syntax(format!("bad PATCH path {path:?}"))))?;
            let data = data.ok_or_else(|| fail_at(syntax("data is required for PATCH")))?;
            org.counters.count_bulk_operation(RequestKind::Patch);
            let user = store.patch(org, id, data).map_err(fail_at)?;
            Ok((StatusCode::OK, Some(user)))
        }
        "DELETE" => {
            let id = user_id.ok_or_else(|| fail(syntax(format!("bad DELETE path {path:?}"))))?;
            org.counters.count_bulk_operation(RequestKind::Delete);
            store.delete(org, id).map_err(fail_at)?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        other => Err(fail(syntax(format!(
            "method must be POST, PATCH or DELETE, got {other:?}"
        )))),
    }
}

/// The RFC error body with the Cisco extension Webex puts in a failed operation.
fn error_response(e: &ScimError) -> Value {
    let mut body = e.body();
    let status = e.status().as_u16();
    body[CISCO_ERROR] = json!({
        "trackingId": format!("SIM_BULK_{}", uuid::Uuid::new_v4().simple()),
        "errorCode": u64::from(status) * 1000 + 1,
        "details": e.detail(),
    });
    body
}
