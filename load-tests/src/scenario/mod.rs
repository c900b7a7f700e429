//! Load-harness scenarios: what to build (tenants, the fleet, the simulators' knobs) and what
//! to do (cycles, with change steps applied before each), as a JSON file or from command-line
//! flags. Documented field by field in `docs/scenarios.md`; examples in
//! `load-tests/scenarios/`.
//!
//! Every object refuses unknown fields (a misspelt knob must not silently fall back to its
//! default) and [`Scenario::parse`] validates the whole file ([`validate`]) before anything
//! starts, so a bad file fails in a second with the path of the field at fault.
//!
//! - [`hand`]: hand-written tenants (users, groups, memberships, managers) turned into the
//!   Graph simulator's tenant.
//! - [`run`]: the runner: a [`Stack`](crate::fleet::Stack), the tenants, the cycles, the
//!   oracle after each, a [`report::CycleMeasure`] per cycle.
//! - [`coordinators`]: coordinators as separate processes, driven with "sync now".
//! - [`capacity`]: the SCIM simulator's raw capacity, with no fleet in front of it.
//! - [`latency`]: from a Graph change to its SCIM write, per cycle.
//! - [`chaos`], `chaos_cycle`, [`chaos_inject`], [`chaos_verdict`]: faults injected during a cycle (process
//!   kills, service restarts, a Redis flush) and the verdict on what they must leave true.

pub mod capacity;
pub mod chaos;
mod chaos_cycle;
pub mod chaos_inject;
pub mod chaos_verdict;
pub mod coordinators;
pub mod hand;
pub mod latency;
pub mod report;
pub mod run;
mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::synthetic::{ChangeStep, GroupChangeStep, GroupSpec};

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Syntax, a wrong type, an unknown or a missing field: serde's message names it and
    /// gives line and column.
    #[error("scenario is not valid JSON for the format (docs/scenarios.md): {0}")]
    Format(#[from] serde_json::Error),
    /// A value that parses but makes no sense; `field` is the path to it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in reports and names the isolated resources.
    pub name: String,
    /// Seeds the simulators' random draws (the SCIM simulator's random faults), so a
    /// scenario draws the same numbers every run. Default 1.
    #[serde(default = "default_scenario_seed")]
    pub seed: u64,
    #[serde(default)]
    pub fleet: FleetSpec,
    /// At least one.
    pub tenants: Vec<TenantEntry>,
    /// Run in order; at least one. The first is usually the initial cycle, without changes.
    pub cycles: Vec<CycleSpec>,
}

fn default_scenario_seed() -> u64 {
    1
}

/// The fleet and the simulators' knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSpec {
    /// Worker processes (at least 1).
    pub workers: usize,
    /// Coordinator processes (`harness coordinator`: the scheduler `dirsync serve` runs),
    /// sharing the tenants through their leases; each cycle is asked for with "sync now".
    /// 0 (the default): one coordinator inside the harness process, which syncs the tenants
    /// itself.
    pub coordinators: usize,
    pub scim: ScimKnobs,
    pub graph: GraphKnobs,
}

/// Most coordinator processes a scenario may start.
pub const MAX_COORDINATORS: usize = 32;

impl Default for FleetSpec {
    fn default() -> Self {
        FleetSpec {
            workers: 2,
            coordinators: 0,
            scim: ScimKnobs::default(),
            graph: GraphKnobs::default(),
        }
    }
}

/// The Webex SCIM simulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimKnobs {
    /// Requests per second per org, enforced by the simulator (429 with `Retry-After`) and
    /// paced by the workers. `null`: unlimited.
    pub rate_limit_per_org: Option<u32>,
    /// Added to every SCIM request, milliseconds.
    pub latency_ms: u64,
    /// Up to this much more per request, uniformly at random, milliseconds.
    pub latency_jitter_ms: u64,
    /// Whether the simulator has `/Bulk` (Webex has; default true).
    pub bulk: bool,
    /// Every Nth SCIM request answers 503 (the workers retry). `null`: never.
    pub fail_every: Option<u64>,
    /// Probability (0 to 1) that a SCIM request answers 503, drawn from the scenario's seed.
    pub error_rate: f64,
    /// Probability (0 to 1) that a SCIM request answers 429 with `Retry-After:
    /// retry_after_s`.
    pub throttle_rate: f64,
    /// The `Retry-After` of those 429s, seconds.
    pub retry_after_s: u64,
    /// Once a 429 is drawn, every request to that org answers 429 for this long (0: no
    /// burst).
    pub throttle_burst_ms: u64,
}

impl Default for ScimKnobs {
    fn default() -> Self {
        ScimKnobs {
            rate_limit_per_org: None,
            latency_ms: 0,
            latency_jitter_ms: 0,
            bulk: true,
            fail_every: None,
            error_rate: 0.0,
            throttle_rate: 0.0,
            retry_after_s: 1,
            throttle_burst_ms: 0,
        }
    }
}

impl ScimKnobs {
    /// The SCIM simulator's random faults for these knobs, drawn from `seed`.
    pub fn faults(&self, seed: u64) -> crate::scim_sim::Faults {
        crate::scim_sim::Faults {
            error_rate: self.error_rate,
            throttle_rate: self.throttle_rate,
            retry_after_secs: self.retry_after_s,
            throttle_burst: std::time::Duration::from_millis(self.throttle_burst_ms),
            seed,
        }
    }
}

