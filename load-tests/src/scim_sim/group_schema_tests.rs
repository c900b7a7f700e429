//! Table-driven tests of group bodies, member references and the group rules.

use super::*;

const ADA: &str = "7a000000-0000-4000-8000-000000000001";
const BOB: &str = "7a000000-0000-4000-8000-000000000002";
const STRANGER: &str = "7a000000-0000-4000-8000-0000000000ff";

fn stamp() -> Stamp<'static> {
    Stamp {
        org_id: "org-1",
        id: "g-1",
        location: "http://h/identity/scim/org-1/v2/Groups/g-1",
        created: "t0",
        now: "t1",
        version: 7,
    }
}

fn is_user(id: &Uuid) -> bool {
    [ADA, BOB]
        .iter()
        .any(|u| Uuid::parse_str(u).ok() == Some(*id))
}

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

#[test]
fn builds_a_new_group() {
    let body = json!({
        "schemas": [CORE_GROUP, CISCO_GROUP], "DisplayName": "Sales", "externalId": "e-1",
        "id": "client-chosen", "meta": {"created": "x"},
        "members": [{"value": ADA, "type": "user", "display": "ignored"}, {"$ref": null, "value": BOB.to_uppercase()}],
        CISCO_GROUP: {"Usage": "distribution", "provisionSource": "AAD", "meta": {"x": 1}}
    });
    let got = from_body(body, &stamp(), is_user).unwrap();
    assert_eq!(got.members, vec![id(ADA), id(BOB)]);
    assert_eq!(
        Value::Object(got.resource),
        json!({
            "schemas": [CORE_GROUP, CISCO_GROUP],
            "id": "g-1",
            "displayName": "Sales",
            "externalId": "e-1",
            CISCO_GROUP: {"usage": "distribution", "meta": {"organizationID": "org-1"}},
            "meta": {"resourceType": "group", "location": "http://h/identity/scim/org-1/v2/Groups/g-1",
                     "version": "W/\"7\"", "created": "t0", "lastModified": "t1"}
        })
    );
    let bare = from_body(
        json!({"schemas": [CORE_GROUP], "displayName": "Empty"}),
        &stamp(),
        is_user,
    )
    .unwrap();
    assert!(bare.members.is_empty());
    assert_eq!(
        bare.resource[CISCO_GROUP],
        json!({"meta": {"organizationID": "org-1"}})
    );
}

#[test]
fn rejects_bad_bodies() {
    let many: Vec<Value> = (0..=MEMBERS_PER_OPERATION_MAX)
        .map(|_| json!({"value": ADA}))
        .collect();
    let cases = [
        ("not an object", json!([]), ScimType::InvalidSyntax),
        (
            "no core schema",
            json!({"displayName": "x"}),
            ScimType::InvalidSyntax,
        ),
        (
            "user schema only",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "x"}),
            ScimType::InvalidSyntax,
        ),
        (
            "no displayName",
            json!({"schemas": [CORE_GROUP]}),
            ScimType::InvalidValue,
        ),
        (
            "blank displayName",
            json!({"schemas": [CORE_GROUP], "displayName": " "}),
            ScimType::InvalidValue,
        ),
        (
            "displayName not a string",
            json!({"schemas": [CORE_GROUP], "displayName": 5}),
            ScimType::InvalidValue,
        ),
        (
            "displayName too long",
            json!({"schemas": [CORE_GROUP], "displayName": "d".repeat(513)}),
            ScimType::InvalidValue,
        ),
        (
            "externalId too long",
            json!({"schemas": [CORE_GROUP], "displayName": "x", "externalId": "e".repeat(257)}),
            ScimType::InvalidValue,
        ),
        (
            "unknown member",
            json!({"schemas": [CORE_GROUP], "displayName": "x", "members": [{"value": STRANGER}]}),
            ScimType::InvalidValue,
        ),
        (
            "member value not an id",
            json!({"schemas": [CORE_GROUP], "displayName": "x", "members": [{"value": "ada"}]}),
            ScimType::InvalidValue,
        ),
        (
            "member without value",
            json!({"schemas": [CORE_GROUP], "displayName": "x", "members": [{"type": "user"}]}),
            ScimType::InvalidValue,
        ),
        (
            "member not an object",
            json!({"schemas": [CORE_GROUP], "displayName": "x", "members": [ADA]}),
            ScimType::InvalidValue,
        ),
        (
            "group member",
            json!({"schemas": [CORE_GROUP], "displayName": "x", "members": [{"value": ADA, "type": "group"}]}),
            ScimType::InvalidValue,
        ),
        (
            "501 members",
            json!({"schemas": [CORE_GROUP], "displayName": "x", "members": many}),
            ScimType::InvalidValue,
        ),
        (
            "extension not an object",
            json!({"schemas": [CORE_GROUP], "displayName": "x", CISCO_GROUP: "x"}),
            ScimType::InvalidValue,
        ),
        (
            "unknown usage",
            json!({"schemas": [CORE_GROUP], "displayName": "x", CISCO_GROUP: {"usage": "party"}}),
            ScimType::InvalidValue,
        ),
        (
            "unknown groupType",
            json!({"schemas": [CORE_GROUP], "displayName": "x", CISCO_GROUP: {"groupType": "round"}}),
            ScimType::InvalidValue,
        ),
        (
            "31 owners",
            json!({"schemas": [CORE_GROUP], "displayName": "x", CISCO_GROUP: {"owners": vec![json!({"value": ADA}); 31]}}),
            ScimType::InvalidValue,
        ),
    ];
    for (what, body, want) in cases {
        let got = from_body(body, &stamp(), is_user).unwrap_err();
        assert_eq!(got.scim_type(), Some(want), "{what}: {got}");
    }
}

