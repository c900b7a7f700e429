//! Worker configuration: flags, environment, configuration file, defaults (in that order
//! of precedence; `file.rs`), checked at start-up by [`WorkerConfig::validate`], and the
//! tunables derived from it. Every setting is in docs/configuration.md, which a test below
//! keeps in step with the command line.

// One file layer for both binaries; the worker cannot depend on the coordinator crate.
#[path = "../../coordinator/src/config/file.rs"]
mod file;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use dirsync_proto::{AllowedHosts, SecretsKey, Topology};

pub use file::{Checks, ConfigFile, FileSettings, FromToml, LoadError, Problems, load, try_load};

use crate::counters::COUNTS_TTL;
use crate::ratelimit::OrgRate;
use crate::scim::RetryPolicy;

/// The `dirsync-worker` command line: the worker's settings and nothing else.
#[derive(Debug, clap::Parser)]
#[command(
    name = "dirsync-worker",
    about = "dirsync worker: pushes Entra batches to Webex SCIM"
)]
pub struct WorkerCli {
    #[command(flatten)]
    pub file: ConfigFile,
    #[command(flatten)]
    pub worker: WorkerConfig,
}

/// Command-line, environment and file configuration of a worker process.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerConfig {
    /// RabbitMQ URL.
    // URLs carry passwords: `--help` never shows the environment's values.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/test",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Redis URL.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix of the queue, exchange and Redis key names.
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
    /// Batches taken from the queue at once (unacked deliveries), processed concurrently.
    #[arg(long, env = "WORKER_PREFETCH", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
    /// Deliveries of the priority lane (provision on demand) taken at once, on a channel of
    /// their own: they never wait behind the batch queue's `WORKER_PREFETCH`.
    #[arg(long, env = "WORKER_PRIORITY_PREFETCH", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub priority_prefetch: u16,
    /// Concurrent SCIM requests within one batch.
    #[arg(long, env = "WORKER_SCIM_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub scim_concurrency: u16,
    /// SCIM requests a second per Webex org, shared by every worker (0: no limit). A Bulk
    /// request of up to 100 users is one request.
    #[arg(long, env = "DIRSYNC_SCIM_RATE_PER_ORG", default_value_t = 50.0)]
    pub scim_rate_per_org: f64,
    /// SCIM requests per Webex org that may go at once after a quiet spell.
    #[arg(long, env = "DIRSYNC_SCIM_BURST_PER_ORG", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub scim_burst_per_org: u32,
    /// Key that opens the tenants' sealed SCIM tokens: base64 of 32 random bytes, the same
    /// as the coordinators' (`openssl rand -base64 32`). Required: [`crate::run`] refuses
    /// to start without it.
    #[arg(
        long,
        env = "DIRSYNC_SECRETS_KEY",
        hide_env_values = true,
        value_parser = file::SecretsKeyParser
    )]
    pub secrets_key: Option<SecretsKey>,
    /// Address of the worker's HTTP endpoint (`/metrics`, `/healthz`, `/readyz`), e.g.
    /// `0.0.0.0:9465` in a container; `off` (or empty) for none, port 0 for any free port.
    /// When the port is taken (several workers on one host with one configuration), the
    /// worker listens on a free port of the same interface instead and logs it.
    #[arg(long, env = "WORKER_HTTP_ADDR", default_value = "127.0.0.1:9465")]
    pub http_addr: HttpAddr,
    /// Hosts the worker may send a tenant's SCIM token to: a tenant whose SCIM base URL names
    /// another host has its batches refused (`dirsync_proto::hosts`). Exact names or
    /// `*.domain`; the default is Webex's and Microsoft's.
    #[arg(
        long,
        env = "DIRSYNC_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_values_t = dirsync_proto::hosts::DEFAULT_ALLOWED_HOSTS.map(String::from)
    )]
    pub allowed_hosts: Vec<String>,
}

/// Where the worker's HTTP endpoint listens, if anywhere (`WORKER_HTTP_ADDR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAddr(pub Option<SocketAddr>);

impl FromStr for HttpAddr {
    type Err = std::net::AddrParseError;

    /// `off` or an empty value: no endpoint; otherwise `ip:port`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("off") {
            return Ok(HttpAddr(None));
        }
        value.parse().map(|addr| HttpAddr(Some(addr)))
    }
}

