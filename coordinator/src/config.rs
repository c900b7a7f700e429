//! Connection settings of a coordinator process, from flags or the environment.

use dirsync_proto::Topology;

/// Where the coordinator finds PostgreSQL, RabbitMQ and Redis, and its tuning knobs.
#[derive(Debug, Clone, clap::Args)]
pub struct CoordinatorConfig {
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// RabbitMQ URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of queue, exchange and Redis key names (tests use a unique one).
    #[arg(long, env = "DIRSYNC_PREFIX", default_value = "dirsync")]
    pub prefix: String,
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
}

impl CoordinatorConfig {
    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone())
    }
}
