//! A whole dirsync on one machine: both simulators, a coordinator in-process, workers as
//! separate processes, all on isolated resources. Used by the demo and the end-to-end tests.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::SecretString;
use serde::Serialize;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::api::ApiState;
use dirsync_coordinator::avatars::AvatarSigner;
use dirsync_coordinator::guard::Thresholds;
use dirsync_coordinator::http::HttpState;
use dirsync_coordinator::provision::Provisioner;
use dirsync_coordinator::run::DEFAULT_AVATAR_CHECKS_PER_RUN;
use dirsync_coordinator::runs::RunKind;
use dirsync_coordinator::scope::Scope;
use dirsync_coordinator::{NewTenant, RunProgress, Runner, TenantStore, broker};
use dirsync_proto::{Counts, GroupCounts, RunId, TenantId};
use dirsync_worker::scim::{RetryPolicy, ScimClient};
use dirsync_worker::tenant::TenantCache;

use crate::graph_sim::{GraphSim, GraphSimConfig, TenantSpec, UserState};
use crate::oracle::{Oracle, Verdict};
use crate::scim_sim::{RateLimit, ScimSim, ScimSimConfig};
use crate::serve::{self, Served, any_loopback_port};
use crate::synthetic::{ChangeReport, ChangeStep, GroupSpec};
use crate::testkit::TestEnv;

mod workers;

/// The deployment avatar key of test stacks.
const TEST_AVATAR_KEY: &str = "test avatar key, not a secret of any deployment";

/// What to build.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Names the isolated resources.
    pub label: String,
    pub users: usize,
    pub seed: u64,
    pub page_size: usize,
    /// Added to every SCIM request, to make runs last long enough to interfere with.
    pub scim_latency: Duration,
    /// Up to this much more, uniformly at random, per SCIM request.
    pub scim_latency_jitter: Duration,
    /// Added to every Graph request (token and delta), likewise.
    pub graph_latency: Duration,
    /// The Graph simulator's settings (edge cases, throttling); its `page_size` is replaced
    /// by [`StackOptions::page_size`].
    pub graph: GraphSimConfig,
    /// Whether the tenant deletes Webex users that Entra hard-deletes (else deactivates).
    pub allow_hard_delete: bool,
    /// The tenant's accidental-deletion guard; `None` keeps the defaults (500 users, 10%).
    pub guard: Option<Thresholds>,
    /// The groups the tenant is generated with (none by default).
    pub groups: GroupSpec,
    /// A SCIM budget per org, requests per second: the simulator enforces it and the workers
    /// pace themselves to it. `None`: unlimited.
    pub scim_rate: Option<u32>,
    /// Whether the SCIM simulator has `/Bulk` (Webex has).
    pub scim_bulk: bool,
    /// Every Nth SCIM request answers 503 (`None`: never).
    pub scim_fail_every: Option<u64>,
}

impl StackOptions {
    /// A tenant of `users` users with Graph's page size and no added latency.
    pub fn new(label: &str, users: usize) -> Self {
        Self {
            label: label.into(),
            users,
            seed: 7,
            page_size: 200,
            scim_latency: Duration::ZERO,
            graph_latency: Duration::ZERO,
            allow_hard_delete: true,
            guard: None,
            graph: GraphSimConfig::default(),
            groups: GroupSpec::default(),
            scim_rate: None,
            scim_bulk: true,
            scim_fail_every: None,
            scim_latency_jitter: Duration::ZERO,
        }
    }
}

/// One cycle's measurements and verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub cycle: String,
    pub run_id: RunId,
    pub kind: RunKind,
    pub users: Counts,
    /// Group objects: synced, to be synced, failed.
    pub groups: GroupCounts,
    /// HTTP requests to the org (a Bulk request of up to 100 operations counts once).
    pub scim_requests: u64,
    pub scim_writes: u64,
    pub wall_ms: u64,
    pub converged: bool,
    pub verdict: Verdict,
    /// The live counters a progress display reads, for checking against the summary.
    pub redis_counts: Counts,
}

