//! Groups over HTTP: `groups/delta` paging with `members@delta` slices of at most 500, the same
//! group repeated across pages, merging per group back to the ground truth, incremental rounds
//! after membership churn, deleted and nested groups.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use dirsync_load_tests::graph_sim::{
    GraphSim, GraphSimConfig, GroupChangeStep, GroupSpec, MemberKind, MemberRef, SimGroup,
    TenantSpec, UserState,
};
use dirsync_load_tests::synthetic::{ChangeReport, ChangeStep};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, spec};

const SELECT: &str = "displayName,description,mailNickname,securityEnabled,members";

/// Per group id: the entries it appeared in, and its merged `members@delta` (member -> removed).
type Merged = BTreeMap<String, (Vec<Value>, BTreeMap<MemberRef, bool>)>;

fn group_spec(count: usize, nesting_depth: usize) -> GroupSpec {
    GroupSpec {
        count,
        max_members: 2_000,
        nesting_depth,
    }
}

async fn start(tenant: &TenantSpec, groups: GroupSpec) -> (Harness, String) {
    let h = Harness::start(GraphSimConfig::default(), &[]).await;
    h.sim
        .add_tenant_with_groups(tenant.clone(), groups)
        .unwrap();
    let token = h.token(tenant).await;
    (h, token)
}

fn member_ref(entry: &Value) -> MemberRef {
    let kind = match entry["@odata.type"].as_str().unwrap() {
        "#microsoft.graph.user" => MemberKind::User,
        "#microsoft.graph.group" => MemberKind::Group,
        other => panic!("member type {other}"),
    };
    MemberRef {
        kind,
        id: entry["id"].as_str().unwrap().to_owned(),
    }
}

/// Follows a groups round to its deltaLink, checking the slice rule on every page; returns the
/// merged groups, the pages' member-entry counts and the deltaLink.
async fn group_round(
    h: &Harness,
    url: &str,
    token: &str,
    minimal: bool,
) -> (Merged, Vec<usize>, String) {
    let (mut merged, mut pages, mut url) = (Merged::new(), Vec::new(), url.to_owned());
    loop {
        let (status, page) = h.get(&url, token, minimal).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut on_page = 0;
        for entry in page["value"].as_array().unwrap() {
            let id = entry["id"].as_str().unwrap().to_owned();
            let slot = merged.entry(id).or_default();
            slot.0.push(entry.clone());
            if let Some(members) = entry.get("members@delta") {
                let members = members.as_array().unwrap();
                assert!(!members.is_empty(), "an empty members@delta: {entry}");
                on_page += members.len();
                for member in members {
                    let removed = match member.get("@removed") {
                        None => false,
                        Some(r) => {
                            assert_eq!(r, &json!({"reason": "deleted"}), "{member}");
                            true
                        }
                    };
                    assert!(
                        slot.1.insert(member_ref(member), removed).is_none(),
                        "member listed twice: {member}"
                    );
                }
            }
        }
        assert!(on_page <= 500, "{on_page} member entries on one page");
        pages.push(on_page);
        let (next, delta) = (page.get("@odata.nextLink"), page.get("@odata.deltaLink"));
        assert!(next.is_some() != delta.is_some(), "{page}");
        let link = next.or(delta).and_then(Value::as_str).unwrap().to_owned();
        assert!(link.starts_with(&h.url("/v1.0/groups/delta?$")), "{link}");
        if delta.is_some() {
            return (merged, pages, link);
        }
        url = link;
    }
}

fn live_groups(groups: &[SimGroup]) -> Vec<&SimGroup> {
    groups
        .iter()
        .filter(|g| g.state == UserState::Live)
        .collect()
}

/// A live group's entry carries its selected properties as the ground truth has them.
fn assert_properties(entry: &Value, truth: &SimGroup) {
    assert_eq!(entry["displayName"], json!(truth.display_name), "{entry}");
    assert_eq!(entry["mailNickname"], json!(truth.mail_nickname));
    assert_eq!(entry["securityEnabled"], json!(truth.security_enabled));
    match &truth.description {
        Some(d) => assert_eq!(entry["description"], json!(d)),
        None => assert!(entry.get("description").is_none(), "{entry}"),
    }
}