impl FromToml for HttpAddr {
    const EXPECTED: &'static str = "an address string such as \"0.0.0.0:9465\", or \"off\"";
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let text = value
            .as_str()
            .ok_or_else(|| file::wrong_type::<Self>(value))?;
        text.parse()
            .map_err(|_| format!("expected {}, found {text:?}", Self::EXPECTED))
    }
}

impl FileSettings for WorkerConfig {
    fn set_from_file(&mut self, id: &str, value: &toml::Value) -> Option<Result<(), String>> {
        use file::set;
        Some(match id {
            "amqp_url" => set(&mut self.amqp_url, value),
            "database_url" => set(&mut self.database_url, value),
            "redis_url" => set(&mut self.redis_url, value),
            "prefix" => set(&mut self.prefix, value),
            "delivery_limit" => set(&mut self.delivery_limit, value),
            "prefetch" => set(&mut self.prefetch, value),
            "priority_prefetch" => set(&mut self.priority_prefetch, value),
            "scim_concurrency" => set(&mut self.scim_concurrency, value),
            "scim_rate_per_org" => set(&mut self.scim_rate_per_org, value),
            "scim_burst_per_org" => set(&mut self.scim_burst_per_org, value),
            "secrets_key" => set(&mut self.secrets_key, value),
            "http_addr" => set(&mut self.http_addr, value),
            "allowed_hosts" => set(&mut self.allowed_hosts, value),
            _ => return None,
        })
    }

    /// Every problem at once, each naming its setting; file values skip clap's range
    /// checks, so every range is checked here again. The secrets key's format is checked
    /// where it is parsed (flag, environment or file).
    fn validate(&self) -> Result<(), Problems> {
        let mut c = Checks::new::<Self>();
        c.amqp_url(&self.amqp_url);
        c.database_url(&self.database_url);
        c.redis_url(&self.redis_url);
        c.prefix(&self.prefix);
        c.delivery_limit(self.delivery_limit);
        c.at_least("prefetch", self.prefetch.into(), 1);
        c.at_least("priority_prefetch", self.priority_prefetch.into(), 1);
        c.at_least("scim_concurrency", self.scim_concurrency.into(), 1);
        c.check(
            self.scim_rate_per_org.is_finite() && self.scim_rate_per_org >= 0.0,
            "scim_rate_per_org",
            format!(
                "must be 0 (no limit) or more requests a second, got {}",
                self.scim_rate_per_org
            ),
        );
        c.at_least("scim_burst_per_org", self.scim_burst_per_org.into(), 1);
        if let Err(problem) = AllowedHosts::parse(&self.allowed_hosts) {
            c.check(false, "allowed_hosts", problem);
        }
        c.finish()
    }
}

impl WorkerConfig {
    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone()).with_delivery_limit(self.delivery_limit)
    }

    pub fn settings(&self) -> WorkerSettings {
        let scim_rate =
            (self.scim_rate_per_org.is_finite() && self.scim_rate_per_org > 0.0).then(|| {
                ScimRateSettings {
                    topology: self.topology(),
                    rate: OrgRate {
                        per_second: self.scim_rate_per_org,
                        burst: self.scim_burst_per_org,
                    },
                }
            });
        WorkerSettings {
            prefetch: self.prefetch,
            priority_prefetch: self.priority_prefetch,
            scim_concurrency: usize::from(self.scim_concurrency),
            scim_rate,
            secrets: self.secrets_key.clone(),
            // Checked by `validate`; the default list if it was skipped.
            allowed_hosts: Some(Arc::new(
                AllowedHosts::parse(&self.allowed_hosts).unwrap_or_default(),
            )),
            ..WorkerSettings::default()
        }
    }
}

/// The fleet-wide SCIM budget of each org, and the topology its Redis keys are named by.
#[derive(Debug, Clone)]
pub struct ScimRateSettings {
    pub topology: Topology,
    pub rate: OrgRate,
}

