//! Settings of a coordinator process: flags, environment, configuration file, defaults
//! (in that order of precedence; `file.rs`), checked at start-up by
//! [`CoordinatorConfig::validate`]. Every setting is in docs/configuration.md, which a test
//! below keeps in step with the command line.

mod file;

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use dirsync_proto::{AllowedHosts, ProtoError, SecretsKey, Topology};
use secrecy::{ExposeSecret, SecretString};

pub use file::{Checks, FileSettings, FromToml, LoadError, Problems, load, try_load};

use crate::CoordinatorError;
use crate::avatars::AvatarSigner;
use crate::graph::app_budget::{AppBudget, AppRate};
use crate::quarantine::Thresholds;

/// Where the coordinator finds PostgreSQL, RabbitMQ and Redis, and its tuning knobs.
#[derive(Debug, Clone, clap::Args)]
pub struct CoordinatorConfig {
    /// A TOML file of settings (keys: docs/configuration.md); flags and environment
    /// variables win over it.
    #[arg(long, env = "DIRSYNC_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// PostgreSQL URL.
    // URLs carry passwords: `--help` never shows the environment's values.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/test",
        hide_env_values = true
    )]
    pub database_url: String,
    /// RabbitMQ URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,
    /// Redis URL.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix of queue, exchange and Redis key names (tests use a unique one).
    #[arg(long, env = "DIRSYNC_PREFIX", default_value = "dirsync")]
    pub prefix: String,
    /// Deliveries of a batch (failures, panics, lost workers) before RabbitMQ dead-letters
    /// it (`x-delivery-limit` of the batch queue and the priority lane). Every coordinator
    /// and worker of a deployment must use the same value: RabbitMQ refuses to redeclare a
    /// queue with other arguments (docs/deploy.md, upgrading).
    #[arg(
        long,
        env = "DIRSYNC_DELIVERY_LIMIT",
        default_value_t = dirsync_proto::topology::DEFAULT_DELIVERY_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub delivery_limit: u32,
    /// Most batches of one run published but not yet recorded.
    #[arg(long, env = "DIRSYNC_RUN_WINDOW", default_value_t = 64)]
    pub run_window: u32,
    /// Most tenants `serve` syncs at once.
    #[arg(
        long,
        env = "DIRSYNC_MAX_CONCURRENT_RUNS",
        default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_concurrent_runs: u32,
    /// Seconds a tenant lease lasts without renewal: how soon another coordinator resumes the
    /// runs of one that died.
    #[arg(long, env = "DIRSYNC_LEASE_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_secs: u64,
    /// Seconds from a failed user's last failure to its retries: the n-th retry waits the
    /// n-th value, the last one repeating (Entra's schedule: 6 h, 12 h, then daily).
    #[arg(
        long,
        env = "DIRSYNC_ESCROW_RETRY_SECS",
        value_delimiter = ',',
        default_values_t = crate::run::DEFAULT_ESCROW_RETRY_SECS
    )]
    pub escrow_retry_secs: Vec<u32>,
    /// Quarantine: a run's failures are judged from this many on (Entra: 5,000); a tenant
    /// can have its own (`dirsync tenant quarantine-thresholds`).
    #[arg(
        long,
        env = "DIRSYNC_QUARANTINE_MIN_FAILURES",
        default_value_t = Thresholds::ENTRA.min_failures,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub quarantine_min_failures: u64,
    /// Quarantine: a run in which more than this percentage of the objects failed
    /// quarantines its tenant (Entra: 40).
    #[arg(
        long,
        env = "DIRSYNC_QUARANTINE_MAX_PERCENT",
        default_value_t = Thresholds::ENTRA.max_percent,
        value_parser = clap::value_parser!(u64).range(1..=100)
    )]
    pub quarantine_max_percent: u64,
    /// Quarantine: more failures than this in one run quarantine whatever the share
    /// (Entra: 40,000).
    #[arg(
        long,
        env = "DIRSYNC_QUARANTINE_MAX_FAILURES",
        default_value_t = Thresholds::ENTRA.max_failures,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub quarantine_max_failures: u64,
    /// Quarantine, small tenants: below the minimum, failures are judged from this
    /// percentage of the run's objects ...
    #[arg(
        long,
        env = "DIRSYNC_QUARANTINE_FLOOR_PERCENT",
        default_value_t = Thresholds::ENTRA.floor_percent,
        value_parser = clap::value_parser!(u64).range(0..=100)
    )]
    pub quarantine_floor_percent: u64,
    /// ... but from at least this many failures.
    #[arg(
        long,
        env = "DIRSYNC_QUARANTINE_SMALL_FLOOR",
        default_value_t = Thresholds::ENTRA.small_floor,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub quarantine_small_floor: u64,
    /// Address of `serve`'s HTTP face (`/healthz`, `/readyz`, the admin API, `/avatars/...`).
    #[arg(long, env = "DIRSYNC_HTTP_ADDR", default_value = "127.0.0.1:8480")]
    pub http_addr: std::net::SocketAddr,
    /// The URL at which Webex reaches that HTTP face; avatar URLs start with it. Avatars are
    /// synced only when this and the avatar key are set.
    #[arg(long, env = "DIRSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Secret (at least 32 bytes, the same on every coordinator) that signs avatar URLs.
    #[arg(long, env = "DIRSYNC_AVATAR_KEY", hide_env_values = true)]
    pub avatar_key: Option<SecretString>,
    /// Most users whose Entra photo one run looks at.
    #[arg(
        long,
        env = "DIRSYNC_AVATAR_CHECKS_PER_RUN",
        default_value_t = crate::run::DEFAULT_AVATAR_CHECKS_PER_RUN,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub avatar_checks_per_run: usize,
    /// Key that seals tenant secrets at rest: base64 of 32 random bytes, the same on every
    /// coordinator and worker (`openssl rand -base64 32`).
    /// Needed by the commands that read or write tenant secrets (`tenant add`, `sync`,
    /// `serve`).
    #[arg(
        long,
        env = "DIRSYNC_SECRETS_KEY",
        hide_env_values = true,
        value_parser = file::SecretsKeyParser
    )]
    pub secrets_key: Option<SecretsKey>,
    /// Hosts the coordinator may send a tenant's credentials to: Graph login and API hosts,
    /// Webex hosts. A tenant URL or a Graph nextLink/deltaLink naming another host is
    /// refused (`dirsync_proto::hosts`). Exact names or `*.domain`; the default is
    /// Microsoft's (global, GCC High, DoD) and Webex's.
    #[arg(
        long,
        env = "DIRSYNC_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_values_t = dirsync_proto::hosts::DEFAULT_ALLOWED_HOSTS.map(String::from)
    )]
    pub allowed_hosts: Vec<String>,
    /// Graph requests a second of one app registration (client id), across all its tenants
    /// and every coordinator, shared through Redis (0: off). Graph allows an app 150,000 RU
    /// per 20 s; the default assumes 2 RU a request and a burst of one second
    /// (`graph::app_budget`).
    #[arg(
        long,
        env = "DIRSYNC_GRAPH_APP_RATE",
        default_value_t = crate::graph::app_budget::DEFAULT_RATE_PER_SECOND
    )]
    pub graph_app_rate: f64,
}

