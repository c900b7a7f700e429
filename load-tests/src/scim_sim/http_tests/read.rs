//! HTTP tests of creating, reading, filtering and paging users.

use super::*;

#[tokio::test]
async fn create_returns_the_user_with_id_work_email_and_meta() {
    let f = start().await;
    let r = f
        .org1(Method::POST, "", Some(&user("ada@example.com")))
        .await;
    assert_eq!(r.status, 201);
    let u = &r.body;
    let id = u["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let location = format!("{}/{id}", f.users_url(ORG));
    assert_eq!(r.headers["location"].to_str().unwrap(), location);
    assert_eq!(u["meta"]["location"], json!(location));
    assert_eq!(u["meta"]["resourceType"], json!("User"));
    let version = u["meta"]["version"].as_str().unwrap();
    assert!(
        version.starts_with("W/\"") && version.ends_with('"'),
        "{version}"
    );
    assert_eq!(r.headers["etag"].to_str().unwrap(), version);
    assert!(u["meta"]["created"].is_string() && u["meta"]["created"] == u["meta"]["lastModified"]);
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

    let got = f.org1(Method::GET, &format!("/{id}"), None).await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body, u);
    assert_eq!(f.sim.users(ORG), vec![u.clone()]);

    let missing = f
        .org1(Method::GET, "/7a000000-0000-4000-8000-00000000dead", None)
        .await;
    assert_scim_error(&missing, 404, None);
}

#[tokio::test]
async fn filters_by_user_name_and_others() {
    let f = start().await;
    for name in ["ada@example.com", "bob@example.com", "carol@other.org"] {
        f.create(name).await;
    }
    let ext = json!({"schemas": [CORE_USER], "userName": "dan@example.com", "externalId": "e-1", "name": {"familyName": "Lovelace"}});
    assert_eq!(f.org1(Method::POST, "", Some(&ext)).await.status, 201);

    let names = |r: &Reply| -> Vec<String> {
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };
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
    for (filter, want) in cases {
        let r = f.list(&filter_query(filter)).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(
            r.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
        assert_eq!(r.body["totalResults"], json!(want.len()), "{filter}");
        assert_eq!(r.body["itemsPerPage"], json!(want.len()), "{filter}");
        assert_eq!(r.body["startIndex"], json!(1));
        assert_eq!(names(&r), want, "{filter}");
    }
    let id = f.sim.users(ORG)[1]["id"].as_str().unwrap().to_owned();
    let by_id = f.list(&filter_query(&format!("id eq \"{id}\""))).await;
    assert_eq!(names(&by_id), vec!["bob@example.com"]);

    for bad in [
        r#"userName co "a""#,
        r#"userName gt "a""#,
        "userName eq",
        "(userName eq \"a\"",
    ] {
        assert_scim_error(
            &f.list(&filter_query(bad)).await,
            400,
            Some("invalidFilter"),
        );
    }
}

#[tokio::test]
async fn pages_with_start_index_and_count() {
    let f = start_with(ScimSimConfig {
        max_count: 10,
        default_count: 4,
    })
    .await;
    for i in 0..25 {
        f.create(&format!("user{i:02}@example.com")).await;
    }
    let all_ids: Vec<Value> = f.sim.users(ORG).iter().map(|u| u["id"].clone()).collect();
    let ids = |r: &Reply| -> Vec<Value> {
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].clone())
            .collect()
    };

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
    for (query, start, per_page, first) in cases {
        let r = f.list(query).await;
        assert_eq!(r.status, 200, "{query}");
        assert_eq!(r.body["totalResults"], json!(25), "{query}");
        assert_eq!(r.body["startIndex"], json!(start), "{query}");
        assert_eq!(r.body["itemsPerPage"], json!(per_page), "{query}");
        assert_eq!(
            ids(&r),
            all_ids[first..first + per_page].to_vec(),
            "{query}"
        );
    }

    // A client paging by itemsPerPage sees every user exactly once, in a stable order.
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let r = f.list(&format!("startIndex={start}&count=6")).await;
        let per_page = r.body["itemsPerPage"].as_u64().unwrap() as usize;
        seen.extend(ids(&r));
        start += per_page;
        if per_page == 0 || start > r.body["totalResults"].as_u64().unwrap() as usize {
            break;
        }
    }
    assert_eq!(seen, all_ids);

    let sorted = f.list("sortBy=userName&sortOrder=descending&count=2").await;
    let names: Vec<&str> = sorted.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["user24@example.com", "user23@example.com"]);
    assert_scim_error(&f.list("count=abc").await, 400, Some("invalidValue"));
}
