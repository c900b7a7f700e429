//! The deployment files (`Dockerfile`, `deploy/compose.yaml`, `deploy/otel-collector.yaml`,
//! `deploy/k8s/`) checked against each other and against the code, so a manifest cannot
//! drift from the binaries unnoticed: probe paths the binaries serve (the coordinator's
//! readiness on `/readyz`), environment variables they read, the batch queue name the
//! topology derives, the queue settings coordinators and workers must share (prefix and
//! delivery limit), the worker's drain bound, plus the safety rules of the Kubernetes objects (sizes, non-root, read-only root, secrets only
//! from the Secret, default-deny network policy). No cluster or container engine needed.
//!
//! Each check is a function returning its violations; `every_check_catches_a_broken_file`
//! breaks the files in memory, one way per check, and asserts the check notices.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// The batch queue's scaling, the coordinators' leases and the sizes rest on these names.
const NAMESPACE: &str = "dirsync";
const COORDINATOR: &str = "dirsync-coordinator";
const WORKER: &str = "dirsync-worker";
const SECRET: &str = "dirsync-secrets";

/// The compose services of the demo (deploy/compose.yaml's header).
const COMPOSE_SERVICES: [&str; 11] = [
    "postgres",
    "redis",
    "rabbitmq",
    "jaeger",
    "otel-collector",
    "migrate",
    "coordinator",
    "worker",
    "graph-sim",
    "scim-sim",
    "setup",
];

/// Dockerfile targets that run dirsync's binaries, with the binaries each must carry.
const TARGETS: [(&str, &[&str]); 4] = [
    ("coordinator", &["dirsync"]),
    ("worker", &["dirsync-worker"]),
    ("simulators", &["graph-sim", "scim-sim", "demo"]),
    ("cli", &["dirsync"]),
];

/// Egress ports the fleet needs: DNS, PostgreSQL, RabbitMQ, Redis, HTTPS, OTLP/HTTP.
const EGRESS_PORTS: [i64; 6] = [53, 5432, 5672, 6379, 443, 4318];
/// Ingress ports: the coordinator's HTTP face (API, avatars, metrics), the worker's metrics.
const INGRESS_PORTS: [i64; 2] = [8480, 9465];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("load-tests sits in the workspace")
        .to_path_buf()
}

/// The files under test, by path relative to the repository, as text (so a test can break
/// one in memory).
#[derive(Clone)]
struct Files(BTreeMap<String, String>);

impl Files {
    fn load() -> Self {
        let root = repo();
        let mut files = BTreeMap::new();
        for dir in ["deploy", "deploy/k8s"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("reading deploy/") {
                let path = entry.expect("a directory entry").path();
                let ext = path.extension().and_then(|e| e.to_str());
                if matches!(ext, Some("yaml" | "yml")) {
                    let rel = path.strip_prefix(&root).unwrap().to_string_lossy().into();
                    files.insert(rel, std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        files.insert(
            "Dockerfile".into(),
            std::fs::read_to_string(root.join("Dockerfile")).expect("reading the Dockerfile"),
        );
        Files(files)
    }

    /// A copy with `from` replaced by `to` once in `file`; `from` must be there, so a
    /// mutation never silently stops applying.
    fn broken(&self, file: &str, from: &str, to: &str) -> Files {
        let text = &self.0[file];
        assert!(text.contains(from), "{file} no longer contains {from:?}");
        let mut copy = self.clone();
        copy.0.insert(file.into(), text.replacen(from, to, 1));
        copy
    }

    fn parse(&self) -> Deploy {
        let mut k8s = Vec::new();
        let mut compose = Yaml::BadValue;
        let mut otel = Yaml::BadValue;
        for (path, text) in &self.0 {
            if path == "Dockerfile" {
                continue;
            }
            let docs = YamlLoader::load_from_str(text)
                .unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"));
            match path.as_str() {
                "deploy/compose.yaml" => compose = docs.into_iter().next().unwrap(),
                "deploy/otel-collector.yaml" => otel = docs.into_iter().next().unwrap(),
                p if p.starts_with("deploy/k8s/") => {
                    let file = p.trim_start_matches("deploy/k8s/").to_owned();
                    k8s.extend(docs.into_iter().map(|d| (file.clone(), d)));
                }
                other => panic!("{other}: a YAML file under deploy/ that no check reads"),
            }
        }
        Deploy {
            k8s,
            compose,
            otel,
            dockerfile: self.0["Dockerfile"].clone(),
        }
    }
}

struct Deploy {
    /// (file under deploy/k8s, document)
    k8s: Vec<(String, Yaml)>,
    compose: Yaml,
    otel: Yaml,
    dockerfile: String,
}

/// The source of the binaries: what they serve and read.
struct Code {
    /// coordinator/src, worker/src and telemetry/src, concatenated.
    text: String,
    coordinator_config: String,
    worker_config: String,
    topology: String,
}

impl Code {
    fn load() -> Self {
        fn walk(dir: &Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push_str(&std::fs::read_to_string(&path).unwrap());
                    out.push('\n');
                }
            }
        }
        let root = repo();
        let mut text = String::new();
        for dir in ["coordinator/src", "worker/src", "telemetry/src"] {
            walk(&root.join(dir), &mut text);
        }
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        Code {
            text,
            coordinator_config: read("coordinator/src/config.rs"),
            worker_config: read("worker/src/config.rs"),
            topology: read("proto/src/topology.rs"),
        }
    }

    /// Whether `name` occurs in the source as a whole identifier (an env var it reads or
    /// documents reading).
    fn mentions(&self, name: &str) -> bool {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        self.text.match_indices(name).any(|(at, _)| {
            let before = self.text[..at].chars().next_back();
            let after = self.text[at + name.len()..].chars().next();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        })
    }

    /// Whether an HTTP route with exactly this path is registered.
    fn routes(&self, path: &str) -> bool {
        self.text.contains(&format!(".route(\"{path}\""))
    }

    /// The longest a worker waits for its in-flight batches after SIGTERM.
    fn worker_drain_secs(&self) -> i64 {
        let at = self
            .worker_config
            .find("shutdown_grace: Duration::from_secs(")
            .expect("WorkerSettings::default sets shutdown_grace");
        let rest = &self.worker_config[at + "shutdown_grace: Duration::from_secs(".len()..];
        rest[..rest.find(')').unwrap()].parse().unwrap()
    }

    /// The default of `DIRSYNC_PREFIX` as the worker declares it.
    fn default_prefix(&self) -> String {
        Self::prefix_in(&self.worker_config)
    }

    /// The default of `DIRSYNC_PREFIX` in a binary's `config.rs`.
    fn prefix_in(config: &str) -> String {
        let key = "env = \"DIRSYNC_PREFIX\", default_value = \"";
        let at = config.find(key).expect("the binary reads DIRSYNC_PREFIX");
        let rest = &config[at + key.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The defaults of the queue settings that coordinators and workers must share, for
    /// `process` ("coordinator" or "worker"): the prefix from its `config.rs`, the delivery
    /// limit from `DEFAULT_DELIVERY_LIMIT` (which both configs take, see
    /// `what_the_checks_read_is_found_in_the_code`).
    fn queue_defaults(&self, process: &str) -> BTreeMap<&'static str, String> {
        let config = match process {
            "coordinator" => &self.coordinator_config,
            _ => &self.worker_config,
        };
        let key = "pub const DEFAULT_DELIVERY_LIMIT: u32 = ";
        let at = self.topology.find(key).expect("DEFAULT_DELIVERY_LIMIT");
        let rest = &self.topology[at + key.len()..];
        let limit = rest[..rest.find(';').unwrap()].trim().replace('_', "");
        BTreeMap::from([
            ("DIRSYNC_PREFIX", Self::prefix_in(config)),
            ("DIRSYNC_DELIVERY_LIMIT", limit),
        ])
    }

    /// The batch queue's name for `prefix`, as `Topology::batch_queue` forms it.
    fn batch_queue(&self, prefix: &str) -> String {
        let at = self
            .topology
            .find("fn batch_queue")
            .expect("Topology::batch_queue");
        let body = &self.topology[at..];
        let fmt = body
            .find("format!(\"")
            .expect("batch_queue formats its name")
            + 9;
        let pattern = &body[fmt..fmt + body[fmt..].find('"').unwrap()];
        pattern.replacen("{}", prefix, 1)
    }
}

fn s(y: &Yaml) -> Option<&str> {
    y.as_str()
}

fn seq(y: &Yaml) -> &[Yaml] {
    y.as_vec().map_or(&[], Vec::as_slice)
}

/// A scalar as text (numbers and booleans too).
fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(v) | Yaml::Real(v) => Some(v.clone()),
        Yaml::Integer(v) => Some(v.to_string()),
        Yaml::Boolean(v) => Some(v.to_string()),
        _ => None,
    }
}

fn hash_keys(y: &Yaml) -> Vec<String> {
    y.as_hash()
        .map(|h| h.keys().filter_map(text).collect())
        .unwrap_or_default()
}

/// Bytes of a Kubernetes quantity such as `128Mi`.
fn bytes(quantity: &str) -> Option<u64> {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = quantity.strip_suffix(suffix) {
            return n.parse::<u64>().ok().map(|n| n * factor);
        }
    }
    quantity.parse().ok()
}

