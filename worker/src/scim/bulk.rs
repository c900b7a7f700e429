//! SCIM Bulk (RFC 7644 §3.7, webex-scim.md §4): the request builder and the response parser.
//!
//! Pure. [`BulkRequest::split`] cuts any number of user operations into requests of at most
//! [`MAX_BULK_OPERATIONS`], each operation with a `bulkId` (its index in the caller's list) and
//! `failOnErrors` equal to the request's size, so that one user's error never stops the
//! others. [`parse_bulk_response`] gives each operation of a request its outcome: the server
//! answers by `bulkId` where it echoes one and otherwise (Webex's PATCH and DELETE answers
//! carry none) by method and the user id in `location`, then by order; an operation without
//! an answer is [`BulkOutcome::NotProcessed`].

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::body::patch_request;
use super::resource::UserBody;
use super::wire::{error_from_response, write_json};
use crate::error::WorkerError;
use crate::map::ScimAttributes;

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// Most operations Webex takes in one Bulk request.
pub const MAX_BULK_OPERATIONS: usize = 100;

/// One user operation of a Bulk request.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkOperation {
    /// `POST /Users` of a resource built by [`super::user_resource`].
    Create { resource: UserBody },
    /// `PATCH /Users/{id}` of the changed paths (`null` = remove), as [`patch_request`].
    Patch {
        webex_id: String,
        changes: ScimAttributes,
    },
    /// `DELETE /Users/{id}`.
    Delete { webex_id: String },
}

impl BulkOperation {
    fn method(&self) -> &'static str {
        match self {
            BulkOperation::Create { .. } => "POST",
            BulkOperation::Patch { .. } => "PATCH",
            BulkOperation::Delete { .. } => "DELETE",
        }
    }

    fn webex_id(&self) -> Option<&str> {
        match self {
            BulkOperation::Create { .. } => None,
            BulkOperation::Patch { webex_id, .. } | BulkOperation::Delete { webex_id } => {
                Some(webex_id)
            }
        }
    }

    /// Writes the operation as the request carries it. A create's resource is JSON text
    /// already, written as is: a serde `Serialize` could only copy it into a `Value` first.
    fn write(&self, bulk_id: &str, out: &mut Vec<u8>) {
        let path = match self {
            BulkOperation::Create { .. } => Cow::Borrowed("/Users"),
            BulkOperation::Patch { webex_id, .. } | BulkOperation::Delete { webex_id } => {
                Cow::Owned(format!("/Users/{webex_id}"))
            }
        };
        out.extend_from_slice(b"{\"method\":");
        write_json(out, self.method());
        out.extend_from_slice(b",\"path\":");
        write_json(out, &path);
        out.extend_from_slice(b",\"bulkId\":");
        write_json(out, bulk_id);
        match self {
            BulkOperation::Create { resource } => {
                out.extend_from_slice(b",\"data\":");
                out.extend_from_slice(resource.as_bytes());
            }
            BulkOperation::Patch { changes, .. } => {
                out.extend_from_slice(b",\"data\":");
                write_json(out, &patch_request(changes));
            }
            BulkOperation::Delete { .. } => {}
        }
        out.push(b'}');
    }
}

/// One Bulk request: at most [`MAX_BULK_OPERATIONS`] operations, by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// Index in the caller's list of this request's first operation.
    first: usize,
    operations: Vec<BulkOperation>,
}

impl BulkRequest {
    /// Cuts `operations` into requests of at most [`MAX_BULK_OPERATIONS`], in order.
    pub fn split(operations: Vec<BulkOperation>) -> Vec<BulkRequest> {
        let mut requests = Vec::new();
        let mut rest = operations.into_iter().peekable();
        let mut first = 0;
        while rest.peek().is_some() {
            let operations: Vec<BulkOperation> = rest.by_ref().take(MAX_BULK_OPERATIONS).collect();
            let len = operations.len();
            requests.push(BulkRequest { first, operations });
            first += len;
        }
        requests
    }

    /// Index in the caller's list (the one given to [`Self::split`]) of this request's first
    /// operation; outcomes are in request order from there.
    pub fn first(&self) -> usize {
        self.first
    }