/// The process's `allowed_hosts`, once [`CoordinatorConfig::install_allowed_hosts`] ran.
/// A process-wide setting because Graph clients are made per run, deep in the library, from
/// the tenant alone; a library user that never installs it checks nothing.
static ALLOWED_HOSTS: RwLock<Option<Arc<AllowedHosts>>> = RwLock::new(None);

/// The hosts this process may contact for a tenant (`None`: not configured, unchecked).
pub fn allowed_hosts() -> Option<Arc<AllowedHosts>> {
    ALLOWED_HOSTS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

impl CoordinatorConfig {
    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone()).with_delivery_limit(self.delivery_limit)
    }

    /// How avatar URLs are signed, when both the public URL and the key are set; one
    /// without the other is a mistake worth stopping for.
    pub fn avatar_signer(&self) -> Result<Option<AvatarSigner>, CoordinatorError> {
        match (&self.public_url, &self.avatar_key) {
            (Some(url), Some(key)) => AvatarSigner::new(url, key.clone()).map(Some),
            (None, None) => Ok(None),
            _ => Err(CoordinatorError::Invalid(
                "set both DIRSYNC_PUBLIC_URL and DIRSYNC_AVATAR_KEY to sync avatars, or neither"
                    .into(),
            )),
        }
    }

    /// Makes `allowed_hosts` the process's ([`allowed_hosts`]): every Graph client and Webex
    /// org request made from now on checks its hosts against it.
    pub fn install_allowed_hosts(&self) -> Result<(), CoordinatorError> {
        let allowed = AllowedHosts::parse(&self.allowed_hosts)
            .map_err(|e| CoordinatorError::Invalid(format!("allowed_hosts: {e}")))?;
        *ALLOWED_HOSTS
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(allowed));
        Ok(())
    }

    /// The budget of each Graph app registration as a whole, in the Redis at `redis_url`
    /// under `prefix`; `None` when `graph_app_rate` is 0 (off).
    pub fn graph_app_budget(&self) -> Result<Option<AppBudget>, CoordinatorError> {
        let Some(rate) = AppRate::per_second(self.graph_app_rate) else {
            return Ok(None);
        };
        AppBudget::new(&self.redis_url, &self.prefix, rate)
            .map(Some)
            // The error may quote the URL, and with it a password.
            .map_err(|_| CoordinatorError::Invalid("redis_url: not a redis url".into()))
    }

    /// Makes the Graph app budget the process's (`graph::app_budget::install`): every Graph
    /// client made from now on reserves its requests in it. Redis is reached on the first
    /// request, and an unreachable Redis leaves requests paced per tenant only.
    pub fn install_graph_app_budget(&self) -> Result<(), CoordinatorError> {
        crate::graph::app_budget::install(self.graph_app_budget()?);
        Ok(())
    }

    /// The key that seals tenant secrets; an error saying how to make one when it is unset.
    pub fn secrets_key(&self) -> Result<SecretsKey, CoordinatorError> {
        self.secrets_key
            .clone()
            .ok_or_else(|| CoordinatorError::Invalid(ProtoError::MissingSecretsKey.to_string()))
    }

    /// The deployment's quarantine thresholds, checked together (each value alone is
    /// checked when parsed): tenants without their own values are judged by these.
    pub fn quarantine_thresholds(&self) -> Result<Thresholds, CoordinatorError> {
        Thresholds {
            min_failures: self.quarantine_min_failures,
            floor_percent: self.quarantine_floor_percent,
            small_floor: self.quarantine_small_floor,
            max_percent: self.quarantine_max_percent,
            max_failures: self.quarantine_max_failures,
        }
        .validated()
    }
}

