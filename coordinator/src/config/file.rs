//! The configuration file layer and the start-up checks of a binary's settings.
//!
//! Settings are one clap struct per binary (flag and environment variable per field); this
//! adds a TOML file (`--config` / `DIRSYNC_CONFIG`) under them. Precedence: command-line
//! flag > environment > file > default. A file key is the setting's environment variable in
//! lower case without its `DIRSYNC_` prefix (`DIRSYNC_RUN_WINDOW` → `run_window`,
//! `WORKER_PREFETCH` → `worker_prefetch`), so the names an operator knows carry over.
//!
//! This module is in both binaries' crates: the worker includes this very file by `#[path]`
//! (they share no crate that depends on clap, and it is too small to be one). So are the
//! test helpers of both configurations ([`testing`]).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use dirsync_proto::SecretsKey;
use secrecy::SecretString;

/// Every problem found in a configuration, one line each, naming the setting (never a
/// secret's value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid configuration: {one}"),
            all => {
                write!(f, "invalid configuration ({} problems):", all.len())?;
                for problem in all {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Problems {}

/// Why a binary's configuration was not loaded.
#[derive(Debug)]
pub enum LoadError {
    /// A bad command line or environment value, as clap reports it (exit code 2).
    Usage(clap::Error),
    /// The file or the checks refused it.
    Invalid(Problems),
}

/// The `--config` / `DIRSYNC_CONFIG` argument, for a command line whose settings struct
/// does not hold it (the worker's: its `WorkerConfig` is also built in code).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFile {
    /// A TOML file of settings (keys: docs/configuration.md); flags and environment
    /// variables win over it.
    #[arg(long, env = "DIRSYNC_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// The settings of one binary, as a clap struct that also reads a configuration file.
pub trait FileSettings: clap::Args + Clone {
    /// Sets the setting whose clap id is `id` from a file value (an error says what type
    /// was expected); `None` when `id` is not such a setting.
    fn set_from_file(&mut self, id: &str, value: &toml::Value) -> Option<Result<(), String>>;
    /// Every problem of the settings at once (ranges, URLs, combinations).
    fn validate(&self) -> Result<(), Problems>;
}

/// Parses `args` and the environment, fills what they left unset from the configuration
/// file, and validates the result: how the binaries read their configuration.
pub fn try_load<P, C>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    pick: impl Fn(&mut P) -> &mut C,
) -> Result<P, LoadError>
where
    P: Parser,
    C: FileSettings,
{
    let matches = P::command()
        .try_get_matches_from(args)
        .map_err(LoadError::Usage)?;
    let mut parsed =
        P::from_arg_matches(&matches).map_err(|e| LoadError::Usage(e.format(&mut P::command())))?;
    // The one argument with the id `config`, wherever the command line declares it.
    let file = matches
        .try_get_one::<PathBuf>("config")
        .ok()
        .flatten()
        .cloned();
    let config = pick(&mut parsed);
    let mut problems = match file {
        Some(path) => apply_file(config, &path, &matches),
        None => Vec::new(),
    };
    if let Err(Problems(more)) = config.validate() {
        problems.extend(more);
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(LoadError::Invalid(Problems(problems)))
    }
}

/// [`try_load`] on the process's arguments; a usage error exits as clap does (code 2,
/// `--help` and `--version` with 0).
pub fn load<P, C>(pick: impl Fn(&mut P) -> &mut C) -> Result<P, Problems>
where
    P: Parser,
    C: FileSettings,
{
    match try_load(std::env::args_os(), pick) {
        Ok(parsed) => Ok(parsed),
        Err(LoadError::Usage(e)) => e.exit(),
        Err(LoadError::Invalid(problems)) => Err(problems),
    }
}

/// A setting's file key: its environment variable in lower case, without `DIRSYNC_`.
pub fn key_of(env: &str) -> String {
    let lower = env.to_ascii_lowercase();
    lower
        .strip_prefix("dirsync_")
        .map(str::to_owned)
        .unwrap_or(lower)
}

/// One setting as the file, the environment and the command line name it.
#[derive(Debug, Clone)]
pub struct Setting {
    pub id: String,
    pub key: String,
    pub env: String,
    pub flag: String,
}

/// The settings of `C` that a file may set (all but `--config` itself), by clap id.
pub fn settings<C: clap::Args>() -> BTreeMap<String, Setting> {
    C::augment_args(clap::Command::new("settings"))
        .get_arguments()
        .filter(|a| a.get_id() != "config")
        .filter_map(|a| {
            let env = a.get_env()?.to_string_lossy().into_owned();
            let setting = Setting {
                id: a.get_id().to_string(),
                key: key_of(&env),
                flag: format!("--{}", a.get_long().unwrap_or_default()),
                env,
            };
            Some((setting.id.clone(), setting))
        })
        .collect()
}

/// Whether the command line or the environment gave `id`: they win over the file.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Reads `path` into `config` under the values the command line and the environment gave;
/// every unknown key and wrong value, each naming the key and the file.
fn apply_file<C: FileSettings>(config: &mut C, path: &Path, matches: &ArgMatches) -> Vec<String> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return vec![format!("reading configuration file {shown}: {e}")],
    };
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(e) => return vec![format!("configuration file {shown} is not valid toml: {e}")],
    };
    let settings = settings::<C>();
    let by_key: BTreeMap<&str, &Setting> = settings.values().map(|s| (s.key.as_str(), s)).collect();
    let mut problems = Vec::new();
    for (key, value) in &table {
        let Some(setting) = by_key.get(key.as_str()) else {
            // Near a key, or near a flag's name (`prefetch` for `--prefetch`).
            let names = settings.values().flat_map(|s| {
                let flag = s.flag.trim_start_matches('-').replace('-', "_");
                [(s.key.clone(), s.key.as_str()), (flag, s.key.as_str())]
            });
            let hint = closest(key, names)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            problems.push(format!("{shown}: unknown setting `{key}`{hint}"));
            continue;
        };
        // A value the command line or the environment overrides is still checked: a typo
        // in the file must not wait for the day the override goes.
        let mut overridden;
        let target = if given(matches, &setting.id) {
            overridden = config.clone();
            &mut overridden
        } else {
            &mut *config
        };
        match target.set_from_file(&setting.id, value) {
            Some(Ok(())) => {}
            Some(Err(expected)) => problems.push(format!("{shown}: `{key}`: {expected}")),
            None => problems.push(format!("{shown}: `{key}` cannot be set in a file")),
        }
    }
    problems
}

