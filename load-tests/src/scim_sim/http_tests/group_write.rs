//! HTTP tests of group PATCH, PUT and DELETE, and of deleting users who are members.

use super::*;

/// Org 1 with users ada, bob and carol and a group "Sales" holding ada; returns the user ids
/// (ada, bob, carol) and the group.
async fn sales(f: &Fixture) -> (Vec<String>, Value) {
    let ids = f.create_users("user", 3).await;
    let mut g = group("Sales");
    g["externalId"] = json!("e-1");
    g["members"] = members(&ids[..1]);
    (ids.clone(), f.create_group(&g).await)
}

#[tokio::test]
async fn patch_adds_and_removes_members_in_every_form() {
    let f = start().await;
    let (u, g) = sales(&f).await;
    let id = g["id"].as_str().unwrap();
    let (ada, bob, carol) = (&u[0], &u[1], &u[2]);
    // (operations, displayName after, members after)
    let cases: Vec<(Value, &str, Vec<&String>)> = vec![
        (
            json!([{"op": "add", "path": "members", "value": [{"value": bob, "type": "user"}, {"value": carol, "type": "user"}]}]),
            "Sales",
            vec![ada, bob, carol],
        ),
        (
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": bob}]}]),
            "Sales",
            vec![ada, carol],
        ),
        (
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": bob}]}]),
            "Sales",
            vec![ada, bob, carol],
        ),
        (
            json!([{"op": "remove", "path": format!("members[value eq \"{carol}\"]")}]),
            "Sales",
            vec![ada, bob],
        ),
        (
            json!([{"op": "REMOVE", "path": format!("members[value eq \"{ada}\" or value eq \"{bob}\"]")}]),
            "Sales",
            vec![],
        ),
        (
            json!([{"op": "add", "path": "members", "value": [{"value": ada}, {"value": ada}]}]),
            "Sales",
            vec![ada],
        ),
        (
            json!([{"op": "remove", "path": "members", "value": [{"value": carol}]}]),
            "Sales",
            vec![ada],
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "Sales EMEA"}]),
            "Sales EMEA",
            vec![ada],
        ),
        (
            json!([{"op": "Replace", "value": {"displayName": "Sales Europe"}}]),
            "Sales Europe",
            vec![ada],
        ),
        (
            json!([{"op": "Replace", "path": "members", "value": [{"value": carol}, {"value": bob}]}]),
            "Sales Europe",
            vec![bob, carol],
        ),
        (
            json!([
                {"op": "replace", "path": "displayName", "value": "Sales"},
                {"op": "remove", "path": "members"},
                {"op": "add", "value": {"members": [{"value": ada}]}}
            ]),
            "Sales",
            vec![ada],
        ),
    ];
    let mut version = g["meta"]["version"].clone();
    for (ops, name, want) in cases {
        let r = assert_patched(&f, GROUPS, id, &ops, &mut version).await;
        assert_eq!(r["displayName"], json!(name), "{ops}");
        let want: Vec<String> = sorted(want.into_iter().cloned().collect());
        assert_eq!(member_ids(&r), want, "{ops}");
        assert_eq!(r["meta"]["created"], g["meta"]["created"]);
        assert_eq!(r["externalId"], json!("e-1"));
    }
    let lean = f
        .groups(
            Method::PATCH,
            &format!("/{id}?excludedAttributes=members"),
            Some(&patch_body(
                json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]),
            )),
        )
        .await;
    assert_eq!(lean.status, 200, "{}", lean.body);
    assert!(lean.body.get("members").is_none());
    assert_eq!(
        f.sim.group_member_ids(ORG, id),
        Some(sorted(vec![ada.clone(), bob.clone()]))
    );
}