    pub fn operations(&self) -> &[BulkOperation] {
        &self.operations
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    fn bulk_id(&self, i: usize) -> String {
        format!("op-{}", self.first + i)
    }

    /// The JSON body as sent. `failOnErrors` is the number of operations: the server stops
    /// only once every operation has failed, i.e. never early. Written straight from the
    /// operations, without an intermediate [`Value`] of the whole request (that copy and
    /// its drop were a tenth of a worker's CPU in an initial cycle).
    pub fn to_bytes(&self) -> Vec<u8> {
        let resources: usize = self
            .operations
            .iter()
            .map(|op| match op {
                BulkOperation::Create { resource } => resource.as_bytes().len(),
                _ => 0,
            })
            .sum();
        let mut out = Vec::with_capacity(resources + 128 * self.operations.len() + 128);
        out.extend_from_slice(b"{\"schemas\":[");
        write_json(&mut out, BULK_REQUEST_SCHEMA);
        out.extend_from_slice(b"],\"failOnErrors\":");
        let fail_on_errors = self.operations.len().clamp(1, MAX_BULK_OPERATIONS);
        write_json(&mut out, &fail_on_errors);
        out.extend_from_slice(b",\"Operations\":[");
        for (i, op) in self.operations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            op.write(&self.bulk_id(i), &mut out);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// What became of one operation of a Bulk request.
#[derive(Debug)]
pub enum BulkOutcome {
    /// Done; the user's id from the answer's `location`, when there is one.
    Done { webex_id: Option<String> },
    /// Failed with the error the single request would have met.
    Failed(WorkerError),
    /// The server gave no answer for it.
    NotProcessed,
}

#[derive(Debug, Deserialize)]
struct ResponseBody {
    #[serde(rename = "Operations", alias = "operations", default)]
    operations: Vec<ResponseOperation>,
}

#[derive(Debug, Deserialize)]
struct ResponseOperation {
    #[serde(default)]
    method: Option<String>,
    #[serde(rename = "bulkId", default)]
    bulk_id: Option<String>,
    #[serde(default)]
    location: Option<String>,
    /// A string in Cisco's example, a number in wxc_sdk's reading: both are accepted.
    status: Value,
    #[serde(default)]
    response: Option<Value>,
}

/// The outcome of each operation of `request`, in its order.
pub fn parse_bulk_response(
    request: &BulkRequest,
    body: &[u8],
) -> Result<Vec<BulkOutcome>, WorkerError> {
    let parsed: ResponseBody = serde_json::from_slice(body)
        .map_err(|e| WorkerError::ScimResponse(format!("bulk response: {e}")))?;
    let mut outcomes: Vec<Option<BulkOutcome>> = request.operations.iter().map(|_| None).collect();
    for answer in parsed.operations {
        let status = status_of(&answer.status)?;
        let answered_id = answer.location.as_deref().and_then(user_id_of);
        let Some(i) = match_answer(request, &outcomes, &answer, answered_id.as_deref()) else {
            continue;
        };
        outcomes[i] = Some(if (200..300).contains(&status) {
            BulkOutcome::Done {
                webex_id: answered_id,
            }
        } else {
            let body = answer
                .response
                .map(|r| r.to_string().into_bytes())
                .unwrap_or_default();
            BulkOutcome::Failed(error_from_response(status, &body, None::<Duration>, None))
        });
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(BulkOutcome::NotProcessed))
        .collect())
}

fn status_of(status: &Value) -> Result<u16, WorkerError> {
    let parsed = match status {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    };
    parsed.ok_or_else(|| WorkerError::ScimResponse(format!("bulk operation status {status}")))
}

/// The last segment of a `…/Users/{id}` location.
fn user_id_of(location: &str) -> Option<String> {
    let (_, id) = location.trim_end_matches('/').rsplit_once("/Users/")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// Which operation an answer is for: by bulkId, else the first unanswered operation of the
/// same method on the same user, else the first unanswered one of the same method.
fn match_answer(
    request: &BulkRequest,
    outcomes: &[Option<BulkOutcome>],
    answer: &ResponseOperation,
    answered_id: Option<&str>,
) -> Option<usize> {
    let open = |i: &usize| outcomes[*i].is_none();
    if let Some(bulk_id) = &answer.bulk_id {
        return (0..request.len())
            .filter(open)
            .find(|i| request.bulk_id(*i) == *bulk_id);
    }
    let method = answer.method.as_deref().unwrap_or_default();
    let same_method = |i: &usize| request.operations[*i].method().eq_ignore_ascii_case(method);
    (0..request.len())
        .filter(open)
        .filter(same_method)
        .find(|i| answered_id.is_some() && request.operations[*i].webex_id() == answered_id)
        .or_else(|| (0..request.len()).filter(open).find(same_method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::test_support::attrs;
    use serde_json::json;

    /// The body as sent, read back.
    fn body(request: &BulkRequest) -> Value {
        serde_json::from_slice(&request.to_bytes()).unwrap()
    }

    fn create(n: usize) -> BulkOperation {
        BulkOperation::Create {
            resource: UserBody::of(&json!({"userName": format!("u{n}@x.com")})),
        }
    }

    #[test]
    fn splits_into_requests_of_at_most_100() {
        // (operations, sizes of the requests)
        let cases: [(usize, &[usize]); 5] = [
            (0, &[]),
            (1, &[1]),
            (100, &[100]),
            (101, &[100, 1]),
            (250, &[100, 100, 50]),
        ];
        for (n, sizes) in cases {
            let requests = BulkRequest::split((0..n).map(create).collect());
            let got: Vec<usize> = requests.iter().map(BulkRequest::len).collect();
            assert_eq!(got, sizes, "{n} operations");
            let firsts: Vec<usize> = requests.iter().map(BulkRequest::first).collect();
            let expected: Vec<usize> = (0..sizes.len()).map(|i| i * 100).collect();
            assert_eq!(firsts, expected, "{n} operations");
            for r in &requests {
                let body = body(r);
                assert_eq!(body["Operations"].as_array().unwrap().len(), r.len());
                assert_eq!(body["failOnErrors"], json!(r.len()));
            }
        }
    }

    #[test]
    fn builds_the_request_body() {
        let requests = BulkRequest::split(vec![
            create(1),
            BulkOperation::Patch {
                webex_id: "w-2".into(),
                changes: attrs(json!({"title": "Analyst", "department": null})),
            },
            BulkOperation::Delete {
                webex_id: "w-3".into(),
            },
        ]);
        assert_eq!(
            body(&requests[0]),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "failOnErrors": 3,
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "op-0",
                     "data": {"userName": "u1@x.com"}},
                    {"method": "PATCH", "path": "/Users/w-2", "bulkId": "op-1",
                     "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": [{"op": "remove", "path": "department"},
                                             {"op": "replace", "path": "title", "value": "Analyst"}]}},
                    {"method": "DELETE", "path": "/Users/w-3", "bulkId": "op-2"}]
            })
        );
        // bulkIds of a later request continue the caller's numbering
        let many = BulkRequest::split((0..101).map(create).collect());
        assert_eq!(body(&many[1])["Operations"][0]["bulkId"], json!("op-100"));
    }

