//! Table-driven tests of group PATCH: member operations in every form, attribute operations,
//! the limits, and the member change set.

use serde_json::json;

use super::*;
use crate::scim_sim::group_schema::{CISCO_GROUP, validate};
use crate::scim_sim::patch::parse_request;
use crate::scim_sim::schema::PATCH_OP;

const ADA: &str = "7a000000-0000-4000-8000-000000000001";
const BOB: &str = "7a000000-0000-4000-8000-000000000002";
const CAROL: &str = "7a000000-0000-4000-8000-000000000003";
/// Not a user of the org.
const STRANGER: &str = "7a000000-0000-4000-8000-0000000000ff";

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

fn ids(list: &[&str]) -> BTreeSet<Uuid> {
    list.iter().map(|s| id(s)).collect()
}

fn is_user(u: &Uuid) -> bool {
    ids(&[ADA, BOB, CAROL]).contains(u)
}

fn group() -> Map<String, Value> {
    let Value::Object(g) = json!({"id": "g1", "displayName": "Sales", "externalId": "e-1"}) else {
        unreachable!()
    };
    g
}

/// The outcome of a PATCH on `group()` with members Ada and Bob: (displayName, externalId,
/// members) or the error's scimType. Attribute results go through the group rules, as the store
/// does before it commits.
type Outcome = Result<(Value, Value, BTreeSet<Uuid>), ScimType>;

fn run(ops: Value) -> Outcome {
    let scim_type = |e: ScimError| e.scim_type().unwrap_or(ScimType::InvalidSyntax);
    let body = json!({"schemas": [PATCH_OP], "Operations": ops});
    let ops = parse_request(&body).map_err(scim_type)?;
    let mut r = group();
    let mut members = ids(&[ADA, BOB]);
    let changes = apply(&mut r, &members, &ops, &is_user).map_err(scim_type)?;
    validate(&r).map_err(scim_type)?;
    let len = changes.len(&members);
    changes.commit(&mut members);
    assert_eq!(members.len(), len, "len() predicts the committed size");
    let attr = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    Ok((attr("displayName"), attr("externalId"), members))
}

fn ok(display_name: &str, members: &[&str]) -> Outcome {
    Ok((json!(display_name), json!("e-1"), ids(members)))
}

