//! `dirsync tenant dry-run` and `dirsync tenant dry-runs`: ask for a dry run, follow it with
//! a progress bar, save its CSV report (streamed to the file, never held in memory) and
//! print what it found.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use dirsync_proto::TenantId;

use crate::api_client::{ApiClient, ApiFailure, ExitCode};
use crate::dry_runs::DryRunView;
use crate::output::{self, cell, table, when};

/// What the operator asked of `tenant dry-run`.
#[derive(Debug)]
pub struct Wanted {
    pub output: Option<PathBuf>,
    pub detach: bool,
    pub report: Option<uuid::Uuid>,
}

/// How often a running dry run is polled.
const POLL: Duration = Duration::from_millis(500);

pub async fn dry_run(
    api: &ApiClient,
    tenant: TenantId,
    want: Wanted,
    json: bool,
) -> Result<(), ApiFailure> {
    let base = format!("/tenants/{tenant}/dry-runs");
    let view = match want.report {
        Some(id) => api.get(&format!("{base}/{id}")).await?,
        None => {
            let started: DryRunView = api.call::<Value, _>(Method::POST, &base, None).await?;
            if want.detach {
                output::print(json, &started, |v| format!("dry run {} requested", v.id));
                return Ok(());
            }
            follow(api, &format!("{base}/{}", started.id), json).await?
        }
    };
    if view.status != "completed" {
        let why = view.error.clone().unwrap_or_else(|| view.status.clone());
        return Err(ApiFailure {
            code: ExitCode::Failed,
            message: format!("dry run {} did not complete: {why}", view.id),
        });
    }
    let path = want
        .output
        .unwrap_or_else(|| PathBuf::from(format!("dry-run-{}.csv", view.id)));
    let report = format!("{base}/{}/report", view.id);
    let bytes = if path.as_os_str() == "-" {
        api.download(&report, &mut std::io::stdout()).await?
    } else {
        let mut file = std::fs::File::create(&path).map_err(|e| ApiFailure {
            code: ExitCode::Invalid,
            message: format!("cannot write the report to {}: {e}", path.display()),
        })?;
        api.download(&report, &mut file).await?
    };
    if path.as_os_str() != "-" {
        output::print(json, &view, |v| {
            format!(
                "{}\nreport saved to {} ({bytes} bytes)",
                summary_text(v),
                path.display()
            )
        });
    }
    Ok(())
}

pub async fn list(api: &ApiClient, tenant: TenantId, json: bool) -> Result<(), ApiFailure> {
    let views: Vec<DryRunView> = api.get(&format!("/tenants/{tenant}/dry-runs")).await?;
    output::print(json, &views, |views| {
        let rows: Vec<Vec<String>> = views.iter().map(row).collect();
        table(
            &[
                "DRY RUN",
                "STATUS",
                "REQUESTED",
                "FINISHED",
                "USERS READ",
                "MATCHED/ADD/UPDATE/DEACTIVATE",
                "FAILING",
            ],
            &rows,
        )
    });
    Ok(())
}

fn row(v: &DryRunView) -> Vec<String> {
    let (counts, failing) = match &v.summary {
        Some(s) => (
            format!("{}/{}/{}/{}", s.matched, s.add, s.update, s.deactivate),
            s.failing.to_string(),
        ),
        None => ("-".into(), cell(v.error.as_deref())),
    };
    vec![
        v.id.to_string(),
        v.status.clone(),
        when(Some(v.requested_at)),
        when(v.finished_at),
        v.users_read.to_string(),
        counts,
        failing,
    ]
}

fn summary_text(v: &DryRunView) -> String {
    let mut out = table(
        &["ACTION", "OBJECTS"],
        &v.summary
            .iter()
            .flat_map(|s| {
                [
                    ("Matched", s.matched),
                    ("Add", s.add),
                    ("Update", s.update),
                    ("Deactivate", s.deactivate),
                    ("would fail", s.failing),
                    ("skipped (nothing to do)", s.skipped),
                ]
            })
            .map(|(what, n)| vec![what.to_string(), n.to_string()])
            .collect::<Vec<_>>(),
    );
    if let Some(hold) = v.summary.as_ref().and_then(|s| s.guard_hold.as_ref()) {
        out.push_str(&format!("\nwarning: {hold}"));
    }
    out
}

/// Polls the dry run with a progress bar (users read, then batches reported of sent) until
/// it completes or fails; with `--json`, one line per poll instead of the bar.
async fn follow(api: &ApiClient, path: &str, json: bool) -> Result<DryRunView, ApiFailure> {
    let bar = output::batch_bar(json);
    loop {
        let v: DryRunView = api.get(path).await?;
        if json {
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
        }
        bar.set_length(u64::from(v.batches_published.max(v.batches_reported)));
        bar.set_position(u64::from(v.batches_reported));
        bar.set_message(format!(
            "{} · {} users read{}",
            v.status,
            v.users_read,
            if v.enumeration_done {
                ", walk done"
            } else {
                ""
            }
        ));
        match v.status.as_str() {
            "completed" => {
                bar.finish();
                return Ok(v);
            }
            "failed" => {
                bar.abandon();
                return Ok(v);
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
