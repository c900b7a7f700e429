//! A dead-lettered delivery read into what is kept of it (pure): why the broker dead-lettered
//! it (`x-death`), whose batch it is (the body, else the headers the coordinator stamped at
//! publish time) and which objects it carried, which are counted failed.

use std::collections::BTreeSet;

use lapin::types::{AMQPValue, FieldTable};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use dirsync_proto::topology::headers;
use dirsync_proto::{BatchMessage, RunId, TenantId};
use dirsync_telemetry::amqp::header_int;

/// What is kept of one dead-lettered batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub tenant: Option<TenantId>,
    pub run: Option<RunId>,
    pub seq: Option<u32>,
    /// The queue it died in.
    pub queue: String,
    /// Why: `rejected` (a worker judged it undecodable or hopeless), `delivery_limit`
    /// (handed back too many times: failures, panics, lost workers), `expired`, ...
    pub reason: String,
    /// The broker's `x-delivery-count` of the message, when it carried one.
    pub delivery_count: Option<u32>,
    /// Why this coordinator cannot decode the body; `None` when it can.
    pub decode_error: Option<String>,
    /// The distinct Entra ids of the users it carried, when the body is decodable.
    pub user_ids: Vec<String>,
    /// Users and groups counted failed: from the body when it decodes, or when at least
    /// its shape is readable (another wire version); 0 for a body that is not even JSON.
    pub users: u32,
    pub groups: u32,
    /// A dry run's batch (its run id is a dry run's).
    pub dry_run: bool,
    /// The message's headers as JSON, for operators.
    pub headers: Value,
    pub body: Vec<u8>,
}

/// The shape of a batch whatever its wire version: enough to count its objects.
#[derive(Deserialize)]
struct Shape {
    #[serde(default)]
    users: Vec<IgnoredAny>,
    #[serde(default)]
    groups: Vec<IgnoredAny>,
    #[serde(default)]
    dry_run: bool,
}

impl DeadLetter {
    /// Reads a delivery of the dead-letter queue.
    pub fn read(headers: Option<&FieldTable>, body: &[u8]) -> Self {
        let (reason, queue) = death(headers);
        let delivery_count = headers
            .and_then(|h| h.inner().get("x-delivery-count"))
            .and_then(header_int)
            .and_then(|n| u32::try_from(n).ok());
        let mut letter = DeadLetter {
            tenant: header_text(headers, headers::TENANT)
                .and_then(|t| t.parse().ok().map(TenantId)),
            run: header_text(headers, headers::RUN).and_then(|r| r.parse().ok().map(RunId)),
            seq: headers
                .and_then(|h| h.inner().get(headers::SEQ))
                .and_then(header_int)
                .and_then(|n| u32::try_from(n).ok()),
            queue,
            reason,
            delivery_count,
            decode_error: None,
            user_ids: Vec::new(),
            users: 0,
            groups: 0,
            dry_run: false,
            headers: headers.map_or(Value::Object(Map::new()), table_json),
            body: body.to_vec(),
        };
        match BatchMessage::decode(body) {
            Ok(batch) => {
                // The body is the truth; the headers only stand in for a body that is not.
                letter.tenant = Some(batch.tenant_id);
                letter.run = Some(batch.run_id);
                letter.seq = Some(batch.seq);
                let ids: BTreeSet<&str> = batch.users.iter().map(|u| u.id.as_str()).collect();
                letter.user_ids = ids.into_iter().map(str::to_owned).collect();
                letter.users = count(letter.user_ids.len());
                letter.groups = count(batch.groups.len());
                letter.dry_run = batch.dry_run;
            }
            Err(e) => {
                letter.decode_error = Some(e.to_string());
                if let Ok(shape) = serde_json::from_slice::<Shape>(body) {
                    letter.users = count(shape.users.len());
                    letter.groups = count(shape.groups.len());
                    letter.dry_run = shape.dry_run;
                }
            }
        }
        letter
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Why and where the message died: the most recent `x-death` entry, else the
/// `x-first-death-*` headers, else "unknown".
pub fn death(headers: Option<&FieldTable>) -> (String, String) {
    let latest = headers
        .and_then(|h| h.inner().get("x-death"))
        .and_then(|v| match v {
            AMQPValue::FieldArray(deaths) => deaths.as_slice().first(),
            _ => None,
        })
        .and_then(|v| match v {
            AMQPValue::FieldTable(t) => Some(t),
            _ => None,
        });
    let reason = latest
        .and_then(|t| text(t.inner().get("reason")?))
        .or_else(|| header_text(headers, "x-first-death-reason"))
        .unwrap_or_else(|| "unknown".into());
    let queue = latest
        .and_then(|t| text(t.inner().get("queue")?))
        .or_else(|| header_text(headers, "x-first-death-queue"))
        .unwrap_or_else(|| "unknown".into());
    (reason, queue)
}

fn header_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    text(headers?.inner().get(name)?)
}

fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// An AMQP field table as JSON (bytes as lossy text, a timestamp as its seconds).
pub fn table_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
            .collect(),
    )
}

fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::Float(f) => serde_json::json!(f),
        AMQPValue::Double(d) => serde_json::json!(d),
        AMQPValue::DecimalValue(d) => serde_json::json!(format!("{d:?}")),
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Value::String(s.to_string()),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into()),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::Timestamp(t) => serde_json::json!(t),
        AMQPValue::Void => Value::Null,
        other => header_int(other).map_or(Value::Null, |n| serde_json::json!(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dirsync_proto::{SourceGroup, SourceUser, WIRE_VERSION};
    use lapin::types::FieldArray;

    fn death_entry(reason: &str, queue: &str) -> AMQPValue {
        let mut t = FieldTable::default();
        t.insert("reason".into(), AMQPValue::LongString(reason.into()));
        t.insert("queue".into(), AMQPValue::LongString(queue.into()));
        t.insert("count".into(), AMQPValue::LongLongInt(1));
        t.insert("time".into(), AMQPValue::Timestamp(1_700_000_000));
        AMQPValue::FieldTable(t)
    }

    fn headers(pairs: Vec<(&str, AMQPValue)>) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert(k.into(), v);
        }
        t
    }

    #[test]
    fn the_latest_death_says_why() {
        let mut deaths = FieldArray::default();
        deaths.push(death_entry("delivery_limit", "p.batches"));
        deaths.push(death_entry("rejected", "p.batches.priority"));
        let cases = vec![
            (None, ("unknown", "unknown")),
            (Some(FieldTable::default()), ("unknown", "unknown")),
            (
                Some(headers(vec![("x-death", AMQPValue::FieldArray(deaths))])),
                ("delivery_limit", "p.batches"),
            ),
            (
                Some(headers(vec![
                    (
                        "x-first-death-reason",
                        AMQPValue::LongString("rejected".into()),
                    ),
                    (
                        "x-first-death-queue",
                        AMQPValue::LongString("p.batches".into()),
                    ),
                ])),
                ("rejected", "p.batches"),
            ),
            // a malformed x-death falls back to the first-death headers
            (
                Some(headers(vec![
                    ("x-death", AMQPValue::LongString("nonsense".into())),
                    (
                        "x-first-death-reason",
                        AMQPValue::LongString("expired".into()),
                    ),
                ])),
                ("expired", "unknown"),
            ),
        ];
        for (i, (h, (reason, queue))) in cases.into_iter().enumerate() {
            assert_eq!(
                death(h.as_ref()),
                (reason.to_string(), queue.to_string()),
                "case {i}"
            );
        }
    }

    fn stamped(tenant: TenantId, run: RunId, seq: i64) -> FieldTable {
        headers(vec![
            (
                headers::TENANT,
                AMQPValue::LongString(tenant.to_string().into()),
            ),
            (headers::RUN, AMQPValue::LongString(run.to_string().into())),
            (headers::SEQ, AMQPValue::LongLongInt(seq)),
            ("x-delivery-count", AMQPValue::LongLongInt(10)),
            (
                "x-first-death-reason",
                AMQPValue::LongString("delivery_limit".into()),
            ),
        ])
    }

    #[test]
    fn a_decodable_body_is_attributed_by_itself() {
        let user = |id: &str| SourceUser {
            id: id.into(),
            removed: None,
            attributes: Default::default(),
        };
        let batch = BatchMessage {
            version: WIRE_VERSION,
            tenant_id: TenantId::new(),
            run_id: RunId::new(),
            seq: 4,
            users: vec![user("b"), user("a"), user("b")],
            groups: vec![SourceGroup {
                id: "g".into(),
                removed: None,
                display_name: None,
                members: vec![],
            }],
            dry_run: false,
        };
        // headers that disagree lose to the body
        let h = stamped(TenantId::new(), RunId::new(), 9);
        let letter = DeadLetter::read(Some(&h), &batch.encode());
        assert_eq!(letter.tenant, Some(batch.tenant_id));
        assert_eq!(letter.run, Some(batch.run_id));
        assert_eq!(letter.seq, Some(4));
        assert_eq!(letter.user_ids, vec!["a".to_string(), "b".to_string()]);
        assert_eq!((letter.users, letter.groups), (2, 1));
        assert_eq!(letter.decode_error, None);
        assert_eq!(letter.reason, "delivery_limit");
        assert_eq!(letter.delivery_count, Some(10));
        assert_eq!(letter.headers["x-dirsync-seq"], serde_json::json!(9));
    }

    #[test]
    fn an_undecodable_body_is_attributed_by_its_headers() {
        let (tenant, run) = (TenantId::new(), RunId::new());
        let h = stamped(tenant, run, 3);
        // another wire version: not decodable, but its objects can be counted
        let other_version = serde_json::json!({
            "version": 99, "tenant_id": tenant, "run_id": run, "seq": 3,
            "users": [{"id": "x"}, {"id": "y"}], "shape": "new"
        });
        let letter = DeadLetter::read(Some(&h), other_version.to_string().as_bytes());
        assert_eq!(
            (letter.tenant, letter.run, letter.seq),
            (Some(tenant), Some(run), Some(3))
        );
        assert!(
            letter.decode_error.as_deref().unwrap().contains("99"),
            "{letter:?}"
        );
        assert_eq!((letter.users, letter.groups), (2, 0));
        assert!(letter.user_ids.is_empty());

        let garbage = DeadLetter::read(Some(&h), b"\x00\xffnot json");
        assert_eq!((garbage.run, garbage.seq), (Some(run), Some(3)));
        assert!(garbage.decode_error.is_some());
        assert_eq!((garbage.users, garbage.groups), (0, 0));
        assert_eq!(garbage.body, b"\x00\xffnot json");

        let bare = DeadLetter::read(None, b"garbage");
        assert_eq!((bare.tenant, bare.run, bare.seq), (None, None, None));
        assert_eq!(bare.reason, "unknown");
        assert_eq!(bare.headers, serde_json::json!({}));
    }

    #[test]
    fn headers_become_json() {
        let mut deaths = FieldArray::default();
        deaths.push(death_entry("rejected", "q"));
        let h = headers(vec![
            ("x-death", AMQPValue::FieldArray(deaths)),
            ("flag", AMQPValue::Boolean(true)),
            ("n", AMQPValue::LongInt(-3)),
            ("nothing", AMQPValue::Void),
        ]);
        assert_eq!(
            table_json(&h),
            serde_json::json!({
                "x-death": [{"reason": "rejected", "queue": "q", "count": 1, "time": 1_700_000_000}],
                "flag": true, "n": -3, "nothing": null
            })
        );
    }
}
