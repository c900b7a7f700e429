//! "Add with Entra ID" over the admin API against the simulators: the Entra tenant's domains
//! are listed with whether the Webex org has each, verified ones are imported into the org's
//! domain list, and unverified or unknown ones are refused with their reason.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use dirsync_load_tests::fleet::{Stack, StackOptions};

async fn call(
    stack: &Stack,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    stack.api(method, path, body).await.unwrap()
}

/// The listed domains by name: (verified, in_webex).
fn by_name(listed: &Value) -> std::collections::BTreeMap<String, (bool, bool)> {
    listed
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {listed}"))
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                (
                    d["verified"].as_bool().unwrap(),
                    d["in_webex"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_verified_domains_are_imported_into_the_org() {
    let stack = Stack::start(&StackOptions::new("api_domains", 10))
        .await
        .unwrap();
    let tenant = stack.entra_tenant.clone();
    stack
        .graph
        .add_domain(&tenant, "sales.contoso.example", true)
        .unwrap();
    stack
        .graph
        .add_domain(&tenant, "Eu.Contoso.example", true)
        .unwrap();
    stack
        .graph
        .add_domain(&tenant, "new.contoso.example", false)
        .unwrap();
    let domains = format!("/tenants/{}/domains", stack.tenant_id.0);
    let import = format!("{domains}/import");

    let (status, listed) = call(&stack, Method::GET, &domains, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = by_name(&listed);
    // The tenant's own domain and its initial one, and the three added.
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert_eq!(listed["sales.contoso.example"], (true, false));
    assert_eq!(listed["eu.contoso.example"], (true, false));
    assert_eq!(listed["new.contoso.example"], (false, false));
    assert!(
        listed.keys().any(|d| d.ends_with(".onmicrosoft.com")),
        "{listed:?}"
    );
    assert!(listed.values().all(|&(_, in_webex)| !in_webex));

    let (status, results) = call(
        &stack,
        Method::POST,
        &import,
        Some(json!({"domains": ["Sales.Contoso.example", "new.contoso.example", "fabrikam.example"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results[0]["domain"], "sales.contoso.example");
    assert_eq!(results[0]["result"], "added", "{results}");
    assert_eq!(results[1]["result"], "refused", "{results}");
    assert!(
        results[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not verified"),
        "{results}"
    );
    assert_eq!(results[2]["result"], "refused", "{results}");
    assert!(
        results[2]["reason"]
            .as_str()
            .unwrap()
            .contains("not a domain"),
        "{results}"
    );
    assert_eq!(results.as_array().unwrap().len(), 3);

    // The org's verified domain list has it, and only it.
    assert_eq!(stack.scim.domains(&stack.org_id), ["sales.contoso.example"]);
    let (_, listed) = call(&stack, Method::GET, &domains, None).await;
    let listed = by_name(&listed);
    assert_eq!(listed["sales.contoso.example"], (true, true));
    assert_eq!(listed["eu.contoso.example"], (true, false));
    assert_eq!(listed["new.contoso.example"], (false, false));

    // Again: already present, nothing added twice; the other verified one is added.
    let (status, results) = call(
        &stack,
        Method::POST,
        &import,
        Some(json!({"domains": ["sales.contoso.example", "eu.contoso.example"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results[0]["result"], "already_present", "{results}");
    assert_eq!(results[1]["result"], "added", "{results}");
    assert_eq!(
        stack.scim.domains(&stack.org_id),
        ["sales.contoso.example", "eu.contoso.example"]
    );

    // A domain verified in Entra later can be imported then.
    stack
        .graph
        .add_domain(&tenant, "new.contoso.example", true)
        .unwrap();
    let (_, results) = call(
        &stack,
        Method::POST,
        &import,
        Some(json!({"domains": ["new.contoso.example"]})),
    )
    .await;
    assert_eq!(results[0]["result"], "added", "{results}");

    // An empty import is refused; an unknown instance is not found on both routes.
    let (status, body) = call(&stack, Method::POST, &import, Some(json!({"domains": []}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let unknown = format!("/tenants/{}/domains", uuid::Uuid::new_v4());
    let (status, body) = call(&stack, Method::GET, &unknown, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    let (status, body) = call(
        &stack,
        Method::POST,
        &format!("{unknown}/import"),
        Some(json!({"domains": ["sales.contoso.example"]})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    stack.shutdown().await.unwrap();
}
