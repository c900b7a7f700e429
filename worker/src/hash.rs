//! Content hash of mapped attributes: xxh3-64 of their canonical JSON.
//!
//! Canonical means object keys sorted at every depth, so the hash does not depend on the
//! order attributes were inserted in (nor on serde_json's `preserve_order` feature being
//! switched on by some other crate in the build).

use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::map::ScimAttributes;

/// The xxh3-64 hash of the canonical JSON of `attributes`.
pub fn content_hash(attributes: &ScimAttributes) -> u64 {
    let mut bytes = Vec::with_capacity(256);
    bytes.push(b'{');
    // A BTreeMap iterates in key order, so the top level is already canonical.
    for (i, (k, v)) in attributes.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        write_json(&mut bytes, &Value::String(k.clone()));
        bytes.push(b':');
        write_json(&mut bytes, &canonical(v));
    }
    bytes.push(b'}');
    xxh3_64(&bytes)
}

/// The mirror stores the hash in a signed `bigint`; the bits are what matter.
pub fn to_db(hash: u64) -> i64 {
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Inverse of [`to_db`].
pub fn from_db(hash: i64) -> u64 {
    u64::from_ne_bytes(hash.to_ne_bytes())
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    // Serializing a `Value` into a Vec cannot fail: no I/O, and keys are strings.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::test_support::attrs;
    use serde_json::{Map, json};

    #[test]
    fn equal_content_equal_hash_regardless_of_nested_key_order() {
        let mut a = Map::new();
        a.insert("b".into(), json!(1));
        a.insert("a".into(), json!(2));
        let mut b = Map::new();
        b.insert("a".into(), json!(2));
        b.insert("b".into(), json!(1));
        let x = attrs(json!({"k": Value::Object(a), "z": true}));
        let y = attrs(json!({"z": true, "k": Value::Object(b)}));
        assert_eq!(content_hash(&x), content_hash(&y));
    }

    #[test]
    fn different_content_different_hash() {
        let cases = [
            (
                json!({"displayName": "Ada"}),
                json!({"displayName": "Ada "}),
            ),
            (json!({"active": true}), json!({"active": false})),
            (json!({"a": "1"}), json!({"a": 1})),
            (json!({"a": "x"}), json!({"b": "x"})),
        ];
        for (x, y) in cases {
            assert_ne!(
                content_hash(&attrs(x.clone())),
                content_hash(&attrs(y.clone())),
                "{x} vs {y}"
            );
        }
    }

    #[test]
    fn db_round_trip_keeps_all_bits() {
        for h in [0u64, 1, u64::MAX, 1 << 63, 0x0123_4567_89ab_cdef] {
            assert_eq!(from_db(to_db(h)), h);
        }
    }
}
