//! Benchmarks of the worker's pure hot paths, on one 200-user batch: mapping (the default
//! mapping and an expression-heavy tenant mapping), content hashing, diffing against the
//! mirror, `plan_batch_with` end to end, and building the SCIM Bulk request bodies.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dirsync_proto::SourceUser;
use dirsync_proto::mapping::{Mapping, MappingRule};
use dirsync_worker::diff::{Action, MirrorUser, diff};
use dirsync_worker::hash::content_hash;
use dirsync_worker::map::{MANAGER, ScimAttributes, active_of, map_user_with};
use dirsync_worker::pipeline::{Planned, Policy, plan_batch_with};
use dirsync_worker::scim::{BulkOperation, BulkRequest, MAX_BULK_OPERATIONS, user_resource};
use serde_json::{Value, json};

#[path = "../../proto/benches/support/users.rs"]
mod users;

const N: usize = users::PAGE_USERS;

/// One `plan_batch_with` benchmark: name, entries, mirror, policy.
type PlanCase<'a> = (
    &'a str,
    &'a [SourceUser],
    &'a HashMap<String, MirrorUser>,
    &'a Policy,
);

/// A tenant mapping that leans on expressions: regular expressions, Switch, Join, PCase,
/// NormalizeDiacritics, IIF, Coalesce, for most targets.
fn expression_mapping() -> Mapping {
    let rules: Vec<MappingRule> = serde_json::from_value(json!([
        {"target": "userName", "kind": "expression",
         "expression": r#"ToLower(Replace([userPrincipalName], "@contoso.onmicrosoft.com", , , "@contoso.com", , ))"#},
        {"target": "displayName", "kind": "expression",
         "expression": r#"Join(" ", NormalizeDiacritics([givenName]), NormalizeDiacritics([surname]))"#},
        {"target": "name.givenName", "kind": "direct", "attribute": "givenName"},
        {"target": "name.familyName", "kind": "expression", "expression": "PCase([surname])"},
        {"target": "nickName", "kind": "expression",
         "expression": r#"ToLower(Join(".", Left(NormalizeDiacritics([givenName]), 1), StripSpaces([surname])))"#},
        {"target": "title", "kind": "expression", "expression": "IgnoreFlowIfNullOrEmpty([jobTitle])"},
        {"target": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
         "kind": "expression",
         "expression": r#"Switch([department], [department], "ENG", "Engineering", "SLS", "Sales", "FIN", "Finance", "HR", "People")"#},
        {"target": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
         "kind": "expression", "expression": r#"Join("-", "E", [employeeId])"#},
        {"target": "phoneNumbers[type eq \"work\"].value", "kind": "expression",
         "expression": r#"Replace(Item([businessPhones], 1), , "[()\\s-]+", , "", , )"#},
        {"target": "phoneNumbers[type eq \"mobile\"].value", "kind": "expression",
         "expression": r#"Replace([mobilePhone], , "\\+(?<cc>\\d+) ", , "00${cc}", , )"#},
        {"target": "addresses[type eq \"work\"].locality", "kind": "expression",
         "expression": r#"IIF(IsNullOrEmpty([city]), "Unknown", [city])"#},
        {"target": "addresses[type eq \"work\"].region", "kind": "direct", "attribute": "state"},
        {"target": "addresses[type eq \"work\"].country", "kind": "expression",
         "expression": r#"Coalesce([usageLocation], "US")"#},
        {"target": "addresses[type eq \"work\"].postalCode", "kind": "direct",
         "attribute": "postalCode", "create_only": true},
    ]))
    .expect("the rules read");
    Mapping::compile(rules).expect("the rules compile")
}

/// Every manager the users name, as in Webex.
fn managers(users: &[SourceUser]) -> HashMap<String, String> {
    users
        .iter()
        .filter_map(|u| u.str_attr("manager"))
        .map(|m| (m.to_string(), format!("w-{m}")))
        .collect()
}

/// The mirror after the batch was pushed: one row per created user.
fn mirror_after(users: &[SourceUser], policy: &Policy) -> HashMap<String, MirrorUser> {
    let (planned, _) = plan_batch_with(users, &HashMap::new(), policy);
    planned
        .into_iter()
        .filter_map(|p| match p {
            Planned::Plan { entra_id, plan } if plan.action == Action::Create => {
                let row = MirrorUser {
                    webex_id: format!("w-{entra_id}"),
                    content_hash: plan.content_hash,
                    active: plan.active(),
                    attributes: plan.effective,
                    deferred_manager: None,
                };
                Some((entra_id, row))
            }
            _ => None,
        })
        .collect()
}

/// The same users with 1 % of them (every 100th) given a new job title.
fn one_percent_changed(users: &[SourceUser]) -> Vec<SourceUser> {
    let mut users = users.to_vec();
    for user in users.iter_mut().step_by(100) {
        user.attributes
            .insert("jobTitle".into(), json!("Principal Engineer"));
    }
    users
}

fn count(planned: &[Planned], f: impl Fn(&Action) -> bool) -> usize {
    planned
        .iter()
        .filter(|p| matches!(p, Planned::Plan { plan, .. } if f(&plan.action)))
        .count()
}

fn mapping(c: &mut Criterion) {
    let users = users::source_users(N);
    let tenant = expression_mapping();
    for user in &users {
        let mapped = map_user_with(user, Some(&tenant), false);
        assert_eq!(mapped.error, None);
        assert!(mapped.always.len() >= 10, "{:?}", mapped.always);
    }
    let mut group = c.benchmark_group("map_200_users");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("default", |b| {
        b.iter(|| {
            for user in black_box(&users) {
                black_box(map_user_with(user, None, false));
            }
        })
    });
    group.bench_function("expressions", |b| {
        b.iter(|| {
            for user in black_box(&users) {
                black_box(map_user_with(user, Some(&tenant), false));
            }
        })
    });
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let users = users::source_users(N);
    let mapped: Vec<ScimAttributes> = users
        .iter()
        .map(|u| map_user_with(u, None, false).always)
        .collect();
    let mut group = c.benchmark_group("content_hash_200_users");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("default_mapping", |b| {
        b.iter(|| {
            for attributes in black_box(&mapped) {
                black_box(content_hash(attributes));
            }
        })
    });
    group.finish();
}

fn diffing(c: &mut Criterion) {
    let users = users::source_users(N);
    let policy = Policy {
        managers: managers(&users),
        ..Policy::default()
    };
    let mirror = mirror_after(&users, &policy);
    // What the pipeline hands `diff`: the mapping with the manager resolved.
    let mapped_of = |users: &[SourceUser]| -> Vec<(String, ScimAttributes)> {
        users
            .iter()
            .map(|u| {
                let mut mapped = map_user_with(u, None, false).always;
                if let Some(m) = u.str_attr("manager") {
                    mapped.insert(
                        MANAGER.to_string(),
                        Value::String(policy.managers[m].clone()),
                    );
                }
                (u.id.clone(), mapped)
            })
            .collect()
    };
    let unchanged = mapped_of(&users);
    let changed = mapped_of(&one_percent_changed(&users));
    let patches = changed
        .iter()
        .filter(|(id, m)| {
            let plan = diff(None, m.clone(), mirror.get(id), false);
            matches!(plan.action, Action::Patch { .. })
        })
        .count();
    assert_eq!(patches, 2);

    let mut group = c.benchmark_group("diff_200_users");
    group.throughput(Throughput::Elements(N as u64));
    for (name, input) in [("unchanged", &unchanged), ("changed_1pct", &changed)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || input.clone(),
                |input| {
                    for (id, mapped) in input {
                        black_box(diff(None, mapped, mirror.get(&id), false));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn planning(c: &mut Criterion) {
    let users = users::source_users(N);
    let changed = one_percent_changed(&users);
    let policy = Policy {
        managers: managers(&users),
        ..Policy::default()
    };
    let expressions = Policy {
        mapping: Some(Arc::new(expression_mapping())),
        ..policy.clone()
    };
    let mirror = mirror_after(&users, &policy);
    let mirror_expr = mirror_after(&users, &expressions);
    let empty = HashMap::new();

    let (planned, _) = plan_batch_with(&users, &mirror, &policy);
    assert_eq!(count(&planned, |a| matches!(a, Action::Skip(_))), N);
    let (planned, _) = plan_batch_with(&changed, &mirror, &policy);
    assert_eq!(count(&planned, |a| matches!(a, Action::Patch { .. })), 2);
    let (planned, _) = plan_batch_with(&users, &mirror_expr, &expressions);
    assert_eq!(count(&planned, |a| matches!(a, Action::Skip(_))), N);

    let cases: [PlanCase; 5] = [
        ("default/initial", &users, &empty, &policy),
        ("default/unchanged", &users, &mirror, &policy),
        ("default/changed_1pct", &changed, &mirror, &policy),
        ("expressions/initial", &users, &empty, &expressions),
        ("expressions/unchanged", &users, &mirror_expr, &expressions),
    ];
    let mut group = c.benchmark_group("plan_batch_200_users");
    group.throughput(Throughput::Elements(N as u64));
    for (name, users, mirror, policy) in cases {
        group.bench_function(name, |b| {
            b.iter(|| plan_batch_with(black_box(users), mirror, policy))
        });
    }
    group.finish();
}

/// The whole of building Bulk requests from plans: the operations (a create's resource from
/// its path-keyed attributes), the split, the JSON body and its bytes as sent.
fn bulk_bytes(operations: Vec<BulkOperation>) -> usize {
    BulkRequest::split(operations)
        .iter()
        .map(|request| request.to_bytes().len())
        .sum()
}

fn bulk(c: &mut Criterion) {
    let users = users::source_users(N);
    let policy = Policy {
        managers: managers(&users),
        ..Policy::default()
    };
    let creates: Vec<ScimAttributes> = mirror_after(&users, &policy)
        .into_values()
        .map(|row| row.attributes)
        .filter(|attributes| active_of(attributes) != Some(false))
        .take(MAX_BULK_OPERATIONS)
        .collect();
    assert_eq!(creates.len(), MAX_BULK_OPERATIONS);
    let patches: Vec<(String, ScimAttributes)> = (0..MAX_BULK_OPERATIONS)
        .map(|i| {
            let changes = ScimAttributes::from([
                ("title".to_string(), json!("Principal Engineer")),
                (
                    "addresses[type eq \"work\"].locality".to_string(),
                    json!("Trondheim"),
                ),
            ]);
            (format!("w-{}", users::object_id(i)), changes)
        })
        .collect();

    let mut group = c.benchmark_group("bulk_request_100_operations");
    group.throughput(Throughput::Elements(MAX_BULK_OPERATIONS as u64));
    group.bench_function("creates", |b| {
        b.iter(|| {
            let operations = black_box(&creates)
                .iter()
                .map(|attributes| BulkOperation::Create {
                    resource: user_resource(attributes).unwrap(),
                })
                .collect();
            bulk_bytes(operations)
        })
    });
    group.bench_function("patches", |b| {
        b.iter(|| {
            let operations = black_box(&patches)
                .iter()
                .map(|(webex_id, changes)| BulkOperation::Patch {
                    webex_id: webex_id.clone(),
                    changes: changes.clone(),
                })
                .collect();
            bulk_bytes(operations)
        })
    });
    group.finish();
}

criterion_group!(benches, mapping, hashing, diffing, planning, bulk);
criterion_main!(benches);
