//! `allowed_hosts`: a tenant's credentials go only to the deployment's hosts. A Graph page
//! whose `@odata.nextLink` (or deltaLink) names another host, and a tenant whose SCIM root is
//! on another host, are refused before any request is made, with a non-retryable error
//! naming the host; the other host, a real server on 127.0.0.2 counting what it receives,
//! gets nothing.
//!
//! Graph is a stub on 127.0.0.1 (a token and one page pointing away); the allowed list is
//! `127.0.0.1`. The Graph client is tested alone and through a run of the coordinator with
//! the list installed as `dirsync serve` installs it; the SCIM side through the worker's
//! `BatchProcessor` with the list of its settings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::routing::{get, post};
use clap::Parser;
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::graph::{GraphClient, PageLink};
use dirsync_coordinator::{CoordinatorConfig, CoordinatorError, NewTenant, TenantStore};
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::serve::{self, Served};
use dirsync_proto::{AllowedHosts, BatchMessage, SourceUser, WIRE_VERSION};
use dirsync_worker::{WorkerError, WorkerSettings};

/// A server on 127.0.0.2 that answers 200 to anything and counts the requests.
async fn other_host(shutdown: &CancellationToken) -> (Served, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let router = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Json(json!({"value": [], "@odata.deltaLink": "http://127.0.0.2/done"}))
        }
    });
    let served = serve::spawn(
        router,
        SocketAddr::from(([127, 0, 0, 2], 0)),
        shutdown.clone(),
    )
    .await
    .unwrap();
    (served, hits)
}

/// A Graph on 127.0.0.1: a token for anyone, and one empty `users/delta` page whose nextLink
/// points at `next`.
async fn graph_pointing_at(next: String, shutdown: &CancellationToken) -> Served {
    let router = axum::Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async { Json(json!({"access_token": "graph-token", "expires_in": 3600})) }),
        )
        .route(
            "/v1.0/users/delta",
            get(move || {
                let next = next.clone();
                async move { Json(json!({"value": [], "@odata.nextLink": next})) }
            }),
        );
    serve::spawn(router, serve::any_loopback_port(), shutdown.clone())
        .await
        .unwrap()
}

fn loopback_only() -> Arc<AllowedHosts> {
    Arc::new(AllowedHosts::parse(&["127.0.0.1"]).unwrap())
}