/// The one-line JSON summary of a cycle that the demo prints.
#[derive(Debug, Serialize)]
pub struct CycleLine<'a> {
    pub cycle: &'a str,
    pub users: Counts,
    pub scim_requests: u64,
    pub wall_ms: u64,
    pub converged: bool,
}

impl CycleReport {
    pub fn line(&self) -> String {
        let line = CycleLine {
            cycle: &self.cycle,
            users: self.users,
            scim_requests: self.scim_requests,
            wall_ms: self.wall_ms,
            converged: self.converged,
        };
        serde_json::to_string(&line).expect("a cycle line always serializes")
    }
}

/// The running system.
pub struct Stack {
    pub env: TestEnv,
    pub graph: GraphSim,
    pub scim: ScimSim,
    pub tenant_id: TenantId,
    pub entra_tenant: String,
    pub org_id: String,
    pub runner: Runner,
    redis: redis::aio::ConnectionManager,
    allow_hard_delete: bool,
    shutdown: CancellationToken,
    servers: Vec<Served>,
    workers: std::sync::Mutex<Vec<Child>>,
    scim_rate: Option<u32>,
    /// A token of the stack's admin API ([`Stack::api_url`]).
    pub api_token: SecretString,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("tenant_id", &self.tenant_id)
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts the simulators, registers a synthetic tenant and its org, and readies a runner.
    pub async fn start(opts: &StackOptions) -> anyhow::Result<Self> {
        let env = TestEnv::new(&opts.label).await?;
        let shutdown = CancellationToken::new();
        let graph = GraphSim::new(GraphSimConfig {
            page_size: opts.page_size,
            ..opts.graph.clone()
        });
        let scim = ScimSim::new(ScimSimConfig {
            // The org tolerates a second's worth of burst; the workers allow themselves a
            // tenth of that, so timing jitter between them and the org is absorbed.
            rate_limit: opts.scim_rate.map(|per_second| RateLimit {
                per_second,
                burst: per_second.max(1),
            }),
            bulk: opts.scim_bulk,
            fail_every: opts.scim_fail_every,
            ..ScimSimConfig::default()
        });
        let graph_served = serve::spawn(
            with_latency(graph.router(), opts.graph_latency),
            any_loopback_port(),
            shutdown.clone(),
        )
        .await?;
        let scim_served = serve::spawn(
            with_latency_jitter(scim.router(), opts.scim_latency, opts.scim_latency_jitter),
            any_loopback_port(),
            shutdown.clone(),
        )
        .await?;
        let servers = vec![graph_served, scim_served];
        let first = register(
            &scim,
            &env,
            &servers,
            &format!("{} demo tenant", opts.label),
            "contoso.example",
            opts.allow_hard_delete,
            |spec| {
                graph.add_tenant_with_groups(
                    TenantSpec {
                        seed: opts.seed,
                        users: opts.users,
                        ..spec
                    },
                    opts.groups,
                )
            },
        )
        .await?;
        let (tenant_id, entra_tenant, org_id) = (first.tenant_id, first.entra_tenant, first.org_id);
        let amqp = broker::connect(&env.amqp_url).await?;
        if let Some(guard) = opts.guard {
            TenantStore::new(env.pool.clone())
                .set_guard(tenant_id, guard)
                .await?;
        }
        // The coordinator's HTTP face, in-process like its runner: it serves the avatars the
        // runner hands out, at its own address.
        let listener = tokio::net::TcpListener::bind(any_loopback_port()).await?;
        let public_url = format!("http://{}", listener.local_addr()?);
        let signer = AvatarSigner::new(&public_url, SecretString::from(TEST_AVATAR_KEY))?;
        let tenants = TenantStore::new(env.pool.clone()).with_key(env.secrets_key.clone());
        // ... and the admin API, with one token for the tests and the demo.
        let api = ApiState::new(env.pool.clone(), tenants.clone())
            .with_redis(
                redis::aio::ConnectionManager::new(redis::Client::open(env.redis_url.as_str())?)
                    .await?,
                env.topology(),
            )
            .with_provisioner(Provisioner::new(
                env.pool.clone(),
                &env.amqp_url,
                env.topology(),
            ));
        let http_state = HttpState::new(tenants, Some(signer.clone())).with_api(api);
        let (_, api_token) = dirsync_coordinator::api::auth::create(&env.pool, "stack").await?;
        let mut servers = servers;
        servers.push(serve::spawn_on(
            listener,
            dirsync_coordinator::http::router(http_state),
            shutdown.clone(),
        )?);
        let runner = Runner::new(env.pool.clone(), Arc::new(amqp), env.topology(), 64)
            .with_reconnect(&env.amqp_url)
            .with_avatars(signer, DEFAULT_AVATAR_CHECKS_PER_RUN)
            .with_secrets(env.secrets_key.clone());
        let redis =
            redis::aio::ConnectionManager::new(redis::Client::open(env.redis_url.as_str())?)
                .await?;
        // Dry runs asked for through the API, as `dirsync serve` does them.
        tokio::spawn(dirsync_coordinator::dry_runs::serve(
            runner.clone(),
            format!("{}-dry-runs", opts.label),
            shutdown.clone(),
        ));
        Ok(Self {
            env,
            graph,
            scim,
            tenant_id,
            entra_tenant,
            org_id,
            runner,
            redis,
            allow_hard_delete: opts.allow_hard_delete,
            shutdown,
            servers,
            workers: std::sync::Mutex::new(Vec::new()),
            scim_rate: opts.scim_rate,
            api_token,
        })
    }

