//! HTTP tests of creating, reading, filtering and paging users.

use super::*;

#[tokio::test]
async fn create_returns_the_user_with_id_work_email_and_meta() {
    let f = start().await;
    let r = f
        .org1(Method::POST, "", Some(&user("ada@example.com")))
        .await;
    assert_new_resource(&f, &r, USERS, "User").await;
    let u = &r.body;
    assert_eq!(
        u["emails"],
        json!([{"value": "ada@example.com", "type": "work", "primary": true}])
    );
    assert!(u["schemas"].as_array().unwrap().contains(&json!(CORE_USER)));
    assert_eq!(u["userType"], json!("user"));
    assert_eq!(u["active"], json!(true));
    assert_eq!(
        u["urn:scim:schemas:extension:cisco:webexidentity:2.0:User"]["accountStatus"],
        json!(["active"])
    );

    assert_eq!(f.sim.users(ORG), vec![u.clone()]);
}

#[tokio::test]
async fn filters_by_user_name_and_others() {
    let f = start().await;
    for name in ["ada@example.com", "bob@example.com", "carol@other.org"] {
        f.create(name).await;
    }
    let ext = json!({"schemas": [CORE_USER], "userName": "dan@example.com", "externalId": "e-1", "name": {"familyName": "Lovelace"}});
    assert_eq!(f.org1(Method::POST, "", Some(&ext)).await.status, 201);

    let cases: Vec<(&str, Vec<&str>)> = vec![
        (r#"userName eq "BOB@example.com""#, vec!["bob@example.com"]),
        (r#"userName eq "nobody@example.com""#, vec![]),
        (
            r#"userName Eq "ada@example.com" or userName Eq "carol@other.org""#,
            vec!["ada@example.com", "carol@other.org"],
        ),
        (r#"userName sw "b""#, vec!["bob@example.com"]),
        (
            r#"userName ew "example.com""#,
            vec!["ada@example.com", "bob@example.com", "dan@example.com"],
        ),
        ("externalId pr", vec!["dan@example.com"]),
        (r#"externalId eq "E-1""#, vec!["dan@example.com"]),
        (r#"name.familyName eq "lovelace""#, vec!["dan@example.com"]),
        (
            r#"emails[type eq "work"].value eq "carol@other.org""#,
            vec!["carol@other.org"],
        ),
        (r#"emails.value sw "ada""#, vec!["ada@example.com"]),
        (r#"userName eq "bob@example.com" and externalId pr"#, vec![]),
    ];
    assert_filters(&f, USERS, "userName", &cases).await;
    let id = id_of(&f.sim.users(ORG)[1]);
    let by_id = format!("id eq \"{id}\"");
    assert_filters(&f, USERS, "userName", &[(&by_id, vec!["bob@example.com"])]).await;

    let bad = [
        r#"userName co "a""#,
        r#"userName gt "a""#,
        "userName eq",
        "(userName eq \"a\"",
    ];
    assert_bad_filters(&f, USERS, &bad).await;
}

#[tokio::test]
async fn pages_with_start_index_and_count() {
    let f = start_with(ScimSimConfig {
        max_count: 10,
        default_count: 4,
        ..ScimSimConfig::default()
    })
    .await;
    for i in 0..25 {
        f.create(&format!("user{i:02}@example.com")).await;
    }
    let all_ids: Vec<String> = f.sim.users(ORG).iter().map(id_of).collect();
    // (query, startIndex echoed, itemsPerPage, index of the first item)
    let cases = [
        ("", 1, 4, 0),
        ("count=7", 1, 7, 0),
        ("count=100", 1, 10, 0),
        ("startIndex=21&count=10", 21, 5, 20),
        ("startIndex=0&count=3", 1, 3, 0),
        ("startIndex=-5&count=3", 1, 3, 0),
        ("startIndex=26", 26, 0, 25),
        ("count=0", 1, 0, 0),
    ];
    assert_eq!(all_ids.len(), 25);
    assert_pages(&f, USERS, &all_ids, &cases).await;

    // A client paging by itemsPerPage sees every user exactly once, in a stable order.
    let seen = walk_pages(&f, USERS, "", 6, LIST_PAGE).await;
    assert_eq!(seen, all_ids);

    let sorted = f.list("sortBy=userName&sortOrder=descending&count=2").await;
    assert_eq!(
        resource_attrs(&sorted, "userName"),
        vec!["user24@example.com", "user23@example.com"]
    );
    assert_scim_error(&f.list("count=abc").await, 400, Some("invalidValue"));
}