fn assert_refused(error: &CoordinatorError, host: &str) {
    assert!(
        matches!(error, CoordinatorError::HostNotAllowed(_)),
        "{error:?}"
    );
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains(&format!("{host:?}")), "{error}");
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let shutdown = CancellationToken::new();
    let (other, hits) = other_host(&shutdown).await;
    let next = format!("{}/v1.0/users/delta?$skiptoken=stolen", other.base_url());
    let graph = graph_pointing_at(next.clone(), &shutdown).await;
    let tenant = dirsync_coordinator::Tenant {
        id: dirsync_proto::TenantId::new(),
        name: "t".into(),
        graph_tenant_id: "contoso".into(),
        graph_login_url: graph.base_url(),
        graph_base_url: graph.base_url(),
        client_id: "app".into(),
        client_secret: SecretString::from("s3cret"),
        scim_base_url: "http://unused/v2".into(),
        status: "NotRun".into(),
        delta_link: None,
        authorized: true,
        scope: Default::default(),
        groups_delta_link: None,
        full_walk_requested: false,
    };
    let client = GraphClient::new(reqwest::Client::new(), &tenant)
        .with_allowed_hosts(loopback_only())
        .with_retries(Duration::from_millis(1), Duration::from_millis(5), 3);

    // The first page comes from the allowed Graph and names the other host.
    let page = client
        .users_page(&client.initial_users_url())
        .await
        .unwrap();
    assert_eq!(page.link, PageLink::Next(next.clone()));
    // Following it is refused, at once and for good.
    let error = client.users_page(&next).await.unwrap_err();
    assert_refused(&error, "127.0.0.2");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the other host was contacted"
    );

    // Without the list the same client does follow it: the server above is really there.
    let unchecked = GraphClient::new(reqwest::Client::new(), &tenant);
    unchecked.users_page(&next).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    shutdown.cancel();
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    config: CoordinatorConfig,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_workers_refuse_other_hosts() {
    let shutdown = CancellationToken::new();
    let (other, hits) = other_host(&shutdown).await;
    let stack = Stack::start(&StackOptions::new("allowed-hosts", 10))
        .await
        .unwrap();
    // The list as `dirsync serve` installs it from its configuration.
    Cli::try_parse_from(["dirsync", "--allowed-hosts", "127.0.0.1"])
        .unwrap()
        .config
        .install_allowed_hosts()
        .unwrap();

    // A run whose Graph hands out a nextLink to the other host fails on it.
    let next = format!("{}/v1.0/users/delta?$skiptoken=stolen", other.base_url());
    let graph = graph_pointing_at(next, &shutdown).await;
    let store = TenantStore::new(stack.env.pool.clone()).with_key(stack.env.secrets_key.clone());
    let org_url = format!("{}/identity/scim/{}/v2", stack.scim_sim_url(), stack.org_id);
    let tenant = |name: &str, graph_url: &str, scim_url: &str| NewTenant {
        name: name.into(),
        graph_tenant_id: "contoso".into(),
        graph_login_url: graph_url.into(),
        graph_base_url: graph_url.into(),
        client_id: "app".into(),
        client_secret: SecretString::from("s3cret"),
        scim_base_url: scim_url.into(),
        scim_token: SecretString::from("scim-token"),
        allow_hard_delete: false,
    };
    let linked = store
        .create(&tenant("linked away", &graph.base_url(), &org_url))
        .await
        .unwrap();
    let error = stack
        .runner
        .sync_tenant(linked, None, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("\"127.0.0.2\""), "{error}");
    // A tenant whose own Graph root is elsewhere never gets as far as a token request.
    let elsewhere = store
        .create(&tenant("graph elsewhere", &other.base_url(), &org_url))
        .await
        .unwrap();
    let error = stack
        .runner
        .sync_tenant(elsewhere, None, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("\"127.0.0.2\""), "{error}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the other host was contacted"
    );

    // A worker refuses a tenant whose SCIM root is on the other host: its token stays here.
    let scim_elsewhere = store
        .create(&tenant(
            "scim elsewhere",
            &stack.graph_base_url(),
            &format!("{}/identity/scim/{}/v2", other.base_url(), stack.org_id),
        ))
        .await
        .unwrap();
    let amqp = lapin::Connection::connect(&stack.env.amqp_url, Default::default())
        .await
        .unwrap();
    let settings = WorkerSettings {
        secrets: Some(stack.env.secrets_key.clone()),
        allowed_hosts: Some(loopback_only()),
        ..WorkerSettings::default()
    };
    let processor = stack.env.batch_processor(&amqp, settings).await.unwrap();
    let user: SourceUser = serde_json::from_value(json!({
        "id": "u-1",
        "attributes": {"userPrincipalName": "u1@contoso.example", "accountEnabled": true}
    }))
    .unwrap();
    let batch = BatchMessage {
        version: WIRE_VERSION,
        tenant_id: scim_elsewhere,
        // Not a run of this tenant's: the host is refused before the batch gets that far.
        run_id: dirsync_proto::RunId::new(),
        seq: 0,
        users: vec![user],
        groups: Vec::new(),
        dry_run: false,
    };
    let error = processor.process(&batch).await.unwrap_err();
    assert!(matches!(error, WorkerError::ScimBaseUrl(_)), "{error:?}");
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("\"127.0.0.2\""), "{error}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the other host was contacted"
    );

    shutdown.cancel();
    stack.shutdown().await.unwrap();
}