/// The key whose name (its own, or another name of the setting) is nearest to a misspelt
/// one, if it is near enough to be the intent; an environment variable's name given as a
/// key finds its key.
fn closest<'a>(key: &str, known: impl Iterator<Item = (String, &'a str)>) -> Option<&'a str> {
    let wanted = key_of(key);
    known
        .map(|(name, k)| (distance(&wanted, &name), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance (keys are short).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A setting's value from a TOML value; the error says what was expected and what was
/// found, never the value (it may be a secret).
pub trait FromToml: Sized {
    /// What a value must be, for errors ("an integer", "a string").
    const EXPECTED: &'static str;
    fn from_toml(value: &toml::Value) -> Result<Self, String>;
}

/// The error for a value of the wrong TOML type.
pub fn wrong_type<T: FromToml>(value: &toml::Value) -> String {
    format!("expected {}, found {}", T::EXPECTED, a(value.type_str()))
}

fn a(type_str: &str) -> String {
    match type_str {
        "integer" | "array" => format!("an {type_str}"),
        other => format!("a {other}"),
    }
}

/// Sets `slot` from a file value.
pub fn set<T: FromToml>(slot: &mut T, value: &toml::Value) -> Result<(), String> {
    *slot = T::from_toml(value)?;
    Ok(())
}

impl FromToml for String {
    const EXPECTED: &'static str = "a string";
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| wrong_type::<Self>(value))
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl FromToml for $t {
            const EXPECTED: &'static str = "an integer";
            fn from_toml(value: &toml::Value) -> Result<Self, String> {
                let n = value.as_integer().ok_or_else(|| wrong_type::<Self>(value))?;
                <$t>::try_from(n).map_err(|_| {
                    format!("expected an integer from 0 to {}, found {n}", <$t>::MAX)
                })
            }
        }
    )*};
}
unsigned!(u16, u32, u64, usize);

