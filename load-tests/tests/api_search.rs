//! Searching the Entra tenant by name over the admin API against the Graph simulator, as an
//! admin does while editing the scope: only matching live users and groups come back, each
//! marked by whether the scope has it; bad searches are refused with 400, unknown instances
//! with 404. And the simulator refuses `$search` without `ConsistencyLevel: eventual`, as
//! Graph does.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use dirsync_coordinator::TenantStore;
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::{GroupSpec, UserState};

async fn call(stack: &Stack, path: &str) -> (StatusCode, Value) {
    stack.api(Method::GET, path, None).await.unwrap()
}

/// Lower-cased runs of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether some word of `value` starts with `term` (one word, lower-case).
fn has_word(value: Option<&str>, term: &str) -> bool {
    value.is_some_and(|v| words(v).iter().any(|w| w.starts_with(term)))
}

/// The results by id: (in_scope, the whole result).
fn by_id(listed: &Value) -> BTreeMap<String, (bool, Value)> {
    listed
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {listed}"))
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (r["in_scope"].as_bool().unwrap(), r.clone()),
            )
        })
        .collect()
}

fn scope(users: &[&str], groups: &[&str]) -> Value {
    json!({
        "all": false, "users": users, "groups": groups, "nested": false,
        "group_objects": false, "rooms": false, "avatars": false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_users_and_groups_are_found_by_name() {
    let mut options = StackOptions::new("api_search", 200);
    options.groups = GroupSpec {
        count: 24,
        max_members: 10,
        nesting_depth: 0,
    };
    let stack = Stack::start(&options).await.unwrap();
    let entra = stack.entra_tenant.clone();
    let id = stack.tenant_id.0;
    let snapshot = stack.graph.snapshot(&entra).unwrap();

    // The given name most live users have: several matches, and others that do not match.
    let mut given: BTreeMap<String, usize> = BTreeMap::new();
    for u in snapshot.iter().filter(|u| u.state == UserState::Live) {
        if let Some(g) = &u.user.given_name {
            *given.entry(g.clone()).or_default() += 1;
        }
    }
    let (name, _) = given.iter().max_by_key(|(_, n)| **n).unwrap();
    let term = words(name).remove(0);
    let want: BTreeSet<String> = snapshot
        .iter()
        .filter(|u| u.state == UserState::Live)
        .filter(|u| {
            has_word(Some(&u.user.display_name), &term) || has_word(u.user.mail.as_deref(), &term)
        })
        .map(|u| u.user.id.clone())
        .collect();
    assert!(
        want.len() >= 3 && want.len() <= 100,
        "{name}: {} users",
        want.len()
    );

    let users = format!("/tenants/{id}/entra/users");
    let search = |text: &str, limit: usize| {
        format!(
            "{users}?search={}&limit={limit}",
            url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
        )
    };
    let before = stack.graph.requests(&entra).unwrap().search_requests;
    let (status, listed) = call(&stack, &search(name, 100)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let found = by_id(&listed);
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "{name}"
    );
    // The default scope is all users: every one is in it.
    assert!(found.values().all(|(in_scope, _)| *in_scope), "{listed}");
    let (_, (_, first)) = found.iter().next().unwrap();
    assert!(first["display_name"].is_string(), "{first}");
    assert!(first["user_principal_name"].is_string(), "{first}");
    assert!(
        stack.graph.requests(&entra).unwrap().search_requests > before,
        "the search did not reach graph"
    );

    // A limit below the matches: that many, all matching.
    let (status, limited) = call(&stack, &search(&name.to_uppercase(), 2)).await;
    assert_eq!(status, StatusCode::OK, "{limited}");
    let limited = by_id(&limited);
    assert_eq!(limited.len(), 2);
    assert!(limited.keys().all(|id| want.contains(id)), "{limited:?}");

    // Two words: both must begin words of the name.
    let pair = snapshot
        .iter()
        .find(|u| u.state == UserState::Live && want.contains(&u.user.id))
        .unwrap();
    let (status, both) = call(&stack, &search(&pair.user.display_name, 100)).await;
    assert_eq!(status, StatusCode::OK, "{both}");
    let both = by_id(&both);
    assert!(both.contains_key(&pair.user.id), "{both:?}");
    assert!(both.len() <= want.len(), "{both:?}");

    // Chosen users: only they are in scope.
    let chosen: Vec<&str> = want.iter().take(2).map(String::as_str).collect();
    let (status, body) = stack
        .api(
            Method::PUT,
            &format!("/tenants/{id}/scope"),
            Some(scope(&chosen, &[])),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, listed) = call(&stack, &search(name, 100)).await;
    let found = by_id(&listed);
    assert_eq!(found.len(), want.len());
    for (user, (in_scope, _)) in &found {
        assert_eq!(*in_scope, chosen.contains(&user.as_str()), "{user}");
    }

    // A name nobody has: nothing.
    let (status, none) = call(&stack, &search("Qqqzzx", 25)).await;
    assert_eq!(status, StatusCode::OK, "{none}");
    assert_eq!(none, json!([]));

    // Groups: by a word of the name of a generated group (a department).
    let groups = stack.graph.groups(&entra).unwrap();
    let word = words(&groups[1].display_name).remove(0);
    let named: BTreeSet<String> = groups
        .iter()
        .filter(|g| g.state == UserState::Live && has_word(Some(&g.display_name), &word))
        .map(|g| g.id.clone())
        .collect();
    assert!(!named.is_empty() && named.len() < groups.len(), "{word}");
    let group_search = format!("/tenants/{id}/entra/groups?search={word}&limit=100");
    let (status, listed) = call(&stack, &group_search).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let found = by_id(&listed);
    // Every group so named, and any other only through its mail.
    assert!(named.iter().all(|g| found.contains_key(g)), "{listed}");
    for (group, (in_scope, result)) in &found {
        assert!(!in_scope, "{result}");
        assert!(
            named.contains(group) || has_word(result["mail"].as_str(), &word),
            "{result}"
        );
    }
    let chosen_group = named.iter().next().unwrap().clone();
    let (status, body) = stack
        .api(
            Method::PUT,
            &format!("/tenants/{id}/scope"),
            Some(scope(&[], &[chosen_group.as_str()])),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, listed) = call(&stack, &group_search).await;
    for (group, (in_scope, _)) in by_id(&listed) {
        assert_eq!(in_scope, group == chosen_group, "{group}");
    }

    // Refused searches.
    let long = "a".repeat(257);
    for (path, status) in [
        (format!("{users}?search="), StatusCode::BAD_REQUEST),
        (format!("{users}?search=%20%20"), StatusCode::BAD_REQUEST),
        (users.clone(), StatusCode::BAD_REQUEST),
        (format!("{users}?search={long}"), StatusCode::BAD_REQUEST),
        (
            format!("{users}?search=ada&limit=0"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{users}?search=ada&limit=101"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/tenants/{id}/entra/groups?search="),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/tenants/{}/entra/users?search=ada", uuid::Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/tenants/{}/entra/groups?search=ada", uuid::Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, body) = call(&stack, &path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    let (_, empty) = call(&stack, &format!("{users}?search=")).await;
    assert!(
        empty["message"].as_str().unwrap().contains("empty"),
        "{empty}"
    );

    // The simulator, asked directly: `$search` needs `ConsistencyLevel: eventual`.
    let tenant = TenantStore::new(stack.env.pool.clone())
        .with_key(stack.env.secrets_key.clone())
        .get(stack.tenant_id)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            tenant.graph_login_url, tenant.graph_tenant_id
        ))
        .form(&[
            ("client_id", tenant.client_id.as_str()),
            ("client_secret", tenant.client_secret.expose_secret()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let url = format!(
        "{}/v1.0/users?$search=%22displayName:{term}%22&$select=id",
        tenant.graph_base_url
    );
    let refused = http
        .get(&url)
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery", "{body}");
    let answered = http
        .get(&url)
        .header("authorization", &bearer)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    // Without a token: 401, as every Graph route.
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    stack.shutdown().await.unwrap();
}