impl FileSettings for CoordinatorConfig {
    fn set_from_file(&mut self, id: &str, value: &toml::Value) -> Option<Result<(), String>> {
        use file::set;
        Some(match id {
            "database_url" => set(&mut self.database_url, value),
            "amqp_url" => set(&mut self.amqp_url, value),
            "redis_url" => set(&mut self.redis_url, value),
            "prefix" => set(&mut self.prefix, value),
            "delivery_limit" => set(&mut self.delivery_limit, value),
            "run_window" => set(&mut self.run_window, value),
            "max_concurrent_runs" => set(&mut self.max_concurrent_runs, value),
            "lease_secs" => set(&mut self.lease_secs, value),
            "escrow_retry_secs" => set(&mut self.escrow_retry_secs, value),
            "quarantine_min_failures" => set(&mut self.quarantine_min_failures, value),
            "quarantine_max_percent" => set(&mut self.quarantine_max_percent, value),
            "quarantine_max_failures" => set(&mut self.quarantine_max_failures, value),
            "quarantine_floor_percent" => set(&mut self.quarantine_floor_percent, value),
            "quarantine_small_floor" => set(&mut self.quarantine_small_floor, value),
            "http_addr" => set(&mut self.http_addr, value),
            "public_url" => set(&mut self.public_url, value),
            "avatar_key" => set(&mut self.avatar_key, value),
            "avatar_checks_per_run" => set(&mut self.avatar_checks_per_run, value),
            "secrets_key" => set(&mut self.secrets_key, value),
            "allowed_hosts" => set(&mut self.allowed_hosts, value),
            "graph_app_rate" => set(&mut self.graph_app_rate, value),
            _ => return None,
        })
    }