impl FromToml for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Float(f) => Ok(*f),
            // Exact for any rate anyone sets.
            toml::Value::Integer(i) => Ok(*i as f64),
            other => Err(wrong_type::<Self>(other)),
        }
    }
}

impl<T: FromToml> FromToml for Vec<T> {
    const EXPECTED: &'static str = "an array";
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let items = value.as_array().ok_or_else(|| wrong_type::<Self>(value))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| T::from_toml(item).map_err(|e| format!("item {}: {e}", i + 1)))
            .collect()
    }
}

/// A file sets an optional setting by giving it; leaving the key out leaves it unset.
impl<T: FromToml> FromToml for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        T::from_toml(value).map(Some)
    }
}

impl FromToml for SocketAddr {
    const EXPECTED: &'static str = "an address string such as \"127.0.0.1:8480\"";
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let text = value.as_str().ok_or_else(|| wrong_type::<Self>(value))?;
        text.trim()
            .parse()
            .map_err(|_| format!("expected {}, found {text:?}", Self::EXPECTED))
    }
}

impl FromToml for SecretString {
    const EXPECTED: &'static str = "a string";
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        String::from_toml(value).map(SecretString::from)
    }
}

impl FromToml for SecretsKey {
    const EXPECTED: &'static str = "a string (base64 of 32 random bytes)";
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let text = value.as_str().ok_or_else(|| wrong_type::<Self>(value))?;
        // The proto error explains the format and never repeats the key.
        text.parse()
            .map_err(|e: dirsync_proto::ProtoError| e.to_string())
    }
}

/// Parses `DIRSYNC_SECRETS_KEY` without quoting it in the error, as clap's own parsers do.
#[derive(Debug, Clone, Copy)]
pub struct SecretsKeyParser;

impl clap::builder::TypedValueParser for SecretsKeyParser {
    type Value = SecretsKey;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<SecretsKey, clap::Error> {
        let arg = arg.map_or_else(|| "--secrets-key".to_owned(), ToString::to_string);
        let refused = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{arg}' (not shown): {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refused("it is not utf-8".into()))?;
        text.parse()
            .map_err(|e: dirsync_proto::ProtoError| refused(e.to_string()))
    }
}

/// Start-up checks that name each setting by its file key, environment variable and flag.
#[derive(Debug)]
pub struct Checks {
    settings: BTreeMap<String, Setting>,
    problems: Vec<String>,
}

impl Checks {
    pub fn new<C: clap::Args>() -> Self {
        Checks {
            settings: settings::<C>(),
            problems: Vec::new(),
        }
    }

    /// Records `problem` of the setting `id` unless `ok`.
    pub fn check(&mut self, ok: bool, id: &str, problem: impl fmt::Display) {
        if !ok {
            let name = match self.settings.get(id) {
                Some(s) => format!("{} ({}, {})", s.key, s.env, s.flag),
                None => id.to_owned(),
            };
            self.problems.push(format!("{name}: {problem}"));
        }
    }

    /// A number at least `min`.
    pub fn at_least(&mut self, id: &str, value: u64, min: u64) {
        self.check(
            value >= min,
            id,
            format!("must be at least {min}, got {value}"),
        );
    }

    /// A percentage in `min..=100`.
    pub fn percent(&mut self, id: &str, value: u64, min: u64) {
        self.check(
            (min..=100).contains(&value),
            id,
            format!("must be a percentage from {min} to 100, got {value}"),
        );
    }

    /// A URL with one of `schemes`. Neither the URL nor the parser's echo of it is
    /// repeated: URLs carry passwords.
    pub fn url(&mut self, id: &str, value: &str, schemes: &[&str]) {
        let expected = schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(" or ");
        match url::Url::parse(value) {
            Err(e) => self.check(false, id, format!("is not a valid url ({e})")),
            Ok(url) => self.check(
                schemes.contains(&url.scheme()),
                id,
                format!("must be a {expected} url, not {}://", url.scheme()),
            ),
        }
    }

