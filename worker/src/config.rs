//! Worker configuration: the command line / environment, and the tunables derived from it.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use dirsync_proto::{SecretsKey, Topology};

use crate::counters::COUNTS_TTL;
use crate::ratelimit::OrgRate;
use crate::scim::RetryPolicy;

/// Command-line and environment configuration of a worker process.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerConfig {
    /// RabbitMQ URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of the queue, exchange and Redis key names.
    #[arg(long, env = "DIRSYNC_PREFIX", default_value = "dirsync")]
    pub prefix: String,
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
    #[arg(long, env = "DIRSYNC_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<SecretsKey>,
    /// Address of the worker's HTTP endpoint (`/metrics`, `/healthz`, `/readyz`), e.g.
    /// `0.0.0.0:9465` in a container; `off` (or empty) for none, port 0 for any free port.
    /// When the port is taken (several workers on one host with one configuration), the
    /// worker listens on a free port of the same interface instead and logs it.
    #[arg(long, env = "WORKER_HTTP_ADDR", default_value = "127.0.0.1:9465")]
    pub http_addr: HttpAddr,
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

impl WorkerConfig {
    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone())
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
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

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
}