    /// [`Stack::start`], then `workers` worker processes (the demo binary, [`demo_exe`]).
    pub async fn start_with_workers(opts: &StackOptions, workers: usize) -> anyhow::Result<Self> {
        let stack = Self::start(opts).await?;
        let exe = demo_exe()?;
        for _ in 0..workers {
            stack.spawn_worker(&exe)?;
        }
        Ok(stack)
    }

    /// Registers one more synthetic tenant and org on the same simulators and database; its
    /// domain is `tenant{seed}.example`, so its userNames never clash with another org's.
    pub async fn add_tenant(&self, name: &str, users: usize, seed: u64) -> anyhow::Result<Pairing> {
        register(
            &self.scim,
            &self.env,
            &self.servers,
            name,
            &format!("tenant{seed}.example"),
            self.allow_hard_delete,
            |spec| {
                self.graph.add_tenant(TenantSpec {
                    seed,
                    users,
                    ..spec
                })
            },
        )
        .await
    }

    /// Registers one more tenant and org that `add` puts in the Graph simulator itself (from
    /// the spec it is given: id, domain and app credentials), e.g. a hand-written tenant or
    /// one with groups. `allow_hard_delete` as in [`StackOptions`].
    pub async fn add_tenant_with(
        &self,
        name: &str,
        domain: &str,
        allow_hard_delete: bool,
        add: impl FnOnce(&GraphSim, TenantSpec) -> Result<(), crate::graph_sim::GraphSimError>,
    ) -> anyhow::Result<Pairing> {
        register(
            &self.scim,
            &self.env,
            &self.servers,
            name,
            domain,
            allow_hard_delete,
            |spec| add(&self.graph, spec),
        )
        .await
    }

    /// Root URL of the coordinator's HTTP face (avatars).
    pub fn coordinator_url(&self) -> String {
        self.servers[2].base_url()
    }

    /// The admin API's base URL (use it with [`Stack::api_token`]).
    pub fn api_url(&self) -> String {
        format!(
            "{}{}",
            self.coordinator_url(),
            dirsync_coordinator::api::BASE
        )
    }

