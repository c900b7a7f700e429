//! No secret in anything dirsync emits: a small sync end to end with a coordinator process
//! (`dirsync serve`'s code) and a worker process, both at `RUST_LOG=debug` with their OTLP
//! trace export pointed at a collector stub in this test, then everything they emitted is
//! searched for every secret of the deployment, raw and in its base64 and URL-encoded forms:
//!
//! - their stderr (JSON log lines, debug level, every library included);
//! - the OTLP/HTTP export bodies (protobuf: strings are stored as they are);
//! - both `/metrics` scrapes;
//! - the admin API's answers: every GET route of its OpenAPI document for every tenant,
//!   and error answers (unknown tenant, no token, a refused body that carries secrets).
//!
//! The secrets: tenant A's Graph client secret and SCIM token (it syncs), tenant B's SCIM
//! token (the org refuses it: 401), tenant C's Graph client secret (Graph refuses it), the
//! deployment's secrets key, the admin token, the PostgreSQL password (in `DATABASE_URL`;
//! the local server trusts, so any password connects) and RabbitMQ's (`guest:guest@` in
//! `AMQP_URL`). The capture is checked for content first (tenant and run ids, both failures,
//! metric families), so an empty capture cannot pass.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::{NewTenant, TenantStore};
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::TenantSpec;
use dirsync_load_tests::serve;
use dirsync_proto::TenantId;

/// Every way a secret could show up in text: as is, base64 (both alphabets, padded or
/// not) and percent-encoded (a form body, a query).
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    forms.push(
        secret
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect(),
    );
    forms.sort();
    forms.dedup();
    forms
}

/// A distinctive secret with characters that base64 and URL encoding change.
fn secret(what: &str) -> String {
    format!("{what}+/={}&?", uuid::Uuid::new_v4().simple())
}

