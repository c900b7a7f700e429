//! `dirsync tenant ...` and `dirsync run ...`: the operator's commands, each one call (or
//! two) to the admin API, printed as a table or, with `--json`, as the API's JSON.

use reqwest::Method;
use serde_json::{Value, json};

use dirsync_proto::TenantId;

use super::{OnOff, RunCommand, TenantCommand};
use crate::api::progress::Progress;
use crate::api::tenants::{Guard, MappingBody, QuarantineThresholds};
use crate::api::views::{Instance, Status};
use crate::api_client::{ApiClient, ApiFailure, ExitCode};
use crate::output::{self, cell, fields, table, when};

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.to_string()
}

pub(super) fn instance_fields(i: &Instance) -> String {
    let scope = &i.scope;
    let who = if scope.all {
        "all users".to_string()
    } else {
        format!(
            "{} users, {} groups{}",
            scope.users.len(),
            scope.groups.len(),
            if scope.nested {
                " (with children groups)"
            } else {
                ""
            }
        )
    };
    let options: Vec<&str> = [
        (scope.group_objects, "group objects"),
        (scope.rooms, "rooms"),
        (scope.avatars, "avatars"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    fields(&[
        ("id", i.id.to_string()),
        ("name", i.name.clone()),
        ("status", i.status.clone()),
        ("quarantine reason", cell(i.quarantine_reason.as_deref())),
        ("authorized", on_off(i.authorized)),
        ("auto-sync", on_off(i.auto_sync)),
        ("entra tenant", i.entra_tenant_id.clone()),
        ("graph", i.graph_base_url.clone()),
        ("scim", i.scim_base_url.clone()),
        ("users in scope", who),
        (
            "also synced",
            if options.is_empty() {
                "-".into()
            } else {
                options.join(", ")
            },
        ),
        ("clear attributes", on_off(i.clear_attributes)),
        ("last sync", when(i.last_sync_at)),
        ("next sync due", when(Some(i.next_run_at))),
    ])
}

fn status_text(s: &Status) -> String {
    let mut out = fields(&[
        ("status", s.status.clone()),
        ("quarantine reason", cell(s.quarantine_reason.as_deref())),
    ]);
    let runs: Vec<Vec<String>> = [("last sync", &s.last_sync), ("running", &s.running)]
        .into_iter()
        .filter_map(|(what, run)| {
            let r = run.as_ref()?;
            Some(vec![
                what.to_string(),
                r.kind.clone(),
                r.state.clone(),
                when(r.finished_at),
                format!("{}/{}/{}", r.users_synced, r.users_skipped, r.users_failed),
                format!(
                    "{}/{}/{}",
                    r.groups_synced, r.groups_to_be_synced, r.groups_failed
                ),
                format!("{}/{}", r.batches_recorded, r.batches_published),
            ])
        })
        .collect();
    if !runs.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &[
                "SYNC",
                "KIND",
                "STATE",
                "FINISHED",
                "USERS SYNCED/SKIPPED/FAILED",
                "GROUPS SYNCED/TO BE SYNCED/FAILED",
                "BATCHES",
            ],
            &runs,
        ));
    }
    if !s.failed_objects.is_empty() {
        let rows: Vec<Vec<String>> = s
            .failed_objects
            .iter()
            .map(|f| vec![f.entra_id.clone(), f.reason.clone()])
            .collect();
        out.push('\n');
        out.push_str(&table(&["FAILED OBJECT", "REASON"], &rows));
    }
    out
}

fn thresholds_text(q: &QuarantineThresholds) -> String {
    let own = |v: Option<u64>| {
        if v.is_some() {
            " (own)"
        } else {
            " (deployment)"
        }
    };
    fields(&[
        (
            "judged from failures",
            format!("{}{}", q.min_failures, own(q.own.min_failures)),
        ),
        (
            "max share failed",
            format!("{}%{}", q.max_percent, own(q.own.max_percent)),
        ),
        (
            "max failures",
            format!("{}{}", q.max_failures, own(q.own.max_failures)),
        ),
    ])
}

