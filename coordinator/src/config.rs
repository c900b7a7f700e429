//! Connection settings of a coordinator process, from flags or the environment.

use dirsync_proto::{ProtoError, SecretsKey, Topology};
use secrecy::SecretString;

use crate::CoordinatorError;
use crate::avatars::AvatarSigner;
use crate::quarantine::Thresholds;

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
    /// Address of the coordinator's HTTP face (`/healthz`, `/avatars/...`) under `serve`.
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
    #[arg(long, env = "DIRSYNC_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<SecretsKey>,
}

impl CoordinatorConfig {
    pub fn topology(&self) -> Topology {
        Topology::new(self.prefix.clone())
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

#[cfg(test)]
mod tests {
    use clap::Parser;

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
}
