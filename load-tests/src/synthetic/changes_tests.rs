//! Tests of change steps applied to synthetic tenants.

use std::collections::{HashMap, HashSet};

use super::*;

fn count(tenant: &SyntheticTenant, state: UserState) -> usize {
    tenant.users().iter().filter(|u| u.state == state).count()
}

fn step(
    updates: usize,
    soft: usize,
    hard: usize,
    new: usize,
    restores: usize,
    disables: usize,
) -> ChangeStep {
    ChangeStep {
        updates,
        soft_deletes: soft,
        hard_deletes: hard,
        new_users: new,
        restores,
        disables,
    }
}

#[test]
fn initial_tenant_has_some_soft_deleted_users() {
    for (users, soft) in [
        (0, 0),
        (1, 1),
        (50, 1),
        (200, 1),
        (201, 2),
        (1_000, 5),
        (30_000, 150),
    ] {
        let tenant = SyntheticTenant::new(1, users, "contoso.example");
        assert_eq!(tenant.users().len(), users);
        assert_eq!(
            count(&tenant, UserState::SoftDeleted),
            soft,
            "{users} users"
        );
    }
}

#[test]
fn steps_do_what_they_can_and_report_it() {
    // (tenant size, step, expected report counts: updates, soft, hard, new, restores, disables)
    let cases = [
        (1_000, step(50, 10, 5, 7, 3, 4), [50, 10, 5, 7, 3, 4]),
        (1_000, step(0, 0, 0, 0, 0, 0), [0, 0, 0, 0, 0, 0]),
        // 1,000 users start with 5 soft-deleted: only those can be restored.
        (1_000, step(0, 0, 0, 0, 50, 0), [0, 0, 0, 0, 5, 0]),
        // 10 users, 1 soft-deleted: hard deletes take the soft-deleted one too, nothing is left.
        (10, step(5, 5, 10, 0, 0, 5), [0, 0, 10, 0, 0, 0]),
        (10, step(100, 0, 0, 2, 0, 0), [9, 0, 0, 2, 0, 0]),
    ];
    for (size, change, expected) in cases {
        let mut tenant = SyntheticTenant::new(7, size, "contoso.example");
        let before: Vec<TenantUser> = tenant.users().to_vec();
        let applied = tenant.apply(&change);
        let r = &applied.report;
        assert_eq!(
            [
                r.updates,
                r.soft_deletes,
                r.hard_deletes,
                r.new_users,
                r.restores,
                r.disables
            ],
            expected,
            "{size} users, {change:?}"
        );
        assert_eq!(r.step, 1);
        let id_lists = [
            &r.updated_ids,
            &r.soft_deleted_ids,
            &r.hard_deleted_ids,
            &r.new_ids,
            &r.restored_ids,
            &r.disabled_ids,
        ];
        let all: Vec<&String> = id_lists.iter().flat_map(|ids| ids.iter()).collect();
        assert_eq!(
            all.len(),
            all.iter().collect::<HashSet<_>>().len(),
            "a user touched twice"
        );
        assert_eq!(all.len(), applied.touched.len());

        let by_id: HashMap<&str, &TenantUser> = tenant
            .users()
            .iter()
            .map(|u| (u.user.id.as_str(), u))
            .collect();
        let was: HashMap<&str, &TenantUser> =
            before.iter().map(|u| (u.user.id.as_str(), u)).collect();
        let expect_states = [
            (
                &r.soft_deleted_ids,
                Some(UserState::Live),
                UserState::SoftDeleted,
            ),
            (
                &r.restored_ids,
                Some(UserState::SoftDeleted),
                UserState::Live,
            ),
            (&r.new_ids, None, UserState::Live),
            (&r.disabled_ids, Some(UserState::Live), UserState::Live),
            (&r.updated_ids, Some(UserState::Live), UserState::Live),
        ];
        for (ids, from, to) in expect_states {
            for id in ids {
                assert_eq!(was.get(id.as_str()).map(|u| u.state), from, "{id}");
                assert_eq!(by_id[id.as_str()].state, to, "{id}");
            }
        }
        for id in &r.hard_deleted_ids {
            assert_ne!(was[id.as_str()].state, UserState::HardDeleted);
            assert_eq!(by_id[id.as_str()].state, UserState::HardDeleted);
        }
        for id in &r.disabled_ids {
            assert!(
                was[id.as_str()].user.account_enabled && !by_id[id.as_str()].user.account_enabled
            );
        }
        // Nobody else changed.
        let touched: HashSet<&str> = all.iter().map(|s| s.as_str()).collect();
        for old in &before {
            if !touched.contains(old.user.id.as_str()) {
                assert_eq!(&by_id[old.user.id.as_str()], &old, "untouched user changed");
            }
        }
    }
}

#[test]
fn update_masks_match_the_real_differences() {
    let mut tenant = SyntheticTenant::new(3, 2_000, "contoso.example");
    let mut nulls = PropSet::EMPTY;
    for _ in 0..5 {
        let before: Vec<TenantUser> = tenant.users().to_vec();
        let applied = tenant.apply(&step(300, 0, 0, 0, 0, 0));
        assert_eq!(applied.report.updates, 300);
        for touch in &applied.touched {
            let (old, new) = (&before[touch.index], &tenant.users()[touch.index]);
            let differs: PropSet = Prop::ALL
                .into_iter()
                .filter(|p| old.user.value(*p) != new.user.value(*p))
                .collect();
            assert_eq!(touch.props, differs, "user {}", touch.index);
            assert!(!touch.props.is_empty());
            assert!(touch.props.len() <= 9);
            for prop in new.cleared.iter() {
                assert_eq!(new.user.value(prop), None, "{prop} cleared but has a value");
            }
            for prop in touch.props.iter() {
                if new.user.value(prop).is_none() {
                    assert!(
                        new.cleared.contains(prop),
                        "{prop} set to null but not recorded as cleared"
                    );
                    nulls.insert(prop);
                }
            }
        }
    }
    assert!(
        nulls.contains(Prop::MobilePhone) && nulls.contains(Prop::JobTitle),
        "no nulls set: {nulls:?}"
    );
}

#[test]
fn steps_are_deterministic_per_seed_and_step_number() {
    let steps = [
        step(40, 5, 3, 6, 2, 4),
        step(10, 0, 0, 0, 4, 0),
        step(40, 5, 3, 6, 2, 4),
    ];
    let run = |seed: u64| {
        let mut tenant = SyntheticTenant::new(seed, 500, "contoso.example");
        let reports: Vec<ChangeReport> = steps.iter().map(|s| tenant.apply(s).report).collect();
        (reports, tenant.users().to_vec())
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
    // The same step applied twice picks different users (the step number seeds the rng).
    assert_ne!(a.0[0].updated_ids, a.0[2].updated_ids);
    assert_eq!(a.0.iter().map(|r| r.step).collect::<Vec<_>>(), [1, 2, 3]);
}

#[test]
fn new_users_continue_the_generated_sequence() {
    let mut tenant = SyntheticTenant::new(8, 100, "Contoso.Example");
    let report = tenant.apply(&step(0, 0, 0, 20, 0, 0)).report;
    let bigger = crate::synthetic::generate_users(8, 120, "contoso.example");
    let expected: Vec<String> = bigger[100..].iter().map(|u| u.id.clone()).collect();
    assert_eq!(report.new_ids, expected);
    assert_eq!(tenant.domain(), "contoso.example");
}