    /// The PostgreSQL URL of the setting `database_url`.
    pub fn database_url(&mut self, value: &str) {
        self.url("database_url", value, &["postgres", "postgresql"]);
    }

    /// The RabbitMQ URL of the setting `amqp_url`.
    pub fn amqp_url(&mut self, value: &str) {
        self.url("amqp_url", value, &["amqp", "amqps"]);
    }

    /// The Redis URL of the setting `redis_url`.
    pub fn redis_url(&mut self, value: &str) {
        self.url(
            "redis_url",
            value,
            &["redis", "rediss", "redis+unix", "unix"],
        );
    }

    /// The setting `prefix`: it starts queue, exchange and Redis key names.
    pub fn prefix(&mut self, value: &str) {
        self.check(
            !value.trim().is_empty() && !value.contains(char::is_whitespace),
            "prefix",
            "must be a non-empty name without spaces",
        );
    }

    /// The setting `delivery_limit`: both binaries declare the batch queues with it.
    pub fn delivery_limit(&mut self, value: u32) {
        self.at_least("delivery_limit", value.into(), 1);
    }

    pub fn finish(self) -> Result<(), Problems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(self.problems))
        }
    }
}

/// The environment variables of the settings a file can set (test helper).
#[cfg(test)]
pub fn file_envs<C: clap::Args>() -> std::collections::BTreeSet<String> {
    settings::<C>().into_values().map(|s| s.env).collect()
}

/// Compares the table under `heading` with `command`'s arguments and subcommands: the
/// documentation test of each binary.
#[cfg(test)]
pub fn check_document(
    doc: &str,
    heading: &str,
    command: &clap::Command,
    file_envs: &std::collections::BTreeSet<String>,
) {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with(heading.trim_start_matches("## ")))
        .unwrap_or_else(|| panic!("no section {heading}"));
    // Env var → the row's cells (file key, env, flag, type, default, meaning).
    let rows: std::collections::BTreeMap<String, Vec<String>> = section
        .lines()
        .filter(|l| l.starts_with("| `") || l.starts_with("| —"))
        .map(|l| {
            let cells: Vec<String> = l.split('|').map(|c| c.trim().to_owned()).collect();
            (cells[2].trim_matches('`').to_owned(), cells[1..].to_vec())
        })
        .collect();
    let mut args = Vec::new();
    fn walk<'a>(c: &'a clap::Command, args: &mut Vec<&'a clap::Arg>) {
        args.extend(c.get_arguments().filter(|a| a.get_env().is_some()));
        for sub in c.get_subcommands() {
            walk(sub, args);
        }
    }
    walk(command, &mut args);
    let mut envs = std::collections::BTreeSet::new();
    for arg in args {
        let env = arg.get_env().unwrap().to_string_lossy().into_owned();
        envs.insert(env.clone());
        let row = rows
            .get(&env)
            .unwrap_or_else(|| panic!("{env} is missing from docs/configuration.md"));
        let flag = format!("`--{}`", arg.get_long().unwrap());
        assert!(row[2].contains(&flag), "{env}: flag {flag} not in {row:?}");
        let file_key = if file_envs.contains(&env) {
            format!("`{}`", key_of(&env))
        } else {
            "—".to_owned()
        };
        assert_eq!(row[0], file_key, "{env}: file key");
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !default.is_empty() {
            let default = format!("`{}`", default.join(","));
            assert!(
                row[4].contains(&default),
                "{env}: default {default} not in {row:?}"
            );
        }
    }
    let extra: Vec<_> = rows.keys().filter(|e| !envs.contains(*e)).collect();
    assert!(extra.is_empty(), "documented but not a setting: {extra:?}");
}