fn value_fields(v: &Value) -> String {
    let pairs: Vec<(&str, String)> = v
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => "-".into(),
                        Value::Array(a) => format!("{} entries", a.len()),
                        other => other.to_string(),
                    };
                    (k.as_str(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    fields(&pairs)
}

/// Runs one `tenant` command against the API.
pub async fn tenant(api: &ApiClient, command: TenantCommand, json: bool) -> Result<(), ApiFailure> {
    let at = |id: TenantId, rest: &str| format!("/tenants/{id}{rest}");
    match command {
        TenantCommand::Add(add) => {
            let body = add.body().map_err(|e| ApiFailure {
                code: ExitCode::Invalid,
                message: e.to_string(),
            })?;
            let created: Instance = api.call(Method::POST, "/tenants", Some(&body)).await?;
            output::print(json, &created, |i| {
                format!("{}\ninstance {} created", instance_fields(i), i.id)
            });
        }
        TenantCommand::List => {
            let list: Vec<Instance> = api.get("/tenants").await?;
            output::print(json, &list, |list| {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|i| {
                        vec![
                            i.id.to_string(),
                            i.name.clone(),
                            i.status.clone(),
                            on_off(i.auto_sync),
                            when(i.last_sync_at),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "STATUS", "AUTO-SYNC", "LAST SYNC"], &rows)
            });
        }
        TenantCommand::Show { tenant } => {
            let i: Instance = api.get(&at(tenant, "")).await?;
            output::print(json, &i, instance_fields);
        }
        TenantCommand::Status { tenant, limit } => {
            let s: Status = api
                .get(&at(tenant, &format!("/status?limit={limit}")))
                .await?;
            output::print(json, &s, status_text);
        }
        TenantCommand::Progress { tenant, watch } => {
            let path = at(tenant, "/progress");
            if watch {
                watch_progress(api, &path, json).await?;
            } else {
                let p: Progress = api.get(&path).await?;
                output::print(json, &p, progress_text);
            }
        }
        TenantCommand::DryRun {
            tenant,
            output,
            detach,
            report,
        } => {
            let want = super::dry_run::Wanted {
                output,
                detach,
                report,
            };
            super::dry_run::dry_run(api, tenant, want, json).await?;
        }
        TenantCommand::DryRuns { tenant } => super::dry_run::list(api, tenant, json).await?,
        TenantCommand::Migrate(args) => super::migrate::migrate(api, &args, json).await?,
        TenantCommand::Provision { tenant, user } => {
            super::provision::provision(api, tenant, &user, json).await?
        }
        TenantCommand::SearchUsers {
            tenant,
            text,
            limit,
        } => {
            let path = at(
                tenant,
                &format!("/entra/users?{}", search_query(&text, limit)),
            );
            let hits: Vec<crate::api::search::UserHit> = api.get(&path).await?;
            output::print(json, &hits, |hits| {
                let rows: Vec<Vec<String>> = hits
                    .iter()
                    .map(|h| {
                        vec![
                            h.id.clone(),
                            cell(h.display_name.as_deref()),
                            cell(h.user_principal_name.as_deref()),
                            yes_no(h.in_scope),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "USER PRINCIPAL NAME", "IN SCOPE"], &rows)
            });
        }
        TenantCommand::SearchGroups {
            tenant,
            text,
            limit,
        } => {
            let path = at(
                tenant,
                &format!("/entra/groups?{}", search_query(&text, limit)),
            );
            let hits: Vec<crate::api::search::GroupHit> = api.get(&path).await?;
            output::print(json, &hits, |hits| {
                let rows: Vec<Vec<String>> = hits
                    .iter()
                    .map(|h| {
                        vec![
                            h.id.clone(),
                            cell(h.display_name.as_deref()),
                            cell(h.mail.as_deref()),
                            yes_no(h.in_scope),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "MAIL", "IN SCOPE"], &rows)
            });
        }
        TenantCommand::Domains { tenant, import } => {
            if import.is_empty() {
                let domains: Vec<crate::api::domains::Domain> =
                    api.get(&at(tenant, "/domains")).await?;
                output::print(json, &domains, |domains| {
                    let rows: Vec<Vec<String>> = domains
                        .iter()
                        .map(|d| vec![d.name.clone(), yes_no(d.verified), yes_no(d.in_webex)])
                        .collect();
                    table(&["DOMAIN", "VERIFIED IN ENTRA", "IN WEBEX"], &rows)
                });
            } else {
                let body = json!({ "domains": import });
                let results: Vec<crate::api::domains::ImportResult> = api
                    .call(Method::POST, &at(tenant, "/domains/import"), Some(&body))
                    .await?;
                output::print(json, &results, |results| {
                    let rows: Vec<Vec<String>> = results
                        .iter()
                        .map(|r| {
                            let result = serde_json::to_value(r.result)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default();
                            vec![r.domain.clone(), result, cell(r.reason.as_deref())]
                        })
                        .collect();
                    table(&["DOMAIN", "RESULT", "REASON"], &rows)
                });
            }
        }
        TenantCommand::Sso { tenant, state } => {
            let path = at(tenant, "/sso");
            let sso: crate::api::sso::Sso = match state {
                None => api.get(&path).await?,
                Some(state) => {
                    let body = json!({ "active": state == OnOff::On });
                    api.call(Method::PUT, &path, Some(&body)).await?
                }
            };
            output::print(json, &sso, |s| {
                fields(&[
                    ("entra single sign-on", on_off(s.active)),
                    ("saml sso enabled", on_off(s.saml_sso_enabled)),
                ])
            })
        }
        TenantCommand::Rename { tenant, name } => {
            let i: Instance = api
                .call(
                    Method::PATCH,
                    &at(tenant, ""),
                    Some(&json!({ "name": name })),
                )
                .await?;
            output::print(json, &i, |i| {
                format!("instance {} is now {:?}", i.id, i.name)
            });
        }
        TenantCommand::Delete { tenant, yes } => {
            if !yes {
                return Err(ApiFailure {
                    code: ExitCode::Invalid,
                    message: format!(
                        "deleting {tenant} removes its configuration and state from dirsync \
                         (Webex users stay); confirm with --yes"
                    ),
                });
            }
            let _: Value = api
                .call::<Value, _>(Method::DELETE, &at(tenant, ""), None)
                .await?;
            output::print(json, &json!({"deleted": tenant}), |_| {
                format!("instance {tenant} deleted; its Webex users are unchanged")
            });
        }
        TenantCommand::Authorize {
            tenant,
            block_directory_connector,
        } => {
            let path = at(
                tenant,
                &format!("/authorize?block_directory_connector={block_directory_connector}"),
            );
            let i: Instance = api.call::<Value, _>(Method::POST, &path, None).await?;
            output::print(json, &i, |i| format!("instance {} authorized", i.id));
        }
        TenantCommand::AutoSync { tenant, state } => {
            let body = json!({ "auto_sync": state == OnOff::On });
            let i: Instance = api
                .call(Method::PATCH, &at(tenant, ""), Some(&body))
                .await?;
            output::print(json, &i, |i| {
                format!("auto-sync of {}: {}", i.id, on_off(i.auto_sync))
            });
        }
        TenantCommand::ClearAttributes { tenant, state } => {
            let body = json!({ "clear_attributes": state == OnOff::On });
            let i: Instance = api
                .call(Method::PATCH, &at(tenant, ""), Some(&body))
                .await?;
            output::print(json, &i, |i| {
                format!(
                    "clear attributes of {}: {}",
                    i.id,
                    on_off(i.clear_attributes)
                )
            });
        }
        TenantCommand::Mapping {
            tenant,
            file,
            default,
        } => {
            let path = at(tenant, "/mapping");
            let mapping: MappingBody = if default {
                api.call(Method::PUT, &path, Some(&json!({ "rules": null })))
                    .await?
            } else if let Some(file) = file {
                let text = std::fs::read_to_string(&file).map_err(|e| ApiFailure {
                    code: ExitCode::Invalid,
                    message: format!("reading {}: {e}", file.display()),
                })?;
                let rules: Value = serde_json::from_str(&text).map_err(|e| ApiFailure {
                    code: ExitCode::Invalid,
                    message: format!(
                        "{} is not a JSON list of mapping rules: {e}",
                        file.display()
                    ),
                })?;
                api.call(Method::PUT, &path, Some(&json!({ "rules": rules })))
                    .await?
            } else {
                api.get(&path).await?
            };
            output::print(json, &mapping, |m| match &m.rules {
                None => "the default mapping (the seed's attribute table)".to_string(),
                Some(rules) => {
                    let rows: Vec<Vec<String>> = rules
                        .iter()
                        .map(|r| {
                            let v = serde_json::to_value(r).unwrap_or(Value::Null);
                            let source = ["attribute", "value", "expression"]
                                .iter()
                                .find_map(|k| v[k].as_str().map(str::to_string))
                                .unwrap_or_else(|| "-".into());
                            vec![
                                v["target"].as_str().unwrap_or("-").to_string(),
                                v["kind"].as_str().unwrap_or("-").to_string(),
                                source,
                                on_off(v["create_only"].as_bool().unwrap_or(false)),
                                cell(v["default_if_null"].as_str()),
                            ]
                        })
                        .collect();
                    table(
                        &["TARGET", "KIND", "SOURCE", "CREATE ONLY", "DEFAULT IF NULL"],
                        &rows,
                    )
                }
            });
        }
        TenantCommand::Escrow { tenant } => {
            let entries: Vec<Value> = api.get(&at(tenant, "/escrow")).await?;
            output::print(json, &entries, |entries| {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        ["entra_id", "reason", "attempts", "next_retry_at"]
                            .iter()
                            .map(|k| match &e[k] {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .collect();
                table(&["ENTRA ID", "REASON", "ATTEMPTS", "NEXT RETRY"], &rows)
            });
        }
        TenantCommand::SyncNow { tenant } => {
            let _: Value = api
                .call::<Value, _>(Method::POST, &at(tenant, "/sync-now"), None)
                .await?;
            output::print(json, &json!({"sync_requested": tenant}), |_| {
                format!("{tenant} will be synced by the next free coordinator")
            });
        }
        TenantCommand::Guard {
            tenant,
            max_count,
            max_percent,
        } => {
            let body = Guard {
                max_count,
                max_percent,
            };
            let g: Guard = api
                .call(Method::PUT, &at(tenant, "/guard"), Some(&body))
                .await?;
            output::print(json, &g, |g| {
                format!(
                    "guard of {tenant}: {} users, {}%",
                    g.max_count, g.max_percent
                )
            });
        }
        TenantCommand::QuarantineThresholds {
            tenant,
            min_failures,
            max_percent,
            max_failures,
            default,
        } => {
            let path = at(tenant, "/quarantine-thresholds");
            let current: QuarantineThresholds = api.get(&path).await?;
            let changed = min_failures.is_some() || max_percent.is_some() || max_failures.is_some();
            let q: QuarantineThresholds = if default {
                api.call(Method::PUT, &path, Some(&json!({}))).await?
            } else if changed {
                // Values not given stay as they are.
                let body = json!({
                    "min_failures": min_failures.or(current.own.min_failures),
                    "max_percent": max_percent.or(current.own.max_percent),
                    "max_failures": max_failures.or(current.own.max_failures),
                });
                api.call(Method::PUT, &path, Some(&body)).await?
            } else {
                current
            };
            output::print(json, &q, thresholds_text);
        }
        TenantCommand::Scope(args) => {
            let tenant = args.tenant;
            let scope: Value = api
                .call(
                    Method::PUT,
                    &at(tenant, "/scope"),
                    Some(&crate::scope::Scope::from(args)),
                )
                .await?;
            output::print(json, &scope, value_fields);
        }
    }
    Ok(())
}

/// Runs one `run` command against the API.
pub async fn run(api: &ApiClient, command: RunCommand, json: bool) -> Result<(), ApiFailure> {
    let (path, method, done) = match &command {
        RunCommand::Approve(d) => (
            format!("/runs/{}/approve", d.run),
            Method::POST,
            "approved; the next sync of its instance pushes it",
        ),
        RunCommand::Reject(d) => (
            format!("/runs/{}/reject", d.run),
            Method::POST,
            "rejected; the next sync completes it without them",
        ),
        RunCommand::Show { run } => (format!("/runs/{run}"), Method::GET, ""),
    };
    let held: Value = api.call::<Value, _>(method, &path, None).await?;
    output::print(json, &held, |h| {
        let mut text = value_fields(h);
        if !done.is_empty() {
            text.push_str(&format!("\nrun {done}"));
        }
        text
    });
    Ok(())
}

fn progress_text(p: &Progress) -> String {
    let total = p
        .total_batches
        .map_or_else(|| "-".to_string(), |n| n.to_string());
    table(
        &[
            "RUN",
            "STATE",
            "BATCHES RECORDED/PUBLISHED",
            "TOTAL BATCHES",
            "USERS SYNCED/SKIPPED/FAILED",
            "FROM",
        ],
        &[vec![
            p.run_id.to_string(),
            p.state.clone(),
            format!("{}/{}", p.batches_recorded, p.batches_published),
            total,
            format!("{}/{}/{}", p.users_synced, p.users_skipped, p.users_failed),
            serde_json::to_value(p.from)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ]],
    )
}

/// `tenant progress --watch`: polls every second, showing batches recorded of published
/// (of the total once the walk is over) as a bar, until the run is completed; with `--json`,
/// one line per poll instead of the bar.
async fn watch_progress(api: &ApiClient, path: &str, json: bool) -> Result<(), ApiFailure> {
    let bar = output::batch_bar(json);
    let mut watched = None;
    loop {
        let p: Progress = api.get(path).await?;
        let run = *watched.get_or_insert(p.run_id);
        if json {
            println!("{}", serde_json::to_string(&p).unwrap_or_default());
        }
        // A run that failed is no longer shown: the API falls back to the last completed one.
        if p.run_id != run {
            bar.abandon_with_message(format!("run {run} ended without completing"));
            return Ok(());
        }
        bar.set_length(
            u64::from(p.total_batches.unwrap_or(p.batches_published)).max(p.batches_recorded),
        );
        bar.set_position(p.batches_recorded);
        bar.set_message(format!(
            "{} · synced {} skipped {} failed {}",
            p.state, p.users_synced, p.users_skipped, p.users_failed
        ));
        if p.state == "completed" {
            bar.finish();
            if !json {
                println!("{}", progress_text(&p));
            }
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// `search=<text>&limit=<n>`, the text percent-encoded.
fn search_query(text: &str, limit: u32) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    format!("search={encoded}&limit={limit}")
}