    /// One admin API call with the stack's token: the status and the body (JSON, or the text
    /// as a JSON string when it is not JSON).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
        use secrecy::ExposeSecret;
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.api_url()))
            .bearer_auth(self.api_token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok((status, body))
    }

    /// Root URL of the SCIM simulator (an org's SCIM root is
    /// `{this}/identity/scim/{org}/v2`).
    pub fn scim_sim_url(&self) -> String {
        self.servers[1].base_url()
    }

    /// Root URL of the Graph simulator (login and Graph endpoints share it).
    pub fn graph_base_url(&self) -> String {
        self.servers[0].base_url()
    }

    /// Starts a worker process: `exe worker`, pointed at this stack's resources.
    pub fn spawn_worker(&self, exe: &Path) -> anyhow::Result<u32> {
        let (child, pid) = self.start_worker(exe)?;
        self.workers.lock().expect("worker list lock").push(child);
        Ok(pid)
    }

    /// A worker process on this stack's resources, not yet in the list.
    fn start_worker(&self, exe: &Path) -> anyhow::Result<(Child, u32)> {
        let mut env = self.env.process_env();
        if let Some(rate) = self.scim_rate {
            env.retain(|(k, _)| *k != "DIRSYNC_SCIM_RATE_PER_ORG");
            env.push(("DIRSYNC_SCIM_RATE_PER_ORG", rate.to_string()));
            env.push(("DIRSYNC_SCIM_BURST_PER_ORG", (rate / 10).max(1).to_string()));
        }
        // Quiet logs by default (the worker's own `warn` log filter), spans still whole;
        // DIRSYNC_WORKER_LOG sets the workers' RUST_LOG.
        spawn_process(exe, "worker", "DIRSYNC_WORKER_LOG", |command| {
            command.envs(env);
        })
    }

    pub fn worker_count(&self) -> usize {
        self.workers.lock().expect("worker list lock").len()
    }

    /// Applies a change step to the tenant in the Graph simulator.
    pub fn change(&self, step: &ChangeStep) -> anyhow::Result<ChangeReport> {
        Ok(self.graph.apply_changes(&self.entra_tenant, step)?)
    }

    /// The live counters of a run in Redis.
    pub async fn redis_counts(&self, run: RunId) -> anyhow::Result<Counts> {
        let mut conn = self.redis.clone();
        let (synced, skipped, failed): (Option<u64>, Option<u64>, Option<u64>) =
            redis::cmd("HMGET")
                .arg(self.env.topology().run_counts_key(run))
                .arg(&["synced", "skipped", "failed"])
                .query_async(&mut conn)
                .await?;
        Ok(Counts {
            synced: synced.unwrap_or(0),
            skipped: skipped.unwrap_or(0),
            failed: failed.unwrap_or(0),
        })
    }

    /// The oracle's verdict on the current state of both simulators.
    pub fn verdict(&self) -> anyhow::Result<Verdict> {
        self.verdict_with(|oracle| oracle)
    }

    /// The tenant as a worker loads it (SCIM root and token).
    pub async fn worker_tenant(&self) -> anyhow::Result<Arc<dirsync_worker::tenant::Tenant>> {
        TenantCache::new(Duration::from_secs(1), Some(self.env.secrets_key.clone()))
            .get(&self.env.pool, self.tenant_id)
            .await?
            .context("the stack's tenant is registered")
    }

    /// A SCIM client of the tenant's own org, with the tenant's token (as a worker has it).
    pub async fn scim_client(&self) -> anyhow::Result<ScimClient> {
        let tenant = self.worker_tenant().await?;
        Ok(ScimClient::new(
            reqwest::Client::new(),
            &tenant.scim_base_url,
            tenant.scim_token.clone(),
            RetryPolicy::default(),
        )?)
    }

    /// A SCIM client of a new org on the same simulator: userNames are unique across Webex,
    /// so a user made there takes its userName from every other org.
    pub async fn other_org_client(&self) -> anyhow::Result<ScimClient> {
        let tenant = self.worker_tenant().await?;
        let org = uuid::Uuid::new_v4().to_string();
        let token = format!("scim-{}", uuid::Uuid::new_v4().simple());
        self.scim.add_org(&org, &token);
        Ok(ScimClient::new(
            reqwest::Client::new(),
            &tenant.scim_base_url.replace(&self.org_id, &org),
            Arc::new(SecretString::from(token)),
            RetryPolicy::default(),
        )?)
    }

    /// Sets the tenant's scope (it applies from the next cycle).
    pub async fn set_scope(&self, scope: Scope) -> anyhow::Result<()> {
        TenantStore::new(self.env.pool.clone())
            .set_scope(self.tenant_id, scope)
            .await?;
        Ok(())
    }

    /// (live, live and enabled) users of the tenant in Entra: what a full walk sees, and what
    /// Webex must have active.
    pub fn live_and_enabled(&self) -> anyhow::Result<(u64, u64)> {
        Ok(self.graph.with_users(&self.entra_tenant, |users| {
            let live = users.iter().filter(|u| u.state == UserState::Live);
            let (mut all, mut enabled) = (0, 0);
            for u in live {
                all += 1;
                enabled += u64::from(u.user.account_enabled);
            }
            (all, enabled)
        })?)
    }

    /// Entra ids (SCIM `externalId`) of the org's users, split into (active, inactive).
    pub fn webex_users(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut active, mut inactive) = (BTreeSet::new(), BTreeSet::new());
        self.scim.for_each_user(&self.org_id, |u| {
            let id = u["externalId"].as_str().unwrap_or_default().to_string();
            if u["active"].as_bool() == Some(false) {
                inactive.insert(id);
            } else {
                active.insert(id);
            }
        });
        (active, inactive)
    }

    /// The oracle's verdict for a tenant that syncs only `scope` (Entra ids).
    pub fn verdict_in_scope(&self, scope: HashSet<String>) -> anyhow::Result<Verdict> {
        self.verdict_with(|oracle| oracle.with_scope(scope))
    }

    /// The oracle's verdict for a tenant that clears attributes.
    pub fn verdict_clearing(&self) -> anyhow::Result<Verdict> {
        self.verdict_with(|oracle| oracle.with_clearing())
    }

    /// The oracle's verdict for a tenant that syncs its rooms too.
    pub fn verdict_with_rooms(&self) -> anyhow::Result<Verdict> {
        let rooms = self
            .graph
            .room_ids(&self.entra_tenant)?
            .into_iter()
            .collect();
        self.verdict_with(|oracle| oracle.with_rooms(rooms))
    }

    /// Streamed: copying both sides of a large tenant would double the process's memory.
    fn verdict_with(
        &self,
        configure: impl FnOnce(Oracle<'_>) -> Oracle<'_>,
    ) -> anyhow::Result<Verdict> {
        Ok(self.graph.with_users(&self.entra_tenant, |users| {
            let mut oracle = configure(Oracle::new(
                users.iter().map(|u| (&u.user, u.state)),
                self.allow_hard_delete,
            ));
            self.scim
                .for_each_user(&self.org_id, |w| oracle.webex_user(&w));
            oracle.verdict()
        })?)
    }

    /// Runs one sync of the tenant and measures it.
    pub async fn cycle(
        &self,
        name: &str,
        progress: Option<&watch::Sender<RunProgress>>,
    ) -> anyhow::Result<CycleReport> {
        let before = self.scim.counters(&self.org_id);
        let started = Instant::now();
        let outcome = self
            .runner
            .sync_tenant(self.tenant_id, progress, &self.shutdown)
            .await?;
        let wall_ms = started.elapsed().as_millis() as u64;
        let after = self.scim.counters(&self.org_id);
        let verdict = self.verdict()?;
        Ok(CycleReport {
            cycle: name.to_string(),
            run_id: outcome.run_id,
            kind: outcome.kind,
            users: outcome.counts,
            groups: outcome.groups,
            scim_requests: after.requests() - before.requests(),
            scim_writes: after.writes() - before.writes(),
            wall_ms,
            converged: verdict.converged,
            verdict,
            redis_counts: self.redis_counts(outcome.run_id).await?,
        })
    }

    /// Stops workers (SIGTERM, then SIGKILL after a grace period) and servers, and removes
    /// every isolated resource.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let workers = std::mem::take(&mut *self.workers.lock().expect("worker list lock"));
        for child in &workers {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
        }
        for mut child in workers {
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        self.shutdown.cancel();
        for served in self.servers.drain(..) {
            let _ = served.task.await;
        }
        self.env.cleanup().await
    }
}

