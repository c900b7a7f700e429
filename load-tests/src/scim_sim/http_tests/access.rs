//! HTTP tests of auth, counters, the /_sim endpoints and concurrent clients.

use super::*;

#[tokio::test]
async fn auth_is_per_org() {
    let f = start().await;
    let url = f.users_url(ORG);
    assert_needs_org_token(&f, &Method::GET, &url, None).await;
    let basic = f
        .client
        .get(&url)
        .basic_auth("u", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
    assert_eq!(
        f.call(Method::GET, &url, Some(TOKEN), None).await.status,
        200
    );
}

#[tokio::test]
async fn counters_count_each_kind() {
    let f = start().await;
    let id = id_of(&f.create("ada@example.com").await);
    assert_eq!(
        f.org1(Method::POST, "", Some(&user("ada@example.com")))
            .await
            .status,
        409
    );
    f.org1(Method::GET, &format!("/{id}"), None).await;
    f.list("").await;
    f.patch(
        &id,
        json!([{"op": "replace", "path": "title", "value": "T"}]),
    )
    .await;
    f.org1(
        Method::PUT,
        &format!("/{id}"),
        Some(&user("ada@example.com")),
    )
    .await;
    f.org1(Method::DELETE, &format!("/{id}"), None).await;
    f.call(Method::GET, &f.users_url(ORG), Some("wrong"), None)
        .await;

    let want = RequestCounters {
        create: 2,
        get: 1,
        list: 2,
        patch: 1,
        put: 1,
        delete: 1,
        errors_4xx: 2,
        errors_5xx: 0,
        ..RequestCounters::default()
    };
    assert_counters(&f, want).await;
    assert_eq!((want.total(), want.writes()), (8, 5));
    assert_eq!(f.sim.counters(ORG2), RequestCounters::default());

    let reset = f
        .sim_call(Method::POST, &format!("/orgs/{ORG}/counters/reset"), None)
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(f.sim.counters(ORG), RequestCounters::default());
    f.list("").await;
    f.sim.reset_counters(ORG);
    assert_eq!(f.sim.counters(ORG).total(), 0);
}

#[tokio::test]
async fn admin_endpoints_add_orgs_and_show_state() {
    let f = start().await;
    let new_org = "5e000000-0000-4000-8000-000000000003";
    let add = f
        .sim_call(
            Method::POST,
            "/orgs",
            Some(&json!({"org_id": new_org, "token": "t3"})),
        )
        .await;
    assert_eq!(add.status, 201);
    let created = f
        .call(
            Method::POST,
            &f.users_url(new_org),
            Some("t3"),
            Some(&user("eve@example.com")),
        )
        .await;
    assert_eq!(created.status, 201);
    let users = f
        .sim_call(Method::GET, &format!("/orgs/{new_org}/users"), None)
        .await;
    assert_eq!(users.body, json!([created.body]));
    assert_eq!(f.sim.users(new_org), vec![created.body.clone()]);

    let bad = f
        .sim_call(Method::POST, "/orgs", Some(&json!({"org_id": "x"})))
        .await;
    assert_scim_error(&bad, 400, Some("invalidSyntax"));
    let unknown = f.sim_call(Method::GET, "/orgs/nope/users", None).await;
    assert_scim_error(&unknown, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_keep_user_names_unique() {
    let f = std::sync::Arc::new(start().await);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let (org, token) = if t % 2 == 0 {
                (ORG, TOKEN)
            } else {
                (ORG2, TOKEN2)
            };
            let mut created = 0;
            for i in 0..40 {
                // Every task also races for the same shared names.
                let name = if i % 4 == 0 {
                    format!("shared{i}@example.com")
                } else {
                    format!("t{t}-u{i}@example.com")
                };
                let r = f
                    .call(
                        Method::POST,
                        &f.users_url(org),
                        Some(token),
                        Some(&user(&name)),
                    )
                    .await;
                assert!(r.status == 201 || r.status == 409, "{}", r.body);
                created += usize::from(r.status == 201);
            }
            created
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap();
    }
    // 8 tasks × 30 own names, plus exactly one winner for each of the 10 shared names.
    assert_eq!(created, 8 * 30 + 10);
    assert_eq!(f.sim.users(ORG).len() + f.sim.users(ORG2).len(), created);
    let c1 = f.sim.counters(ORG);
    let c2 = f.sim.counters(ORG2);
    assert_eq!(c1.create + c2.create, 320);
    assert_eq!((c1.errors_4xx + c2.errors_4xx) as usize, 320 - created);
}