    /// A summary of an outcome: ("done", id) / ("failed", "status scimType") / ("none", "").
    fn summary(o: &BulkOutcome) -> (&'static str, String) {
        match o {
            BulkOutcome::Done { webex_id } => ("done", webex_id.clone().unwrap_or_default()),
            BulkOutcome::Failed(e) => {
                let WorkerError::ScimStatus {
                    status, scim_type, ..
                } = e
                else {
                    return ("failed", e.to_string());
                };
                (
                    "failed",
                    format!("{status} {}", scim_type.clone().unwrap_or_default()),
                )
            }
            BulkOutcome::NotProcessed => ("none", String::new()),
        }
    }

    fn three() -> BulkRequest {
        BulkRequest::split(vec![
            create(1),
            BulkOperation::Patch {
                webex_id: "w-2".into(),
                changes: attrs(json!({"title": "Analyst"})),
            },
            BulkOperation::Delete {
                webex_id: "w-3".into(),
            },
        ])
        .remove(0)
    }

    #[test]
    fn parses_the_reference_fixture() {
        // webex-scim.md §4: no bulkId on PATCH and DELETE, string statuses.
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
         "Operations":[
          {"location":"https://webexapis.com/identity/scim/o/v2/Users/w-3","method":"DELETE","status":"204"},
          {"location":"https://webexapis.com/identity/scim/o/v2/Users/w-1","method":"POST","bulkId":"op-0","version":"W/\"v1\"","status":"201"},
          {"location":"https://webexapis.com/identity/scim/o/v2/Users/w-2","method":"PATCH","version":"W/\"v2\"","status":"200"}]}"#;
        let got: Vec<_> = parse_bulk_response(&three(), body.as_bytes())
            .unwrap()
            .iter()
            .map(summary)
            .collect();
        assert_eq!(
            got,
            [
                ("done", "w-1".to_string()),
                ("done", "w-2".to_string()),
                ("done", "w-3".to_string())
            ]
        );
    }

    #[test]
    fn parses_errors_numbers_and_missing_answers() {
        // The create failed with the Cisco error extension (numeric status, lowercase key),
        // the patch 404 without location, the delete never answered.
        let body = r#"{"operations":[
          {"method":"POST","bulkId":"op-0","status":409,"response":{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness",
            "urn:scim:schemas:extension:cisco:webexidentity:api:messages:2.0:Error":{"trackingId":"T1","errorCode":409001,"details":"taken"}}},
          {"method":"PATCH","status":"404","response":{"status":"404","detail":"user w-2 not found"}}]}"#;
        let outcomes = parse_bulk_response(&three(), body.as_bytes()).unwrap();
        let got: Vec<_> = outcomes.iter().map(summary).collect();
        assert_eq!(
            got,
            [
                ("failed", "409 uniqueness".to_string()),
                ("failed", "404 ".to_string()),
                ("none", String::new())
            ]
        );
        let BulkOutcome::Failed(e) = &outcomes[0] else {
            panic!()
        };
        assert_eq!(e.reason(), "scim 409: taken (trackingId T1)");
    }

    #[test]
    fn rejects_unusable_responses() {
        for body in [
            "",
            "not json",
            r#"{"Operations":[{"method":"POST","status":"ok"}]}"#,
        ] {
            assert!(
                matches!(
                    parse_bulk_response(&three(), body.as_bytes()),
                    Err(WorkerError::ScimResponse(_))
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn user_ids_come_from_locations() {
        let cases = [
            ("https://h/identity/scim/o/v2/Users/abc", Some("abc")),
            (
                "http://127.0.0.1:1/identity/scim/o/v2/Users/abc/",
                Some("abc"),
            ),
            ("https://h/identity/scim/o/v2/Groups/abc", None),
            ("https://h/identity/scim/o/v2/Users/", None),
        ];
        for (location, id) in cases {
            assert_eq!(user_id_of(location).as_deref(), id, "{location}");
        }
    }
}
