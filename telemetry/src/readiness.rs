//! One readiness check of a `/readyz` probe (the worker's and the coordinator's), bounded in
//! time: a hung dependency must fail the probe, not hang it.

use std::time::Duration;

use tracing::warn;

/// Longest a readiness check may take: the Kubernetes probe gives up after 3 s.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the check `what` within [`CHECK_TIMEOUT`]: whether it passed. A failure is logged (the
/// repeated-error limit of this crate keeps a probe every few seconds from flooding the log).
pub async fn check(what: &'static str, check: impl Future<Output = Result<(), String>>) -> bool {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            warn!(check = what, %error, "readiness check failed");
            false
        }
        Err(_) => {
            warn!(check = what, timeout = ?CHECK_TIMEOUT, "readiness check timed out");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_check_passes_fails_or_times_out() {
        assert!(check("ok", async { Ok(()) }).await);
        assert!(!check("failed", async { Err("refused".to_owned()) }).await);
        assert!(!check("hung", std::future::pending()).await);
    }
}