    /// Every problem at once, each naming its setting; values given by flags or the
    /// environment were range-checked by clap already, but file values were not, so every
    /// range is checked here again. The secrets key's format is checked where it is parsed
    /// (flag, environment or file); whether a command needs it is the command's business.
    fn validate(&self) -> Result<(), Problems> {
        let mut c = Checks::new::<Self>();
        c.database_url(&self.database_url);
        c.amqp_url(&self.amqp_url);
        c.redis_url(&self.redis_url);
        c.prefix(&self.prefix);
        c.delivery_limit(self.delivery_limit);
        c.at_least("run_window", self.run_window.into(), 1);
        c.at_least("max_concurrent_runs", self.max_concurrent_runs.into(), 1);
        c.at_least("lease_secs", self.lease_secs, 1);
        c.check(
            !self.escrow_retry_secs.is_empty(),
            "escrow_retry_secs",
            "must list at least one number of seconds",
        );
        c.check(
            self.escrow_retry_secs
                .iter()
                .all(|s| (1..=i32::MAX as u32).contains(s)),
            "escrow_retry_secs",
            format!("every value must be from 1 to {}", i32::MAX),
        );
        c.at_least("quarantine_min_failures", self.quarantine_min_failures, 1);
        c.percent("quarantine_max_percent", self.quarantine_max_percent, 1);
        c.at_least("quarantine_max_failures", self.quarantine_max_failures, 1);
        c.percent("quarantine_floor_percent", self.quarantine_floor_percent, 0);
        c.at_least("quarantine_small_floor", self.quarantine_small_floor, 1);
        c.check(
            self.quarantine_min_failures <= self.quarantine_max_failures,
            "quarantine_min_failures",
            format!(
                "must not be more than quarantine_max_failures ({} > {})",
                self.quarantine_min_failures, self.quarantine_max_failures
            ),
        );
        if let Some(url) = &self.public_url {
            c.url("public_url", url, &["http", "https"]);
            let parsed = url::Url::parse(url).ok();
            c.check(
                parsed.is_none_or(|u| u.host().is_some() && u.query().is_none()),
                "public_url",
                "must name a host and have no query",
            );
        }
        if let Some(key) = &self.avatar_key {
            let bytes = key.expose_secret().len();
            c.check(
                bytes >= crate::avatars::MIN_KEY_BYTES,
                "avatar_key",
                // Not even its length is repeated.
                format!("must be at least {} bytes", crate::avatars::MIN_KEY_BYTES),
            );
        }
        // Avatar URLs are signed with the key and start with the public URL: one without
        // the other cannot work (`avatar_signer`).
        c.check(
            self.public_url.is_some() == self.avatar_key.is_some(),
            if self.public_url.is_some() {
                "avatar_key"
            } else {
                "public_url"
            },
            "public_url and avatar_key go together: set both to sync avatars, or neither",
        );
        c.at_least(
            "avatar_checks_per_run",
            self.avatar_checks_per_run as u64,
            1,
        );
        if let Err(problem) = AllowedHosts::parse(&self.allowed_hosts) {
            c.check(false, "allowed_hosts", problem);
        }
        c.check(
            self.graph_app_rate.is_finite() && self.graph_app_rate >= 0.0,
            "graph_app_rate",
            format!(
                "must be 0 (off) or more requests a second, got {}",
                self.graph_app_rate
            ),
        );
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::file::testing::{self, TempFile};
    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        config: CoordinatorConfig,
    }

    #[test]
    fn avatars_need_both_the_public_url_and_the_key() {
        let key = "k".repeat(crate::avatars::MIN_KEY_BYTES);
        let signer = |flags: &[&str]| {
            let args = Args::try_parse_from(std::iter::once("c").chain(flags.iter().copied()))
                .map_err(|e| e.to_string())?;
            args.config
                .avatar_signer()
                .map(|s| s.is_some())
                .map_err(|e| e.to_string())
        };
        assert_eq!(signer(&[]), Ok(false));
        let url = "https://dirsync.example.com";
        assert_eq!(
            signer(&["--public-url", url, "--avatar-key", &key]),
            Ok(true)
        );
        assert!(signer(&["--public-url", url]).unwrap_err().contains("both"));
        assert!(
            signer(&["--avatar-key", &key])
                .unwrap_err()
                .contains("both")
        );
        assert!(
            signer(&["--public-url", url, "--avatar-key", "short"])
                .unwrap_err()
                .contains("at least 32 bytes")
        );
        assert!(signer(&["--avatar-checks-per-run", "0"]).is_err());
        // The key never shows in the configuration's debug form.
        let args = Args::try_parse_from(["c", "--avatar-key", &key]).unwrap();
        assert!(!format!("{args:?}").contains(&key));
    }