/// The Graph simulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphKnobs {
    /// Added to every Graph request (token, delta pages), milliseconds.
    pub latency_ms: u64,
    /// Users per delta page (Graph: 200).
    pub page_size: usize,
    /// Throttle with Graph's documented RU budget per tenant size (429 with `Retry-After`).
    pub throttling: bool,
    /// Replaces the documented RU budget per 10 s (and turns throttling on).
    pub ru_budget_per_10s: Option<u32>,
    /// Every Nth delta request fails with 503, then 504, alternately.
    pub fail_every: Option<usize>,
}

impl Default for GraphKnobs {
    fn default() -> Self {
        GraphKnobs {
            latency_ms: 0,
            page_size: 200,
            throttling: false,
            ru_budget_per_10s: None,
            fail_every: None,
        }
    }
}

/// One tenant (or `copies` alike ones): exactly one of `synthetic` and `hand_written`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    /// Unique within the scenario; cycles name tenants by it. With `copies`, the copies are
    /// `name-1` … `name-N`.
    pub name: String,
    /// How many tenants alike (synthetic: seeds `seed`, `seed+1`, …). Default 1.
    #[serde(default = "one")]
    pub copies: usize,
    /// Whether Entra hard deletes delete the Webex user (else deactivate). Default true.
    #[serde(default = "yes")]
    pub allow_hard_delete: bool,
    #[serde(default)]
    pub synthetic: Option<SyntheticSpec>,
    #[serde(default)]
    pub hand_written: Option<hand::HandTenant>,
    /// Sync only chosen users and groups (default: all users).
    #[serde(default)]
    pub scope: Option<ScopeSpec>,
}

/// A tenant's scope: chosen users and groups, and whether nested groups count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeSpec {
    /// Hand-written tenants: keys of chosen groups.
    pub groups: Vec<String>,
    /// Hand-written tenants: keys of chosen users.
    pub users: Vec<String>,
    /// Synthetic tenants: the first N generated groups are chosen.
    pub first_groups: usize,
    /// "Sync children groups": members of nested groups too.
    pub nested: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// A generated tenant (`load-tests/src/synthetic.rs`): deterministic per (seed, users).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSpec {
    /// At least 1.
    pub users: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Groups generated over the users (none by default).
    #[serde(default)]
    pub groups: Option<GroupsSpec>,
}

fn default_seed() -> u64 {
    7
}

/// Generated groups.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsSpec {
    pub count: usize,
    #[serde(default = "default_max_members")]
    pub max_members: usize,
    #[serde(default)]
    pub nesting_depth: usize,
}

fn default_max_members() -> usize {
    GroupSpec::default().max_members
}

impl From<GroupsSpec> for GroupSpec {
    fn from(g: GroupsSpec) -> GroupSpec {
        GroupSpec {
            count: g.count,
            max_members: g.max_members,
            nesting_depth: g.nesting_depth,
        }
    }
}

/// One sync cycle of every tenant, after applying its changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleSpec {
    pub name: String,
    /// Applied to the tenants (all, or those in `tenants`) before the cycle runs.
    #[serde(default)]
    pub changes: Option<StepSpec>,
    /// Names of the tenant entries the changes apply to (a name with copies means every
    /// copy); default: all.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    /// Faults injected while the cycle runs (docs/scenarios.md, "Chaos").
    #[serde(default)]
    pub chaos: Option<chaos::ChaosSpec>,
}

/// One change step per tenant: the synthetic change kinds and membership churn. Counts may
/// come out lower when too few users or groups qualify (the report says what was done).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepSpec {
    pub updates: usize,
    pub soft_deletes: usize,
    pub hard_deletes: usize,
    pub new_users: usize,
    pub restores: usize,
    pub disables: usize,
    pub members_added: usize,
    pub members_removed: usize,
    pub groups_created: usize,
    pub groups_deleted: usize,
}

impl StepSpec {
    /// The user and the group halves of the step.
    pub fn split(&self) -> (ChangeStep, GroupChangeStep) {
        (
            ChangeStep {
                updates: self.updates,
                soft_deletes: self.soft_deletes,
                hard_deletes: self.hard_deletes,
                new_users: self.new_users,
                restores: self.restores,
                disables: self.disables,
            },
            GroupChangeStep {
                members_added: self.members_added,
                members_removed: self.members_removed,
                groups_created: self.groups_created,
                groups_deleted: self.groups_deleted,
            },
        )
    }
}

impl Scenario {
    /// Parses and validates a scenario.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = serde_json::from_str(text)?;
        validate::validate(&scenario)?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text)
    }

    /// Users the tenants start with, copies included.
    pub fn initial_users(&self) -> usize {
        self.tenants
            .iter()
            .map(|t| {
                let each = match (&t.synthetic, &t.hand_written) {
                    (Some(s), _) => s.users,
                    (None, Some(h)) => h.users.len(),
                    (None, None) => 0,
                };
                each * t.copies
            })
            .sum()
    }
}
