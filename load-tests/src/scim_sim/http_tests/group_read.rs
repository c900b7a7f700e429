//! HTTP tests of creating, reading, filtering and paging groups and their members.

use super::*;
use crate::scim_sim::group_schema::GROUP_MEMBERS;

#[tokio::test]
async fn create_returns_the_group_with_members_and_meta() {
    let f = start().await;
    let ada = f
        .org1(
            Method::POST,
            "",
            Some(&json!({"schemas": [CORE_USER], "userName": "ada@example.com", "displayName": "Ada Lovelace"})),
        )
        .await
        .body;
    let bob = f
        .org1(
            Method::POST,
            "",
            Some(&json!({"schemas": [CORE_USER], "userName": "bob@example.com"})),
        )
        .await
        .body;
    let (ada_id, bob_id) = (ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    let mut body = group("Sales");
    body["externalId"] = json!("0a1b2c3d-0000-4000-8000-000000000001");
    body["members"] = json!([{"value": ada_id, "type": "user"}, {"value": bob_id}]);
    let r = f.groups(Method::POST, "", Some(&body)).await;
    assert_new_resource(&f, &r, GROUPS, "group").await;
    let g = &r.body;
    assert_eq!(g["schemas"], json!([CORE_GROUP, CISCO_GROUP]));
    assert_eq!(g["displayName"], json!("Sales"));
    assert_eq!(
        g["externalId"],
        json!("0a1b2c3d-0000-4000-8000-000000000001")
    );
    assert_eq!(g[CISCO_GROUP]["meta"]["organizationID"], json!(ORG));
    let user_ref = |id: &str| format!("{}/{id}", f.users_url(ORG));
    let mut want = vec![
        json!({"value": ada_id, "type": "user", "display": "Ada Lovelace", "$ref": user_ref(ada_id)}),
        json!({"value": bob_id, "type": "user", "display": "bob@example.com", "$ref": user_ref(bob_id)}),
    ];
    want.sort_by(|a, b| a["value"].as_str().cmp(&b["value"].as_str()));
    assert_eq!(g["members"], json!(want), "members in id order");

    assert_eq!(f.sim.groups(ORG), vec![g.clone()]);

    // displayName is not unique.
    let twin = f.create_group(&group("Sales")).await;
    assert_ne!(twin["id"], g["id"]);
    assert!(
        twin.get("members").is_none(),
        "an empty group shows no members"
    );
    assert_eq!(f.sim.groups(ORG).len(), 2);
}

#[tokio::test]
async fn invalid_group_bodies_are_400_and_store_nothing() {
    let f = start().await;
    let ada = f.create_users("ada", 1).await;
    let other_org_user = f
        .call(
            Method::POST,
            &f.users_url(ORG2),
            Some(TOKEN2),
            Some(&user("eve@example.com")),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_members = |ms: Value| {
        let mut g = group("G");
        g["members"] = ms;
        g
    };
    let too_many: Vec<Value> = (0..501).map(|_| json!({"value": ada[0]})).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown member",
            with_members(json!([{"value": "7a000000-0000-4000-8000-00000000dead"}])),
            "invalidValue",
        ),
        (
            "a user of another org",
            with_members(json!([{"value": ada[0]}, {"value": other_org_user}])),
            "invalidValue",
        ),
        (
            "a member that is not a user",
            with_members(json!([{"value": ada[0], "type": "group"}])),
            "invalidValue",
        ),
        ("501 members", with_members(json!(too_many)), "invalidValue"),
        (
            "no displayName",
            json!({"schemas": [CORE_GROUP]}),
            "invalidValue",
        ),
        (
            "no core Group schema",
            json!({"schemas": [CORE_USER], "displayName": "G"}),
            "invalidSyntax",
        ),
        ("not an object", json!(["G"]), "invalidSyntax"),
    ];
    for (what, body, scim_type) in cases {
        let r = f.groups(Method::POST, "", Some(&body)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_scim_error(&r, 400, Some(scim_type));
    }
    assert!(f.sim.groups(ORG).is_empty());
}

#[tokio::test]
async fn filters_groups_by_display_name_external_id_and_members() {
    let f = start().await;
    let ada = f.create_users("ada", 1).await;
    for (name, ext) in [("Sales", "e-1"), ("Sales EMEA", "e-2"), ("Support", "E-3")] {
        let mut g = group(name);
        g["externalId"] = json!(ext);
        if name == "Support" {
            g["members"] = members(&ada);
        }
        f.create_group(&g).await;
    }
    let member_filter = format!(r#"members[value eq "{}"]"#, ada[0]);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (r#"displayName eq "Sales""#, vec!["Sales"]),
        (r#"displayName Eq "sales emea""#, vec!["Sales EMEA"]),
        (r#"DISPLAYNAME EQ "SUPPORT""#, vec!["Support"]),
        (
            r#"displayName Eq "Sales" or displayName Eq "Support""#,
            vec!["Sales", "Support"],
        ),
        (r#"displayName eq "Nobody""#, vec![]),
        (r#"externalId eq "e-3""#, vec!["Support"]),
        (
            r#"externalId eq "e-1" or externalId eq "E-2""#,
            vec!["Sales", "Sales EMEA"],
        ),
        (r#"displayName sw "sales""#, vec!["Sales", "Sales EMEA"]),
        (&member_filter, vec!["Support"]),
        ("members pr", vec!["Support"]),
    ];
    assert_filters(&f, GROUPS, "displayName", &cases).await;
    // Entra's lookup: a filter on displayName without members.
    let entra = f
        .list_at(
            GROUPS,
            &format!(
                "excludedAttributes=members&{}",
                filter_query(r#"displayName eq "Support""#)
            ),
        )
        .await;
    assert_eq!(resource_attrs(&entra, "displayName"), vec!["Support"]);
    assert!(entra.body["Resources"][0].get("members").is_none());

    let bad = [
        r#"displayName co "S""#,
        r#"members[type eq "user"]"#,
        "displayName eq",
    ];
    assert_bad_filters(&f, GROUPS, &bad).await;
}

#[tokio::test]
async fn lists_page_like_users_and_show_members_only_on_request() {
    let f = &start().await;
    let ada = f.create_users("ada", 1).await;
    for i in 0..105 {
        let mut g = group(&format!("group {i:03}"));
        if i == 0 {
            g["members"] = members(&ada);
        }
        f.create_group(&g).await;
    }
    let list = |query: String| async move { f.list_at(GROUPS, &query).await };
    let all_ids: Vec<String> = f.sim.groups(ORG).iter().map(id_of).collect();
    assert_eq!(all_ids.len(), 105);
    // (query, startIndex echoed, itemsPerPage, index of the first group)
    let cases = [
        ("", 1, 100, 0),
        ("startIndex=101", 101, 5, 100),
        ("startIndex=0&count=3", 1, 3, 0),
        ("startIndex=104&count=10", 104, 2, 103),
        ("startIndex=200", 200, 0, 105),
        ("count=0", 1, 0, 0),
    ];
    assert_pages(f, GROUPS, &all_ids, &cases).await;
    let sorted_desc = list("sortBy=displayName&sortOrder=descending&count=2".into()).await;
    assert_eq!(
        resource_attrs(&sorted_desc, "displayName"),
        vec!["group 104", "group 103"]
    );
    assert_scim_error(
        &list("sortBy=userName".into()).await,
        400,
        Some("invalidValue"),
    );

    // includeMembers defaults to false; excludedAttributes=members wins over it.
    let first = format!("count=1&{}", filter_query(r#"displayName eq "group 000""#));
    let cases = [
        ("", false),
        ("&includeMembers=false", false),
        ("&includeMembers=true", true),
        ("&includeMembers=true&excludedAttributes=members", false),
        ("&includeMembers=true&memberType=user", true),
        ("&includeMembers=true&memberType=machine", false),
    ];
    for (extra, shown) in cases {
        let r = list(format!("{first}{extra}")).await;
        assert_eq!(r.status, 200, "{extra}: {}", r.body);
        let g = &r.body["Resources"][0];
        assert_eq!(g["displayName"], json!("group 000"));
        let want = if shown { ada.clone() } else { Vec::new() };
        assert_eq!(member_ids(g), want, "{extra}");
    }
    assert_scim_error(
        &list("includeMembers=maybe".into()).await,
        400,
        Some("invalidValue"),
    );
}

#[tokio::test]
async fn big_groups_show_500_members_and_page_them_in_500s() {
    let f = &start().await;
    let users = f.create_users("u", 1_100).await;
    let g = f.create_group(&group("Everyone")).await;
    let id = g["id"].as_str().unwrap().to_owned();
    // Built in chunks of at most 500 members, as our client does.
    for chunk in users.chunks(500) {
        let r = f
            .patch_group(
                &id,
                json!([{"op": "add", "path": "members", "value": members(chunk)}]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            member_ids(&r.body).len(),
            500,
            "a PATCH answer shows 500 too"
        );
    }
    let all = sorted(users.clone());
    assert_eq!(f.sim.group_member_ids(ORG, &id), Some(all.clone()));
    assert_eq!(
        member_ids(&f.sim.groups(ORG)[0]),
        all,
        "the Rust API shows every member"
    );

    let got = f.groups(Method::GET, &format!("/{id}"), None).await;
    assert_eq!(member_ids(&got.body), all[..500].to_vec(), "at most 500");
    let lean = f
        .groups(
            Method::GET,
            &format!("/{id}?excludedAttributes=members"),
            None,
        )
        .await;
    assert_eq!(lean.status, 200);
    assert!(lean.body.get("members").is_none());
    assert_eq!(lean.body["displayName"], json!("Everyone"));

    let page = |query: &str| {
        let url = format!("/{id}/Members{query}");
        async move { f.groups(Method::GET, &url, None).await }
    };
    let first = page("").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["schemas"], json!([GROUP_MEMBERS]));
    assert_eq!(first.body["displayName"], json!("Everyone"));
    assert_eq!(first.body["memberSize"], json!(1_100));
    assert_eq!(first.body["itemsPerPage"], json!(500));
    assert_eq!(first.body["startIndex"], json!(1));
    let m0 = &first.body["members"][0];
    assert_eq!(
        m0,
        &json!({"value": all[0], "type": "user", "display": "Test User"}),
        "value, type, display"
    );
    // (query, itemsPerPage)
    let cases = [
        ("?count=1000", 500),
        ("?count=10", 10),
        ("?count=0", 0),
        ("?startIndex=1001", 100),
        ("?startIndex=2000", 0),
        ("?memberType=group", 0),
    ];
    for (query, per_page) in cases {
        let r = page(query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["itemsPerPage"], json!(per_page), "{query}");
        assert_eq!(member_ids(&r.body).len(), per_page, "{query}");
    }
    assert_eq!(page("?memberType=group").await.body["memberSize"], json!(0));
    assert_scim_error(&page("?count=lots").await, 400, Some("invalidValue"));

    // A client paging by itemsPerPage sees every member exactly once.
    let members_path = format!("/{id}/Members");
    let seen = walk_pages(
        f,
        GROUPS,
        &members_path,
        300,
        ["members", "value", "memberSize"],
    )
    .await;
    assert_eq!(seen, all);

    let missing = f
        .groups(
            Method::GET,
            "/9e000000-0000-4000-8000-00000000dead/Members",
            None,
        )
        .await;
    assert_scim_error(&missing, 404, None);
}