/// One registered pairing of a Graph simulator tenant and a SCIM simulator org.
#[derive(Debug, Clone)]
pub struct Pairing {
    pub tenant_id: TenantId,
    pub entra_tenant: String,
    pub org_id: String,
}

/// Creates a tenant in the Graph simulator (`add`, given the spec to use), its org and the
/// dirsync tenant that pairs them.
async fn register(
    scim: &ScimSim,
    env: &TestEnv,
    servers: &[Served],
    name: &str,
    domain: &str,
    allow_hard_delete: bool,
    add: impl FnOnce(TenantSpec) -> Result<(), crate::graph_sim::GraphSimError>,
) -> anyhow::Result<Pairing> {
    let (graph_url, scim_url) = (servers[0].base_url(), servers[1].base_url());
    let entra_tenant = uuid::Uuid::new_v4().to_string();
    let client_secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
    add(TenantSpec {
        tenant_id: entra_tenant.clone(),
        domain: domain.into(),
        client_id: "dirsync-app".into(),
        client_secret: client_secret.clone(),
        seed: 0,
        users: 0,
    })?;
    let org_id = uuid::Uuid::new_v4().to_string();
    let scim_token = format!("scim-{}", uuid::Uuid::new_v4().simple());
    scim.add_org(&org_id, &scim_token);
    let tenant_id = TenantStore::new(env.pool.clone())
        .with_key(env.secrets_key.clone())
        .create(&NewTenant {
            name: name.to_string(),
            graph_tenant_id: entra_tenant.clone(),
            graph_login_url: graph_url.clone(),
            graph_base_url: graph_url,
            client_id: "dirsync-app".into(),
            client_secret: SecretString::from(client_secret),
            scim_base_url: format!("{scim_url}/identity/scim/{org_id}/v2"),
            scim_token: SecretString::from(scim_token),
            allow_hard_delete,
        })
        .await?;
    Ok(Pairing {
        tenant_id,
        entra_tenant,
        org_id,
    })
}

