//! Tests of the simulator's Rust API (the HTTP face is tested in `tests/graph_sim.rs`).

use super::*;

fn spec(tenant_id: &str, users: usize) -> TenantSpec {
    TenantSpec {
        tenant_id: tenant_id.into(),
        domain: format!("{tenant_id}.example"),
        client_id: "app".into(),
        client_secret: "secret".into(),
        seed: 4,
        users,
    }
}

#[test]
fn tenants_are_added_once_and_validated() {
    let sim = GraphSim::new(GraphSimConfig::default());
    sim.add_tenant(spec("a", 10)).unwrap();
    assert!(matches!(
        sim.add_tenant(spec("a", 10)),
        Err(GraphSimError::DuplicateTenant(_))
    ));
    let bad = [
        TenantSpec {
            tenant_id: String::new(),
            ..spec("b", 1)
        },
        TenantSpec {
            client_secret: " ".into(),
            ..spec("b", 1)
        },
        TenantSpec {
            tenant_id: "x/y".into(),
            ..spec("b", 1)
        },
    ];
    for spec in bad {
        assert!(
            matches!(
                sim.add_tenant(spec.clone()),
                Err(GraphSimError::InvalidSpec(_))
            ),
            "{spec:?}"
        );
    }
    assert_eq!(sim.tenant_ids(), ["a"]);
    assert!(matches!(
        sim.snapshot("zzz"),
        Err(GraphSimError::UnknownTenant(_))
    ));
    assert!(matches!(
        sim.apply_changes("zzz", &ChangeStep::default()),
        Err(GraphSimError::UnknownTenant(_))
    ));
}

#[test]
fn snapshots_follow_change_steps_and_keep_tombstones() {
    let sim = GraphSim::new(GraphSimConfig::default());
    sim.add_tenant(spec("t", 400)).unwrap();
    let before = sim.snapshot("t").unwrap();
    assert_eq!(before.len(), 400);
    assert_eq!(
        before
            .iter()
            .filter(|u| u.state == UserState::SoftDeleted)
            .count(),
        2
    );
    assert_eq!(sim.version("t").unwrap(), 0);

    let step = ChangeStep {
        hard_deletes: 3,
        new_users: 4,
        ..ChangeStep::default()
    };
    let report = sim.apply_changes("t", &step).unwrap();
    assert_eq!((report.hard_deletes, report.new_users), (3, 4));
    assert_eq!(sim.version("t").unwrap(), 1);
    let after = sim.snapshot("t").unwrap();
    assert_eq!(after.len(), 404);
    for id in &report.hard_deleted_ids {
        assert_eq!(
            after.iter().find(|u| &u.user.id == id).map(|u| u.state),
            Some(UserState::HardDeleted)
        );
    }
    // An empty step changes nothing, not even the version.
    sim.apply_changes("t", &ChangeStep::default()).unwrap();
    assert_eq!(sim.version("t").unwrap(), 1);
}

#[test]
fn tenant_spec_debug_hides_the_secret() {
    let shown = format!("{:?}", spec("a", 1));
    assert!(!shown.contains("secret\""), "{shown}");
    assert!(shown.contains("<redacted>"));
}