    #[test]
    fn quarantine_thresholds_from_flags() {
        // (flags, the thresholds, or a piece of the error)
        let cases: [(&[&str], Result<Thresholds, &str>); 9] = [
            (&[], Ok(Thresholds::ENTRA)),
            (
                &[
                    "--quarantine-min-failures",
                    "100",
                    "--quarantine-max-percent",
                    "25",
                    "--quarantine-max-failures",
                    "1000",
                    "--quarantine-floor-percent",
                    "0",
                    "--quarantine-small-floor",
                    "5",
                ],
                Ok(Thresholds {
                    min_failures: 100,
                    floor_percent: 0,
                    small_floor: 5,
                    max_percent: 25,
                    max_failures: 1_000,
                }),
            ),
            (
                &["--quarantine-max-percent", "0"],
                Err("0 is not in 1..=100"),
            ),
            (
                &["--quarantine-max-percent", "101"],
                Err("101 is not in 1..=100"),
            ),
            (&["--quarantine-max-percent", "forty"], Err("invalid digit")),
            (&["--quarantine-min-failures", "0"], Err("0 is not in 1..")),
            (
                &["--quarantine-floor-percent", "101"],
                Err("101 is not in 0..=100"),
            ),
            (&["--quarantine-small-floor", "0"], Err("0 is not in 1..")),
            (
                &["--quarantine-max-failures", "100"],
                Err("min failures (5000) must not be more than max failures (100)"),
            ),
        ];
        for (flags, want) in cases {
            let got = Args::try_parse_from(std::iter::once("t").chain(flags.iter().copied()))
                .map_err(|e| e.to_string())
                .and_then(|a| a.config.quarantine_thresholds().map_err(|e| e.to_string()));
            match (want, &got) {
                (Ok(t), Ok(parsed)) => assert_eq!(parsed, &t, "{flags:?}"),
                (Err(needle), Err(message)) => {
                    assert!(message.contains(needle), "{flags:?}: {message}")
                }
                _ => panic!("{flags:?}: expected {want:?}, got {got:?}"),
            }
        }
    }

    /// The problems `try_load` finds with `flags` (this process's environment, which tests
    /// do not change), or the loaded configuration.
    fn load_flags(flags: &[&str]) -> Result<CoordinatorConfig, String> {
        testing::load_flags(flags, |a: &mut Args| &mut a.config)
    }

    /// The settings the precedence tests look at, in one line.
    fn summary(c: &CoordinatorConfig) -> String {
        format!(
            "run_window={} max_concurrent_runs={} lease_secs={} prefix={} avatar_checks={} \
             escrow={:?}",
            c.run_window,
            c.max_concurrent_runs,
            c.lease_secs,
            c.prefix,
            c.avatar_checks_per_run,
            c.escrow_retry_secs
        )
    }