/// Delays every request to `router` by `latency` (none when zero).
/// Starts `exe role`, set up by `configure`, with no input, its output dropped, and killed
/// when dropped; the variable `log_var`, when set, is its `RUST_LOG`. The child and its pid.
pub(crate) fn spawn_process(
    exe: &Path,
    role: &str,
    log_var: &str,
    configure: impl FnOnce(&mut Command),
) -> anyhow::Result<(Child, u32)> {
    let mut command = Command::new(exe);
    command.arg(role);
    configure(&mut command);
    if let Ok(filter) = std::env::var(log_var) {
        command.env("RUST_LOG", filter);
    }
    let child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {role} {}", exe.display()))?;
    let pid = child
        .id()
        .with_context(|| format!("{role} exited at once"))?;
    Ok((child, pid))
}

pub fn with_latency(router: axum::Router, latency: Duration) -> axum::Router {
    with_latency_jitter(router, latency, Duration::ZERO)
}

/// Delays every request to `router` by `latency` plus up to `jitter`, uniformly at random.
pub fn with_latency_jitter(
    router: axum::Router,
    latency: Duration,
    jitter: Duration,
) -> axum::Router {
    if latency.is_zero() && jitter.is_zero() {
        return router;
    }
    let jitter_us = jitter.as_micros() as u64;
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let extra = Duration::from_micros(fastrand::u64(0..=jitter_us));
            tokio::time::sleep(latency + extra).await;
            next.run(request).await
        },
    ))
}

/// The binary that runs `worker` processes: the demo binary next to the current executable
/// (or the current executable itself when it is the demo).
pub fn demo_exe() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    if me.file_stem().is_some_and(|s| s == "demo") {
        return Ok(me);
    }
    // Test executables live in target/<profile>/deps; the demo binary one level up.
    let dir = me.parent().context("executable without a directory")?;
    for candidate in [dir.join("demo"), dir.join("..").join("demo")] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    anyhow::bail!("demo binary not found next to {}", me.display())
}

/// Creates a plain user named `user_name` through `client`; returns its Webex id.
pub async fn create_scim_user(client: &ScimClient, user_name: &str) -> anyhow::Result<String> {
    let attributes = [
        ("userName", serde_json::json!(user_name)),
        ("userType", serde_json::json!("user")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let resource = dirsync_worker::scim::user_resource(&attributes)?;
    Ok(client.create_user(&resource).await?.id)
}