/// An OTLP/HTTP collector that keeps every body it is sent.
async fn collector(shutdown: &CancellationToken) -> (String, Arc<Mutex<Vec<u8>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let router = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            kept.lock().unwrap().extend_from_slice(&body);
            kept.lock().unwrap().push(b'\n');
            axum::http::StatusCode::OK
        }
    });
    let served = serve::spawn(router, serve::any_loopback_port(), shutdown.clone())
        .await
        .unwrap();
    (served.base_url(), bodies)
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `exe role` with `env`, its stderr into `log`.
fn spawn(exe: &str, role: &str, env: &[(String, String)], log: &std::path::Path) -> Child {
    let stderr = std::fs::File::create(log).unwrap();
    Command::new(exe)
        .arg(role)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// SIGTERM, so the process flushes its spans, then its exit.
async fn stop(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Polls until `sql` (one tenant id parameter) is true; fails after `limit`.
async fn wait_for(stack: &Stack, sql: &'static str, tenant: TenantId, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let done: bool = sqlx::query_scalar(sql)
            .bind(tenant.0)
            .fetch_one(&stack.env.pool)
            .await
            .unwrap();
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited too long for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_traces_metrics_or_answers() {
    let shutdown = CancellationToken::new();
    let stack = Stack::start(&StackOptions::new("secrets", 40))
        .await
        .unwrap();
    let store = TenantStore::new(stack.env.pool.clone()).with_key(stack.env.secrets_key.clone());
    let graph_url = stack.graph_base_url();
    let scim_root = stack.scim_sim_url();

    // Tenant A syncs with distinctive secrets; B's token is refused by its org, C's secret
    // by Graph.
    let a_secret = secret("graph-a");
    let a_token = secret("scim-a");
    let b_token = secret("scim-b-wrong");
    let c_secret = secret("graph-c-wrong");
    let mut tenants = BTreeMap::new();
    for (name, graph_secret, accepted_secret, scim_token, accepted_token, users) in [
        ("A", &a_secret, &a_secret, &a_token, &a_token, 30),
        ("B", &a_secret, &a_secret, &b_token, &a_token, 5),
        ("C", &c_secret, &a_secret, &a_token, &a_token, 5),
    ] {
        let entra = uuid::Uuid::new_v4().to_string();
        stack
            .graph
            .add_tenant(TenantSpec {
                tenant_id: entra.clone(),
                domain: format!("{}.example", name.to_lowercase()),
                client_id: "app".into(),
                client_secret: accepted_secret.clone(),
                seed: 11,
                users,
            })
            .unwrap();
        let org = uuid::Uuid::new_v4().to_string();
        stack.scim.add_org(&org, accepted_token);
        let id = store
            .create(&NewTenant {
                name: format!("secrets {name}"),
                graph_tenant_id: entra,
                graph_login_url: graph_url.clone(),
                graph_base_url: graph_url.clone(),
                client_id: "app".into(),
                client_secret: SecretString::from(graph_secret.clone()),
                scim_base_url: format!("{scim_root}/identity/scim/{org}/v2"),
                scim_token: SecretString::from(scim_token.clone()),
                allow_hard_delete: false,
            })
            .await
            .unwrap();
        store.set_auto_sync(id, false).await.unwrap();
        tenants.insert(name, id);
    }
    store.set_auto_sync(stack.tenant_id, false).await.unwrap();

    // The processes: PostgreSQL with a password, debug logs, OTLP to the stub.
    let (otlp, exported) = collector(&shutdown).await;
    let db_password = secret("db-pw").replace(['/', '?', '&', '+', '='], "x");
    let mut db_url = url::Url::parse(&stack.env.database_url).unwrap();
    db_url.set_password(Some(&db_password)).unwrap();
    let http_addr = free_port();
    let worker_addr = free_port();
    let mut env: Vec<(String, String)> = stack
        .env
        .process_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .filter(|(k, _)| k != "WORKER_HTTP_ADDR")
        .collect();
    env.extend([
        ("DATABASE_URL".into(), db_url.to_string()),
        ("RUST_LOG".into(), "debug".into()),
        ("DIRSYNC_LOG_FORMAT".into(), "json".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), otlp),
        ("DIRSYNC_HTTP_ADDR".into(), http_addr.to_string()),
        ("WORKER_HTTP_ADDR".into(), worker_addr.to_string()),
    ]);
    let dir = std::env::temp_dir().join(format!("dirsync-secrets-{}", stack.env.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let (coordinator_log, worker_log) = (dir.join("coordinator.log"), dir.join("worker.log"));
    let coordinator = spawn(
        env!("CARGO_BIN_EXE_harness"),
        "coordinator",
        &env,
        &coordinator_log,
    );
    let worker = spawn(env!("CARGO_BIN_EXE_demo"), "worker", &env, &worker_log);
    let base = format!("http://{http_addr}");
    let api = format!("{base}{}", dirsync_coordinator::api::BASE);
    let admin = stack.api_token.expose_secret().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "no coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A cycle of each, through the admin API.
    let client = reqwest::Client::new();
    for id in tenants.values() {
        let status = client
            .post(format!("{api}/tenants/{id}/sync-now"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "sync-now {status}");
    }
    wait_for(
        &stack,
        "SELECT EXISTS (SELECT 1 FROM runs WHERE tenant_id = $1 AND state = 'completed')",
        tenants["A"],
        "tenant A's run",
    )
    .await;
    // B: the org refused its token (a worker records it, the tenant is quarantined); C:
    // Graph refused its secret.
    for name in ["B", "C"] {
        wait_for(
            &stack,
            "SELECT quarantine_kind IS NOT NULL FROM tenants WHERE id = $1",
            tenants[name],
            &format!("tenant {name}'s quarantine"),
        )
        .await;
    }
    let run_a: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM runs WHERE tenant_id = $1 AND state = 'completed'")
            .bind(tenants["A"].0)
            .fetch_one(&stack.env.pool)
            .await
            .unwrap();

    // The admin API: every GET route for every tenant (path parameters: the tenant, the
    // run), then answers that are errors.
    let (_, openapi) = get(&format!("{api}/openapi.json"), Some(&admin)).await;
    let openapi: Value = serde_json::from_str(&openapi).unwrap();
    let mut answers = String::new();
    let paths = openapi["paths"].as_object().unwrap();
    for id in tenants.values() {
        for (path, ops) in paths {
            if ops.get("get").is_none() || path.contains("openapi") {
                continue;
            }
            let mut concrete = path.clone();
            for (param, value) in [
                ("{id}", id.to_string()),
                ("{tenant_id}", id.to_string()),
                ("{run_id}", run_a.to_string()),
                ("{run}", run_a.to_string()),
            ] {
                concrete = concrete.replace(param, &value);
            }
            let concrete = regex_free_params(&concrete, &run_a.to_string());
            let (status, body) = get(&format!("{api}{concrete}?search=a"), Some(&admin)).await;
            answers.push_str(&format!("GET {concrete} {status} {body}\n"));
        }
    }
    let unknown = TenantId::new();
    for (url, token) in [
        (format!("{api}/tenants/{unknown}"), Some(admin.as_str())),
        (format!("{api}/tenants"), None),
        (format!("{api}/tenants"), Some("not-a-token")),
    ] {
        let (status, body) = get(&url, token).await;
        answers.push_str(&format!("GET {url} {status} {body}\n"));
    }
    let refused = client
        .post(format!("{api}/tenants"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "",
            "entra_tenant_id": "x",
            "client_id": "app",
            "client_secret": a_secret,
            "scim_url": "not a url",
            "scim_token": a_token,
        }))
        .send()
        .await
        .unwrap();
    let refused_status = refused.status().as_u16();
    answers.push_str(&format!(
        "POST tenants {refused_status} {}\n",
        refused.text().await.unwrap()
    ));
    let (_, coordinator_metrics) = get(&format!("{base}/metrics"), None).await;
    let (_, worker_metrics) = get(&format!("http://{worker_addr}/metrics"), None).await;

    stop(coordinator).await;
    stop(worker).await;
    let coordinator_stderr = std::fs::read_to_string(&coordinator_log).unwrap();
    let worker_stderr = std::fs::read_to_string(&worker_log).unwrap();
    let traces = String::from_utf8_lossy(&exported.lock().unwrap()).into_owned();
    let captured = [
        ("coordinator log", &coordinator_stderr),
        ("worker log", &worker_stderr),
        ("otlp export", &traces),
        ("coordinator metrics", &coordinator_metrics),
        ("worker metrics", &worker_metrics),
        ("admin api answers", &answers),
    ];

    // The capture is real: ids, runs, both failures, metric families, error answers.
    let (tenant_a, run_a) = (tenants["A"].to_string(), run_a.to_string());
    for (what, text, needle) in [
        ("coordinator log", &coordinator_stderr, tenant_a.as_str()),
        ("coordinator log", &coordinator_stderr, run_a.as_str()),
        (
            "coordinator log",
            &coordinator_stderr,
            "graph token request failed",
        ),
        ("worker log", &worker_stderr, run_a.as_str()),
        ("worker log", &worker_stderr, "scim 401"),
        ("otlp export", &traces, run_a.as_str()),
        ("otlp export", &traces, "scim_request"),
        ("coordinator metrics", &coordinator_metrics, "# TYPE"),
        ("worker metrics", &worker_metrics, "# TYPE"),
        ("admin api answers", &answers, tenant_a.as_str()),
        ("admin api answers", &answers, "not_found"),
        ("admin api answers", &answers, "unauthorized"),
    ] {
        assert!(
            text.contains(needle),
            "the {what} lacks {needle:?}: nothing captured?"
        );
    }
    assert!(
        (400..500).contains(&refused_status),
        "the refused body answered {refused_status}"
    );

    // ... and holds no secret in any form.
    let key = stack
        .env
        .secrets_key
        .to_base64()
        .expose_secret()
        .to_string();
    let key_bytes = STANDARD.decode(&key).unwrap();
    let mut secrets: Vec<(&str, Vec<String>)> = vec![
        ("tenant A graph client secret", forms(&a_secret)),
        ("tenant A scim token", forms(&a_token)),
        ("tenant B scim token (refused)", forms(&b_token)),
        ("tenant C graph client secret (refused)", forms(&c_secret)),
        ("admin token", forms(&admin)),
        ("postgresql password", forms(&db_password)),
        ("rabbitmq credentials", vec!["guest:guest@".to_string()]),
    ];
    let mut key_forms = forms(&key);
    key_forms.extend([
        URL_SAFE.encode(&key_bytes),
        URL_SAFE_NO_PAD.encode(&key_bytes),
    ]);
    secrets.push(("secrets key", key_forms));
    let mut leaks = Vec::new();
    for (what, text) in captured {
        for (secret, forms) in &secrets {
            for form in forms {
                if let Some(at) = text.find(form.as_str()) {
                    let line = text[..at].rfind('\n').map_or(0, |n| n + 1);
                    let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
                    leaks.push(format!("{secret} in the {what}: {}", &text[line..end]));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));

    std::fs::remove_dir_all(&dir).unwrap();
    shutdown.cancel();
    stack.shutdown().await.unwrap();
}

/// Any path parameter left (e.g. a dry run's or a dead letter's id) becomes the run id: an
/// unknown id, answered with an error, which is checked too.
fn regex_free_params(path: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(id);
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}