/// Names whose values must never be literals in a manifest.
fn secretish(name: &str) -> bool {
    ["SECRET", "TOKEN", "KEY", "PASSWORD"]
        .iter()
        .any(|w| name.contains(w))
        || ["DATABASE_URL", "AMQP_URL", "REDIS_URL"].contains(&name)
}

impl Deploy {
    fn objects(&self, kind: &str) -> impl Iterator<Item = &Yaml> {
        self.k8s
            .iter()
            .map(|(_, d)| d)
            .filter(move |d| s(&d["kind"]) == Some(kind))
    }

    fn object(&self, kind: &str, name: &str) -> Option<&Yaml> {
        self.objects(kind)
            .find(|d| s(&d["metadata"]["name"]) == Some(name))
    }

    /// (object name, pod spec) of every Deployment and Job.
    fn pod_specs(&self) -> Vec<(String, &Yaml)> {
        self.objects("Deployment")
            .chain(self.objects("Job"))
            .map(|d| {
                let name = s(&d["metadata"]["name"]).unwrap_or("?").to_owned();
                (name, &d["spec"]["template"]["spec"])
            })
            .collect()
    }

    /// The ConfigMap's settings, by name.
    fn config(&self) -> BTreeMap<String, String> {
        self.objects("ConfigMap")
            .flat_map(|c| c["data"].as_hash().into_iter().flatten())
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect()
    }

    /// The keys of the Secret template.
    fn secret_keys(&self) -> BTreeSet<String> {
        self.object("Secret", SECRET)
            .map(|s| hash_keys(&s["stringData"]))
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    fn compose_service(&self, name: &str) -> &Yaml {
        &self.compose["services"][name]
    }

    /// Compose services running a dirsync binary: built from the Dockerfile's dirsync targets.
    fn compose_dirsync_services(&self) -> Vec<(String, &Yaml)> {
        self.compose["services"]
            .as_hash()
            .into_iter()
            .flatten()
            .filter(|(_, svc)| {
                matches!(
                    s(&svc["build"]["target"]),
                    Some("coordinator" | "worker" | "cli")
                )
            })
            .filter_map(|(k, v)| Some((text(k)?, v)))
            .collect()
    }

    /// Names of the Dockerfile's stages and each stage's lines.
    fn stages(&self) -> Vec<(String, Vec<String>)> {
        let mut stages: Vec<(String, Vec<String>)> = Vec::new();
        for line in self.dockerfile.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words
                .first()
                .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
            {
                let name = match words.as_slice() {
                    [_, .., as_, name] if as_.eq_ignore_ascii_case("AS") => (*name).to_owned(),
                    _ => String::new(),
                };
                stages.push((name, Vec::new()));
            } else if let Some((_, lines)) = stages.last_mut() {
                lines.push(line.to_owned());
            }
        }
        stages
    }
}

