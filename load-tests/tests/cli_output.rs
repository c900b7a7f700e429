//! The `dirsync` command line as a script or an operator sees it: tables by default, the
//! API's JSON with `--json`, and exit codes that say what went wrong. Run as a process (the
//! demo binary's `dirsync` passthrough, the same code as the `dirsync` binary) against a
//! stack's admin API.

use std::process::Output;

use secrecy::ExposeSecret;
use serde_json::Value;

use dirsync_load_tests::fleet::{Stack, StackOptions};

struct Dirsync {
    url: String,
    token: String,
}

impl Dirsync {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&self.url, Some(&self.token), args)
    }

    fn run_with(&self, url: &str, token: Option<&str>, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_demo"));
        command.args(["dirsync", "--api-url", url]);
        command.env_remove("DIRSYNC_API_TOKEN");
        if let Some(token) = token {
            command.args(["--api-token", token]);
        }
        command.args(args).output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_json_and_exit_codes() {
    let stack = Stack::start_with_workers(&StackOptions::new("cli_output", 120), 1)
        .await
        .unwrap();
    let cycle = stack.cycle("initial", None).await.unwrap();
    assert!(cycle.converged);
    let cli = Dirsync {
        url: stack.api_url(),
        token: stack.api_token.expose_secret().to_string(),
    };
    let id = stack.tenant_id.to_string();

    // A table with a header and the instance ...
    let list = cli.run(&["tenant", "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let text = stdout(&list);
    for needle in [
        "ID",
        "NAME",
        "STATUS",
        "AUTO-SYNC",
        "LAST SYNC",
        id.as_str(),
        "Active",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    // ... or the API's JSON, for scripts.
    let list = cli.run(&["--json", "tenant", "list"]);
    let parsed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(parsed[0]["id"], id.as_str());
    assert_eq!(parsed[0]["status"], "Active");

    // The summary of the last sync, both ways.
    let status = cli.run(&["tenant", "status", &id]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let text = stdout(&status);
    let counts = format!(
        "{}/{}/{}",
        cycle.users.synced, cycle.users.skipped, cycle.users.failed
    );
    assert!(
        text.contains("USERS SYNCED/SKIPPED/FAILED") && text.contains(&counts),
        "{text}"
    );
    let status: Value =
        serde_json::from_slice(&cli.run(&["tenant", "status", &id, "--json"]).stdout).unwrap();
    assert_eq!(status["last_sync"]["users_synced"], cycle.users.synced);

    // Exit codes: 4 without a valid token, 5 for an unknown instance, 3 for refused input,
    // 6 for a run not waiting for a decision, 7 when the API cannot be reached; 2 for a bad
    // command line (clap).
    let no_token = cli.run_with(&cli.url, None, &["tenant", "list"]);
    assert_eq!(no_token.status.code(), Some(4));
    assert!(
        stderr(&no_token).contains("DIRSYNC_API_TOKEN"),
        "{}",
        stderr(&no_token)
    );
    let bad_token = cli.run_with(&cli.url, Some("dsa_wrong"), &["tenant", "list"]);
    assert_eq!(bad_token.status.code(), Some(4));
    assert!(
        stderr(&bad_token).contains("admin token"),
        "{}",
        stderr(&bad_token)
    );
    let unknown = cli.run(&["tenant", "show", &uuid::Uuid::new_v4().to_string()]);
    assert_eq!(unknown.status.code(), Some(5), "{}", stderr(&unknown));
    let unconfirmed = cli.run(&["tenant", "delete", &id]);
    assert_eq!(unconfirmed.status.code(), Some(3));
    assert!(
        stderr(&unconfirmed).contains("--yes"),
        "{}",
        stderr(&unconfirmed)
    );
    let rules = std::env::temp_dir().join(format!("cli_output_rules_{}.json", std::process::id()));
    std::fs::write(
        &rules,
        r#"[{"target": "userName", "kind": "direct", "attribute": "userPrincipalName"},
            {"target": "title", "kind": "expression", "expression": "Left([jobTitle], "}]"#,
    )
    .unwrap();
    let mapping = cli.run(&["tenant", "mapping", &id, "--file", rules.to_str().unwrap()]);
    std::fs::remove_file(&rules).unwrap();
    assert_eq!(mapping.status.code(), Some(3), "{}", stderr(&mapping));
    assert!(
        stderr(&mapping).contains("rule 2, position"),
        "{}",
        stderr(&mapping)
    );
    let run = status["last_sync"]["run_id"].as_str().unwrap();
    let approve = cli.run(&["run", "approve", run]);
    assert_eq!(approve.status.code(), Some(6), "{}", stderr(&approve));
    let closed = cli.run_with(
        "http://127.0.0.1:9/api/v1",
        Some(&cli.token),
        &["tenant", "list"],
    );
    assert_eq!(closed.status.code(), Some(7));
    assert!(
        stderr(&closed).contains("dirsync serve"),
        "{}",
        stderr(&closed)
    );
    let usage = cli.run(&[
        "tenant",
        "guard",
        &id,
        "--max-count",
        "1",
        "--max-percent",
        "101",
    ]);
    assert_eq!(usage.status.code(), Some(2));

    // Search, domains and single sign-on, as tables.
    let someone = stack.graph.snapshot(&stack.entra_tenant).unwrap()[0]
        .user
        .clone();
    let first_name = someone
        .display_name
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let search = cli.run(&["tenant", "search-users", &id, &first_name]);
    assert_eq!(search.status.code(), Some(0), "{}", stderr(&search));
    let text = stdout(&search);
    assert!(
        text.contains("USER PRINCIPAL NAME") && text.contains(&someone.id),
        "{text}"
    );
    let domains = cli.run(&["tenant", "domains", &id]);
    assert_eq!(domains.status.code(), Some(0), "{}", stderr(&domains));
    assert!(
        stdout(&domains).contains("VERIFIED IN ENTRA"),
        "{}",
        stdout(&domains)
    );
    stack.scim.set_saml_sso(&stack.org_id, true);
    let sso = cli.run(&["tenant", "sso", &id, "on"]);
    assert_eq!(sso.status.code(), Some(6), "{}", stderr(&sso));
    assert!(stderr(&sso).contains("SAML"), "{}", stderr(&sso));
    let sso = cli.run(&["tenant", "sso", &id]);
    assert_eq!(sso.status.code(), Some(0), "{}", stderr(&sso));
    assert!(
        stdout(&sso).contains("saml sso enabled"),
        "{}",
        stdout(&sso)
    );

    // A dry run: its counts as a table and its report saved; `dry-runs` as a table and JSON.
    let report =
        std::env::temp_dir().join(format!("cli_output_dry_run_{}.csv", std::process::id()));
    let dry = cli.run(&[
        "tenant",
        "dry-run",
        &id,
        "--output",
        report.to_str().unwrap(),
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let text = stdout(&dry);
    assert!(
        text.contains("ACTION") && text.contains("Matched") && text.contains("report saved to"),
        "{text}"
    );
    let csv = std::fs::read_to_string(&report).unwrap();
    std::fs::remove_file(&report).unwrap();
    assert!(
        csv.starts_with("Object Type,Action Type,Azure ID,Azure Name,Webex Name,Reason\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count() as u64, cycle.users.synced + 1, "{csv}");
    let listed = cli.run(&["tenant", "dry-runs", &id]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(
        text.contains("MATCHED/ADD/UPDATE/DEACTIVATE")
            && text.contains(&format!("{}/0/0/0", cycle.users.synced)),
        "{text}"
    );
    let listed: Value =
        serde_json::from_slice(&cli.run(&["--json", "tenant", "dry-runs", &id]).stdout).unwrap();
    assert_eq!(listed[0]["status"], "completed");
    assert_eq!(listed[0]["summary"]["matched"], cycle.users.synced);

    // The instance is still there after all the refusals.
    let show = cli.run(&["tenant", "show", &id]);
    assert_eq!(show.status.code(), Some(0));
    stack.shutdown().await.unwrap();
}
