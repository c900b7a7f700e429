//! A cycle's `chaos` section: faults the harness injects while the cycle runs (worker and
//! coordinator processes killed and restarted, RabbitMQ and PostgreSQL restarted, the
//! scenario's Redis keys flushed, a worker or a coordinator stopped with SIGTERM, a tenant's
//! Webex token refused), what each must leave true, and the checks serde cannot make. Documented in `docs/scenarios.md` ("Chaos"); injected
//! by [`super::chaos_inject`], judged by [`super::chaos_verdict`].
//!
//! Faults are spread over the cycle by progress, not by clock: fault `k` of `n` fires when
//! the users done reach `k / (n + 1)` of what the cycle is expected to see, so a fast machine
//! and a slow one inject at the same points of the work. A fault the cycle ended before is
//! reported as not injected, and that fails the cycle's verdict.

use serde::{Deserialize, Serialize};

use super::ScenarioError;

/// Environment variable that allows service restarts (like `--allow-service-restarts`).
pub const ALLOW_SERVICE_RESTARTS_ENV: &str = "DIRSYNC_HARNESS_ALLOW_SERVICE_RESTARTS";
/// Most worker kills one cycle may ask for.
pub const MAX_WORKER_KILLS: usize = 100;

/// Faults injected during one cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosSpec {
    /// Times a random worker process is killed with SIGKILL and started again.
    pub kill_workers: usize,
    /// Kill the coordinator process holding a run that is still enumerating (SIGKILL), and
    /// start another: the run must be resumed from its cursor, not started again. Needs
    /// `fleet.coordinators` ≥ 1.
    pub kill_coordinator: bool,
    /// `rabbitmqctl stop_app && rabbitmqctl start_app` mid-cycle (machine-wide: needs
    /// `--allow-service-restarts`).
    pub restart_rabbitmq: bool,
    /// `pg_ctlcluster --skip-systemctl-redirect 15 main restart` mid-cycle (machine-wide:
    /// needs `--allow-service-restarts`).
    pub restart_postgresql: bool,
    /// Delete every Redis key of the scenario's own prefix mid-cycle (never another's).
    pub flush_redis: bool,
    /// Stop one worker with SIGTERM mid-cycle: it must exit within `sigterm_bound_s`, with
    /// success, having acked its in-flight batch (the counts stay exact); then it is
    /// started again.
    pub sigterm_worker: bool,
    /// The bound for `sigterm_worker` and `sigterm_coordinator`, seconds (default 30).
    pub sigterm_bound_s: u64,
    /// Stop the coordinator process holding a run that is still enumerating with SIGTERM:
    /// it must exit within `sigterm_bound_s`, with success, having released every lease it
    /// held; another process resumes the run. Then it is started again. Needs
    /// `fleet.coordinators` ≥ 1.
    pub sigterm_coordinator: bool,
    /// Name of a tenant entry (every copy of it) whose Webex org refuses its token (401)
    /// from the cycle's start: it must end the cycle quarantined for its credentials, every
    /// other tenant converged and not quarantined. It is left out of the cycle's results and
    /// counts, and the token stays refused: later cycles leave the tenant out too.
    pub revoke_scim_token: Option<String>,
}

impl Default for ChaosSpec {
    fn default() -> Self {
        ChaosSpec {
            kill_workers: 0,
            kill_coordinator: false,
            restart_rabbitmq: false,
            restart_postgresql: false,
            flush_redis: false,
            sigterm_worker: false,
            sigterm_bound_s: 30,
            sigterm_coordinator: false,
            revoke_scim_token: None,
        }
    }
}

/// One kind of fault, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    KillWorker,
    KillCoordinator,
    RestartRabbitmq,
    RestartPostgresql,
    FlushRedis,
    SigtermWorker,
    SigtermCoordinator,
    RevokeScimToken,
}