// ---------------------------------------------------------------------------------------
// The checks: each returns what is wrong, empty when all is well.

/// Every object names its apiVersion, kind, name and (unless cluster-scoped) the namespace;
/// the kustomization lists every manifest (but never the Secret template) and nothing else.
fn check_objects_complete(d: &Deploy) -> Vec<String> {
    let mut bad = Vec::new();
    let mut files = BTreeSet::new();
    let mut listed = BTreeSet::new();
    for (file, doc) in &d.k8s {
        if s(&doc["kind"]) == Some("Kustomization") {
            listed.extend(
                seq(&doc["resources"])
                    .iter()
                    .filter_map(s)
                    .map(str::to_owned),
            );
            if s(&doc["namespace"]) != Some(NAMESPACE) {
                bad.push(format!(
                    "{file}: the kustomization sets namespace {NAMESPACE}"
                ));
            }
            continue;
        }
        if file != "secret.example.yaml" {
            files.insert(file.clone());
        }
        let name = s(&doc["metadata"]["name"]);
        for (field, value) in [
            ("apiVersion", s(&doc["apiVersion"])),
            ("kind", s(&doc["kind"])),
            ("metadata.name", name),
        ] {
            if value.is_none_or(str::is_empty) {
                bad.push(format!("{file}: an object without {field}"));
            }
        }
        let cluster_scoped = s(&doc["kind"]) == Some("Namespace");
        let namespace = s(&doc["metadata"]["namespace"]);
        if !cluster_scoped && namespace != Some(NAMESPACE) {
            bad.push(format!("{file}: {name:?} is not in namespace {NAMESPACE}"));
        }
    }
    if listed.contains("secret.example.yaml") {
        bad.push("the kustomization applies the Secret template".into());
    }
    for missing in files.difference(&listed) {
        bad.push(format!("{missing} is not listed in kustomization.yaml"));
    }
    for extra in listed.difference(&files) {
        bad.push(format!(
            "kustomization.yaml lists {extra}, which does not exist"
        ));
    }
    bad
}

/// Two coordinators (leases make that safe).
fn check_coordinator_replicas(d: &Deploy) -> Vec<String> {
    match d.object("Deployment", COORDINATOR) {
        Some(c) if c["spec"]["replicas"].as_i64() == Some(2) => vec![],
        Some(c) => vec![format!(
            "the coordinator runs {:?} replicas, not 2",
            c["spec"]["replicas"]
        )],
        None => vec![format!("no Deployment {COORDINATOR}")],
    }
}

/// A ScaledObject scales the worker Deployment on the real batch queue's length, with its
/// broker URL from the Secret.
fn check_worker_scaling(d: &Deploy, code: &Code) -> Vec<String> {
    let prefix = d
        .config()
        .get("DIRSYNC_PREFIX")
        .cloned()
        .unwrap_or_else(|| code.default_prefix());
    let queue = code.batch_queue(&prefix);
    let mut bad = Vec::new();
    if d.object("Deployment", WORKER).is_none() {
        bad.push(format!("no Deployment {WORKER}"));
    }
    let scaled: Vec<&Yaml> = d
        .objects("ScaledObject")
        .filter(|o| {
            let target = &o["spec"]["scaleTargetRef"];
            s(&target["name"]) == Some(WORKER)
                && s(&target["kind"]).unwrap_or("Deployment") == "Deployment"
        })
        .collect();
    let [scaled] = scaled.as_slice() else {
        return vec![format!(
            "{} ScaledObjects target {WORKER}, not one",
            scaled.len()
        )];
    };
    let (min, max) = (
        scaled["spec"]["minReplicaCount"].as_i64().unwrap_or(0),
        scaled["spec"]["maxReplicaCount"].as_i64().unwrap_or(100),
    );
    if min < 1 || max < min {
        bad.push(format!(
            "worker replicas {min}..{max}: want at least 1, max >= min"
        ));
    }
    let rabbit: Vec<&Yaml> = seq(&scaled["spec"]["triggers"])
        .iter()
        .filter(|t| s(&t["type"]) == Some("rabbitmq"))
        .collect();
    if rabbit.is_empty() {
        bad.push("the worker ScaledObject has no rabbitmq trigger".into());
    }
    for trigger in rabbit {
        let meta = &trigger["metadata"];
        if s(&meta["queueName"]) != Some(queue.as_str()) {
            bad.push(format!(
                "the rabbitmq trigger watches {:?}, the batch queue is {queue:?}",
                meta["queueName"]
            ));
        }
        if s(&meta["mode"]) != Some("QueueLength") {
            bad.push("the rabbitmq trigger is not on QueueLength".into());
        }
        if !s(&meta["value"]).is_some_and(|v| v.parse::<u32>().is_ok_and(|n| n > 0)) {
            bad.push("the rabbitmq trigger's value is not a positive count".into());
        }
        if !meta["host"].is_badvalue() {
            bad.push("the rabbitmq trigger has a literal host (credentials)".into());
        }
        let auth = s(&trigger["authenticationRef"]["name"]).unwrap_or("");
        let Some(auth) = d.object("TriggerAuthentication", auth) else {
            bad.push(format!("no TriggerAuthentication {auth:?}"));
            continue;
        };
        let host = seq(&auth["spec"]["secretTargetRef"])
            .iter()
            .find(|r| s(&r["parameter"]) == Some("host"));
        match host {
            Some(r)
                if s(&r["name"]) == Some(SECRET)
                    && s(&r["key"]).is_some_and(|k| d.secret_keys().contains(k)) => {}
            _ => bad.push("the TriggerAuthentication takes no host from the Secret".into()),
        }
    }
    bad
}

