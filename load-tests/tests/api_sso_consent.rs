//! Two workflows of the admin API against the simulators: "Activate single sign-on", which
//! the Webex org refuses while SAML SSO is enabled, and "Delete instance" with and without
//! revoking the app's consent in the Entra tenant (the Webex users stay either way).

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

/// A client-credentials token request for the app of `client_id`, as the coordinator sends it.
async fn token_status(stack: &Stack, tenant: &str, client_id: &str, secret: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/token",
            stack.graph_base_url()
        ))
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The app registration of an Entra tenant of the stack, as its instance stores it.
async fn app_of(stack: &Stack, tenant_id: dirsync_proto::TenantId) -> (String, String) {
    use secrecy::ExposeSecret;
    let tenant = dirsync_coordinator::TenantStore::new(stack.env.pool.clone())
        .with_key(stack.env.secrets_key.clone())
        .get(tenant_id)
        .await
        .unwrap();
    (
        tenant.client_id.clone(),
        tenant.client_secret.expose_secret().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_waits_for_saml_to_be_off() {
    let stack = Stack::start(&StackOptions::new("api_sso", 5))
        .await
        .unwrap();
    let sso = format!("/tenants/{}/sso", stack.tenant_id.0);

    let (status, body) = call(&stack, Method::GET, &sso, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"active": false, "saml_sso_enabled": false}));

    // SAML SSO on in Control Hub: activating is refused, and says what to do.
    stack.scim.set_saml_sso(&stack.org_id, true);
    let (status, body) = call(&stack, Method::GET, &sso, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["saml_sso_enabled"], true);
    let (status, body) = call(&stack, Method::PUT, &sso, Some(json!({"active": true}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("turn SAML SSO off in Control Hub"),
        "{body}"
    );
    assert!(!stack.scim.entra_sso_active(&stack.org_id));

    // Off in Control Hub: activated, as the org now says.
    stack.scim.set_saml_sso(&stack.org_id, false);
    let (status, body) = call(&stack, Method::PUT, &sso, Some(json!({"active": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"active": true, "saml_sso_enabled": false}));
    assert!(stack.scim.entra_sso_active(&stack.org_id));
    let (_, body) = call(&stack, Method::GET, &sso, None).await;
    assert_eq!(body["active"], true);

    // Deactivating is never refused, SAML or not.
    stack.scim.set_saml_sso(&stack.org_id, true);
    let (status, body) = call(&stack, Method::PUT, &sso, Some(json!({"active": false}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"active": false, "saml_sso_enabled": true}));
    assert!(!stack.scim.entra_sso_active(&stack.org_id));

    // A malformed body, an unknown instance.
    let (status, _) = call(&stack, Method::PUT, &sso, Some(json!({"on": true}))).await;
    assert!(status.is_client_error(), "{status}");
    let unknown = format!("/tenants/{}/sso", uuid::Uuid::new_v4());
    let (status, body) = call(&stack, Method::GET, &unknown, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(&stack, Method::PUT, &unknown, Some(json!({"active": true}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_instance_may_revoke_consent_and_leaves_webex_users() {
    let stack = Stack::start_with_workers(&StackOptions::new("api_consent", 30), 1)
        .await
        .unwrap();
    let report = stack.cycle("initial", None).await.unwrap();
    assert!(report.converged, "{:?}", report.verdict);
    let synced = stack.scim.users(&stack.org_id);
    assert!(synced.len() >= 25, "{} users synced", synced.len());

    // A second instance, deleted without revoking: its app keeps its consent.
    let other = stack.add_tenant("kept consent", 3, 77).await.unwrap();
    let (other_app, other_secret) = app_of(&stack, other.tenant_id).await;
    let (status, body) = call(
        &stack,
        Method::DELETE,
        &format!("/tenants/{}", other.tenant_id.0),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!stack.graph.consent_revoked(&other.entra_tenant));
    let (status, body) = token_status(&stack, &other.entra_tenant, &other_app, &other_secret).await;
    assert_eq!(status, 200, "{body}");

    // Graph unreachable: revoking fails, and nothing is deleted.
    let instance = format!("/tenants/{}", stack.tenant_id.0);
    let graph_url = stack.graph_base_url();
    let set_graph = |url: String| {
        let pool = stack.env.pool.clone();
        let id = stack.tenant_id.0;
        async move {
            sqlx::query(
                "UPDATE tenants SET graph_login_url = $2, graph_base_url = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(url)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    set_graph("http://127.0.0.1:9".into()).await;
    let revoke = format!("{instance}?revoke_consent=true");
    let (status, body) = call(&stack, Method::DELETE, &revoke, None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("nothing deleted"),
        "{body}"
    );
    let (status, _) = call(&stack, Method::GET, &instance, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!stack.graph.consent_revoked(&stack.entra_tenant));
    set_graph(graph_url).await;

    // Revoked, then deleted.
    let (app, secret) = app_of(&stack, stack.tenant_id).await;
    let (status, body) = token_status(&stack, &stack.entra_tenant, &app, &secret).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&stack, Method::DELETE, &revoke, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(stack.graph.consent_revoked(&stack.entra_tenant));
    let (status, _) = call(&stack, Method::GET, &instance, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The app gets no token any more, with Entra's reason.
    let (status, body) = token_status(&stack, &stack.entra_tenant, &app, &secret).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000229: "),
        "{body}"
    );
    // Another tenant's app is untouched.
    assert!(!stack.graph.consent_revoked(&other.entra_tenant));

    // The Webex users are as the sync left them: none deleted or changed.
    assert_eq!(stack.scim.users(&stack.org_id), synced);

    stack.shutdown().await.unwrap();
}