/// The tests both binaries run on their configuration, each with its own command line:
/// one copy, so that the coordinator's and the worker's settings are held to the same rules.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Where [`load_in_child`] runs its child: the `child_load` test of each binary's
    /// `config::tests`, which calls [`child_load`].
    const CHILD_TEST: &str = "config::tests::child_load";
    /// How [`load_in_child`] hands the flags to the child, joined by U+001F.
    const CHILD_FLAGS: &str = "DIRSYNC_TEST_CONFIG_FLAGS";

    /// A configuration file for one test, removed when dropped.
    pub struct TempFile(PathBuf);

    impl TempFile {
        pub fn new(name: &str, text: &str) -> Self {
            // The crate's name: the coordinator's and the worker's tests never share a file.
            let path = std::env::temp_dir().join(format!(
                "{}-config-{}-{name}.toml",
                env!("CARGO_PKG_NAME"),
                std::process::id()
            ));
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }

        pub fn arg(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The settings [`try_load`] loads from `flags` (and this process's environment, which
    /// tests do not change) with the command line `P`, or its problems as text.
    pub fn load_flags<P, C>(flags: &[&str], pick: impl Fn(&mut P) -> &mut C) -> Result<C, String>
    where
        P: Parser,
        C: FileSettings,
    {
        try_load(std::iter::once("test").chain(flags.iter().copied()), &pick)
            .map(|mut parsed| pick(&mut parsed).clone())
            .map_err(|e| match e {
                LoadError::Usage(e) => e.to_string(),
                LoadError::Invalid(p) => p.to_string(),
            })
    }

    /// Runs the binary's `child_load` test in a child process of this test binary with
    /// `env` and none of `command`'s other variables: the environment layer for real,
    /// without changing this process's environment. What the child loaded, in one line.
    pub fn load_in_child(command: &clap::Command, env: &[(&str, &str)], flags: &[&str]) -> String {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args(["--exact", CHILD_TEST, "--nocapture"]);
        for arg in command.get_arguments() {
            if let Some(var) = arg.get_env() {
                child.env_remove(var);
            }
        }
        child.env(CHILD_FLAGS, flags.join("\u{1f}"));
        child.envs(env.iter().copied());
        let out = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("child-load: "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
    }

    /// The child side of [`load_in_child`]: prints what `load` makes of the flags it was
    /// given; does nothing when run as a test on its own.
    pub fn child_load(load: impl FnOnce(&[&str]) -> Result<String, String>) {
        let Ok(flags) = std::env::var(CHILD_FLAGS) else {
            return;
        };
        let flags: Vec<&str> = flags.split('\u{1f}').filter(|f| !f.is_empty()).collect();
        println!(
            "child-load: {}",
            load(&flags).unwrap_or_else(|e| e.replace('\n', " | "))
        );
    }

    /// Environment, flags, what is loaded.
    pub type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

    /// Each case loads what it says in a child process ([`load_in_child`]).
    pub fn assert_precedence(command: &clap::Command, cases: &[Case]) {
        for (env, flags, want) in cases {
            assert_eq!(
                load_in_child(command, env, flags),
                *want,
                "{env:?} {flags:?}"
            );
        }
    }

    /// Each file text (of the cases: text, pieces of the error) is refused as a file: the
    /// message names the file and has every piece, and repeats none of `secrets`.
    pub fn assert_files_refused<C>(
        load: impl Fn(&[&str]) -> Result<C, String>,
        cases: &[(&str, &[&str])],
        secrets: &[&str],
    ) {
        refused(load, "bad", cases, secrets, true);
    }

    /// Each file text (of the cases: text, pieces of the error) is read but fails the
    /// checks, with every piece, repeating none of `secrets`.
    pub fn assert_invalid<C>(
        load: impl Fn(&[&str]) -> Result<C, String>,
        cases: &[(&str, &[&str])],
        secrets: &[&str],
    ) {
        refused(load, "invalid", cases, secrets, false);
    }

    /// The two above, each with a file name of its own (tests may run at once).
    fn refused<C>(
        load: impl Fn(&[&str]) -> Result<C, String>,
        name: &str,
        cases: &[(&str, &[&str])],
        secrets: &[&str],
        names_file: bool,
    ) {
        for (text, needles) in cases {
            let file = TempFile::new(name, text);
            let Err(message) = load(&["--config", &file.arg()]) else {
                panic!("{text}: loaded");
            };
            if names_file {
                assert!(message.contains(&file.arg()), "{text}:\n{message}");
            }
            for needle in *needles {
                assert!(message.contains(needle), "{text}:\n{message}");
            }
            for secret in secrets {
                assert!(!message.contains(secret), "{text}:\n{message}");
            }
        }
    }

    /// A bad secrets key is refused without being repeated, and `--help` shows the value
    /// of no variable that may hold a secret.
    pub fn assert_secrets_hidden<C>(
        command: &clap::Command,
        load: impl Fn(&[&str]) -> Result<C, String>,
    ) {
        let bad_key = "bm90LWEta2V5LWF0LWFsbA==";
        let Err(message) = load(&["--secrets-key", bad_key]) else {
            panic!("a bad secrets key was loaded");
        };
        assert!(message.contains("invalid DIRSYNC_SECRETS_KEY"), "{message}");
        assert!(!message.contains(bad_key), "{message}");
        for hidden in [
            "DATABASE_URL",
            "AMQP_URL",
            "REDIS_URL",
            "DIRSYNC_SECRETS_KEY",
        ] {
            assert!(
                command
                    .get_arguments()
                    .any(|a| a.get_env() == Some(hidden.as_ref()) && a.is_hide_env_values_set()),
                "{hidden} shows its value in --help"
            );
        }
    }

    /// Every setting of `C` has a file key that `set_from_file` knows.
    pub fn assert_every_setting_from_file<C: FileSettings>(defaults: &C) {
        let value = toml::Value::Integer(1);
        for setting in settings::<C>().values() {
            let mut config = defaults.clone();
            assert!(
                config.set_from_file(&setting.id, &value).is_some(),
                "{} has no file key: add it to set_from_file",
                setting.id
            );
        }
    }

    /// docs/configuration.md lists under `heading` exactly the environment variables of
    /// `command` (every subcommand's too), each with its file key (those of `C`), flag and
    /// default.
    pub fn assert_documented<C: clap::Args>(heading: &str, mut command: clap::Command) {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/configuration.md"
        ))
        .unwrap();
        command.build();
        check_document(&doc, heading, &command, &file_envs::<C>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_environment_names() {
        assert_eq!(key_of("DIRSYNC_RUN_WINDOW"), "run_window");
        assert_eq!(key_of("WORKER_PREFETCH"), "worker_prefetch");
        assert_eq!(key_of("DATABASE_URL"), "database_url");
    }

    #[test]
    fn a_misspelt_key_finds_the_intended_one() {
        let known = [
            ("run_window", "run_window"),
            ("redis_url", "redis_url"),
            ("prefetch", "worker_prefetch"),
        ];
        let cases = [
            ("run_windw", Some("run_window")),
            ("DIRSYNC_RUN_WINDOW", Some("run_window")),
            ("redis-url", Some("redis_url")),
            ("prefetch", Some("worker_prefetch")),
            ("colour", None),
        ];
        for (key, want) in cases {
            let names = known.iter().map(|(name, k)| (name.to_string(), *k));
            assert_eq!(closest(key, names), want, "{key}");
        }
    }

    #[test]
    fn file_values_are_typed() {
        let v = |text: &str| text.parse::<toml::Value>().unwrap();
        assert_eq!(u32::from_toml(&v("64")), Ok(64));
        assert_eq!(
            u32::from_toml(&v("\"64\"")),
            Err("expected an integer, found a string".into())
        );
        assert_eq!(
            u16::from_toml(&v("-1")),
            Err("expected an integer from 0 to 65535, found -1".into())
        );
        assert_eq!(f64::from_toml(&v("50")), Ok(50.0));
        assert_eq!(
            Vec::<u32>::from_toml(&v("[1, \"x\"]")),
            Err("item 2: expected an integer, found a string".into())
        );
        assert_eq!(
            String::from_toml(&v("true")),
            Err("expected a string, found a boolean".into())
        );
        let bad_key = SecretsKey::from_toml(&v("\"not-a-key\"")).unwrap_err();
        assert!(
            bad_key.contains("base64") && !bad_key.contains("not-a-key"),
            "{bad_key}"
        );
    }
}
