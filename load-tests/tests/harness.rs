//! The load harness as a correctness check, never a timing one: the smoke scenario (a
//! hand-written tenant with managers and nested groups, a synthetic one whose scope is
//! some of its nested groups, two copies of a small one, two change steps, every 7th SCIM
//! request failing with 503) runs through the same runner as `harness run`,
//! and every cycle converges with the counts the scenario implies. The faults scenario runs
//! with two coordinator processes asked with "sync now" and random SCIM 503s and 429 bursts,
//! and converges too. The chaos smoke scenario kills worker processes and a coordinator
//! mid-walk during its initial cycle, stops another coordinator with SIGTERM and has one
//! tenant's Webex org refuse its token (never a service restart: those would break the tests
//! running beside it) and every fault fires, the killed and the SIGTERM'd runs are resumed,
//! the SIGTERM'd process exits cleanly holding no lease, the refused tenant is quarantined
//! for its credentials and no other tenant is, and the counts stay exact. Bad scenario files are refused before anything starts, with the field at fault in
//! the message; the shipped examples are valid.

use std::path::{Path, PathBuf};

use dirsync_load_tests::scenario::Scenario;
use dirsync_load_tests::scenario::chaos::{FaultKind, check_service_restarts};
use dirsync_load_tests::scenario::report::CycleMeasure;
use dirsync_load_tests::scenario::run::{self, Quiet};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// A cycle converged, with no user failed for good.
fn assert_converged(c: &CycleMeasure) {
    assert!(
        c.converged,
        "cycle {} did not converge: {:?}",
        c.cycle, c.problems
    );
    assert_eq!(c.users.failed, 0, "cycle {}", c.cycle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_converges_with_the_expected_counts() {
    let scenario = Scenario::load(&scenarios_dir().join("smoke.json")).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_harness"));
    let report = run::run(&scenario, exe, None, &Quiet).await.unwrap();

    assert_eq!(
        report.tenants, 4,
        "fabrikam, contoso and two copies of small"
    );
    assert_eq!(report.workers, 2);
    let names: Vec<&str> = report.cycles.iter().map(|c| c.cycle.as_str()).collect();
    assert_eq!(names, ["initial", "churn", "hand-written only"]);
    for c in &report.cycles {
        assert_converged(c);
        assert_eq!(c.scim.throttled_429, 0, "no rate limit, so no 429s");
        assert!(c.peak_memory.workers_mib.iter().all(Option::is_some));
    }

    let initial = &report.cycles[0];
    // Deterministic: fabrikam's 8 users, 2 × 298 live users of the small copies (0.5% of
    // each starts soft-deleted) and the 348 users of contoso's scope (its first 3 groups
    // and the groups nested in them; the oracle computes the same set on its own).
    assert_eq!(initial.users.total(), 8 + 2 * 298 + 348);
    // One create per synced user, all of them in Bulk requests.
    assert_eq!(initial.scim.create, initial.users.synced);
    let written = |c: &CycleMeasure| c.change_to_write.map_or(0, |l| l.writes) as u64;
    assert_eq!(
        written(initial),
        initial.users.synced,
        "a latency per user written"
    );
    assert!(initial.scim.bulk > 0 && initial.scim.bulk <= initial.scim.requests);
    // Every 7th SCIM request answered 503 (`fail_every`); the workers retried them all.
    assert!(initial.scim.errors_5xx > 0);
    assert_eq!(initial.changes.updates, 0);

    let churn = &report.cycles[1];
    assert!(churn.changes.updates > 0 && churn.changes.updates <= 4 * 40);
    assert!(
        churn.changes.new_users == 4 * 15,
        "every tenant gets its new users"
    );
    assert!(
        churn.changes.members_added > 0,
        "contoso has groups to churn"
    );
    assert!(churn.users.synced > 0);

    // Only the hand-written tenant changes; it has room for every change asked.
    let hand = &report.cycles[2];
    assert_eq!(
        (
            hand.changes.updates,
            hand.changes.soft_deletes,
            hand.changes.new_users
        ),
        (3, 1, 2)
    );
    assert_eq!(hand.users.total(), 6, "three updated, one deleted, two new");
    assert_eq!(hand.scim.create, 2);
    assert_eq!(written(hand), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_processes_converge_through_random_faults() {
    let scenario = Scenario::load(&scenarios_dir().join("faults.json")).unwrap();
    assert_eq!(scenario.fleet.coordinators, 2);
    assert!(scenario.fleet.scim.error_rate > 0.0 && scenario.fleet.scim.throttle_rate > 0.0);
    let exe = Path::new(env!("CARGO_BIN_EXE_harness"));
    let report = run::run(&scenario, exe, None, &Quiet).await.unwrap();

    assert_eq!(
        (report.tenants, report.workers, report.coordinators),
        (5, 2, 2)
    );
    for c in &report.cycles {
        assert_converged(c);
        assert_eq!(c.peak_memory.coordinators_mib.len(), 2);
        assert!(
            c.peak_memory.coordinators_mib.iter().all(Option::is_some),
            "both coordinator processes alive: {:?}",
            c.peak_memory
        );
        assert_eq!(c.runs_by_coordinator.len(), 2);
        assert!(c.runs_by_coordinator.iter().sum::<usize>() <= c.tenants);
    }
    let initial = &report.cycles[0];
    // Every live user of the five tenants, seen once (0.5% of each starts soft-deleted).
    assert_eq!(initial.users.total(), INITIAL_FAULTS_USERS);
    assert_eq!(initial.scim.create, initial.users.synced);
    // The random faults were served, and retried through.
    assert!(initial.scim.errors_5xx > 0, "{:?}", initial.scim);
    assert!(initial.scim.throttled_429 > 0, "{:?}", initial.scim);
    assert!(initial.scim.errors_4xx >= initial.scim.throttled_429);
    let churn = &report.cycles[1];
    assert!(churn.changes.updates > 0 && churn.users.synced > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chaos_smoke_scenario_survives_killed_workers_and_a_killed_coordinator() {
    let scenario = Scenario::load(&scenarios_dir().join("chaos-smoke.json")).unwrap();
    let spec = scenario.cycles[0].chaos.as_ref().expect("a chaos section");
    assert!(
        !spec.restarts_services(),
        "service restarts never run in the default suite"
    );
    let exe = Path::new(env!("CARGO_BIN_EXE_harness"));
    let report = run::run(&scenario, exe, None, &Quiet).await.unwrap();

    for c in &report.cycles {
        assert_converged(c);
    }
    let initial = &report.cycles[0];
    let chaos = initial.chaos.as_ref().expect("the chaos verdict");
    assert!(chaos.passed, "{:#?}", chaos.problems);
    let fired = |kind: FaultKind| {
        chaos
            .faults
            .iter()
            .filter(|f| f.fault == kind && f.injected && f.ok)
            .count()
    };
    assert_eq!(fired(FaultKind::KillWorker), 4, "{:#?}", chaos.faults);
    assert_eq!(fired(FaultKind::KillCoordinator), 1, "{:#?}", chaos.faults);
    assert_eq!(
        fired(FaultKind::SigtermCoordinator),
        1,
        "{:#?}",
        chaos.faults
    );
    assert_eq!(fired(FaultKind::RevokeScimToken), 1, "{:#?}", chaos.faults);
    assert_eq!(chaos.faults.len(), 7);
    assert_eq!(chaos.resumed, Some(true), "the killed run completed itself");
    // The SIGTERM'd coordinator held the lease of the run it walked, exited with success
    // and held none once it had exited; its run completed as itself.
    let stopped = chaos
        .sigtermed_coordinator
        .as_ref()
        .expect("a coordinator stopped");
    assert!(stopped.leases_before >= 1, "{stopped:#?}");
    assert_eq!(stopped.wait_status, Some(0), "{stopped:#?}");
    assert_eq!(stopped.leases_after, Some(0), "{stopped:#?}");
    assert_eq!(chaos.sigterm_resumed, Some(true));
    // The refused tenant: quarantined for its credentials, out of the counts; the others
    // stay Active.
    assert_eq!(chaos.revoked.len(), 1, "{:#?}", chaos.revoked);
    let revoked = &chaos.revoked[0];
    assert_eq!(revoked.tenant, "revoked");
    assert_eq!(
        (revoked.status.as_str(), revoked.quarantine_kind.as_deref()),
        ("Quarantine", Some("credentials")),
        "{revoked:#?}"
    );
    assert!(
        chaos.quarantined_healthy.is_empty(),
        "{:?}",
        chaos.quarantined_healthy
    );
    assert!(chaos.counts_exact, "{:#?}", chaos.counts);
    assert_eq!(report.tenants, 4, "large, two copies of small, revoked");
    assert_eq!(initial.tenants, 3, "the revoked tenant is left out");
    assert_eq!(chaos.counts.len(), 3, "one run per tenant");
    assert!(chaos.counts.iter().all(|c| c.tenant != "revoked"));
    assert_eq!(chaos.webex_duplicates, 0);
    assert_eq!(chaos.uncaused_restarts, 0);
    // Every live user seen once: 3,000 + 2 × 500 less the 15 + 2 × 3 that start
    // soft-deleted (deterministic for these seeds).
    assert_eq!(initial.users.total(), 2_985 + 2 * 497);
    assert!(initial.scim.errors_5xx > 0, "the random 503s were served");
    assert!(report.cycles[1].chaos.is_none());
    assert!(report.cycles[1].users.synced > 0);
    assert_eq!(report.cycles[1].tenants, 3, "the token stays revoked");
    assert!(report.passed());
}

#[test]
fn service_restarts_are_refused_unless_allowed() {
    let text = r#"{"name": "x", "fleet": {"coordinators": 1},
        "tenants": [{"name": "a", "synthetic": {"users": 10}}],
        "cycles": [{"name": "i", "chaos": {"restart_postgresql": true}}]}"#;
    let scenario = Scenario::parse(text).unwrap();
    if std::env::var(dirsync_load_tests::scenario::chaos::ALLOW_SERVICE_RESTARTS_ENV).is_err() {
        let err = check_service_restarts(&scenario, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cycles[0].chaos") && err.contains("--allow-service-restarts"),
            "{err}"
        );
    }
    check_service_restarts(&scenario, true).unwrap();
    let workers_only = text.replace("restart_postgresql", "flush_redis");
    check_service_restarts(&Scenario::parse(&workers_only).unwrap(), false).unwrap();
}

/// Live users of the faults scenario at the start: 1,000 + 4 × 250 less the 5 + 4 × 2
/// that start soft-deleted.
const INITIAL_FAULTS_USERS: u64 = 1_987;

#[test]
fn bad_scenarios_are_refused_with_the_field_at_fault() {
    let good = r#"{"name": "x", "tenants": [{"name": "a", "synthetic": {"users": 10}}],
                   "cycles": [{"name": "initial"}]}"#;
    Scenario::parse(good).unwrap();
    let two_tenants = good.replace(
        r#"{"name": "a", "synthetic": {"users": 10}}"#,
        r#"{"name": "a", "synthetic": {"users": 10}}, {"name": "b", "synthetic": {"users": 10}}"#,
    );
    Scenario::parse(&two_tenants).unwrap();
    let hand = |users: &str, groups: &str| {
        format!(
            r#"{{"name": "x", "tenants": [{{"name": "h", "hand_written": {{"domain": "h.example",
                "users": [{users}], "groups": [{groups}]}}}}], "cycles": [{{"name": "c"}}]}}"#
        )
    };
    let ada = r#"{"key": "ada", "display_name": "Ada"}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown field",
            good.replace("\"name\": \"x\"", "\"name\": \"x\", \"wrokers\": 2"),
            "unknown field `wrokers`",
        ),
        (
            "unknown knob",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"scim\": {\"rate\": 5}}",
            ),
            "unknown field `rate`",
        ),
        (
            "negative size",
            good.replace("\"users\": 10", "\"users\": -5"),
            "invalid value: integer `-5`",
        ),
        (
            "zero size",
            good.replace("\"users\": 10", "\"users\": 0"),
            "tenants[0].synthetic.users: must be at least 1",
        ),
        (
            "zero workers",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"workers\": 0}",
            ),
            "fleet.workers: at least one worker is needed",
        ),
        (
            "missing tenants",
            r#"{"name": "x", "cycles": [{"name": "c"}]}"#.into(),
            "missing field `tenants`",
        ),
        (
            "no tenants",
            r#"{"name": "x", "tenants": [], "cycles": [{"name": "c"}]}"#.into(),
            "tenants: at least one tenant is needed",
        ),
        (
            "no cycles",
            good.replace(r#"[{"name": "initial"}]"#, "[]"),
            "cycles: at least one cycle is needed",
        ),
        (
            "no source",
            good.replace(r#", "synthetic": {"users": 10}"#, ""),
            "tenants[0]: give exactly one of",
        ),
        (
            "unknown tenant in a cycle",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "changes": {"updates": 1}, "tenants": ["b"]}"#,
            ),
            "cycles[0].tenants: no tenant is named \"b\"",
        ),
        (
            "unknown change kind",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "changes": {"edits": 1}}"#,
            ),
            "unknown field `edits`",
        ),
        (
            "unknown manager",
            hand(
                r#"{"key": "ada", "display_name": "Ada", "manager": "bob"}"#,
                "",
            ),
            "tenants[0].hand_written.users[0].manager: \"bob\" is not another user's key",
        ),
        (
            "duplicate key",
            hand(&format!("{ada}, {ada}"), ""),
            "tenants[0].hand_written.users[1].key",
        ),
        (
            "unknown member",
            hand(
                ada,
                r#"{"key": "g", "display_name": "G", "members": ["bob"]}"#,
            ),
            "tenants[0].hand_written.groups[0].members: \"bob\" is not a user's key",
        ),
        (
            "nesting cycle",
            hand(
                ada,
                r#"{"key": "g", "display_name": "G", "member_groups": ["h"]},
                   {"key": "h", "display_name": "H", "member_groups": ["g"]}"#,
            ),
            "group \"g\" contains itself",
        ),
        ("no users", hand("", ""), "needs at least one user"),
        (
            "scope of unknown group",
            hand(ada, "").replace(
                r#""hand_written""#,
                r#""scope": {"groups": ["nope"]}, "hand_written""#,
            ),
            "tenants[0].scope.groups: \"nope\" is not a group's key",
        ),
        (
            "too many coordinators",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"coordinators\": 33}",
            ),
            "fleet.coordinators: must be between 0",
        ),
        (
            "negative coordinators",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"coordinators\": -1}",
            ),
            "invalid value: integer `-1`",
        ),
        (
            "error rate above 1",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"scim\": {\"error_rate\": 1.5}}",
            ),
            "fleet.scim.error_rate: must be a probability between 0 and 1",
        ),
        (
            "negative throttle rate",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"scim\": {\"throttle_rate\": -0.1}}",
            ),
            "fleet.scim.throttle_rate: must be a probability between 0 and 1",
        ),
        (
            "every request failing",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"scim\": {\"error_rate\": 1}}",
            ),
            "fleet.scim.error_rate: must be below 1",
        ),
        (
            "burst without throttling",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"scim\": {\"throttle_burst_ms\": 500}}",
            ),
            "fleet.scim.throttle_burst_ms: a burst follows a drawn 429",
        ),
        (
            "zero retry-after",
            good.replace(
                "\"name\": \"x\"",
                "\"name\": \"x\", \"fleet\": {\"scim\": {\"throttle_rate\": 0.1, \"retry_after_s\": 0}}",
            ),
            "fleet.scim.retry_after_s: must be between 1 and 60",
        ),
        (
            "coordinator kill without coordinator processes",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"kill_coordinator": true}}"#,
            ),
            "cycles[0].chaos.kill_coordinator: needs coordinator processes",
        ),
        (
            "coordinator SIGTERM without coordinator processes",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"sigterm_coordinator": true}}"#,
            ),
            "cycles[0].chaos.sigterm_coordinator: needs coordinator processes",
        ),
        (
            "token of an unknown tenant revoked",
            two_tenants.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"revoke_scim_token": "c"}}"#,
            ),
            "cycles[0].chaos.revoke_scim_token: no tenant is named \"c\"",
        ),
        (
            "token of the only tenant revoked",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"revoke_scim_token": "a"}}"#,
            ),
            "cycles[0].chaos.revoke_scim_token: needs another tenant entry",
        ),
        (
            "token revoked twice",
            two_tenants.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"revoke_scim_token": "a"}},
                   {"name": "j", "chaos": {"revoke_scim_token": "a"}}"#,
            ),
            "cycles[1].chaos.revoke_scim_token: \"a\" was revoked in cycles[0] already",
        ),
        (
            "every token revoked",
            two_tenants.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"revoke_scim_token": "a"}},
                   {"name": "j", "chaos": {"revoke_scim_token": "b"}}"#,
            ),
            "cycles[1].chaos.revoke_scim_token: would leave no tenant whose token works",
        ),
        (
            "unknown fault",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"kill_worker": 3}}"#,
            ),
            "unknown field `kill_worker`",
        ),
        (
            "chaos without a fault",
            good.replace(r#"{"name": "initial"}"#, r#"{"name": "i", "chaos": {}}"#),
            "cycles[0].chaos: names no fault",
        ),
        (
            "too many worker kills",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"kill_workers": 101}}"#,
            ),
            "cycles[0].chaos.kill_workers: must be at most 100",
        ),
        (
            "zero sigterm bound",
            good.replace(
                r#"{"name": "initial"}"#,
                r#"{"name": "i", "chaos": {"sigterm_worker": true, "sigterm_bound_s": 0}}"#,
            ),
            "cycles[0].chaos.sigterm_bound_s: must be at least 1",
        ),
        (
            "scope beyond the generated groups",
            good.replace(
                r#""synthetic": {"users": 10}"#,
                r#""synthetic": {"users": 10}, "scope": {"first_groups": 2}"#,
            ),
            "tenants[0].scope.first_groups: must be between 1 and the tenant's 0 groups",
        ),
    ];
    for (what, text, expected) in cases {
        let err = Scenario::parse(&text).expect_err(what).to_string();
        assert!(err.contains(expected), "{what}: {err:?} lacks {expected:?}");
    }
}

#[test]
fn the_shipped_examples_are_valid() {
    let mut seen = 0;
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert!(scenario.initial_users() > 0);
            seen += 1;
        }
    }
    assert!(seen >= 4, "smoke, faults, 100k and 300k examples");
}

#[test]
fn the_documented_example_is_valid() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenarios.md"))
            .unwrap();
    let example = doc.split("### Example").nth(1).expect("an example section");
    let json = example
        .split("```json")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a json block");
    let scenario = Scenario::parse(json).unwrap();
    assert_eq!(scenario.initial_users(), 2 + 100_000 + 20 * 1_000);
}