/// Every Deployment has a PodDisruptionBudget selecting its pods.
fn check_disruption_budgets(d: &Deploy) -> Vec<String> {
    let mut bad = Vec::new();
    for deploy in d.objects("Deployment") {
        let name = s(&deploy["metadata"]["name"]).unwrap_or("?");
        let labels = &deploy["spec"]["template"]["metadata"]["labels"];
        let covered = d.objects("PodDisruptionBudget").any(|pdb| {
            let selector = pdb["spec"]["selector"]["matchLabels"].as_hash();
            selector.is_some_and(|sel| {
                !sel.is_empty()
                    && sel
                        .iter()
                        .all(|(k, v)| labels[k.as_str().unwrap_or("")] == *v)
            })
        });
        if !covered {
            bad.push(format!("no PodDisruptionBudget selects the pods of {name}"));
        }
    }
    bad
}

/// Every container: memory requested and limited, non-root, read-only root, no privilege
/// escalation, no capabilities, RuntimeDefault seccomp; long-running ones probed for
/// liveness and readiness on paths the binaries serve, on ports they expose.
fn check_containers(d: &Deploy, code: &Code) -> Vec<String> {
    let mut bad = Vec::new();
    for (owner, pod) in d.pod_specs() {
        let long_running = d.object("Deployment", &owner).is_some();
        let pod_sec = &pod["securityContext"];
        for c in seq(&pod["containers"]) {
            let name = format!("{owner}/{}", s(&c["name"]).unwrap_or("?"));
            let resources = &c["resources"];
            let request = s(&resources["requests"]["memory"]).and_then(bytes);
            let limit = s(&resources["limits"]["memory"]).and_then(bytes);
            match (request, limit) {
                (Some(r), Some(l)) if r <= l => {}
                _ => bad.push(format!(
                    "{name}: memory requests and limits (request <= limit)"
                )),
            }
            let sec = &c["securityContext"];
            let either = |key: &str| sec[key].as_bool().or_else(|| pod_sec[key].as_bool());
            if either("runAsNonRoot") != Some(true) {
                bad.push(format!("{name}: runAsNonRoot is not true"));
            }
            if sec["readOnlyRootFilesystem"].as_bool() != Some(true) {
                bad.push(format!("{name}: readOnlyRootFilesystem is not true"));
            }
            if sec["allowPrivilegeEscalation"].as_bool() != Some(false) {
                bad.push(format!("{name}: allowPrivilegeEscalation is not false"));
            }
            if !seq(&sec["capabilities"]["drop"])
                .iter()
                .any(|c| s(c) == Some("ALL"))
            {
                bad.push(format!("{name}: capabilities are not all dropped"));
            }
            let seccomp =
                s(&sec["seccompProfile"]["type"]).or_else(|| s(&pod_sec["seccompProfile"]["type"]));
            if seccomp != Some("RuntimeDefault") {
                bad.push(format!("{name}: seccomp profile is not RuntimeDefault"));
            }
            if !long_running {
                continue;
            }
            let ports: Vec<&Yaml> = seq(&c["ports"]).iter().collect();
            for probe in ["livenessProbe", "readinessProbe"] {
                let get = &c[probe]["httpGet"];
                let path = s(&get["path"]).unwrap_or("");
                if !code.routes(path) {
                    bad.push(format!(
                        "{name}: {probe} on {path:?}, which no binary serves"
                    ));
                }
                let port_known = ports.iter().any(|p| {
                    (s(&get["port"]).is_some() && p["name"] == get["port"])
                        || (get["port"].as_i64().is_some() && p["containerPort"] == get["port"])
                });
                if !port_known {
                    bad.push(format!(
                        "{name}: {probe} on a port the container does not expose"
                    ));
                }
            }
        }
    }
    bad
}

/// Secrets come only from the Secret (secretKeyRef on keys the template has); the
/// ConfigMap and the template hold none; compose takes secret values from the environment.
fn check_secrets(d: &Deploy) -> Vec<String> {
    let mut bad = Vec::new();
    let keys = d.secret_keys();
    if keys.is_empty() {
        bad.push(format!("no Secret template {SECRET} with stringData"));
    }
    if let Some(template) = d.object("Secret", SECRET) {
        for (k, v) in template["stringData"].as_hash().into_iter().flatten() {
            let v = text(v).unwrap_or_default();
            if !(v.starts_with('<') && v.ends_with('>')) {
                bad.push(format!(
                    "the Secret template has a value for {k:?}: use <placeholders>"
                ));
            }
        }
    }
    for (owner, pod) in d.pod_specs() {
        for c in seq(&pod["containers"]) {
            for env in seq(&c["env"]) {
                let name = s(&env["name"]).unwrap_or("");
                let secret_ref = &env["valueFrom"]["secretKeyRef"];
                if !secret_ref.is_badvalue() {
                    let key = s(&secret_ref["key"]).unwrap_or("");
                    if s(&secret_ref["name"]) != Some(SECRET) || !keys.contains(key) {
                        bad.push(format!("{owner}: {name} refers to a key {SECRET} lacks"));
                    }
                } else if secretish(name) {
                    bad.push(format!("{owner}: {name} is not taken from the Secret"));
                }
            }
        }
    }
    for (name, value) in d.config() {
        if secretish(&name) {
            bad.push(format!("the ConfigMap holds {name}, a secret"));
        }
        if value.contains('@') && value.contains("://") {
            bad.push(format!("the ConfigMap's {name} carries credentials"));
        }
    }
    for (service, svc) in d.compose_dirsync_services() {
        for (k, v) in svc["environment"].as_hash().into_iter().flatten() {
            let (k, v) = (text(k).unwrap_or_default(), text(v).unwrap_or_default());
            let from_env = v.starts_with("${") && v.ends_with('}');
            if ["SECRET", "TOKEN", "KEY", "PASSWORD"]
                .iter()
                .any(|w| k.contains(w))
                && !from_env
            {
                bad.push(format!("compose {service}: {k} is a literal, not ${{...}}"));
            }
        }
    }
    bad
}