    /// Not a test on its own: the child side of [`testing::load_in_child`].
    #[test]
    fn child_load() {
        testing::child_load(|flags| load_flags(flags).map(|c| summary(&c)));
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let file = TempFile::new(
            "precedence",
            "run_window = 10\nmax_concurrent_runs = 3\nlease_secs = 30\n\
             prefix = \"from-file\"\nescrow_retry_secs = [60, 120]\n",
        );
        let path = file.arg();
        let cases: [testing::Case; 4] = [
            (
                &[],
                &[],
                "run_window=64 max_concurrent_runs=8 lease_secs=120 prefix=dirsync \
                 avatar_checks=20000 escrow=[21600, 43200, 86400]",
            ),
            (
                &[],
                &["--config", &path],
                "run_window=10 max_concurrent_runs=3 lease_secs=30 prefix=from-file \
                 avatar_checks=20000 escrow=[60, 120]",
            ),
            (
                &[
                    ("DIRSYNC_CONFIG", &path),
                    ("DIRSYNC_RUN_WINDOW", "20"),
                    ("DIRSYNC_MAX_CONCURRENT_RUNS", "5"),
                ],
                &["--run-window", "30"],
                "run_window=30 max_concurrent_runs=5 lease_secs=30 prefix=from-file \
                 avatar_checks=20000 escrow=[60, 120]",
            ),
            (
                &[("DIRSYNC_ESCROW_RETRY_SECS", "7,8")],
                &["--config", &path, "--prefix", "flag"],
                "run_window=10 max_concurrent_runs=3 lease_secs=30 prefix=flag \
                 avatar_checks=20000 escrow=[7, 8]",
            ),
        ];
        testing::assert_precedence(&Args::command(), &cases);
    }

    #[test]
    fn the_file_refuses_unknown_keys_and_wrong_types() {
        // (file, pieces of the error)
        let cases: [(&str, &[&str]); 7] = [
            (
                "run_windw = 10",
                &["unknown setting `run_windw` (did you mean `run_window`?)"],
            ),
            (
                "DIRSYNC_RUN_WINDOW = 10",
                &["unknown setting `DIRSYNC_RUN_WINDOW` (did you mean `run_window`?)"],
            ),
            (
                "worker_prefetch = 4\n[coordinator]\nrun_window = 1",
                &[
                    "2 problems",
                    "unknown setting `coordinator`",
                    "unknown setting `worker_prefetch`",
                ],
            ),
            (
                "run_window = \"ten\"",
                &["`run_window`: expected an integer, found a string"],
            ),
            (
                "lease_secs = -5",
                &["`lease_secs`: expected an integer from 0 to 18446744073709551615, found -5"],
            ),
            (
                "http_addr = \"localhost\"",
                &["`http_addr`: expected an address string such as \"127.0.0.1:8480\""],
            ),
            ("run_window = ", &["is not valid toml"]),
        ];
        testing::assert_files_refused(load_flags, &cases, &[]);
        // A value overridden by a flag is still checked.
        let file = TempFile::new("overridden", "run_window = true");
        let message = load_flags(&["--config", &file.arg(), "--run-window", "4"]).unwrap_err();
        assert!(
            message.contains("expected an integer, found a boolean"),
            "{message}"
        );
        let missing = load_flags(&["--config", "/nonexistent/dirsync.toml"]).unwrap_err();
        assert!(missing.contains("reading configuration file /nonexistent/dirsync.toml"));
    }