#[tokio::test]
async fn initial_round_slices_large_groups_and_merges_to_the_snapshot() {
    let tenant = spec("groups-initial", 3, 3_000);
    let (h, token) = start(&tenant, group_spec(30, 2)).await;
    let url = h.url(&format!("/v1.0/groups/delta?$select={SELECT}"));
    let (merged, pages, _) = group_round(&h, &url, &token, false).await;
    let truth = h.sim.groups("groups-initial").unwrap();
    let live = live_groups(&truth);
    assert_eq!(merged.len(), live.len());
    assert!(pages.len() >= 3, "{pages:?}");
    assert!(pages.contains(&500), "a full member budget: {pages:?}");

    let group_ids: HashSet<&str> = truth.iter().map(|g| g.id.as_str()).collect();
    let user_ids: HashSet<String> = h
        .sim
        .snapshot("groups-initial")
        .unwrap()
        .into_iter()
        .map(|u| u.user.id)
        .collect();
    let mut nested = 0;
    for group in &live {
        let (entries, members) = &merged[&group.id];
        for entry in entries {
            assert_properties(entry, group);
            assert!(entry.get("@removed").is_none());
        }
        // Repeated with further slices when large; never split needlessly.
        // Repeated with further slices when large: one entry per slice, and a slice may be cut
        // short where the page's member budget ends.
        let slices = group.members.len().div_ceil(500).max(1);
        assert!(
            (slices..=slices + 1).contains(&entries.len()),
            "{} entries for {} members",
            entries.len(),
            group.members.len()
        );
        let expected: BTreeSet<&MemberRef> = group.members.iter().collect();
        assert_eq!(
            members.keys().collect::<BTreeSet<_>>(),
            expected,
            "{}",
            group.display_name
        );
        assert!(members.values().all(|removed| !removed));
        if group.members.is_empty() {
            assert!(entries.iter().all(|e| e.get("members@delta").is_none()));
        }
        for member in members.keys() {
            match member.kind {
                MemberKind::Group => {
                    nested += 1;
                    assert!(group_ids.contains(member.id.as_str()));
                }
                MemberKind::User => assert!(user_ids.contains(&member.id)),
            }
        }
    }
    assert!(nested > 0, "nested groups are typed as groups");
    let all_staff = &merged[&truth[0].id].0;
    assert!(truth[0].members.len() > 1_000);
    assert!(all_staff.len() >= 3, "the large group on several pages");
    assert!(live.iter().any(|g| g.members.is_empty()));

    // The SDK path is the same resource; without $select members are not returned.
    let (status, page) = h
        .get(&h.url("/v1.0/groups/microsoft.graph.delta"), &token, false)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["@odata.context"], h.url("/v1.0/$metadata#groups"));
    let value = page["value"].as_array().unwrap();
    assert_eq!(value.len(), live.len().min(200));
    assert!(value.iter().all(|e| e.get("members@delta").is_none()));
}

/// What a round after `report` must say about each group: member -> removed, or `None` for a
/// deleted group.
fn expected_changes(
    report: &ChangeReport,
    now: &[SimGroup],
) -> BTreeMap<String, Option<BTreeMap<MemberRef, bool>>> {
    let mut expected: BTreeMap<String, Option<BTreeMap<MemberRef, bool>>> = BTreeMap::new();
    let adds = report.added_members.iter().map(|m| (m, false));
    let removes = report
        .removed_members
        .iter()
        .chain(&report.unlinked_members)
        .map(|m| (m, true));
    for (m, removed) in adds.chain(removes) {
        expected
            .entry(m.group_id.clone())
            .or_insert_with(|| Some(BTreeMap::new()))
            .as_mut()
            .unwrap()
            .insert(m.member.clone(), removed);
    }
    for id in &report.created_group_ids {
        let group = now.iter().find(|g| &g.id == id).unwrap();
        let members = group.members.iter().map(|m| (m.clone(), false)).collect();
        expected.insert(id.clone(), Some(members));
    }
    for id in &report.deleted_group_ids {
        expected.insert(id.clone(), None);
    }
    expected
}

