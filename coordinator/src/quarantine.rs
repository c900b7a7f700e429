//! Tenant quarantine: when a tenant stops being synced normally, and how it comes back.
//!
//! Credentials refused by Graph or by the Webex org quarantine a tenant at once (workers
//! record a SCIM refusal; a run attempt that sees one stops). Otherwise a completed run is
//! judged by its failures ([`judge`], Entra's thresholds with a floor scaled for small
//! tenants). A quarantined tenant's next cycles back off, the interval doubling up to a day;
//! a clean run lifts the quarantine; after 4 weeks in quarantine auto-sync is turned off.
//!
//! The thresholds are configurable: deployment-wide defaults from the environment
//! (`DIRSYNC_QUARANTINE_*`, see `CoordinatorConfig`), and per tenant overrides of the
//! minimum, the share and the cap in `tenants.quarantine_*` (NULL: the deployment's value),
//! set with `dirsync tenant quarantine-thresholds`. A run is judged by the tenant's effective
//! thresholds ([`thresholds`]) when it completes.

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

impl Thresholds {
    /// Entra's thresholds, with a floor of 5 % of the run's objects (at least 20 failures)
    /// for small tenants.
    pub const ENTRA: Thresholds = Thresholds {
        min_failures: 5_000,
        floor_percent: 5,
        small_floor: 20,
        max_percent: 40,
        max_failures: 40_000,
    };

    /// The thresholds if they make sense, or what is wrong with them: a minimum and a cap of
    /// at least 1 (0 would quarantine on any failure), the minimum not above the cap,
    /// percentages up to 100 (the share at least 1), a small-tenant floor of at least 1.
    pub fn validated(self) -> Result<Thresholds, CoordinatorError> {
        let invalid = |m: String| Err(CoordinatorError::Invalid(m));
        if self.min_failures == 0 {
            return invalid("quarantine min failures must be at least 1".into());
        }
        if self.max_failures == 0 {
            return invalid("quarantine max failures must be at least 1".into());
        }
        if self.min_failures > self.max_failures {
            return invalid(format!(
                "quarantine min failures ({}) must not be more than max failures ({})",
                self.min_failures, self.max_failures
            ));
        }
        if !(1..=100).contains(&self.max_percent) {
            return invalid(format!(
                "quarantine max percent must be 1 to 100, got {}",
                self.max_percent
            ));
        }
        if self.floor_percent > 100 {
            return invalid(format!(
                "quarantine floor percent must be at most 100, got {}",
                self.floor_percent
            ));
        }
        if self.small_floor == 0 {
            return invalid("quarantine small-tenant floor must be at least 1".into());
        }
        Ok(self)
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::ENTRA
    }
}

impl std::fmt::Display for Thresholds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "judged from {} failures (small tenants: {}% of the objects, at least {}); \
             more than {}% failed or more than {} failures quarantine",
            self.min_failures,
            self.floor_percent,
            self.small_floor,
            self.max_percent,
            self.max_failures
        )
    }
}

/// A tenant's own values of the thresholds; `None` is the deployment's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub min_failures: Option<u64>,
    pub max_percent: Option<u64>,
    pub max_failures: Option<u64>,
}

impl Overrides {
    /// The effective thresholds: these values over the deployment's `defaults`.
    pub fn over(self, defaults: Thresholds) -> Thresholds {
        Thresholds {
            min_failures: self.min_failures.unwrap_or(defaults.min_failures),
            max_percent: self.max_percent.unwrap_or(defaults.max_percent),
            max_failures: self.max_failures.unwrap_or(defaults.max_failures),
            ..defaults
        }
    }