/// A NetworkPolicy denies all ingress and egress of every pod, and the others open only
/// the fleet's ports.
fn check_network_policies(d: &Deploy) -> Vec<String> {
    let mut bad = Vec::new();
    let default_deny = d.objects("NetworkPolicy").any(|p| {
        let spec = &p["spec"];
        let types: BTreeSet<&str> = seq(&spec["policyTypes"]).iter().filter_map(s).collect();
        spec["podSelector"].as_hash().is_some_and(|h| h.is_empty())
            && types == BTreeSet::from(["Ingress", "Egress"])
            && spec["ingress"].is_badvalue()
            && spec["egress"].is_badvalue()
    });
    if !default_deny {
        bad.push("no default-deny NetworkPolicy (podSelector {}, Ingress and Egress)".into());
    }
    let ports = |direction: &str| -> BTreeSet<i64> {
        d.objects("NetworkPolicy")
            .flat_map(|p| seq(&p["spec"][direction]).iter())
            .flat_map(|rule| seq(&rule["ports"]).iter())
            .filter_map(|p| p["port"].as_i64())
            .collect()
    };
    let (egress, ingress) = (ports("egress"), ports("ingress"));
    if egress != BTreeSet::from(EGRESS_PORTS) {
        bad.push(format!("egress ports {egress:?}, want {EGRESS_PORTS:?}"));
    }
    if ingress != BTreeSet::from(INGRESS_PORTS) {
        bad.push(format!("ingress ports {ingress:?}, want {INGRESS_PORTS:?}"));
    }
    bad
}

/// A stopping worker is given more time than it takes to drain (k8s and compose).
fn check_worker_grace(d: &Deploy, code: &Code) -> Vec<String> {
    let drain = code.worker_drain_secs();
    let mut bad = Vec::new();
    let k8s = d
        .object("Deployment", WORKER)
        .and_then(|w| w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_i64());
    if k8s.is_none_or(|g| g <= drain) {
        bad.push(format!(
            "worker terminationGracePeriodSeconds {k8s:?} <= drain {drain} s"
        ));
    }
    let compose = s(&d.compose_service("worker")["stop_grace_period"])
        .and_then(|g| g.strip_suffix('s'))
        .and_then(|g| g.parse::<i64>().ok());
    if compose.is_none_or(|g| g <= drain) {
        bad.push(format!(
            "compose worker stop_grace_period {compose:?} <= drain {drain} s"
        ));
    }
    bad
}

/// The coordinator is ready on `/readyz` (PostgreSQL and the broker answer) and alive on
/// `/healthz` (the process answers: a restart would not bring a dependency back), in
/// Kubernetes and compose.
fn check_coordinator_probes(d: &Deploy) -> Vec<String> {
    let mut bad = Vec::new();
    let containers = d
        .object("Deployment", COORDINATOR)
        .map(|c| seq(&c["spec"]["template"]["spec"]["containers"]))
        .unwrap_or_default();
    if containers.is_empty() {
        bad.push(format!("no containers in the Deployment {COORDINATOR}"));
    }
    for c in containers {
        let name = s(&c["name"]).unwrap_or("?");
        for (probe, want) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            let path = s(&c[probe]["httpGet"]["path"]);
            if path != Some(want) {
                bad.push(format!(
                    "{COORDINATOR}/{name}: {probe} on {path:?}, not {want}"
                ));
            }
        }
    }
    let test = seq(&d.compose_service("coordinator")["healthcheck"]["test"])
        .iter()
        .filter_map(s)
        .collect::<Vec<_>>()
        .join(" ");
    if !test.ends_with("/readyz") {
        bad.push(format!(
            "compose coordinator healthcheck {test:?} does not ask /readyz"
        ));
    }
    bad
}

/// The environment of the Deployment's first container as its process sees it: the
/// ConfigMaps of `envFrom`, then `env` (literal values and ConfigMap keys; anything else,
/// such as a Secret, as `<secret>`).
fn k8s_env(d: &Deploy, deployment: &str) -> Option<BTreeMap<String, String>> {
    let pod = &d.object("Deployment", deployment)?["spec"]["template"]["spec"];
    let c = seq(&pod["containers"]).first()?;
    let config_map = |name: &Yaml, key: &str| {
        let map = d.object("ConfigMap", s(name).unwrap_or(""))?;
        text(&map["data"][key])
    };
    let mut env = BTreeMap::new();
    for from in seq(&c["envFrom"]) {
        let name = s(&from["configMapRef"]["name"]).unwrap_or("");
        if let Some(map) = d.object("ConfigMap", name) {
            for (k, v) in map["data"].as_hash().into_iter().flatten() {
                if let (Some(k), Some(v)) = (text(k), text(v)) {
                    env.insert(k, v);
                }
            }
        }
    }
    for var in seq(&c["env"]) {
        let Some(name) = s(&var["name"]) else {
            continue;
        };
        let from_map = &var["valueFrom"]["configMapKeyRef"];
        let value = text(&var["value"])
            .or_else(|| config_map(&from_map["name"], s(&from_map["key"]).unwrap_or("")))
            .unwrap_or_else(|| "<secret>".into());
        env.insert(name.to_owned(), value);
    }
    Some(env)
}