#[tokio::test]
async fn incremental_rounds_return_exactly_the_membership_changes() {
    let tenant = spec("groups-churn", 4, 2_500);
    let (h, token) = start(&tenant, group_spec(20, 1)).await;
    let url = h.url(&format!("/v1.0/groups/delta?$select={SELECT}"));
    let (initial, _, delta_link) = group_round(&h, &url, &token, false).await;

    let report = h
        .sim
        .apply_step(
            "groups-churn",
            &ChangeStep {
                hard_deletes: 8,
                updates: 20,
                ..ChangeStep::default()
            },
            &GroupChangeStep {
                members_added: 900,
                members_removed: 60,
                groups_created: 2,
                groups_deleted: 3,
            },
        )
        .unwrap();
    assert_eq!(
        (
            report.members_added,
            report.members_removed,
            report.groups_created,
            report.groups_deleted
        ),
        (900, 60, 2, 3)
    );
    let now = h.sim.groups("groups-churn").unwrap();
    let (round, pages, next_link) = group_round(&h, &delta_link, &token, false).await;
    assert!(
        pages.len() > 1,
        "900 additions need several pages: {pages:?}"
    );

    let expected = expected_changes(&report, &now);
    let got: BTreeMap<String, Option<BTreeMap<MemberRef, bool>>> = round
        .iter()
        .map(|(id, (entries, members))| {
            let removed = entries.iter().find_map(|e| e.get("@removed"));
            (id.clone(), removed.is_none().then(|| members.clone()))
        })
        .collect();
    assert_eq!(got, expected);

    for (id, (entries, _)) in &round {
        let truth = now.iter().find(|g| &g.id == id).unwrap();
        for entry in entries {
            match truth.state {
                UserState::Live => assert_properties(entry, truth),
                // Microsoft 365 groups are soft-deleted, security groups hard-deleted.
                UserState::SoftDeleted => {
                    assert_eq!(entry, &json!({"id": id, "@removed": {"reason": "changed"}}))
                }
                UserState::HardDeleted => {
                    assert_eq!(entry, &json!({"id": id, "@removed": {"reason": "deleted"}}))
                }
            }
        }
    }

    // Initial state plus the round's changes is the ground truth.
    let mut state: BTreeMap<String, BTreeSet<MemberRef>> = initial
        .into_iter()
        .map(|(id, (_, members))| (id, members.into_keys().collect()))
        .collect();
    for (id, change) in &got {
        match change {
            None => {
                state.remove(id);
            }
            Some(changes) => {
                let members = state.entry(id.clone()).or_default();
                for (member, removed) in changes {
                    if *removed {
                        assert!(members.remove(member), "removed a non-member");
                    } else {
                        assert!(members.insert(member.clone()), "added a member twice");
                    }
                }
            }
        }
    }
    let truth: BTreeMap<String, BTreeSet<MemberRef>> = live_groups(&now)
        .into_iter()
        .map(|g| (g.id.clone(), g.members.iter().cloned().collect()))
        .collect();
    assert_eq!(state, truth);

    // Minimal mode: membership-only changes carry just the id and the change.
    let (quiet, _, _) = group_round(&h, &next_link, &token, false).await;
    assert!(quiet.is_empty(), "no changes, no groups");
    let step = GroupChangeStep {
        members_removed: 5,
        ..GroupChangeStep::default()
    };
    let report = h
        .sim
        .apply_step("groups-churn", &ChangeStep::default(), &step)
        .unwrap();
    let (minimal, _, _) = group_round(&h, &next_link, &token, true).await;
    let touched: HashSet<&String> = report.removed_members.iter().map(|m| &m.group_id).collect();
    assert_eq!(minimal.keys().collect::<HashSet<_>>(), touched);
    for (entries, _) in minimal.values() {
        for entry in entries {
            let keys: BTreeSet<&str> = entry
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, BTreeSet::from(["id", "members@delta"]), "{entry}");
        }
    }
}