    #[test]
    fn validation_names_every_problem_at_once() {
        // (file, pieces of the error); file values skip clap's range checks, so they show
        // what `validate` catches whatever the source.
        let cases: [(&str, &[&str]); 6] = [
            (
                "run_window = 0\nmax_concurrent_runs = 0\nquarantine_max_percent = 101",
                &[
                    "3 problems",
                    "run_window (DIRSYNC_RUN_WINDOW, --run-window): must be at least 1, got 0",
                    "max_concurrent_runs (DIRSYNC_MAX_CONCURRENT_RUNS, \
                     --max-concurrent-runs): must be at least 1",
                    "quarantine_max_percent (DIRSYNC_QUARANTINE_MAX_PERCENT, \
                     --quarantine-max-percent): must be a percentage from 1 to 100, got 101",
                ],
            ),
            (
                "database_url = \"mysql://root:hunter2@db/x\"\namqp_url = \"not a url\"\n\
                 redis_url = \"http://cache\"",
                &[
                    "3 problems",
                    "database_url (DATABASE_URL, --database-url): must be a postgres:// or \
                     postgresql:// url, not mysql://",
                    "amqp_url (AMQP_URL, --amqp-url): is not a valid url",
                    "redis_url (REDIS_URL, --redis-url): must be a redis://",
                ],
            ),
            (
                "public_url = \"https://dirsync.example.com\"",
                &[
                    "avatar_key (DIRSYNC_AVATAR_KEY, --avatar-key): public_url and avatar_key go together",
                ],
            ),
            (
                "public_url = \"ftp://x\"\navatar_key = \"short\"",
                &[
                    "public_url (DIRSYNC_PUBLIC_URL, --public-url): must be a http:// or https:// url",
                    "avatar_key (DIRSYNC_AVATAR_KEY, --avatar-key): must be at least 32 bytes",
                ],
            ),
            (
                "quarantine_min_failures = 100\nquarantine_max_failures = 10\n\
                 escrow_retry_secs = []",
                &[
                    "must not be more than quarantine_max_failures (100 > 10)",
                    "escrow_retry_secs (DIRSYNC_ESCROW_RETRY_SECS, --escrow-retry-secs): must \
                     list at least one",
                ],
            ),
            (
                "prefix = \"\"\nsecrets_key = \"c2VjcmV0\"\nrun_window = 1\ndelivery_limit = 0",
                &[
                    "prefix (DIRSYNC_PREFIX, --prefix): must be a non-empty name",
                    "secrets_key",
                    "delivery_limit (DIRSYNC_DELIVERY_LIMIT, --delivery-limit): must be at least 1",
                ],
            ),
        ];
        // No secret is repeated: passwords in URLs, the avatar key, the secrets key.
        testing::assert_invalid(load_flags, &cases, &["hunter2", "short\"", "c2VjcmV0"]);
        // The queues are declared with the delivery limit given, never with 0.
        assert!(load_flags(&["--delivery-limit=0"]).is_err());
        let limited = load_flags(&["--delivery-limit=3"]).unwrap().topology();
        assert_eq!(limited.delivery_limit(), 3);
        // The defaults are valid.
        assert!(load_flags(&[]).is_ok());
    }

    #[tokio::test]
    async fn the_graph_app_rate_is_checked_and_zero_turns_the_budget_off() {
        let rate = |flags: &[&str]| {
            load_flags(flags).map(|c| c.graph_app_budget().unwrap().map(|b| b.rate().per_second))
        };
        assert_eq!(
            rate(&[]),
            Ok(Some(crate::graph::app_budget::DEFAULT_RATE_PER_SECOND))
        );
        assert_eq!(rate(&["--graph-app-rate", "120.5"]), Ok(Some(120.5)));
        assert_eq!(rate(&["--graph-app-rate", "0"]), Ok(None));
        let file = TempFile::new("graph-app-rate", "graph_app_rate = 900");
        assert_eq!(rate(&["--config", &file.arg()]), Ok(Some(900.0)));
        // (value, piece of the error): from a flag, the environment or the file alike.
        let cases = [
            (
                "-1",
                "graph_app_rate (DIRSYNC_GRAPH_APP_RATE, --graph-app-rate): must be 0 (off) \
                 or more requests a second, got -1",
            ),
            ("inf", "must be 0 (off) or more requests a second, got inf"),
            ("NaN", "must be 0 (off) or more requests a second, got NaN"),
            ("fast", "invalid float literal"),
        ];
        for (value, needle) in cases {
            let message = load_flags(&[&format!("--graph-app-rate={value}")]).unwrap_err();
            assert!(message.contains(needle), "{value}: {message}");
        }
        let file = TempFile::new("graph-app-rate-bad", "graph_app_rate = \"fast\"");
        let message = load_flags(&["--config", &file.arg()]).unwrap_err();
        assert!(
            message.contains("`graph_app_rate`: expected a number, found a string"),
            "{message}"
        );
    }

    #[test]
    fn secrets_stay_out_of_errors_and_help() {
        testing::assert_secrets_hidden(&Args::command(), load_flags);
        let help = Args::command().render_long_help().to_string();
        assert!(help.contains("--config <PATH>"), "{help}");
    }

    #[test]
    fn every_setting_can_come_from_the_file() {
        testing::assert_every_setting_from_file(&load_flags(&[]).unwrap());
    }

    /// docs/configuration.md lists exactly the environment variables of `dirsync` (every
    /// subcommand's too), each with its file key, flag and default.
    #[test]
    fn the_configuration_document_lists_every_setting() {
        testing::assert_documented::<CoordinatorConfig>("## `dirsync`", crate::cli::Cli::command());
    }
}
