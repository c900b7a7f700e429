//! Tenant quarantine: when a tenant stops being synced normally, and how it comes back.
//!
//! Credentials refused by Graph or by the Webex org quarantine a tenant at once (workers
//! record a SCIM refusal; a run attempt that sees one stops). Otherwise a completed run is
//! judged by its failures ([`judge`], Entra's thresholds with a floor scaled for small
//! tenants). A quarantined tenant's next cycles back off, the interval doubling up to a day;
//! a clean run lifts the quarantine; after 4 weeks in quarantine auto-sync is turned off.

use sqlx::PgPool;

use dirsync_proto::TenantId;

use crate::CoordinatorError;

/// Failure thresholds of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Failures from which the share is judged (Entra: 5,000) ...
    pub min_failures: u64,
    /// ... and, for small tenants, this share of the run's objects, but at least
    /// `small_floor` failures: a 100-user tenant whose users all fail is not healthy.
    pub floor_percent: u64,
    pub small_floor: u64,
    /// A larger share of failed objects quarantines (Entra: 40 %).
    pub max_percent: u64,
    /// More failures than this quarantine whatever the share (Entra: 40,000).
    pub max_failures: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_failures: 5_000,
            floor_percent: 5,
            small_floor: 20,
            max_percent: 40,
            max_failures: 40_000,
        }
    }
}

/// Why a run with `failed` of `total` objects failed quarantines its tenant, if it does.
pub fn judge(t: Thresholds, failed: u64, total: u64) -> Option<String> {
    if failed > t.max_failures {
        return Some(format!(
            "{failed} objects failed in one run (more than {})",
            t.max_failures
        ));
    }
    let floor = t.min_failures.min(
        t.small_floor
            .max(total.saturating_mul(t.floor_percent) / 100),
    );
    (failed >= floor && failed.saturating_mul(100) > t.max_percent.saturating_mul(total)).then(
        || {
            format!(
                "{failed} of {total} objects failed in one run (more than {}%)",
                t.max_percent
            )
        },
    )
}

/// Puts the tenant in quarantine (or keeps it there) for `reason`, and backs its next cycle
/// off: twice the previous backoff, at least twice the cycle interval, at most a day. After
/// 4 weeks in quarantine auto-sync is turned off.
pub async fn quarantine(
    pool: &PgPool,
    tenant: TenantId,
    kind: &str,
    reason: &str,
) -> Result<(), CoordinatorError> {
    sqlx::query(
        "UPDATE tenants SET status = 'Quarantine', quarantine_kind = $2, quarantine_reason = $3, \
         quarantined_since = coalesce(quarantined_since, now()), \
         quarantine_backoff_s = LEAST(86400, GREATEST(coalesce(quarantine_backoff_s, 0) * 2, sync_interval_s * 2)), \
         next_run_at = now() + make_interval(secs => \
             LEAST(86400, GREATEST(coalesce(quarantine_backoff_s, 0) * 2, sync_interval_s * 2))), \
         auto_sync = auto_sync AND coalesce(quarantined_since, now()) > now() - interval '28 days', \
         updated_at = now() WHERE id = $1",
    )
    .bind(tenant.0)
    .bind(kind)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether the tenant's credentials were refused since `since` (a worker saw a 401/403).
pub async fn credentials_refused_since(
    pool: &PgPool,
    tenant: TenantId,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>, CoordinatorError> {
    Ok(sqlx::query_scalar(
        "SELECT quarantine_reason FROM tenants WHERE id = $1 AND quarantine_kind = 'credentials' \
         AND quarantine_updated_at > $2",
    )
    .bind(tenant.0)
    .bind(since)
    .fetch_optional(pool)
    .await?
    .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let t = Thresholds::default();
        // (failed, total, quarantined)
        let cases = [
            (0, 0, false),
            (0, 100, false),
            (19, 30, false),        // under the small floor of 20
            (20, 30, true),         // 67 % of a small tenant
            (20, 60, false),        // 33 %
            (45, 100, true),        // 45 %
            (4_999, 10_000, true),  // under Entra's 5,000, past the 5 % floor (500): 50 %
            (5_000, 20_000, false), // 25 %
            (5_000, 10_000, true),  // 50 %
            (30_000, 1_000_000, false),
            (40_001, 1_000_000, true), // past the absolute cap
        ];
        for (failed, total, want) in cases {
            assert_eq!(
                judge(t, failed, total).is_some(),
                want,
                "{failed} of {total}"
            );
        }
        assert!(judge(t, 45, 100).unwrap().contains("45 of 100"));
    }
}