#[test]
fn reads_member_lists() {
    // (value, added ids or None for an error, removed ids)
    type Case = (Value, Option<Vec<&'static str>>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (Value::Null, Some(vec![]), vec![]),
        (json!([]), Some(vec![]), vec![]),
        (json!({"value": ADA}), Some(vec![ADA]), vec![ADA]),
        (
            json!([{"value": ADA, "type": "User"}, {"value": BOB, "type": null}]),
            Some(vec![ADA, BOB]),
            vec![ADA, BOB],
        ),
        (
            json!([{"value": ADA}, {"value": STRANGER}]),
            None,
            vec![ADA, STRANGER],
        ),
        (json!([{"value": "not-an-id"}]), None, vec![]),
        (json!([{"value": format!("{{{ADA}}}")}]), None, vec![]),
    ];
    for (value, added, removed) in cases {
        let got = member_ids(&value, is_user).ok();
        let want = added.map(|ids| ids.into_iter().map(id).collect::<Vec<_>>());
        assert_eq!(got, want, "{value}");
        let want: Vec<Uuid> = removed.into_iter().map(id).collect();
        assert_eq!(removed_ids(&value).unwrap(), want, "{value}");
    }
    let many = Value::Array(vec![json!({"value": ADA}); MEMBERS_PER_OPERATION_MAX + 1]);
    assert!(removed_ids(&many).is_err());
    let most = Value::Array(vec![json!({"value": ADA}); MEMBERS_PER_OPERATION_MAX]);
    assert_eq!(member_ids(&most, is_user).unwrap().len(), 500);
}

#[test]
fn finishes_after_a_patch_and_touches() {
    let mut r = from_body(
        json!({"schemas": [CORE_GROUP], "displayName": "x"}),
        &stamp(),
        is_user,
    )
    .unwrap()
    .resource;
    r.remove("displayName");
    r.insert("DISPLAYNAME".into(), json!("y"));
    let later = Stamp {
        now: "t2",
        version: 8,
        ..stamp()
    };
    after_patch(&mut r, &later).unwrap();
    assert_eq!(r["displayName"], json!("y"));
    assert_eq!(
        (&r["meta"]["created"], &r["meta"]["lastModified"]),
        (&json!("t0"), &json!("t2"))
    );
    r.remove("displayName");
    assert_eq!(
        after_patch(&mut r, &later).unwrap_err().scim_type(),
        Some(ScimType::InvalidValue)
    );
    touch(&mut r, 9, "t3");
    assert_eq!(
        (&r["meta"]["version"], &r["meta"]["lastModified"]),
        (&json!("W/\"9\""), &json!("t3"))
    );
}
