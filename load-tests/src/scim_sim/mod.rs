//! A Webex Identity SCIM 2.0 simulator for Users and Groups, faithful to
//! `shared/reference/webex-scim.md`, embeddable in tests (`ScimSim::router` + `serve::spawn`)
//! and standalone (`scim-sim serve`).
//!
//! Routes: `POST|GET /identity/scim/{orgId}/v2/Users`, `GET|PUT|PATCH|DELETE …/Users/{id}`,
//! `POST|GET …/Groups`, `GET|PUT|PATCH|DELETE …/Groups/{id}`, `GET …/Groups/{id}/Members`,
//! `POST …/Bulk` (user operations, see `bulk.rs`), the org's domain list
//! `GET|POST /identity/organizations/{orgId}/v1/domains` (a shape of ours, see `domains.rs`),
//! the org's SSO setting `GET|PUT /identity/organizations/{orgId}/v1/sso` (ours too, `sso.rs`),
//! `GET|PUT /identity/organizations/{orgId}/v1/directory-connector` (`directory_connector.rs`),
//! and the verification endpoints under `/_sim` (see `admin.rs`).
//!
//! Behaviour worth knowing (details in the module of each concern):
//! - Auth: `Authorization: Bearer <org token>`, else 401 with a SCIM error. An unknown org is
//!   404 (not counted in any org's counters).
//! - `userName` is unique, case-insensitively, across all orgs of one simulator → 409
//!   `uniqueness`. It must equal the primary work email; POST/PUT generate that email when no
//!   work email is given, and a PATCH that renames the user moves it along.
//! - Filters: `eq`, `sw`, `ew`, `pr`, `and`, `or`, parentheses, `attr[filter]`; other operators
//!   → 400 `invalidFilter`. String comparisons ignore case. `userName eq` and `id eq` use
//!   indexes; other filters scan the org.
//! - Lists are in creation order unless `sortBy` is given; `count` defaults to
//!   [`ScimSimConfig::default_count`] and is capped at [`ScimSimConfig::max_count`]; `count=0`
//!   returns `totalResults` with an empty `Resources`.
//! - Read-only inputs (`id`, `meta`, `groups`) and `password` are ignored on POST/PUT; unknown
//!   attributes are stored as given; known ones are renamed to their canonical case.
//! - PATCH choices (noTarget, add through a filter): see `patch.rs`.
//! - Groups (`group_*.rs`): user members only, each a user of the same org; members kept as a
//!   set of ids; `displayName` not unique; lists show members only with `includeMembers=true`,
//!   single groups show at most 500 unless `excludedAttributes=members`; `/Members` pages of at
//!   most 500; PATCH adds and removes members in Entra's and the RFC's forms, at most 500 per
//!   operation; PUT without `members` empties the group; deleting a user removes it from its
//!   groups. Membership choices: see `group_patch.rs`.
//! - Counters count every request that reached a known org by kind, whatever its outcome, and
//!   separately those answered 4xx / 5xx; `total()`/`writes()` count `/Users` operations only
//!   (sent alone or inside a Bulk request), the `group_*` counters `/Groups`; `requests()`
//!   counts HTTP requests.
//! - Rate limit (`throttle.rs`): an optional token bucket per org; an empty bucket answers 429
//!   with `Retry-After` (whole seconds) and counts in `throttled`. Injected 503s
//!   ([`ScimSimConfig::fail_every`], `call.rs`) count in `errors_5xx`.
//! - Random faults (`faults.rs`, [`ScimSimConfig::faults`]): a share of requests answered
//!   503 (`errors_5xx`) and a share answered 429 with a fixed `Retry-After` (`throttled`),
//!   optionally followed by a burst of 429s on that org; seeded per org. Order per request:
//!   token, token bucket, random fault, `fail_every`, then the operation.
//! - Not simulated yet: Bulk operations on `/Groups` and `bulkId:` references, latency
//!   (the harness adds it with a layer),
//!   `attributes`/`excludedAttributes` projection (except `excludedAttributes=members`), nested
//!   group and machine members, the users' `groups` attribute.

mod admin;
mod bulk;
mod call;
mod counters;
pub mod directory_connector;
mod domains;
mod error;
mod eval;
mod faults;
mod filter;
mod group_filter;
mod group_patch;
mod group_query;
mod group_routes;
mod group_schema;
mod group_store;
mod json;
mod list;
mod patch;
mod resource;
mod routes;
mod schema;
mod sso;
mod store;
mod stored;
mod throttle;

#[cfg(test)]
mod http_tests;

use std::sync::Arc;

