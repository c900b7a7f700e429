//! Migrating an enterprise app's provisioning over the admin API against the simulators: the
//! app's scope and mappings become the new instance's; an app that provisions another Webex
//! org is refused with `other_org` and nothing is created; a mapping dirsync cannot do is
//! refused by name, or left out and reported with `skip_unsupported`.

use clap::Parser;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::{
    FlowType, ProvisioningApp, SimMapping, SourceKind, TenantSpec,
};

const ENTRA: &str = "fabrikam.example";
const SECRET: &str = "migrate-secret";

async fn call(
    stack: &Stack,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    stack.api(method, path, body).await.unwrap()
}

fn app(sp: &str, base_address: String, mappings: Vec<SimMapping>) -> ProvisioningApp {
    ProvisioningApp {
        service_principal_id: sp.into(),
        base_address,
        sync_all: false,
        assigned_users: vec!["user-a".into(), "user-b".into()],
        assigned_groups: vec!["group-1".into()],
        mappings,
    }
}

fn supported() -> Vec<SimMapping> {
    vec![
        SimMapping::new("userName", SourceKind::Attribute, "userPrincipalName"),
        SimMapping::new("externalId", SourceKind::Attribute, "mailNickname"),
        SimMapping::new(
            "phoneNumbers[type eq \"work\"].value",
            SourceKind::Attribute,
            "telephoneNumber",
        ),
        SimMapping {
            flow: FlowType::ObjectAddOnly,
            ..SimMapping::new("title", SourceKind::Constant, "Staff")
        },
        SimMapping {
            default: Some("Someone".into()),
            ..SimMapping::new(
                "displayName",
                SourceKind::Function,
                "Join(\" \", [givenName], [surname])",
            )
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_provisioning_becomes_an_instance() {
    let stack = Stack::start(&StackOptions::new("api_migrate", 5))
        .await
        .unwrap();
    stack
        .graph
        .add_tenant(TenantSpec {
            tenant_id: ENTRA.into(),
            domain: ENTRA.into(),
            client_id: "migrate-app".into(),
            client_secret: SECRET.into(),
            seed: 7,
            users: 3,
        })
        .unwrap();
    for org in ["org-mig", "org-mig-2", "org-other"] {
        stack.scim.add_org(org, &format!("token of {org}"));
    }
    let scim = |org: &str| format!("{}/identity/scim/{org}/v2", stack.scim_sim_url());
    let request = |sp: &str, org: &str, extra: Value| {
        let mut body = json!({
            "name": format!("migrated {sp}"),
            "entra_tenant_id": ENTRA,
            "graph_login_url": stack.graph_base_url(),
            "graph_base_url": stack.graph_base_url(),
            "client_id": "migrate-app",
            "client_secret": SECRET,
            "service_principal_id": sp,
            "scim_base_url": scim(org),
            "scim_token": format!("token of {org}"),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let count = || async {
        let (_, list) = call(&stack, Method::GET, "/tenants", None).await;
        list.as_array().unwrap().len()
    };
    stack
        .graph
        .add_provisioning_app(ENTRA, app("sp-same", scim("org-mig"), supported()))
        .unwrap();
    stack
        .graph
        .add_provisioning_app(ENTRA, app("sp-other", scim("org-other"), supported()))
        .unwrap();
    let mut unsupported = supported();
    unsupported.push(SimMapping::new(
        "nickName",
        SourceKind::Attribute,
        "extensionAttribute1",
    ));
    stack
        .graph
        .add_provisioning_app(ENTRA, app("sp-ext", scim("org-mig-2"), unsupported))
        .unwrap();
    let before = count().await;

    // Another org: refused, naming both, nothing created.
    let (status, refused) = call(
        &stack,
        Method::POST,
        "/tenants/migrate",
        Some(request("sp-other", "org-mig", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"], "other_org");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("org-other") && message.contains("org-mig"),
        "{message}"
    );
    assert_eq!(count().await, before, "nothing created");

    // An unknown app: not found.
    let (status, missing) = call(
        &stack,
        Method::POST,
        "/tenants/migrate",
        Some(request("sp-none", "org-mig", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    // The same org: the app's scope and mappings become the instance's.
    let (status, migrated) = call(
        &stack,
        Method::POST,
        "/tenants/migrate",
        Some(request("sp-same", "org-mig", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{migrated}");
    let report = &migrated["report"];
    assert_eq!(report["all_users"], false);
    assert_eq!(
        (report["users"].as_u64(), report["groups"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["mappings"], 4);
    assert_eq!(report["handled_by_dirsync"], json!(["externalId"]));
    assert_eq!(report["not_migrated"], json!([]));
    let id = migrated["instance"]["id"].as_str().unwrap().to_string();
    assert_eq!(migrated["instance"]["setup_mode"], "custom");
    let (_, scope) = call(&stack, Method::GET, &format!("/tenants/{id}/scope"), None).await;
    assert_eq!(scope["all"], false);
    assert_eq!(scope["users"], json!(["user-a", "user-b"]));
    assert_eq!(scope["groups"], json!(["group-1"]));
    let (_, mapping) = call(&stack, Method::GET, &format!("/tenants/{id}/mapping"), None).await;
    assert_eq!(
        mapping["rules"],
        json!([
            {"target": "userName", "kind": "direct", "attribute": "userPrincipalName"},
            {"target": "phoneNumbers[type eq \"work\"].value", "kind": "direct",
             "attribute": "businessPhones"},
            {"target": "title", "kind": "constant", "value": "Staff", "create_only": true},
            {"target": "displayName", "kind": "expression",
             "expression": "Join(\" \", [givenName], [surname])", "default_if_null": "Someone"},
        ])
    );
    assert_eq!(count().await, before + 1);

    // A mapping dirsync cannot do: refused by name ...
    let (status, refused) = call(
        &stack,
        Method::POST,
        "/tenants/migrate",
        Some(request("sp-ext", "org-mig-2", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "unsupported_mappings");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("nickName") && message.contains("extensionAttribute1"),
        "{message}"
    );
    assert_eq!(count().await, before + 1, "nothing created");
    // ... or left out and reported.
    let (status, migrated) = call(
        &stack,
        Method::POST,
        "/tenants/migrate",
        Some(request(
            "sp-ext",
            "org-mig-2",
            json!({"skip_unsupported": true}),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{migrated}");
    let not_migrated = migrated["report"]["not_migrated"].as_array().unwrap();
    assert_eq!(not_migrated.len(), 1, "{migrated}");
    assert_eq!(not_migrated[0]["target"], "nickName");
    assert_eq!(not_migrated[0]["source"], "[extensionAttribute1]");
    let id = migrated["instance"]["id"].as_str().unwrap();
    let (_, mapping) = call(&stack, Method::GET, &format!("/tenants/{id}/mapping"), None).await;
    let targets: Vec<&str> = mapping["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(!targets.contains(&"nickName"), "{targets:?}");
    assert_eq!(targets.len(), 4);

    // The command line, `dirsync tenant migrate`: another org is refused (exit 6, naming
    // it), the app's own org migrates.
    stack.scim.add_org("org-cli", "token of org-cli");
    stack
        .graph
        .add_provisioning_app(ENTRA, app("sp-cli", scim("org-cli"), supported()))
        .unwrap();
    let migrate = |sp: &str| {
        let argv: Vec<String> = [
            "dirsync",
            "--api-url",
            &stack.api_url(),
            "--api-token",
            stack.api_token.expose_secret(),
            "tenant",
            "migrate",
            "--name",
            "migrated by the command line",
            "--entra-tenant-id",
            ENTRA,
            "--graph-login-url",
            &stack.graph_base_url(),
            "--graph-base-url",
            &stack.graph_base_url(),
            "--client-id",
            "migrate-app",
            "--client-secret",
            SECRET,
            "--service-principal-id",
            sp,
            "--scim-url",
            &scim("org-cli"),
            "--scim-token",
            "token of org-cli",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        dirsync_coordinator::cli::run(
            dirsync_coordinator::cli::Cli::try_parse_from(argv).unwrap(),
            tokio_util::sync::CancellationToken::new(),
        )
    };
    let refused = migrate("sp-other").await.unwrap_err();
    assert_eq!(
        dirsync_coordinator::cli::exit_code(&refused),
        6,
        "{refused}"
    );
    assert!(refused.to_string().contains("org-other"), "{refused}");
    assert_eq!(count().await, before + 2, "nothing created");
    migrate("sp-cli").await.unwrap();
    assert_eq!(count().await, before + 3);
    stack.shutdown().await.unwrap();
}
