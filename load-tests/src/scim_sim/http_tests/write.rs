//! HTTP tests of PATCH, PUT, DELETE, uniqueness and body validation.

use super::*;

#[tokio::test]
async fn patch_updates_attributes() {
    let f = start().await;
    let id = id_of(&f.create("ada@example.com").await);
    let department = format!("/{ENTERPRISE_USER}/department");
    let cases: Vec<(Value, &str, Value)> = vec![
        (
            json!([{"op": "replace", "path": "displayName", "value": "Ada L."}]),
            "/displayName",
            json!("Ada L."),
        ),
        (
            json!([{"op": "Replace", "path": "name.givenName", "value": "Augusta"}]),
            "/name/givenName",
            json!("Augusta"),
        ),
        (
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"}]),
            &department,
            json!("R&D"),
        ),
        (
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0199"}]),
            "/phoneNumbers/0/value",
            json!("+1 555 0199"),
        ),
        (
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}]),
            "/phoneNumbers/0/value",
            json!("+1 555 0100"),
        ),
        (
            json!([{"op": "replace", "path": "active", "value": false}]),
            "/active",
            json!(false),
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "True"}]),
            "/active",
            json!(true),
        ),
        (
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            "/active",
            json!(false),
        ),
        (
            json!([
                {"op": "replace", "path": "userName", "value": "ada.lovelace@example.com"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada.lovelace@example.com"}
            ]),
            "/emails/0/value",
            json!("ada.lovelace@example.com"),
        ),
        (
            json!([{"op": "replace", "value": {"title": "Countess", "name.familyName": "King"}}]),
            "/name/familyName",
            json!("King"),
        ),
        (
            json!([{"op": "remove", "path": "displayName"}]),
            "/displayName",
            Value::Null,
        ),
    ];
    let mut version = Value::Null;
    for (ops, pointer, want) in cases {
        let r = assert_patched(&f, USERS, &id, &ops, &mut version).await;
        assert_eq!(
            r.pointer(pointer).cloned().unwrap_or(Value::Null),
            want,
            "{ops}"
        );
    }
    let u = &f.sim.users(ORG)[0];
    assert_eq!(u["userName"], json!("ada.lovelace@example.com"));
    assert_eq!(u["title"], json!("Countess"));

    // A rename alone moves the generated primary work email along.
    let r = f
        .patch(
            &id,
            json!([{"op": "Replace", "path": "userName", "value": "countess@example.com"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["emails"][0],
        json!({"value": "countess@example.com", "type": "work", "primary": true})
    );
    let hit = f
        .list(&filter_query(r#"userName eq "countess@example.com""#))
        .await;
    assert_eq!(hit.body["totalResults"], json!(1));
    let old = f
        .list(&filter_query(r#"userName eq "ada.lovelace@example.com""#))
        .await;
    assert_eq!(old.body["totalResults"], json!(0));
}

#[tokio::test]
async fn patch_errors_are_scim_errors_and_atomic() {
    let f = start().await;
    let id = id_of(&f.create("ada@example.com").await);
    let cases: Vec<(Value, &str)> = vec![
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"fax\"]"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "T"}, {"op": "remove", "path": "emails[type eq \"home\"]"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "other@example.com"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "frobnicate", "path": "title", "value": "x"}]),
            "invalidSyntax",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
    ];
    assert_patch_errors(&f, USERS, &id, cases, || f.sim.users(ORG)).await;
}

#[tokio::test]
async fn put_replaces_the_user_but_keeps_id_and_created() {
    let f = start().await;
    let created = f.create("ada@example.com").await;
    let id = created["id"].as_str().unwrap();
    let body = json!({"schemas": [CORE_USER], "userName": "ada@example.com", "title": "Countess", "id": "ignored"});
    let r = f.org1(Method::PUT, &format!("/{id}"), Some(&body)).await;
    assert_replaced(&r, &created);
    assert_eq!(r.body["title"], json!("Countess"));
    assert!(
        r.body.get("displayName").is_none(),
        "omitted attributes are cleared"
    );
    assert_eq!(r.body["emails"], created["emails"]);
    assert_eq!(f.sim.users(ORG), vec![r.body.clone()]);

    assert_scim_error(
        &f.org1(
            Method::PUT,
            &format!("/{id}"),
            Some(&json!({"schemas": [CORE_USER]})),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_put_unknown_is_404(&f, USERS, &body).await;
}

#[tokio::test]
async fn delete_then_404_and_the_user_name_is_free_again() {
    let f = start().await;
    let id = id_of(&f.create("ada@example.com").await);
    assert_deleted(&f, USERS, &id).await;
    assert_eq!(
        f.list(&filter_query(r#"userName eq "ada@example.com""#))
            .await
            .body["totalResults"],
        json!(0)
    );
    assert!(f.sim.users(ORG).is_empty());
    f.create("ada@example.com").await;
}

#[tokio::test]
async fn duplicate_user_names_conflict_across_orgs() {
    let f = start().await;
    let ada = f.create("ada@example.com").await;
    let bob = f.create("bob@example.com").await;

    let dup = f
        .org1(Method::POST, "", Some(&user("ADA@example.com")))
        .await;
    assert_scim_error(&dup, 409, Some("uniqueness"));
    let other_org = f
        .call(
            Method::POST,
            &f.users_url(ORG2),
            Some(TOKEN2),
            Some(&user("ada@example.com")),
        )
        .await;
    assert_scim_error(&other_org, 409, Some("uniqueness"));

    let bob_id = bob["id"].as_str().unwrap();
    let rename = f
        .patch(
            bob_id,
            json!([{"op": "replace", "path": "userName", "value": "Ada@Example.com"}]),
        )
        .await;
    assert_scim_error(&rename, 409, Some("uniqueness"));
    let put = f
        .org1(
            Method::PUT,
            &format!("/{bob_id}"),
            Some(&user("ada@example.com")),
        )
        .await;
    assert_scim_error(&put, 409, Some("uniqueness"));
    assert_eq!(f.sim.users(ORG), vec![ada.clone(), bob.clone()]);

    // Changing only the case of one's own userName is not a conflict.
    let ada_id = ada["id"].as_str().unwrap();
    let recase = f
        .patch(
            ada_id,
            json!([{"op": "replace", "path": "userName", "value": "Ada@example.com"}]),
        )
        .await;
    assert_eq!(recase.status, 200, "{}", recase.body);
}

#[tokio::test]
async fn invalid_bodies_are_400() {
    let f = start().await;
    let long = format!("{}@example.com", "a".repeat(250));
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"schemas": [CORE_USER], "displayName": "No Name"}),
            "invalidValue",
        ),
        (
            json!({"schemas": [CORE_USER], "userName": ""}),
            "invalidValue",
        ),
        (json!({"userName": "a@example.com"}), "invalidSyntax"),
        (
            json!({"schemas": [CORE_USER], "userName": long}),
            "invalidValue",
        ),
        (
            json!({"schemas": [CORE_USER], "userName": "a@example.com", "emails": [{"type": "work", "primary": true, "value": "b@example.com"}]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [CORE_USER], "userName": "a@example.com", "userType": "robot"}),
            "invalidValue",
        ),
        (json!("a string"), "invalidSyntax"),
    ];
    for (body, scim_type) in cases {
        let r = f.org1(Method::POST, "", Some(&body)).await;
        assert_scim_error(&r, 400, Some(scim_type));
    }
    let raw = f
        .client
        .post(f.users_url(ORG))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["scimType"], json!("invalidSyntax"));
    assert!(f.sim.users(ORG).is_empty());
}