impl ChaosSpec {
    /// The faults spread over the cycle by progress, in the order they fire: the worker
    /// kills, with the other faults at evenly spaced slots among them. The coordinator kill
    /// and SIGTERM are not among them: they fire on their own trigger, a run seen
    /// enumerating; nor is the refused token, in place before the cycle starts.
    pub fn progress_faults(&self) -> Vec<FaultKind> {
        let others: Vec<FaultKind> = [
            (self.sigterm_worker, FaultKind::SigtermWorker),
            (self.flush_redis, FaultKind::FlushRedis),
            (self.restart_rabbitmq, FaultKind::RestartRabbitmq),
            (self.restart_postgresql, FaultKind::RestartPostgresql),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect();
        let (m, total) = (others.len(), self.kill_workers + others.len());
        let mut out = vec![FaultKind::KillWorker; total];
        for (j, kind) in others.into_iter().enumerate() {
            // Slots (2j+1)·total/(2m): distinct, since they are total/m ≥ 1 apart.
            out[(2 * j + 1) * total / (2 * m)] = kind;
        }
        out
    }

    /// Every fault of the section, in report order.
    pub fn faults(&self) -> Vec<FaultKind> {
        let own_trigger = [
            (self.revoke_scim_token.is_some(), FaultKind::RevokeScimToken),
            (self.kill_coordinator, FaultKind::KillCoordinator),
            (self.sigterm_coordinator, FaultKind::SigtermCoordinator),
        ];
        own_trigger
            .into_iter()
            .filter_map(|(on, kind)| on.then_some(kind))
            .chain(self.progress_faults())
            .collect()
    }

    /// Whether any fault restarts a machine-wide service.
    pub fn restarts_services(&self) -> bool {
        self.restart_rabbitmq || self.restart_postgresql
    }

    /// Checks the section of `scenario`'s cycle at `at` (`cycles[i].chaos`) on its own; what
    /// spans cycles (a token revoked twice) is checked with the whole scenario.
    pub(super) fn validate(
        &self,
        at: &str,
        scenario: &super::Scenario,
    ) -> Result<(), ScenarioError> {
        let coordinators = scenario.fleet.coordinators;
        let invalid = |field: &str, message: &str| ScenarioError::Invalid {
            field: format!("{at}.{field}"),
            message: message.to_string(),
        };
        if self.kill_workers > MAX_WORKER_KILLS {
            return Err(invalid(
                "kill_workers",
                &format!("must be at most {MAX_WORKER_KILLS}"),
            ));
        }
        if self.kill_coordinator && coordinators == 0 {
            return Err(invalid(
                "kill_coordinator",
                "needs coordinator processes (fleet.coordinators at least 1): the in-process coordinator is the harness itself",
            ));
        }
        if self.sigterm_coordinator && coordinators == 0 {
            return Err(invalid(
                "sigterm_coordinator",
                "needs coordinator processes (fleet.coordinators at least 1): the in-process coordinator is the harness itself",
            ));
        }
        if let Some(name) = &self.revoke_scim_token {
            if !scenario.tenants.iter().any(|t| &t.name == name) {
                return Err(invalid(
                    "revoke_scim_token",
                    &format!("no tenant is named {name:?}"),
                ));
            }
            if scenario.tenants.len() < 2 {
                return Err(invalid(
                    "revoke_scim_token",
                    "needs another tenant entry: the other tenants must converge beside it",
                ));
            }
        }
        if self.sigterm_bound_s == 0 {
            return Err(invalid("sigterm_bound_s", "must be at least 1 second"));
        }
        if self.sigterm_bound_s > 600 {
            return Err(invalid("sigterm_bound_s", "must be at most 600 seconds"));
        }
        if self.faults().is_empty() {
            return Err(ScenarioError::Invalid {
                field: at.to_string(),
                message:
                    "names no fault (kill_workers, kill_coordinator, restart_rabbitmq, restart_postgresql, flush_redis, sigterm_worker, sigterm_coordinator, revoke_scim_token)"
                        .to_string(),
            });
        }
        Ok(())
    }
}

/// Refuses a scenario whose chaos restarts machine-wide services unless `allowed` (the
/// `--allow-service-restarts` flag or [`ALLOW_SERVICE_RESTARTS_ENV`] set to `1`): a restart
/// breaks every other test and process using RabbitMQ or PostgreSQL on this machine.
pub fn check_service_restarts(
    scenario: &super::Scenario,
    allowed: bool,
) -> Result<(), ScenarioError> {
    let allowed =
        allowed || std::env::var(ALLOW_SERVICE_RESTARTS_ENV).is_ok_and(|v| v == "1" || v == "true");
    if allowed {
        return Ok(());
    }
    for (i, c) in scenario.cycles.iter().enumerate() {
        if let Some(chaos) = &c.chaos
            && chaos.restarts_services()
        {
            return Err(ScenarioError::Invalid {
                field: format!("cycles[{i}].chaos"),
                message: format!(
                    "restarts RabbitMQ or PostgreSQL for the whole machine (every other process using them breaks); \
                     refused unless --allow-service-restarts is given or {ALLOW_SERVICE_RESTARTS_ENV}=1"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_scheduled_once() {
        let spec = ChaosSpec {
            kill_workers: 10,
            kill_coordinator: true,
            restart_rabbitmq: true,
            restart_postgresql: true,
            flush_redis: true,
            sigterm_worker: true,
            sigterm_bound_s: 30,
            sigterm_coordinator: true,
            revoke_scim_token: Some("a".into()),
        };
        let faults = spec.faults();
        assert_eq!(faults.len(), 17);
        let count = |k| faults.iter().filter(|f| **f == k).count();
        assert_eq!(count(FaultKind::KillWorker), 10);
        for k in [
            FaultKind::KillCoordinator,
            FaultKind::RestartRabbitmq,
            FaultKind::RestartPostgresql,
            FaultKind::FlushRedis,
            FaultKind::SigtermWorker,
            FaultKind::SigtermCoordinator,
            FaultKind::RevokeScimToken,
        ] {
            assert_eq!(count(k), 1, "{k:?} in {faults:?}");
        }
        let spread = spec.progress_faults();
        assert_eq!(spread.len(), 14);
        assert_eq!(spread[0], FaultKind::KillWorker, "spread, not all first");
        assert_eq!(spread[13], FaultKind::KillWorker, "spread, not all last");
        let only = ChaosSpec {
            kill_coordinator: true,
            ..ChaosSpec::default()
        };
        assert_eq!(only.faults(), [FaultKind::KillCoordinator]);
    }
}