/// Coordinators and workers declare the same queues: they run with the same prefix and the
/// same delivery limit (RabbitMQ refuses a queue redeclared with another limit, and another
/// prefix names other queues), in Kubernetes and in compose; the limit is at least 1.
fn check_queue_settings(d: &Deploy, code: &Code) -> Vec<String> {
    let mut bad = Vec::new();
    let compose_env = |service: &str| -> BTreeMap<String, String> {
        d.compose_service(service)["environment"]
            .as_hash()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect()
    };
    let k8s = (k8s_env(d, COORDINATOR), k8s_env(d, WORKER));
    let (Some(k8s_coordinator), Some(k8s_worker)) = k8s else {
        return vec![format!("no Deployment {COORDINATOR} or {WORKER}")];
    };
    let deployments = [
        ("kubernetes", k8s_coordinator, k8s_worker),
        ("compose", compose_env("coordinator"), compose_env("worker")),
    ];
    for (where_, coordinator, worker) in deployments {
        let (coordinator_defaults, worker_defaults) = (
            code.queue_defaults("coordinator"),
            code.queue_defaults("worker"),
        );
        for (var, coordinator_default) in coordinator_defaults {
            let c = coordinator.get(var).unwrap_or(&coordinator_default);
            let w = worker.get(var).unwrap_or(&worker_defaults[var]);
            if c != w {
                bad.push(format!(
                    "{where_}: the coordinator runs with {var}={c}, the worker with {var}={w}"
                ));
            }
        }
        for (process, env) in [("coordinator", &coordinator), ("worker", &worker)] {
            if let Some(limit) = env.get("DIRSYNC_DELIVERY_LIMIT")
                && !limit.parse::<u32>().is_ok_and(|n| n >= 1)
            {
                bad.push(format!(
                    "{where_}: the {process}'s DIRSYNC_DELIVERY_LIMIT {limit:?} is not a count of at least 1"
                ));
            }
        }
    }
    bad
}

/// Every variable the manifests and compose give a dirsync process is one the binaries read.
fn check_env_names(d: &Deploy, code: &Code) -> Vec<String> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (owner, pod) in d.pod_specs() {
        for c in seq(&pod["containers"]) {
            for env in seq(&c["env"]) {
                let name = s(&env["name"]).unwrap_or("").to_owned();
                names.insert(name, owner.clone());
            }
        }
    }
    for name in d.config().into_keys() {
        names.insert(name, "the ConfigMap".into());
    }
    for (service, svc) in d.compose_dirsync_services() {
        for name in hash_keys(&svc["environment"]) {
            names.insert(name, format!("compose {service}"));
        }
    }
    names
        .into_iter()
        .filter(|(name, _)| !code.mentions(name))
        .map(|(name, owner)| format!("{owner} sets {name}, which no binary reads"))
        .collect()
}

