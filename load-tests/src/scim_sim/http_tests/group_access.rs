//! HTTP tests of the groups' auth, org isolation, counters and the /_sim groups endpoint.

use super::*;

#[tokio::test]
async fn every_group_route_needs_the_org_token() {
    let f = start().await;
    let g = f.create_group(&group("Sales")).await;
    let id = g["id"].as_str().unwrap();
    let base = f.groups_url(ORG);
    let patch = patch_body(json!([{"op": "replace", "path": "displayName", "value": "x"}]));
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, base.clone(), Some(group("Other"))),
        (Method::GET, base.clone(), None),
        (Method::GET, format!("{base}/{id}"), None),
        (Method::GET, format!("{base}/{id}/Members"), None),
        (Method::PATCH, format!("{base}/{id}"), Some(patch.clone())),
        (Method::PUT, format!("{base}/{id}"), Some(group("Other"))),
        (Method::DELETE, format!("{base}/{id}"), None),
    ];
    for (method, url, body) in &routes {
        assert_needs_org_token(&f, method, url, body.as_ref()).await;
    }
    assert_eq!(f.sim.groups(ORG), vec![g.clone()], "nothing changed");
    let unauthorized = routes.len() as u64 * 3;
    let c = f.sim.counters(ORG);
    assert_eq!(c.errors_4xx, unauthorized);
    assert_eq!(c.group_total(), unauthorized + 1);
}

#[tokio::test]
async fn orgs_see_only_their_own_groups_and_users() {
    let f = start().await;
    let ada = f.create_users("ada", 1).await;
    let mut g = group("Sales");
    g["members"] = members(&ada);
    let g = f.create_group(&g).await;
    let id = g["id"].as_str().unwrap();
    let org2 = |suffix: &str| format!("{}{suffix}", f.groups_url(ORG2));

    let list = f.call(Method::GET, &org2(""), Some(TOKEN2), None).await;
    assert_eq!(list.body["totalResults"], json!(0));
    let get = f
        .call(Method::GET, &org2(&format!("/{id}")), Some(TOKEN2), None)
        .await;
    assert_scim_error(&get, 404, None);
    // Ada is no user of org 2, so org 2 cannot make her a member.
    let mut foreign = group("Foreign");
    foreign["members"] = members(&ada);
    let r = f
        .call(Method::POST, &org2(""), Some(TOKEN2), Some(&foreign))
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    let r = f
        .call(Method::POST, &org2(""), Some(TOKEN2), Some(&group("Sales")))
        .await;
    assert_eq!(r.status, 201, "the same displayName in another org");
    assert_eq!(f.sim.groups(ORG), vec![g.clone()]);
    assert_eq!(f.sim.groups(ORG2).len(), 1);
    assert!(f.sim.groups(UNKNOWN_ORG).is_empty());
    assert_eq!(f.sim.group_member_ids(ORG2, id), None);
    assert_eq!(f.sim.group_member_ids(ORG, id), Some(ada));
}

#[tokio::test]
async fn group_requests_are_counted_apart_from_users() {
    let f = start().await;
    let ada = f.create_users("ada", 1).await;
    let g = f.create_group(&group("Sales")).await;
    let id = g["id"].as_str().unwrap();
    let url = format!("/{id}");
    f.groups(Method::GET, "", None).await;
    f.groups(Method::GET, "?filter=displayName+co+%22x%22", None)
        .await;
    f.groups(Method::GET, &url, None).await;
    f.groups(Method::GET, &format!("{url}/Members"), None).await;
    f.patch_group(
        id,
        json!([{"op": "add", "path": "members", "value": members(&ada)}]),
    )
    .await;
    f.patch_group(
        id,
        json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]),
    )
    .await;
    f.groups(Method::PUT, &url, Some(&group("Sales"))).await;
    f.groups(Method::DELETE, &url, None).await;
    f.call(Method::GET, &f.groups_url(ORG), Some("wrong"), None)
        .await;

    let want = RequestCounters {
        create: 1,
        group_create: 1,
        group_get: 1,
        group_list: 3,
        group_members: 1,
        group_patch: 2,
        group_put: 1,
        group_delete: 1,
        errors_4xx: 3,
        ..RequestCounters::default()
    };
    assert_counters(&f, want).await;
    let got = f.sim.counters(ORG);
    // (sum, value): the user sums keep meaning "/Users requests".
    let sums = [
        ("total", got.total(), 1),
        ("writes", got.writes(), 1),
        ("group_total", got.group_total(), 10),
        ("group_writes", got.group_writes(), 5),
        ("all_total", got.all_total(), 11),
        ("all_writes", got.all_writes(), 6),
    ];
    for (what, value, expected) in sums {
        assert_eq!(value, expected, "{what}");
    }
    f.sim.reset_counters(ORG);
    assert_eq!(f.sim.counters(ORG), RequestCounters::default());
}

#[tokio::test]
async fn sim_endpoint_and_api_show_every_member() {
    let f = start().await;
    let users = f.create_users("u", 3).await;
    let mut g = group("Sales");
    g["members"] = members(&users);
    let created = f.create_group(&g).await;
    f.create_group(&group("Empty")).await;

    let over_http = f
        .sim_call(Method::GET, &format!("/orgs/{ORG}/groups"), None)
        .await;
    assert_eq!(over_http.status, 200);
    assert_eq!(over_http.body, json!(f.sim.groups(ORG)));
    assert_eq!(over_http.body[0], created);
    let mut seen = Vec::new();
    f.sim
        .for_each_group(ORG, |g| seen.push(g["displayName"].clone()));
    assert_eq!(seen, vec![json!("Sales"), json!("Empty")]);
    let unknown = f.sim_call(Method::GET, "/orgs/nope/groups", None).await;
    assert_scim_error(&unknown, 404, None);
}
