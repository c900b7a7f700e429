//! Runs a test of the same binary in a child process with an environment of its own.
//!
//! `init` installs process-wide state and reads `OTEL_*` variables, and this workspace
//! forbids the `unsafe` that `std::env::set_var` needs in edition 2024; a child process
//! gets both a clean global state and exactly the variables a test gives it. Child tests
//! are `#[ignore]`d and do nothing unless started this way.

use std::process::Command;

const CHILD_MARKER: &str = "DIRSYNC_TELEMETRY_TEST_CHILD";

/// Whether this process was started by [`run_child`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_MARKER).is_some()
}

/// What a child wrote.
#[allow(dead_code)] // not every test binary reads both
pub struct ChildOutput {
    pub stdout: String,
    pub stderr: String,
}

#[allow(dead_code)]
impl ChildOutput {
    /// stderr's JSON log lines (the libtest harness writes to stdout only).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stderr
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// The log line whose message is `message`.
    pub fn line(&self, message: &str) -> serde_json::Value {
        self.json_lines()
            .into_iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no log line {message:?} in:\n{}", self.stderr))
    }
}

/// Runs the ignored test `name` of this binary with only `vars` of the telemetry
/// variables set; panics (showing its output) when it fails.
pub fn run_child(name: &str, vars: &[(&str, &str)]) -> ChildOutput {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("OTEL_") || key.starts_with("DIRSYNC_") || key == "RUST_LOG" {
            command.env_remove(&*key);
        }
    }
    command.env(CHILD_MARKER, "1").envs(vars.iter().copied());
    let output = command.output().expect("starting the child test");
    let child = ChildOutput {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        output.status.success(),
        "child {name} failed ({}):\n{}\n{}",
        output.status,
        child.stdout,
        child.stderr
    );
    assert!(
        child.stdout.contains("1 passed"),
        "child {name} did not run:\n{}",
        child.stdout
    );
    child
}