pub use bulk::{BULK_OPERATIONS_MAX, BULK_REQUEST, BULK_RESPONSE};
pub use counters::RequestCounters;
pub use error::{ScimError, ScimType};
pub use faults::Faults;
pub use filter::{AttrPath, CompareOp, Filter, Literal, SyntaxError, parse_filter, parse_path};
pub use group_schema::{
    CISCO_GROUP, CORE_GROUP, GROUP_MEMBERS, GROUP_SIZE_MAX, MEMBERS_PAGE_MAX,
    MEMBERS_PER_OPERATION_MAX, MEMBERS_SHOWN_MAX,
};
pub use throttle::RateLimit;

use store::Store;

#[derive(Debug, Clone, PartialEq)]
pub struct ScimSimConfig {
    /// Cap on a list's `count`.
    pub max_count: usize,
    /// `count` when the request gives none (Webex: 100).
    pub default_count: usize,
    /// Each org's token bucket; `None` (the default) never throttles.
    pub rate_limit: Option<RateLimit>,
    /// Whether `/Bulk` exists (Webex: yes); without it, a target like many SCIM servers.
    pub bulk: bool,
    /// Every Nth request (past authentication and throttling, any org) answers 503, as a
    /// struggling Webex would; counted in `errors_5xx`. `None` (the default): never.
    pub fail_every: Option<u64>,
    /// Random 503s and 429s (`faults.rs`), off by default; changeable at run time with
    /// [`ScimSim::set_faults`].
    pub faults: Faults,
}

impl Default for ScimSimConfig {
    fn default() -> Self {
        ScimSimConfig {
            max_count: 1000,
            default_count: 100,
            rate_limit: None,
            bulk: true,
            fail_every: None,
            faults: Faults::default(),
        }
    }
}

/// The simulator. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct ScimSim {
    inner: Arc<Store>,
}

impl std::fmt::Debug for ScimSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens.
        f.debug_struct("ScimSim")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ScimSim {
    pub fn new(config: ScimSimConfig) -> Self {
        ScimSim {
            inner: Arc::new(Store::new(config)),
        }
    }

    /// Adds an org reachable with `token`; for an existing org, changes its token only.
    pub fn add_org(&self, org_id: &str, token: &str) {
        self.inner.add_org(org_id, token);
    }

    /// The SCIM and `/_sim` routes, ready for [`crate::serve::spawn`].
    pub fn router(&self) -> axum::Router {
        routes::router(self.clone())
    }

    /// The org's users in creation order (empty for an unknown org).
    pub fn users(&self, org_id: &str) -> Vec<serde_json::Value> {
        self.inner
            .org(org_id)
            .map(|org| self.inner.users(&org))
            .unwrap_or_default()
    }

    /// Calls `f` with each of the org's users in creation order (none for an unknown org),
    /// without holding them all in memory at once as [`ScimSim::users`] does. The org is
    /// locked meanwhile, so `f` must not call the simulator.
    pub fn for_each_user(&self, org_id: &str, f: impl FnMut(serde_json::Value)) {
        if let Some(org) = self.inner.org(org_id) {
            self.inner.for_each_user(&org, f);
        }
    }

    /// The org's groups in creation order (empty for an unknown org), each as `GET
    /// /Groups/{id}` shows it but with every member (`value`, `type`, `display`, `$ref`).
    pub fn groups(&self, org_id: &str) -> Vec<serde_json::Value> {
        let mut groups = Vec::new();
        self.for_each_group(org_id, |g| groups.push(g));
        groups
    }

    /// Calls `f` with each of the org's groups in creation order, as [`ScimSim::groups`] gives
    /// them, one at a time. The org is locked meanwhile, so `f` must not call the simulator.
    pub fn for_each_group(&self, org_id: &str, f: impl FnMut(serde_json::Value)) {
        if let Some(org) = self.inner.org(org_id) {
            self.inner.for_each_group(&org, f);
        }
    }

    /// The user ids of a group's members, in `/Members` page order, without building member
    /// objects (cheap for a 250,000-member group); `None` for an unknown org or group.
    pub fn group_member_ids(&self, org_id: &str, group_id: &str) -> Option<Vec<String>> {
        let org = self.inner.org(org_id)?;
        self.inner.group_member_ids(&org, group_id)
    }

    /// The org's request counters (zero for an unknown org).
    pub fn counters(&self, org_id: &str) -> RequestCounters {
        self.inner
            .org(org_id)
            .map(|org| org.counters.snapshot())
            .unwrap_or_default()
    }

    /// The random faults in force.
    pub fn faults(&self) -> Faults {
        self.inner.faults().0
    }

    /// Replaces the random faults from the next request on (every org's generator starts
    /// over from the seed), e.g. for a simulator built by someone else.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.set_faults(faults);
    }

    pub fn reset_counters(&self, org_id: &str) {
        if let Some(org) = self.inner.org(org_id) {
            org.counters.reset();
        }
    }
}