    /// `self` with the values `change` gives replaced.
    pub fn updated(self, change: Overrides) -> Overrides {
        Overrides {
            min_failures: change.min_failures.or(self.min_failures),
            max_percent: change.max_percent.or(self.max_percent),
            max_failures: change.max_failures.or(self.max_failures),
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

/// The effective thresholds in words, and which values are the tenant's own.
pub fn describe(own: Overrides, defaults: Thresholds) -> String {
    let names: Vec<&str> = [
        (own.min_failures, "min failures"),
        (own.max_percent, "max percent"),
        (own.max_failures, "max failures"),
    ]
    .into_iter()
    .filter_map(|(value, name)| value.map(|_| name))
    .collect();
    let whose = if names.is_empty() {
        "the deployment's defaults".to_string()
    } else {
        format!("the tenant's own {}", names.join(", "))
    };
    format!("{} ({whose})", own.over(defaults))
}

type OverrideRow = (Option<i64>, Option<i32>, Option<i64>);

fn from_row((min, percent, max): OverrideRow) -> Overrides {
    // The table's checks keep the values positive.
    Overrides {
        min_failures: min.map(|v| v as u64),
        max_percent: percent.map(|v| v as u64),
        max_failures: max.map(|v| v as u64),
    }
}

/// The tenant's own threshold values (`None`: the deployment's default).
pub async fn overrides(pool: &PgPool, tenant: TenantId) -> Result<Overrides, CoordinatorError> {
    let row: Option<OverrideRow> = sqlx::query_as(
        "SELECT quarantine_min_failures, quarantine_max_percent, quarantine_max_failures \
         FROM tenants WHERE id = $1",
    )
    .bind(tenant.0)
    .fetch_optional(pool)
    .await?;
    row.map(from_row)
        .ok_or_else(|| CoordinatorError::TenantNotFound(tenant.to_string()))
}

/// The thresholds a run of the tenant is judged by: its own values over `defaults`.
pub async fn thresholds(
    pool: &PgPool,
    tenant: TenantId,
    defaults: Thresholds,
) -> Result<Thresholds, CoordinatorError> {
    Ok(overrides(pool, tenant).await?.over(defaults))
}

/// Replaces the tenant's own values that `change` gives (the others stay), or with `None`
/// goes back to the deployment's defaults. The effective thresholds are checked first;
/// returns the tenant's values as saved. Applies from the next completed run.
pub async fn set_thresholds(
    pool: &PgPool,
    tenant: TenantId,
    change: Option<Overrides>,
    defaults: Thresholds,
) -> Result<Overrides, CoordinatorError> {
    let mut tx = pool.begin().await?;
    let row: Option<OverrideRow> = sqlx::query_as(
        "SELECT quarantine_min_failures, quarantine_max_percent, quarantine_max_failures \
         FROM tenants WHERE id = $1 FOR UPDATE",
    )
    .bind(tenant.0)
    .fetch_optional(&mut *tx)
    .await?;
    let current = row
        .map(from_row)
        .ok_or_else(|| CoordinatorError::TenantNotFound(tenant.to_string()))?;
    let saved = match change {
        Some(change) => current.updated(change),
        None => Overrides::default(),
    };
    saved.over(defaults).validated()?;
    let count = |v: Option<u64>, name: &str| {
        v.map(i64::try_from)
            .transpose()
            .map_err(|_| CoordinatorError::Invalid(format!("quarantine {name} is too large")))
    };
    sqlx::query(
        "UPDATE tenants SET quarantine_min_failures = $2, quarantine_max_percent = $3, \
         quarantine_max_failures = $4, updated_at = now() WHERE id = $1",
    )
    .bind(tenant.0)
    .bind(count(saved.min_failures, "min failures")?)
    .bind(saved.max_percent.map(|p| p as i32))
    .bind(count(saved.max_failures, "max failures")?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(saved)
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

    #[test]
    fn configured_thresholds() {
        let strict = Thresholds {
            min_failures: 10,
            max_percent: 10,
            max_failures: 1_000,
            ..Thresholds::ENTRA
        };
        let lenient = Thresholds {
            min_failures: 20_000,
            floor_percent: 90,
            small_floor: 100,
            max_percent: 80,
            max_failures: 100_000,
        };
        // (thresholds, failed, total, quarantined)
        let cases = [
            (strict, 9, 40, false),         // 22 %, but under the lowered minimum of 10
            (strict, 10, 40, true),         // 25 % > 10 %, and the default would not (floor 20)
            (strict, 10, 100, false),       // exactly 10 % is not more than 10 %
            (strict, 11, 100, true),        // 11 %
            (strict, 900, 100_000, false),  // under the share and the cap
            (strict, 1_001, 100_000, true), // past the lowered cap
            (lenient, 60, 100, false),      // 60 % of a small tenant is under 80 %
            (lenient, 99, 100, false),      // 99 %, but under the small floor of 100
            (lenient, 100, 100, true),      // all failed, at the small floor
            (lenient, 899, 1_000, false),   // 90 % > 80 %, but under the floor (90 % of 1,000)
            (lenient, 900, 1_000, true),
            (lenient, 19_999, 24_000, false), // the floor is the minimum (20,000) here
            (lenient, 20_000, 24_000, true),
            (lenient, 99_999, 1_000_000, false), // 10 %
            (lenient, 100_001, 1_000_000, true),
        ];
        for (t, failed, total, want) in cases {
            assert_eq!(
                judge(t, failed, total).is_some(),
                want,
                "{failed} of {total} with {t:?}"
            );
        }
        assert!(
            judge(Thresholds::ENTRA, 10, 40).is_none(),
            "the strict case quarantines only because of the override"
        );
        assert!(judge(strict, 11, 100).unwrap().contains("more than 10%"));
        assert!(
            judge(strict, 1_001, 100_000)
                .unwrap()
                .contains("more than 1000")
        );
    }

    #[test]
    fn validation() {
        let e = Thresholds::ENTRA;
        // (thresholds, None if valid, else a piece of the error)
        let cases = [
            (e, None),
            (
                Thresholds {
                    max_percent: 100,
                    ..e
                },
                None,
            ),
            (
                Thresholds {
                    max_percent: 1,
                    ..e
                },
                None,
            ),
            (
                Thresholds {
                    max_percent: 0,
                    ..e
                },
                Some("max percent must be 1 to 100, got 0"),
            ),
            (
                Thresholds {
                    max_percent: 101,
                    ..e
                },
                Some("got 101"),
            ),
            (
                Thresholds {
                    min_failures: 0,
                    ..e
                },
                Some("min failures must be at least 1"),
            ),
            (
                Thresholds {
                    max_failures: 0,
                    min_failures: 0,
                    ..e
                },
                Some("min failures"),
            ),
            (
                Thresholds {
                    min_failures: 1,
                    max_failures: 1,
                    ..e
                },
                None,
            ),
            (
                Thresholds {
                    min_failures: 50_000,
                    ..e
                },
                Some("min failures (50000) must not be more than max failures (40000)"),
            ),
            (
                Thresholds {
                    floor_percent: 0,
                    ..e
                },
                None,
            ),
            (
                Thresholds {
                    floor_percent: 101,
                    ..e
                },
                Some("floor percent"),
            ),
            (
                Thresholds {
                    small_floor: 0,
                    ..e
                },
                Some("small-tenant floor"),
            ),
        ];
        for (t, want) in cases {
            match (t.validated(), want) {
                (Ok(v), None) => assert_eq!(v, t),
                (Err(err), Some(needle)) => {
                    let message = err.to_string();
                    assert!(message.contains(needle), "{t:?}: {message}");
                }
                (got, want) => panic!("{t:?}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn describe_names_the_tenants_own_values() {
        let e = Thresholds::ENTRA;
        assert_eq!(
            describe(Overrides::default(), e),
            "judged from 5000 failures (small tenants: 5% of the objects, at least 20); \
             more than 40% failed or more than 40000 failures quarantine \
             (the deployment's defaults)"
        );
        let own = Overrides {
            min_failures: Some(10),
            max_failures: Some(900),
            ..Overrides::default()
        };
        let text = describe(own, e);
        assert!(
            text.starts_with("judged from 10 failures")
                && text.contains("more than 40% failed or more than 900 failures")
                && text.ends_with("(the tenant's own min failures, max failures)"),
            "{text}"
        );
    }

    #[test]
    fn overrides_over_defaults() {
        let defaults = Thresholds {
            min_failures: 1_000,
            ..Thresholds::ENTRA
        };
        assert_eq!(Overrides::default().over(defaults), defaults);
        let own = Overrides {
            max_percent: Some(15),
            ..Overrides::default()
        };
        assert_eq!(
            own.over(defaults),
            Thresholds {
                max_percent: 15,
                ..defaults
            }
        );
        // Only the given values change.
        let changed = own.updated(Overrides {
            min_failures: Some(10),
            ..Overrides::default()
        });
        assert_eq!(
            changed,
            Overrides {
                min_failures: Some(10),
                max_percent: Some(15),
                max_failures: None,
            }
        );
        assert_eq!(
            changed
                .updated(Overrides {
                    max_percent: Some(30),
                    ..Overrides::default()
                })
                .max_percent,
            Some(30)
        );
    }
}
