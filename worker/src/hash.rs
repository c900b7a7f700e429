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
    xxh3_64(&canonical_bytes(attributes))
}

/// The canonical JSON of `attributes` and its hash. The mirror stores that JSON: it is what
/// `serde_json` prints for them without `preserve_order` (keys sorted), written once for both.
pub fn hashed_json(attributes: &ScimAttributes) -> (u64, String) {
    let bytes = canonical_bytes(attributes);
    let hash = xxh3_64(&bytes);
    let json = String::from_utf8(bytes).expect("serde_json writes utf-8");
    (hash, json)
}

/// The canonical JSON of `attributes`: compact, keys sorted at every depth.
fn canonical_bytes(attributes: &ScimAttributes) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1024);
    bytes.push(b'{');
    // A BTreeMap iterates in key order, so the top level is already canonical.
    for (i, (k, v)) in attributes.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        write_json(&mut bytes, k);
        bytes.push(b':');
        write_canonical(&mut bytes, v);
    }
    bytes.push(b'}');
    bytes
}

/// The mirror stores the hash in a signed `bigint`; the bits are what matter.
pub fn to_db(hash: u64) -> i64 {
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Inverse of [`to_db`].
pub fn from_db(hash: i64) -> u64 {
    u64::from_ne_bytes(hash.to_ne_bytes())
}

/// Writes `value` as compact JSON with object keys sorted at every depth, straight into
/// `out`: the bytes serde_json writes for the sorted copy of the value, without building
/// that copy (every planned user is hashed, and the copies were most of the time it took).
fn write_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, k);
                out.push(b':');
                write_canonical(out, v);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item);
            }
            out.push(b']');
        }
        scalar => write_json(out, scalar),
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing a string or a JSON scalar into a Vec cannot fail: no I/O.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::test_support::attrs;
    use serde_json::{Map, json};

    /// [`content_hash`] of the mapped user in `the_hash_of_a_mapped_user_is_stable_across_versions`,
    /// as computed before the hash wrote its canonical JSON without copies.
    const PINNED: u64 = 9_380_123_391_852_927_835;

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

    /// The canonical JSON as first written: a sorted copy of each value, serialized whole.
    /// Hashes are stored in the mirror, so the bytes must never change.
    fn sorted_copy_json(attributes: &ScimAttributes) -> Vec<u8> {
        fn sorted(value: &Value) -> Value {
            match value {
                Value::Object(map) => {
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.clone(), sorted(v)))
                            .collect(),
                    )
                }
                Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
                other => other.clone(),
            }
        }
        let mut out = b"{".to_vec();
        for (i, (k, v)) in attributes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend(serde_json::to_vec(&Value::String(k.clone())).unwrap());
            out.push(b':');
            out.extend(serde_json::to_vec(&sorted(v)).unwrap());
        }
        out.push(b'}');
        out
    }

    #[test]
    fn canonical_json_is_the_sorted_copy_serialized() {
        let cases = [
            json!({}),
            json!({"userName": "zoë@exämple.com", "active": true, "externalId": "e1",
                   "emails[type eq \"work\"].value": "a\"b\\c\n\u{1}", "n": 42, "f": -1.5,
                   "gone": null}),
            json!({"phoneNumbers": [{"value": "+1", "type": "mobile", "primary": true},
                                    {"type": "fax", "value": "+2"}],
                   "nested": {"z": {"y": [3, {"b": null, "a": "山田"}], "x": []}, "a": {}},
                   "list": ["b", "a", ["c"]]}),
        ];
        for case in cases {
            let attributes = attrs(case.clone());
            let sorted = String::from_utf8(sorted_copy_json(&attributes)).unwrap();
            assert_eq!(
                String::from_utf8(canonical_bytes(&attributes)).unwrap(),
                sorted,
                "{case}"
            );
            // What the mirror stores: the same text, read back as the same attributes.
            let (hash, json) = hashed_json(&attributes);
            assert_eq!(
                (hash, &json),
                (content_hash(&attributes), &sorted),
                "{case}"
            );
            assert_eq!(
                serde_json::from_str::<ScimAttributes>(&json).unwrap(),
                attributes
            );
        }
    }

    #[test]
    fn the_hash_of_a_mapped_user_is_stable_across_versions() {
        let user = attrs(json!({
            "userName": "ada@example.com", "emails[type eq \"work\"].value": "ada@example.com",
            "displayName": "Ada Lovelace", "name.givenName": "Ada", "externalId": "e1",
            "active": true, "userType": "user",
            "phoneNumbers": [{"type": "mobile", "value": "+47 912 00001"}],
        }));
        assert_eq!(content_hash(&user), xxh3_64(&sorted_copy_json(&user)));
        assert_eq!(content_hash(&user), PINNED);
    }

    #[test]
    fn db_round_trip_keeps_all_bits() {
        for h in [0u64, 1, u64::MAX, 1 << 63, 0x0123_4567_89ab_cdef] {
            assert_eq!(from_db(to_db(h)), h);
        }
    }
}