#[tokio::test]
async fn patch_errors_are_scim_errors_and_change_nothing() {
    let f = start().await;
    let (u, g) = sales(&f).await;
    let id = g["id"].as_str().unwrap();
    let (ada, bob) = (&u[0], &u[1]);
    let over_500: Vec<Value> = (0..501).map(|_| json!({"value": bob})).collect();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"op": "add", "path": "members", "value": [{"value": "7a000000-0000-4000-8000-00000000dead"}]}]),
            "invalidValue",
        ),
        (
            json!([{"op": "add", "path": "members", "value": over_500}]),
            "invalidValue",
        ),
        (
            json!([{"op": "remove", "path": "members", "value": over_500}]),
            "invalidValue",
        ),
        (
            json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
            "noTarget",
        ),
        (
            json!([
                {"op": "add", "path": "members", "value": [{"value": bob}]},
                {"op": "remove", "path": format!("members[value eq \"{ada}\"]")},
                {"op": "replace", "path": "displayName", "value": ""}
            ]),
            "invalidValue",
        ),
        (
            json!([{"op": "remove", "path": "displayName"}]),
            "invalidValue",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "meta", "value": {}}]),
            "mutability",
        ),
        (
            json!([{"op": "merge", "path": "members", "value": []}]),
            "invalidSyntax",
        ),
        (
            json!([{"op": "add", "path": "members[", "value": []}]),
            "invalidPath",
        ),
        (
            json!([{"op": "remove", "path": "members[type eq \"user\"]"}]),
            "invalidPath",
        ),
    ];
    assert_patch_errors(&f, GROUPS, id, cases, || f.sim.groups(ORG)).await;
}

#[tokio::test]
async fn put_replaces_the_group_and_empties_it_without_members() {
    let f = start().await;
    let (u, g) = sales(&f).await;
    let id = g["id"].as_str().unwrap();
    let url = format!("/{id}");

    let mut body = group("Sales Team");
    body["members"] = members(&u[1..]);
    body["id"] = json!("ignored");
    let r = f.groups(Method::PUT, &url, Some(&body)).await;
    assert_replaced(&r, &g);
    assert_eq!(r.body["displayName"], json!("Sales Team"));
    assert!(
        r.body.get("externalId").is_none(),
        "omitted attributes are cleared"
    );
    assert_eq!(member_ids(&r.body), sorted(u[1..].to_vec()));

    // PUT without members empties the group (webex-scim.md §7.1).
    let r = f
        .groups(Method::PUT, &url, Some(&group("Sales Team")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("members").is_none());
    assert_eq!(f.sim.group_member_ids(ORG, id), Some(vec![]));
    assert_eq!(f.sim.groups(ORG), vec![r.body.clone()]);

    let mut unknown = group("X");
    unknown["members"] = json!([{"value": "7a000000-0000-4000-8000-00000000dead"}]);
    for (body, scim_type) in [
        (unknown, "invalidValue"),
        (json!({"schemas": [CORE_GROUP]}), "invalidValue"),
    ] {
        assert_scim_error(
            &f.groups(Method::PUT, &url, Some(&body)).await,
            400,
            Some(scim_type),
        );
    }
    assert_eq!(f.sim.groups(ORG), vec![r.body]);
    assert_put_unknown_is_404(&f, GROUPS, &group("X")).await;
}

#[tokio::test]
async fn delete_removes_the_group_and_deleted_users_leave_their_groups() {
    let f = start().await;
    let (u, sales_group) = sales(&f).await;
    let mut both = group("Both");
    both["members"] = members(&u[..2]);
    let both = f.create_group(&both).await;
    let untouched = f.create_group(&group("Nobody")).await;

    // Deleting ada takes her out of both groups, which change version; the third stays as is.
    let r = f.org1(Method::DELETE, &format!("/{}", u[0]), None).await;
    assert_eq!(r.status, 204);
    let groups = f.sim.groups(ORG);
    assert_eq!(member_ids(&groups[0]), Vec::<String>::new());
    assert_eq!(member_ids(&groups[1]), vec![u[1].clone()]);
    assert_ne!(groups[0]["meta"]["version"], sales_group["meta"]["version"]);
    assert_ne!(groups[1]["meta"]["version"], both["meta"]["version"]);
    assert_eq!(groups[2], untouched);
    // She can no longer be added.
    let r = f
        .patch_group(
            both["id"].as_str().unwrap(),
            json!([{"op": "add", "path": "members", "value": [{"value": u[0]}]}]),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));

    assert_deleted(&f, GROUPS, &id_of(&sales_group)).await;
    assert_eq!(f.sim.groups(ORG).len(), 2);
    assert_eq!(
        f.sim.users(ORG).len(),
        2,
        "deleting a group deletes no user"
    );
}