#[tokio::test]
async fn membership_changes_do_not_surface_without_members_selected() {
    let tenant = spec("groups-unselected", 5, 500);
    let (h, token) = start(&tenant, group_spec(6, 0)).await;
    let (_, _, delta_link) = group_round(
        &h,
        &h.url("/v1.0/groups/delta?$select=displayName"),
        &token,
        false,
    )
    .await;
    h.sim
        .apply_step(
            "groups-unselected",
            &ChangeStep::default(),
            &GroupChangeStep {
                members_added: 10,
                members_removed: 10,
                ..GroupChangeStep::default()
            },
        )
        .unwrap();
    let (round, _, _) = group_round(&h, &delta_link, &token, false).await;
    assert!(round.is_empty(), "{round:?}");
}

#[tokio::test]
async fn group_delta_refusals() {
    let tenant = spec("groups-errors", 6, 100);
    let (h, token) = start(&tenant, group_spec(3, 0)).await;
    // (path and query, status, error code)
    let cases = [
        (
            "/v1.0/groups/delta?$filter=id%20eq%20'x'",
            400,
            "Request_UnsupportedQuery",
        ),
        (
            "/v1.0/groups/delta?$expand=members",
            400,
            "Request_UnsupportedQuery",
        ),
        ("/v1.0/groups/delta?$select=owners", 400, "BadRequest"),
        (
            "/v1.0/groups/delta?$skiptoken=garbage",
            400,
            "syncStateNotFound",
        ),
    ];
    for (path, status, code) in cases {
        let (got, body) = h.get(&h.url(path), &token, false).await;
        assert_eq!(
            (got.as_u16(), body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    // A users deltaLink is not a groups deltaLink.
    let (_, _, users_link) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let token_part = users_link.split("$deltatoken=").nth(1).unwrap();
    let (status, body) = h
        .get(
            &h.url(&format!("/v1.0/groups/delta?$deltatoken={token_part}")),
            &token,
            false,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "syncStateNotFound");
    let (status, body) = h
        .get(
            &h.url("/v1.0/groups/delta?$deltatoken=latest"),
            &token,
            false,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"], json!([]));
}

#[tokio::test]
async fn groups_are_deterministic_per_seed() {
    let make = |seed: u64| {
        let sim = GraphSim::new(GraphSimConfig::default());
        sim.add_tenant_with_groups(spec("det", seed, 1_500), group_spec(15, 1))
            .unwrap();
        let step = GroupChangeStep {
            members_added: 30,
            members_removed: 30,
            groups_created: 1,
            groups_deleted: 1,
        };
        let report = sim
            .apply_step("det", &ChangeStep::default(), &step)
            .unwrap();
        (sim.groups("det").unwrap(), report)
    };
    let (a, b, c) = (make(9), make(9), make(10));
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
    assert_eq!(a.0.len(), 16);
    // Tenants without a group spec have no groups, as before.
    let sim = GraphSim::new(GraphSimConfig::default());
    sim.add_tenant(spec("plain", 9, 100)).unwrap();
    assert!(sim.groups("plain").unwrap().is_empty());
}

#[tokio::test]
async fn admin_endpoints_take_groups() {
    let h = Harness::start(GraphSimConfig::default(), &[]).await;
    let mut body = serde_json::to_value(spec("admin-groups", 11, 700)).unwrap();
    body["groups"] = json!({ "count": 5, "nesting_depth": 1 });
    let created = h
        .http
        .post(h.url("/_sim/tenants"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["groups"], 5);

    let response = h
        .http
        .post(h.url("/_sim/tenants/admin-groups/changes"))
        .json(&json!({ "updates": 2, "members_added": 4, "groups_created": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: ChangeReport = response.json().await.unwrap();
    assert_eq!(
        (report.updates, report.members_added, report.groups_created),
        (2, 4, 1)
    );
    let groups: Vec<SimGroup> = h
        .http
        .get(h.url("/_sim/tenants/admin-groups/groups"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(groups, h.sim.groups("admin-groups").unwrap());
    assert_eq!(groups.len(), 6);
    // Without "groups" a tenant has none, as before.
    let plain = h
        .http
        .post(h.url("/_sim/tenants"))
        .json(&spec("admin-plain", 11, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::CREATED);
    assert!(h.sim.groups("admin-plain").unwrap().is_empty());
}