/// Tunables of a running worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub prefetch: u16,
    /// Unacked deliveries of the priority lane, processed beside the batch queue's.
    pub priority_prefetch: u16,
    pub scim_concurrency: usize,
    /// `None`: no fleet-wide budget (each request still honours `Retry-After`).
    pub scim_rate: Option<ScimRateSettings>,
    pub tenant_cache_ttl: Duration,
    pub http_timeout: Duration,
    pub retry: RetryPolicy,
    pub counts_ttl: Duration,
    /// First hold before requeueing a batch that failed for a transient reason; doubled
    /// per redelivery (see [`crate::redelivery`]), so a broken dependency does not turn
    /// into a hot redelivery loop.
    pub requeue_delay: Duration,
    /// Longest wait for in-flight batches at shutdown.
    pub shutdown_grace: Duration,
    /// Opens the tenants' sealed SCIM tokens. `None` reads only legacy plain-text tokens: a
    /// sealed one fails its batch, which is requeued for a worker that has the key.
    pub secrets: Option<SecretsKey>,
    /// The hosts SCIM requests may go to (`allowed_hosts`). `None`, the library default,
    /// checks nothing; the worker process always has its configuration's list.
    pub allowed_hosts: Option<Arc<AllowedHosts>>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            prefetch: 8,
            priority_prefetch: 2,
            scim_concurrency: 16,
            scim_rate: None,
            tenant_cache_ttl: Duration::from_secs(30),
            http_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            counts_ttl: COUNTS_TTL,
            requeue_delay: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(300),
            secrets: None,
            allowed_hosts: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::file::testing;
    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        worker: WorkerConfig,
    }

    fn http_addr(args: &[&str]) -> HttpAddr {
        let args = std::iter::once("w").chain(args.iter().copied());
        Cli::try_parse_from(args).unwrap().worker.http_addr
    }

    #[test]
    fn the_http_endpoint_address_can_be_moved_or_turned_off() {
        let local: SocketAddr = "127.0.0.1:9465".parse().unwrap();
        assert_eq!(http_addr(&[]), HttpAddr(Some(local)));
        let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert_eq!(
            http_addr(&["--http-addr", "0.0.0.0:0"]),
            HttpAddr(Some(any))
        );
        assert_eq!(http_addr(&["--http-addr", "off"]), HttpAddr(None));
        assert_eq!(http_addr(&["--http-addr", "OFF"]), HttpAddr(None));
        assert_eq!(http_addr(&["--http-addr="]), HttpAddr(None));
        let bad = ["w", "--http-addr", "localhost"];
        assert!(Cli::try_parse_from(bad).is_err());
    }

    /// The loaded configuration, or the problems `try_load` finds, with `flags` (and this
    /// process's environment, which tests do not change).
    fn load_flags(flags: &[&str]) -> Result<WorkerConfig, String> {
        testing::load_flags(flags, |c: &mut WorkerCli| &mut c.worker)
    }

    fn summary(c: &WorkerConfig) -> String {
        format!(
            "prefetch={} priority={} concurrency={} rate={} prefix={} http={:?}",
            c.prefetch,
            c.priority_prefetch,
            c.scim_concurrency,
            c.scim_rate_per_org,
            c.prefix,
            c.http_addr.0
        )
    }

    /// Not a test on its own: the child side of [`testing::load_in_child`].
    #[test]
    fn child_load() {
        testing::child_load(|flags| load_flags(flags).map(|c| summary(&c)));
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let file = testing::TempFile::new(
            "precedence",
            "worker_prefetch = 4\nworker_priority_prefetch = 3\nscim_rate_per_org = 12.5\n\
             prefix = \"from-file\"\nworker_http_addr = \"off\"\n",
        );
        let path = file.arg();
        let cases: [testing::Case; 4] = [
            (
                &[],
                &[],
                "prefetch=8 priority=2 concurrency=16 rate=50 prefix=dirsync \
                 http=Some(127.0.0.1:9465)",
            ),
            (
                &[],
                &["--config", &path],
                "prefetch=4 priority=3 concurrency=16 rate=12.5 prefix=from-file http=None",
            ),
            (
                &[
                    ("DIRSYNC_CONFIG", &path),
                    ("WORKER_PREFETCH", "6"),
                    ("DIRSYNC_SCIM_RATE_PER_ORG", "0"),
                ],
                &["--prefetch", "7"],
                "prefetch=7 priority=3 concurrency=16 rate=0 prefix=from-file http=None",
            ),
            (
                &[("WORKER_HTTP_ADDR", "0.0.0.0:9999")],
                &["--config", &path, "--prefix", "flag"],
                "prefetch=4 priority=3 concurrency=16 rate=12.5 prefix=flag \
                 http=Some(0.0.0.0:9999)",
            ),
        ];
        testing::assert_precedence(&WorkerCli::command(), &cases);
    }

    #[test]
    fn the_file_refuses_unknown_keys_and_wrong_types() {
        // (file, pieces of the error)
        let cases: [(&str, &[&str]); 6] = [
            (
                "prefetch = 4",
                &["unknown setting `prefetch` (did you mean `worker_prefetch`?)"],
            ),
            (
                "WORKER_SCIM_CONCURRENCY = 4\nrun_window = 64",
                &[
                    "2 problems",
                    "unknown setting `WORKER_SCIM_CONCURRENCY` (did you mean \
                     `worker_scim_concurrency`?)",
                    "unknown setting `run_window`",
                ],
            ),
            (
                "worker_prefetch = 70000",
                &["`worker_prefetch`: expected an integer from 0 to 65535, found 70000"],
            ),
            (
                "scim_rate_per_org = \"fast\"",
                &["`scim_rate_per_org`: expected a number, found a string"],
            ),
            (
                "worker_http_addr = 9465",
                &[
                    "`worker_http_addr`: expected an address string such as \"0.0.0.0:9465\", \
                   or \"off\", found an integer",
                ],
            ),
            (
                "secrets_key = \"dG9vLXNob3J0\"",
                &["`secrets_key`: invalid DIRSYNC_SECRETS_KEY: it decodes to 9 bytes"],
            ),
        ];
        testing::assert_files_refused(load_flags, &cases, &["dG9vLXNob3J0"]);
    }

    #[test]
    fn validation_names_every_problem_at_once() {
        // (file, pieces of the error); file values skip clap's range checks.
        let cases: [(&str, &[&str]); 3] = [
            (
                "worker_prefetch = 0\nworker_scim_concurrency = 0\nscim_rate_per_org = -1\n\
                 scim_burst_per_org = 0",
                &[
                    "4 problems",
                    "worker_prefetch (WORKER_PREFETCH, --prefetch): must be at least 1, got 0",
                    "worker_scim_concurrency (WORKER_SCIM_CONCURRENCY, --scim-concurrency): \
                     must be at least 1",
                    "scim_rate_per_org (DIRSYNC_SCIM_RATE_PER_ORG, --scim-rate-per-org): must \
                     be 0 (no limit) or more requests a second, got -1",
                    "scim_burst_per_org (DIRSYNC_SCIM_BURST_PER_ORG, --scim-burst-per-org): \
                     must be at least 1, got 0",
                ],
            ),
            (
                "amqp_url = \"amqp//guest:s3cret@rabbit\"\n\
                 database_url = \"postgres://u:s3cret@db:notaport/x\"\nredis_url = \"redis://\"\n\
                 delivery_limit = 0",
                &[
                    "amqp_url (AMQP_URL, --amqp-url): is not a valid url",
                    "delivery_limit (DIRSYNC_DELIVERY_LIMIT, --delivery-limit): must be at least 1",
                    "database_url (DATABASE_URL, --database-url): is not a valid url (invalid \
                     port number)",
                ],
            ),
            (
                "prefix = \"two words\"\nworker_priority_prefetch = 0",
                &[
                    "2 problems",
                    "prefix (DIRSYNC_PREFIX, --prefix): must be a non-empty name without spaces",
                    "worker_priority_prefetch (WORKER_PRIORITY_PREFETCH, --priority-prefetch)",
                ],
            ),
        ];
        testing::assert_invalid(load_flags, &cases, &["s3cret"]);
        // A negative rate from a flag is refused too (it used to mean "no limit").
        let message = load_flags(&["--scim-rate-per-org=-5"]).unwrap_err();
        assert!(message.contains("scim_rate_per_org"), "{message}");
        // The queues are declared with the delivery limit given, never with 0.
        assert!(load_flags(&["--delivery-limit=0"]).is_err());
        let limited = load_flags(&["--delivery-limit=3"]).unwrap().topology();
        assert_eq!(limited.delivery_limit(), 3);
        assert!(load_flags(&[]).is_ok());
    }

    #[test]
    fn secrets_stay_out_of_errors_and_help() {
        testing::assert_secrets_hidden(&WorkerCli::command(), load_flags);
    }

    #[test]
    fn every_setting_can_come_from_the_file() {
        testing::assert_every_setting_from_file(&load_flags(&[]).unwrap());
    }

    /// docs/configuration.md lists exactly the environment variables of `dirsync-worker`,
    /// each with its file key, flag and default.
    #[test]
    fn the_configuration_document_lists_every_setting() {
        testing::assert_documented::<WorkerConfig>("## `dirsync-worker`", WorkerCli::command());
    }
}