#[test]
fn applies_member_and_attribute_operations() {
    let many_others: Vec<Value> = (0..MEMBERS_PER_OPERATION_MAX)
        .map(|_| json!({"value": CAROL}))
        .collect();
    let cases: Vec<(&str, Value, Outcome)> = vec![
        (
            "add, our client's batched form",
            json!([{"op": "add", "path": "members", "value": [{"value": CAROL, "type": "user"}]}]),
            ok("Sales", &[ADA, BOB, CAROL]),
        ),
        (
            "Add, Entra's form with $ref null",
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": CAROL}]}]),
            ok("Sales", &[ADA, BOB, CAROL]),
        ),
        (
            "ADD in capitals, a single object value, path in another case",
            json!([{"op": "ADD", "path": "Members", "value": {"value": CAROL}}]),
            ok("Sales", &[ADA, BOB, CAROL]),
        ),
        (
            "add of a member again changes nothing",
            json!([{"op": "add", "path": "members", "value": [{"value": ADA}, {"value": ADA}]}]),
            ok("Sales", &[ADA, BOB]),
        ),
        (
            "add an upper-case id",
            json!([{"op": "add", "path": "members", "value": [{"value": CAROL.to_uppercase()}]}]),
            ok("Sales", &[ADA, BOB, CAROL]),
        ),
        (
            "add 500 values in one operation",
            json!([{"op": "add", "path": "members", "value": many_others}]),
            ok("Sales", &[ADA, BOB, CAROL]),
        ),
        (
            "remove, Entra's value form",
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": ADA}]}]),
            ok("Sales", &[BOB]),
        ),
        (
            "remove, value form, lower case",
            json!([{"op": "remove", "path": "members", "value": [{"value": ADA}, {"value": BOB}]}]),
            ok("Sales", &[]),
        ),
        (
            "remove, value form, of non-members and non-ids is a no-op",
            json!([{"op": "remove", "path": "members", "value": [{"value": CAROL}, {"value": STRANGER}, {"value": "x"}]}]),
            ok("Sales", &[ADA, BOB]),
        ),
        (
            "remove, RFC filter form",
            json!([{"op": "remove", "path": format!("members[value eq \"{ADA}\"]")}]),
            ok("Sales", &[BOB]),
        ),
        (
            "Remove, RFC filter form, Eq and an upper-case id",
            json!([{"op": "Remove", "path": format!("members[value Eq \"{}\"]", BOB.to_uppercase())}]),
            ok("Sales", &[ADA]),
        ),
        (
            "remove, RFC filter form with or",
            json!([{"op": "remove", "path": format!("members[value eq \"{ADA}\" or value eq \"{CAROL}\"]")}]),
            ok("Sales", &[BOB]),
        ),
        (
            "remove, RFC filter form through the core Group URN",
            json!([{"op": "remove", "path": format!("urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq \"{ADA}\"]")}]),
            ok("Sales", &[BOB]),
        ),
        (
            "remove, RFC filter form matching no member",
            json!([{"op": "remove", "path": format!("members[value eq \"{CAROL}\"]")}]),
            Err(ScimType::NoTarget),
        ),
        (
            "remove, RFC filter form with a value that is no id",
            json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]),
            Err(ScimType::NoTarget),
        ),
        (
            "remove, RFC filter form on another sub-attribute",
            json!([{"op": "remove", "path": "members[type eq \"user\"]"}]),
            Err(ScimType::InvalidPath),
        ),
        (
            "remove members without value empties the group",
            json!([{"op": "remove", "path": "members"}]),
            ok("Sales", &[]),
        ),
        (
            "replace members sets them",
            json!([{"op": "replace", "path": "members", "value": [{"value": CAROL}, {"value": ADA}]}]),
            ok("Sales", &[ADA, CAROL]),
        ),
        (
            "replace members with an empty list",
            json!([{"op": "Replace", "path": "members", "value": []}]),
            ok("Sales", &[]),
        ),
        (
            "remove then add back in one PATCH",
            json!([
                {"op": "remove", "path": "members", "value": [{"value": ADA}]},
                {"op": "add", "path": "members", "value": [{"value": ADA}, {"value": CAROL}]},
                {"op": "remove", "path": format!("members[value eq \"{CAROL}\"]")}
            ]),
            ok("Sales", &[ADA, BOB]),
        ),
        (
            "replace displayName with a path",
            json!([{"op": "replace", "path": "displayName", "value": "Sales EMEA"}]),
            ok("Sales EMEA", &[ADA, BOB]),
        ),
        (
            "Replace displayName, path-less value object",
            json!([{"op": "Replace", "value": {"displayName": "Sales EMEA"}}]),
            ok("Sales EMEA", &[ADA, BOB]),
        ),
        (
            "replace displayName through the core Group URN",
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName", "value": "X"}]),
            ok("X", &[ADA, BOB]),
        ),
        (
            "path-less add of members and an attribute together",
            json!([{"op": "add", "value": {"members": [{"value": CAROL}], "externalId": "e-2"}}]),
            Ok((json!("Sales"), json!("e-2"), ids(&[ADA, BOB, CAROL]))),
        ),
        (
            "remove externalId",
            json!([{"op": "remove", "path": "externalId"}]),
            Ok((json!("Sales"), Value::Null, ids(&[ADA, BOB]))),
        ),
        (
            "remove displayName breaks the rules",
            json!([{"op": "remove", "path": "displayName"}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "displayName too long",
            json!([{"op": "replace", "path": "displayName", "value": "d".repeat(513)}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "add of a user of another org",
            json!([{"op": "add", "path": "members", "value": [{"value": CAROL}, {"value": STRANGER}]}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "add of a value that is no id",
            json!([{"op": "add", "path": "members", "value": [{"value": "ada@example.com"}]}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "add of a group member",
            json!([{"op": "add", "path": "members", "value": [{"value": CAROL, "type": "group"}]}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "add without value",
            json!([{"op": "add", "path": "members"}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "add through a members filter",
            json!([{"op": "add", "path": format!("members[value eq \"{CAROL}\"]"), "value": {"value": CAROL}}]),
            Err(ScimType::InvalidPath),
        ),
        (
            "a sub-attribute of members",
            json!([{"op": "replace", "path": "members.display", "value": "x"}]),
            Err(ScimType::InvalidPath),
        ),
        (
            "a later error undoes earlier member changes",
            json!([
                {"op": "add", "path": "members", "value": [{"value": CAROL}]},
                {"op": "remove", "path": format!("members[value eq \"{STRANGER}\"]")}
            ]),
            Err(ScimType::NoTarget),
        ),
        (
            "remove without path",
            json!([{"op": "remove", "value": [{"value": ADA}]}]),
            Err(ScimType::NoTarget),
        ),
        (
            "path-less add with a non-object value",
            json!([{"op": "add", "value": [{"value": ADA}]}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "id is read-only",
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            Err(ScimType::Mutability),
        ),
        (
            "op in no known case",
            json!([{"op": "append", "path": "members", "value": []}]),
            Err(ScimType::InvalidSyntax),
        ),
    ];
    for (what, ops, want) in cases {
        assert_eq!(run(ops), want, "{what}");
    }
}

#[test]
fn at_most_500_members_per_operation() {
    let values = |n: usize| -> Vec<Value> { (0..n).map(|_| json!({"value": ADA})).collect() };
    let filter = |n: usize| -> String {
        let terms: Vec<String> = (0..n).map(|_| format!("value eq \"{ADA}\"")).collect();
        format!("members[{}]", terms.join(" or "))
    };
    // (operation, values in it, allowed)
    let mut cases = Vec::new();
    for (n, allowed) in [(500, true), (501, false)] {
        cases.push((
            json!({"op": "add", "path": "members", "value": values(n)}),
            allowed,
        ));
        cases.push((
            json!({"op": "replace", "path": "members", "value": values(n)}),
            allowed,
        ));
        cases.push((
            json!({"op": "remove", "path": "members", "value": values(n)}),
            allowed,
        ));
        cases.push((json!({"op": "remove", "path": filter(n)}), allowed));
        cases.push((
            json!({"op": "add", "value": {"members": values(n)}}),
            allowed,
        ));
    }
    for (op, allowed) in cases {
        let got = run(json!([op]));
        if allowed {
            assert!(got.is_ok(), "{op}: {got:?}");
        } else {
            assert_eq!(got, Err(ScimType::InvalidValue), "{op}");
        }
    }
}

#[test]
fn a_group_holds_at_most_250_000_members() {
    let mut base: BTreeSet<Uuid> = (0..GROUP_SIZE_MAX as u128 - 1)
        .map(Uuid::from_u128)
        .collect();
    let anyone = |_: &Uuid| true;
    let add = |first: u128, n: u128| -> Vec<PatchOperation> {
        let values: Vec<Value> = (first..first + n)
            .map(|i| json!({"value": Uuid::from_u128(i).to_string()}))
            .collect();
        let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": values}]});
        parse_request(&body).unwrap()
    };
    let mut r = group();
    let top = GROUP_SIZE_MAX as u128;
    // Two new members would make 250,001; re-adding existing ones costs nothing.
    let err = apply(&mut r, &base, &add(top - 10, 11), &anyone).unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::InvalidValue), "{err}");
    let changes = apply(&mut r, &base, &add(top - 10, 10), &anyone).unwrap();
    changes.commit(&mut base);
    assert_eq!(base.len(), GROUP_SIZE_MAX);
}

#[test]
fn member_changes_track_membership_until_commit() {
    enum Step {
        Add(&'static str),
        /// The id, and whether it was a member.
        Remove(&'static str, bool),
        Clear,
    }
    use Step::*;
    let base = ids(&[ADA, BOB]);
    // (step, members after it)
    let steps: Vec<(Step, &[&str])> = vec![
        (Add(CAROL), &[ADA, BOB, CAROL]),
        (Remove(ADA, true), &[BOB, CAROL]),
        (Remove(ADA, false), &[BOB, CAROL]),
        (Add(ADA), &[ADA, BOB, CAROL]),
        (Add(ADA), &[ADA, BOB, CAROL]),
        (Remove(CAROL, true), &[ADA, BOB]),
        (Clear, &[]),
        (Remove(BOB, false), &[]),
        (Add(BOB), &[BOB]),
        (Remove(BOB, true), &[]),
    ];
    let mut changes = MemberChanges::default();
    assert_eq!(changes.len(&base), 2);
    for (i, (step, want)) in steps.into_iter().enumerate() {
        match step {
            Add(u) => changes.add(&base, id(u)),
            Remove(u, was) => assert_eq!(changes.remove(&base, &id(u)), was, "step {i}"),
            Clear => changes.clear(),
        }
        let want = ids(want);
        for u in [ADA, BOB, CAROL] {
            assert_eq!(
                changes.contains(&base, &id(u)),
                want.contains(&id(u)),
                "step {i}: {u}"
            );
        }
        assert_eq!(changes.len(&base), want.len(), "step {i}");
        let mut committed = base.clone();
        changes.clone().commit(&mut committed);
        assert_eq!(committed, want, "step {i}");
    }
}

#[test]
fn extension_attributes_patch_like_user_attributes() {
    let body = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": format!("{CISCO_GROUP}:usage"), "value": "distribution"},
        {"op": "add", "path": format!("{CISCO_GROUP}:owners"), "value": [{"value": ADA}]}
    ]});
    let ops = parse_request(&body).unwrap();
    let mut r = group();
    let members = BTreeSet::new();
    let changes = apply(&mut r, &members, &ops, &is_user).unwrap();
    assert_eq!(changes, MemberChanges::default());
    assert_eq!(
        r[CISCO_GROUP],
        json!({"usage": "distribution", "owners": [{"value": ADA}]})
    );
}