/// The compose file brings up the whole demo, in order, with healthchecks.
fn check_compose(d: &Deploy) -> Vec<String> {
    let mut bad = Vec::new();
    let services = hash_keys(&d.compose["services"]);
    for want in COMPOSE_SERVICES {
        if !services.iter().any(|s| s == want) {
            bad.push(format!("compose has no {want} service"));
        }
    }
    let targets: BTreeSet<String> = d.stages().into_iter().map(|(n, _)| n).collect();
    for name in &services {
        let svc = d.compose_service(name);
        if let Some(target) = s(&svc["build"]["target"])
            && !targets.contains(target)
        {
            bad.push(format!(
                "compose {name} builds target {target}, not in the Dockerfile"
            ));
        }
        for (dep, cond) in svc["depends_on"].as_hash().into_iter().flatten() {
            let dep = dep.as_str().unwrap_or("");
            let needs_health = s(&cond["condition"]) == Some("service_healthy");
            if needs_health && d.compose_service(dep)["healthcheck"].is_badvalue() {
                bad.push(format!(
                    "compose {name} waits for {dep} to be healthy: no healthcheck"
                ));
            }
            if !services.iter().any(|s| s == dep) {
                bad.push(format!("compose {name} depends on {dep}, not a service"));
            }
        }
    }
    for base in ["postgres", "redis", "rabbitmq", "coordinator", "worker"] {
        if d.compose_service(base)["healthcheck"].is_badvalue() {
            bad.push(format!("compose {base} has no healthcheck"));
        }
    }
    let command = |name: &str| -> String {
        seq(&d.compose_service(name)["command"])
            .iter()
            .filter_map(s)
            .collect::<Vec<_>>()
            .join(" ")
    };
    if command("migrate") != "migrate" || command("coordinator") != "serve" {
        bad.push("compose migrate runs `migrate`, the coordinator `serve`".into());
    }
    let setup = command("setup");
    for step in ["dirsync admin-token create", "tenant add --custom"] {
        if !setup.contains(step) {
            bad.push(format!("compose setup does not run `{step}`"));
        }
    }
    let migrated = &d.compose_service("coordinator")["depends_on"]["migrate"]["condition"];
    if s(migrated) != Some("service_completed_successfully") {
        bad.push("the coordinator does not wait for migrate to complete".into());
    }
    if d.compose_service("worker")["deploy"]["replicas"].is_badvalue() {
        bad.push("compose worker has no deploy.replicas".into());
    }
    for (service, svc) in d.compose_dirsync_services() {
        for var in ["DIRSYNC_HTTP_ADDR", "WORKER_HTTP_ADDR"] {
            let addr = s(&svc["environment"][var]).unwrap_or("");
            if !addr.starts_with("0.0.0.0:") {
                bad.push(format!("compose {service}: {var} {addr:?} is not 0.0.0.0"));
            }
        }
    }
    // Traces: processes -> collector (a service) -> Jaeger (a service).
    let host = |url: &str| -> String {
        let rest = url.split("://").nth(1).unwrap_or(url);
        rest.split([':', '/']).next().unwrap_or("").to_owned()
    };
    let otlp = d.compose_dirsync_services().first().map(|(_, svc)| {
        s(&svc["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
            .unwrap_or("")
            .to_owned()
    });
    let collector = host(otlp.as_deref().unwrap_or(""));
    if !services.contains(&collector) {
        bad.push(format!("OTLP goes to {collector:?}, not a compose service"));
    }
    let exporters = d.otel["exporters"].as_hash().into_iter().flatten();
    for (name, exporter) in exporters {
        let target = host(s(&exporter["endpoint"]).unwrap_or(""));
        if !services.contains(&target) {
            bad.push(format!(
                "collector exporter {name:?} goes to {target:?}, not a service"
            ));
        }
    }
    bad
}

/// The runtime targets exist, carry their binaries and run as a non-root user; the builder
/// builds what they copy.
fn check_dockerfile(d: &Deploy) -> Vec<String> {
    let mut bad = Vec::new();
    let stages = d.stages();
    for (target, binaries) in TARGETS {
        let Some((_, lines)) = stages.iter().find(|(n, _)| n == target) else {
            bad.push(format!("no Dockerfile target {target}"));
            continue;
        };
        let user = lines.iter().rev().find_map(|l| l.strip_prefix("USER "));
        if user.is_none_or(|u| ["root", "0", "0:0"].contains(&u.trim())) {
            bad.push(format!(
                "target {target} does not switch to a non-root USER"
            ));
        }
        for binary in binaries {
            let copied = lines.iter().any(|l| {
                l.starts_with("COPY --from=builder") && l.contains(&format!("/out/{binary}"))
            });
            if !copied {
                bad.push(format!("target {target} does not carry {binary}"));
            }
        }
    }
    for (name, lines) in &stages {
        if name == "builder" {
            continue;
        }
        if !lines.iter().any(|l| l.starts_with("USER ")) {
            bad.push(format!("runtime stage {name:?} has no USER"));
        }
    }
    for package in [
        "dirsync-coordinator",
        "dirsync-worker",
        "dirsync-load-tests",
    ] {
        if !d.dockerfile.contains(&format!("-p {package}")) {
            bad.push(format!("the builder does not build {package}"));
        }
    }
    for (var, port) in [("DIRSYNC_HTTP_ADDR", 8480), ("WORKER_HTTP_ADDR", 9465)] {
        if !d.dockerfile.contains(&format!("ENV {var}=0.0.0.0:{port}")) {
            bad.push(format!("the images do not set {var}=0.0.0.0:{port}"));
        }
        if !d.dockerfile.contains(&format!("EXPOSE {port}")) {
            bad.push(format!("the images do not expose {port}"));
        }
    }
    bad
}

// ---------------------------------------------------------------------------------------

type Check = fn(&Deploy, &Code) -> Vec<String>;

const CHECKS: [(&str, Check); 13] = [
    ("objects", |d, _| check_objects_complete(d)),
    ("coordinator replicas", |d, _| check_coordinator_replicas(d)),
    ("worker scaling", check_worker_scaling),
    ("disruption budgets", |d, _| check_disruption_budgets(d)),
    ("containers", check_containers),
    ("secrets", |d, _| check_secrets(d)),
    ("network policies", |d, _| check_network_policies(d)),
    ("worker grace", check_worker_grace),
    ("coordinator probes", |d, _| check_coordinator_probes(d)),
    ("queue settings", check_queue_settings),
    ("env names", check_env_names),
    ("compose", |d, _| check_compose(d)),
    ("dockerfile", |d, _| check_dockerfile(d)),
];

fn run(name: &str, deploy: &Deploy, code: &Code) -> Vec<String> {
    let (_, check) = CHECKS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no check {name}"));
    check(deploy, code)
}

#[test]
fn the_deployment_files_agree_with_the_code() {
    let (deploy, code) = (Files::load().parse(), Code::load());
    assert!(deploy.k8s.len() > 10, "the k8s manifests were read");
    let mut failures = Vec::new();
    for (name, check) in CHECKS {
        failures.extend(
            check(&deploy, &code)
                .into_iter()
                .map(|f| format!("{name}: {f}")),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn what_the_checks_read_is_found_in_the_code() {
    let code = Code::load();
    assert_eq!(code.batch_queue("dirsync"), "dirsync.batches");
    assert_eq!(code.default_prefix(), "dirsync");
    assert!(code.worker_drain_secs() > 0);
    assert!(code.routes("/healthz") && code.routes("/readyz"));
    // The coordinator's own HTTP face serves /readyz (not only the worker's).
    let coordinator_http = std::fs::read_to_string(repo().join("coordinator/src/http.rs")).unwrap();
    assert!(coordinator_http.contains(".route(\"/readyz\""));
    // Both binaries default the delivery limit to the shared constant.
    for config in [&code.coordinator_config, &code.worker_config] {
        assert!(config.contains(
            "env = \"DIRSYNC_DELIVERY_LIMIT\",\n        default_value_t = dirsync_proto::topology::DEFAULT_DELIVERY_LIMIT"
        ));
    }
    assert_eq!(
        code.queue_defaults("coordinator")["DIRSYNC_DELIVERY_LIMIT"],
        "10"
    );
    assert_eq!(
        code.queue_defaults("coordinator")["DIRSYNC_PREFIX"],
        "dirsync"
    );
    assert!(!code.routes("/ready"));
    assert!(code.mentions("WORKER_PREFETCH") && !code.mentions("WORKER_PREFETC"));
}

/// Each check fails on a file broken the way it guards against.
#[test]
fn every_check_catches_a_broken_file() {
    let files = Files::load();
    let code = Code::load();
    let cases: &[(&str, &str, &str, &str)] = &[
        // (check, file, from, to)
        (
            "objects",
            "deploy/k8s/migrate-job.yaml",
            "  namespace: dirsync\n",
            "",
        ),
        (
            "objects",
            "deploy/k8s/kustomization.yaml",
            "  - keda.yaml\n",
            "",
        ),
        (
            "coordinator replicas",
            "deploy/k8s/coordinator.yaml",
            "replicas: 2",
            "replicas: 3",
        ),
        (
            "worker scaling",
            "deploy/k8s/keda.yaml",
            "queueName: dirsync.batches",
            "queueName: dirsync.batch",
        ),
        (
            "worker scaling",
            "deploy/k8s/configmap.yaml",
            "DIRSYNC_PREFIX: dirsync",
            "DIRSYNC_PREFIX: prod",
        ),
        (
            "worker scaling",
            "deploy/k8s/keda.yaml",
            "name: dirsync-worker\n  pollingInterval",
            "name: worker\n  pollingInterval",
        ),
        (
            "disruption budgets",
            "deploy/k8s/worker.yaml",
            "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: dirsync\n      app.kubernetes.io/component: worker",
            "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: dirsync\n      app.kubernetes.io/component: workers",
        ),
        (
            "containers",
            "deploy/k8s/worker.yaml",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        ),
        (
            "containers",
            "deploy/k8s/migrate-job.yaml",
            "limits:\n              memory: 128Mi",
            "limits: {}",
        ),
        (
            "containers",
            "deploy/k8s/worker.yaml",
            "path: /readyz",
            "path: /ready",
        ),
        (
            "containers",
            "deploy/k8s/coordinator.yaml",
            // The container's own setting (it overrides the pod's).
            "runAsNonRoot: true\n            readOnlyRootFilesystem",
            "runAsNonRoot: false\n            readOnlyRootFilesystem",
        ),
        (
            "containers",
            "deploy/k8s/worker.yaml",
            "drop: [\"ALL\"]",
            "drop: []",
        ),
        (
            "secrets",
            "deploy/k8s/coordinator.yaml",
            "- name: DATABASE_URL\n              valueFrom:\n                secretKeyRef: {name: dirsync-secrets, key: DATABASE_URL}",
            "- name: DATABASE_URL\n              value: postgres://dirsync:hunter2@db/dirsync",
        ),
        (
            "secrets",
            "deploy/k8s/configmap.yaml",
            "  RUST_LOG: info",
            "  DIRSYNC_AVATAR_KEY: abc",
        ),
        (
            "secrets",
            "deploy/k8s/secret.example.yaml",
            "\"<base64 of 32 random bytes>\"",
            "c2VjcmV0",
        ),
        (
            "secrets",
            "deploy/compose.yaml",
            "DIRSYNC_SECRETS_KEY: ${DIRSYNC_SECRETS_KEY:-",
            "DIRSYNC_SECRETS_KEY: x${DIRSYNC_SECRETS_KEY:-",
        ),
        (
            "network policies",
            "deploy/k8s/networkpolicies.yaml",
            "podSelector: {}\n  policyTypes: [Ingress, Egress]",
            "podSelector: {}\n  policyTypes: [Ingress]",
        ),
        (
            "network policies",
            "deploy/k8s/networkpolicies.yaml",
            "{protocol: TCP, port: 8480}",
            "{protocol: TCP, port: 22}",
        ),
        (
            "worker grace",
            "deploy/k8s/worker.yaml",
            "terminationGracePeriodSeconds: 330",
            "terminationGracePeriodSeconds: 30",
        ),
        (
            "worker grace",
            "deploy/compose.yaml",
            "stop_grace_period: 330s",
            "stop_grace_period: 10s",
        ),
        (
            "coordinator probes",
            "deploy/k8s/coordinator.yaml",
            "httpGet: {path: /readyz, port: http}",
            "httpGet: {path: /healthz, port: http}",
        ),
        (
            "coordinator probes",
            "deploy/compose.yaml",
            "http://127.0.0.1:8480/readyz",
            "http://127.0.0.1:8480/healthz",
        ),
        (
            "queue settings",
            "deploy/k8s/worker.yaml",
            "- name: OTEL_SERVICE_NAME\n              value: dirsync-worker",
            "- name: DIRSYNC_DELIVERY_LIMIT\n              value: \"5\"\n            - name: OTEL_SERVICE_NAME\n              value: dirsync-worker",
        ),
        (
            "queue settings",
            "deploy/k8s/coordinator.yaml",
            "- name: OTEL_SERVICE_NAME\n              value: dirsync-coordinator",
            "- name: DIRSYNC_PREFIX\n              value: staging\n            - name: OTEL_SERVICE_NAME\n              value: dirsync-coordinator",
        ),
        (
            "queue settings",
            "deploy/k8s/configmap.yaml",
            "DIRSYNC_DELIVERY_LIMIT: \"10\"",
            "DIRSYNC_DELIVERY_LIMIT: \"0\"",
        ),
        (
            "queue settings",
            "deploy/compose.yaml",
            "    environment: *dirsync-env\n    deploy:",
            "    environment:\n      DIRSYNC_DELIVERY_LIMIT: \"3\"\n    deploy:",
        ),
        (
            "env names",
            "deploy/k8s/configmap.yaml",
            "WORKER_PREFETCH:",
            "WORKER_PREFECH:",
        ),
        (
            "env names",
            "deploy/compose.yaml",
            "  REDIS_URL: redis://redis:6379",
            "  REDIS_ULR: redis://redis:6379",
        ),
        (
            "compose",
            "deploy/compose.yaml",
            "  setup:\n",
            "  set-up:\n",
        ),
        (
            "compose",
            "deploy/compose.yaml",
            "WORKER_HTTP_ADDR: 0.0.0.0:9465",
            "WORKER_HTTP_ADDR: 127.0.0.1:9465",
        ),
        (
            "compose",
            "deploy/compose.yaml",
            "condition: service_completed_successfully",
            "condition: service_started",
        ),
        (
            "compose",
            "deploy/otel-collector.yaml",
            "endpoint: jaeger:4317",
            "endpoint: tempo:4317",
        ),
        (
            "dockerfile",
            "Dockerfile",
            "USER nonroot\nENTRYPOINT [\"/usr/local/bin/dirsync-worker\"]",
            "ENTRYPOINT [\"/usr/local/bin/dirsync-worker\"]",
        ),
        ("dockerfile", "Dockerfile", "AS simulators", "AS sims"),
    ];
    assert!(files.parse().k8s.len() > 10);
    for (check, file, from, to) in cases {
        assert!(
            run(check, &files.parse(), &code).is_empty(),
            "{check} fails on the real files"
        );
        let broken = files.broken(file, from, to).parse();
        assert!(
            !run(check, &broken, &code).is_empty(),
            "{check} did not notice {file}: {from:?} -> {to:?}"
        );
    }
    // Every check has a case.
    for (name, _) in CHECKS {
        assert!(
            cases.iter().any(|(c, ..)| *c == name),
            "no broken file for {name}"
        );
    }
}
