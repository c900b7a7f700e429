//! `dirsync dead-letter list|show|redrive`: the poison batches the queues dead-lettered,
//! through the admin API (see [`crate::dead_letters`] for what a re-drive does). Exit
//! status 6 when a letter cannot be re-driven (the message says why), 5 when there is no
//! such letter.

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use crate::api_client::{ApiClient, ApiFailure};
use crate::dead_letters::{DeadLetterDetail, DeadLetterView, Redriven};
use crate::output::{self, cell, fields, table, when};

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, newest first (held ones unless --all).
    List {
        /// Only this instance's.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        /// Only this run's.
        #[arg(long)]
        run: Option<uuid::Uuid>,
        /// Also the ones re-driven already.
        #[arg(long)]
        all: bool,
        /// Most letters shown.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one dead letter: where and why it died, its headers and its body.
    Show { id: uuid::Uuid },
    /// Republish a dead letter's batch to the batch queue; the failed result recorded for
    /// it is removed, so the batch is recorded again with its real outcome.
    Redrive { id: uuid::Uuid },
}

/// The query string of a `list` (pure).
pub fn list_path(
    tenant: Option<uuid::Uuid>,
    run: Option<uuid::Uuid>,
    all: bool,
    limit: i64,
) -> String {
    let mut query = vec![format!("limit={limit}")];
    if let Some(t) = tenant {
        query.push(format!("tenant={t}"));
    }
    if let Some(r) = run {
        query.push(format!("run={r}"));
    }
    if all {
        query.push("all=true".into());
    }
    format!("/dead-letters?{}", query.join("&"))
}

/// The letters as a table (pure).
pub fn list_text(letters: &[DeadLetterView]) -> String {
    if letters.is_empty() {
        return "no dead letters".into();
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.id.to_string(),
                when(Some(l.dead_lettered_at)),
                cell(l.run_id),
                cell(l.seq),
                l.reason.clone(),
                cell(l.delivery_count),
                format!("{}/{}", l.users, l.groups),
                if l.decode_error.is_some() {
                    "no"
                } else {
                    "yes"
                }
                .into(),
                l.state.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "DEAD-LETTERED",
            "RUN",
            "SEQ",
            "REASON",
            "DELIVERIES",
            "USERS/GROUPS FAILED",
            "DECODABLE",
            "STATE",
        ],
        &rows,
    )
}

fn detail_text(d: &DeadLetterDetail) -> String {
    let l = &d.letter;
    let mut text = fields(&[
        ("ID", l.id.to_string()),
        ("INSTANCE", cell(l.tenant_id)),
        ("RUN", cell(l.run_id)),
        ("SEQ", cell(l.seq)),
        ("QUEUE", l.queue.clone()),
        ("REASON", l.reason.clone()),
        ("DELIVERIES", cell(l.delivery_count)),
        ("DECODE ERROR", cell(l.decode_error.as_deref())),
        ("USERS/GROUPS FAILED", format!("{}/{}", l.users, l.groups)),
        ("RECORDED FAILED", l.recorded_failed.to_string()),
        ("STATE", l.state.clone()),
        ("DEAD-LETTERED", when(Some(l.dead_lettered_at))),
        ("RE-DRIVEN", when(l.redriven_at)),
        ("RE-DRIVEN BY", cell(l.redriven_by.as_deref())),
        ("BODY BYTES", l.body_bytes.to_string()),
    ]);
    text.push_str("\nheaders:\n");
    text.push_str(&serde_json::to_string_pretty(&d.headers).unwrap_or_default());
    text.push_str("\nbody:\n");
    text.push_str(&d.body);
    text
}

/// Runs one `dead-letter` command.
pub async fn dead_letter(
    api: &ApiClient,
    command: DeadLetterCommand,
    json: bool,
) -> Result<(), ApiFailure> {
    match command {
        DeadLetterCommand::List {
            tenant,
            run,
            all,
            limit,
        } => {
            let letters: Vec<DeadLetterView> = api.get(&list_path(tenant, run, all, limit)).await?;
            output::print(json, &letters, |l| list_text(l));
        }
        DeadLetterCommand::Show { id } => {
            let letter: DeadLetterDetail = api.get(&format!("/dead-letters/{id}")).await?;
            output::print(json, &letter, detail_text);
        }
        DeadLetterCommand::Redrive { id } => {
            let done: Redriven = api
                .call::<Value, _>(Method::POST, &format!("/dead-letters/{id}/redrive"), None)
                .await?;
            output::print(json, &done, |d| {
                format!(
                    "dead letter {} re-driven: batch {} of run {} is on the batch queue again",
                    d.id, d.seq, d.run_id
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_query_carries_the_filters() {
        let t = uuid::Uuid::nil();
        assert_eq!(list_path(None, None, false, 100), "/dead-letters?limit=100");
        assert_eq!(
            list_path(Some(t), Some(t), true, 5),
            format!("/dead-letters?limit=5&tenant={t}&run={t}&all=true")
        );
    }

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(list_text(&[]), "no dead letters");
    }
}
