//! Microsoft Graph simulator: the OAuth2 client-credentials token endpoint and `users/delta`
//! over deterministic [`synthetic`](crate::synthetic) tenants, plus `/_sim/` admin endpoints
//! that add tenants, apply change steps and show the ground truth.
//!
//! Faithful to `shared/reference/graph.md`: pages of `page_size` users with absolute
//! `@odata.nextLink`/`@odata.deltaLink` URLs, `$select` tracking (a change to an unselected
//! property does not surface a user), `@removed` with reason `changed` (soft delete) or `deleted`
//! (hard delete), restores without annotation, omitted never-set properties versus explicit
//! `null`, `Prefer: return=minimal`, `$deltatoken=latest`, `400 syncStateNotFound` for unknown,
//! foreign or expired state tokens, and bearer tokens that expire.
//!
//! Edge cases, each off by default ([`GraphSimConfig`]): replayed users on the same or the
//! next page, empty pages with a nextLink and short pages (`paging.rs`); the RU token bucket
//! per app+tenant with 429, decimal `Retry-After` and the `x-ms-throttle-*` headers
//! (`throttle.rs`, 1 RU per delta request); injected 503/504s and synchronization resets that
//! refuse older deltaLinks in each documented form (`faults.rs`, [`GraphSim::reset`] or
//! `POST /_sim/tenants/{t}/reset`). Every delta response carries `x-ms-resource-unit`, and
//! requests with `x-ms-throttle-priority: low` are counted ([`RequestCounts`]).
//!
//! Change tracking: each tenant has a version, bumped once per change step; each user remembers
//! the versions at which it changed and which properties changed. An initial round enumerates
//! users by id with a key cursor; a delta round enumerates an index of `(version, user)` between
//! the token's base version and the version at which the round started, so paging stays cheap
//! and stable while changes keep arriving. Hard-deleted users are kept as tombstones (see
//! [`SimUser`]).
//!
//! Groups (optional, [`GraphSim::add_tenant_with_groups`]): `groups/delta` with `$select`
//! (`members` included), the same token scheme and versions as users, and `members@delta` in
//! slices of at most 500 entries per page, a large group repeated on several pages; see
//! `group_store.rs` for the paging rule and `groups_delta.rs` for what a round returns. Users
//! also accept the documented targeted read, `$filter=id eq '…' or id eq '…'` with up to 50 ids
//! (`filter.rs`). `GET /v1.0/users` and `/v1.0/groups` list and search live objects
//! (`$search` with `ConsistencyLevel: eventual`, `$filter=startswith(…)`; `search.rs`).

mod auth;
mod delta;
mod domains;
mod envelope;
mod faults;
mod filter;
mod group_render;
mod group_store;
mod groups_delta;
mod http;
mod paging;
mod photos;
mod render;
mod rooms;
mod search;
mod store;
mod synchronization;
mod throttle;
mod token;
mod user;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::synthetic::UserState;
use crate::synthetic::{
    ChangeReport, ChangeStep, EntraUser, SyntheticGroups, SyntheticTenant, TenantUser,
};
pub use crate::synthetic::{GroupChangeStep, GroupSpec, MemberKind, MemberRef};
pub use faults::ResetMode;
pub use group_store::SimGroup;
pub use synchronization::{FlowType, ProvisioningApp, SimMapping, SourceKind};

use auth::IssuedTokens;
use store::TenantStore;

/// Simulator settings shared by all tenants.
#[derive(Debug, Clone)]
pub struct GraphSimConfig {
    /// Users per delta page (Graph: 200).
    pub page_size: usize,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_lifetime: Duration,
    /// How long a deltaLink stays usable (Graph: 7 days); older ones get `syncStateNotFound`.
    pub delta_token_lifetime: Duration,
    /// Also list soft- and hard-deleted users as `@removed` in initial rounds, as Graph may.
    pub initial_round_tombstones: bool,
    /// Replays (graph.md §1.5): every Nth user of a round is emitted twice, alternately again
    /// at the end of the same page and at the start of the next one, in its current state.
    pub duplicate_every: Option<usize>,
    /// After every N pages of a round, a page with `"value": []` and a nextLink.
    pub empty_page_every: Option<usize>,
    /// Every odd page of a round is shorter than `page_size` (a fixed size per page number).
    pub short_pages: bool,
    /// Throttle `users/delta` with the documented RU bucket per app+tenant (graph.md §2).
    pub throttling: bool,
    /// Replaces the documented per-tenant RU budget per 10 s, and turns throttling on.
    pub ru_budget_per_10s: Option<u32>,
    /// Every Nth delta request (past authentication and throttling) fails with 503, then
    /// 504, alternately, in the Graph error envelope.
    pub fail_every: Option<usize>,
    /// Room mailboxes added to every tenant: disabled user objects that
    /// `places/microsoft.graph.room` lists by email address.
    pub rooms: usize,
}

impl Default for GraphSimConfig {
    fn default() -> Self {
        GraphSimConfig {
            page_size: 200,
            token_lifetime: Duration::from_secs(3599),
            delta_token_lifetime: Duration::from_secs(7 * 24 * 3600),
            initial_round_tombstones: false,
            duplicate_every: None,
            empty_page_every: None,
            short_pages: false,
            throttling: false,
            ru_budget_per_10s: None,
            fail_every: None,
            rooms: 0,
        }
    }
}

impl GraphSimConfig {
    /// The RU budget per 10 s for a tenant of `users` users, or `None` when not throttling.
    fn ru_budget(&self, users: usize) -> Option<u32> {
        match (self.ru_budget_per_10s, self.throttling) {
            (Some(budget), _) => Some(budget),
            (None, true) => Some(throttle::tier_budget(users)),
            (None, false) => None,
        }
    }
}

/// A tenant to simulate: its identity, the app registration that may read it, and its users.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSpec {
    pub tenant_id: String,
    pub domain: String,
    pub client_id: String,
    pub client_secret: String,
    pub seed: u64,
    /// Users generated at start; about 0.5% of them start soft-deleted.
    pub users: usize,
}

impl fmt::Debug for TenantSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSpec")
            .field("tenant_id", &self.tenant_id)
            .field("domain", &self.domain)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("seed", &self.seed)
            .field("users", &self.users)
            .finish()
    }
}

/// A user as the simulator holds it. Snapshots include hard-deleted users as tombstones
/// (state [`UserState::HardDeleted`], last known attributes) so an oracle can tell "deleted"
/// from "never existed".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimUser {
    pub user: EntraUser,
    pub state: UserState,
}

/// Requests a tenant has received, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub tokens_issued: u64,
    pub tokens_rejected: u64,
    /// Rounds started: initial requests, deltaLink requests and `$deltatoken=latest`.
    pub delta_rounds: u64,
    /// Successful delta pages (every `200 OK`).
    pub delta_pages: u64,
    /// Entries returned in `value` arrays.
    pub objects_returned: u64,
    /// Graph calls refused with 401 for an expired token of this tenant.
    pub unauthorized: u64,
    pub sync_state_not_found: u64,
    /// Other 4xx answers to delta requests.
    pub bad_requests: u64,
    /// Authenticated `users/delta` and `groups/delta` requests, whatever the answer (the other
    /// counters count both kinds of delta request too).
    pub delta_requests: u64,
    /// Of those, the ones that carried `x-ms-throttle-priority: low`.
    pub low_priority_requests: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Resource units charged.
    pub ru_charged: u64,
    /// Injected 503 and 504 answers.
    pub transient_errors: u64,
    /// Answers to deltaLinks issued before a reset.
    pub reset_refusals: u64,
    /// Replayed entries, included in `objects_returned`.
    pub duplicates_returned: u64,
    /// Inserted empty pages (with a nextLink), included in `delta_pages`.
    pub empty_pages: u64,
    /// Targeted reads (`$filter=id eq …`) answered, included in `delta_pages`.
    pub filtered_reads: u64,
    /// Pages of `places/microsoft.graph.room` answered, included in `delta_pages`.
    pub room_pages: u64,
    /// Photo requests (metadata and content), whatever the answer.
    pub photo_requests: u64,
    /// Authenticated `GET /v1.0/users` and `/v1.0/groups` lists and searches.
    #[serde(default)]
    pub search_requests: u64,
}

/// Errors of the simulator's Rust API (HTTP clients see them as 4xx).
#[derive(Debug, thiserror::Error)]
pub enum GraphSimError {
    #[error("unknown tenant {0}")]
    UnknownTenant(String),
    #[error("tenant {0} already exists")]
    DuplicateTenant(String),
    #[error("invalid tenant spec: {0}")]
    InvalidSpec(String),
}

/// The simulator; cheap to clone, all clones share state.
#[derive(Clone)]
pub struct GraphSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: GraphSimConfig,
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    tokens: Mutex<IssuedTokens>,
    /// 401s for tokens that name no tenant (missing, malformed or unknown).
    unattributed_unauthorized: AtomicU64,
}

pub(crate) struct Tenant {
    spec: TenantSpec,
    /// Random per tenant instance: state tokens from another instance (e.g. before a
    /// simulator restart) are rejected instead of silently misread.
    epoch: u64,
    store: RwLock<TenantStore>,
    counters: Counters,
    /// The app+tenant RU bucket; created on first use.
    bucket: Mutex<Option<throttle::Bucket>>,
    /// Delta requests past throttling, for `fail_every`.
    fault_sequence: AtomicU64,
    /// Resets so far and the last one's mode: deltaLinks of an older generation are refused.
    reset: Mutex<(u64, Option<ResetMode>)>,
    /// Users' profile photos (not change-tracked: a client asks for them).
    photos: Mutex<photos::Photos>,
    /// The tenant's domains (`GET /v1.0/domains`).
    domains: Mutex<domains::Domains>,
    /// Enterprise apps with provisioning (`servicePrincipals/{id}/synchronization`).
    provisioning: Mutex<Vec<synchronization::ProvisioningApp>>,
}

impl Tenant {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, TenantStore> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, TenantStore> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn photos(&self) -> std::sync::MutexGuard<'_, photos::Photos> {
        self.photos.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn domains(&self) -> std::sync::MutexGuard<'_, domains::Domains> {
        self.domains.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn provisioning(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<synchronization::ProvisioningApp>> {
        self.provisioning
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The reset generation and the mode of the last reset.
    pub(crate) fn reset_state(&self) -> (u64, Option<ResetMode>) {
        *self.reset.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Charges one delta request to the tenant's RU bucket, when throttling.
    pub(crate) fn charge(&self, config: &GraphSimConfig) -> Option<throttle::Charge> {
        let budget = config.ru_budget(self.read().users().len())?;
        let now = Instant::now();
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let charge = bucket
            .get_or_insert_with(|| throttle::Bucket::new(now, budget))
            .charge(now, budget, throttle::DELTA_PAGE_COST);
        Some(charge)
    }

    /// Whether this delta request gets an injected fault, and which: 503 then 504.
    pub(crate) fn transient_fault(&self, config: &GraphSimConfig) -> Option<faults::Transient> {
        let every = config.fail_every.filter(|&n| n > 0)? as u64;
        let seq = self.fault_sequence.fetch_add(1, Ordering::Relaxed) + 1;
        faults::Transient::nth(seq, every)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub tokens_issued: AtomicU64,
    pub tokens_rejected: AtomicU64,
    pub delta_rounds: AtomicU64,
    pub delta_pages: AtomicU64,
    pub objects_returned: AtomicU64,
    pub unauthorized: AtomicU64,
    pub sync_state_not_found: AtomicU64,
    pub bad_requests: AtomicU64,
    pub delta_requests: AtomicU64,
    pub low_priority_requests: AtomicU64,
    pub throttled: AtomicU64,
    pub ru_charged: AtomicU64,
    pub transient_errors: AtomicU64,
    pub reset_refusals: AtomicU64,
    pub duplicates_returned: AtomicU64,
    pub empty_pages: AtomicU64,
    pub filtered_reads: AtomicU64,
    pub room_pages: AtomicU64,
    pub photo_requests: AtomicU64,
    pub search_requests: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RequestCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RequestCounts {
            tokens_issued: get(&self.tokens_issued),
            tokens_rejected: get(&self.tokens_rejected),
            delta_rounds: get(&self.delta_rounds),
            delta_pages: get(&self.delta_pages),
            objects_returned: get(&self.objects_returned),
            unauthorized: get(&self.unauthorized),
            sync_state_not_found: get(&self.sync_state_not_found),
            bad_requests: get(&self.bad_requests),
            delta_requests: get(&self.delta_requests),
            low_priority_requests: get(&self.low_priority_requests),
            throttled: get(&self.throttled),
            ru_charged: get(&self.ru_charged),
            transient_errors: get(&self.transient_errors),
            reset_refusals: get(&self.reset_refusals),
            duplicates_returned: get(&self.duplicates_returned),
            empty_pages: get(&self.empty_pages),
            filtered_reads: get(&self.filtered_reads),
            room_pages: get(&self.room_pages),
            photo_requests: get(&self.photo_requests),
            search_requests: get(&self.search_requests),
        }
    }
}

impl GraphSim {
    /// A simulator without tenants; a `page_size` of 0 is taken as 1.
    pub fn new(mut config: GraphSimConfig) -> GraphSim {
        config.page_size = config.page_size.max(1);
        GraphSim {
            inner: Arc::new(Inner {
                config,
                tenants: RwLock::new(HashMap::new()),
                tokens: Mutex::new(IssuedTokens::default()),
                unattributed_unauthorized: AtomicU64::new(0),
            }),
        }
    }

    pub fn config(&self) -> &GraphSimConfig {
        &self.inner.config
    }

    /// Generates the tenant's users and starts serving it. CPU-bound for large tenants (about
    /// a second per few hundred thousand users): call from a blocking context.
    pub fn add_tenant(&self, spec: TenantSpec) -> Result<(), GraphSimError> {
        self.add_tenant_with_groups(spec, GroupSpec::default())
    }

    /// [`GraphSim::add_tenant`] with groups generated from the same seed over the users.
    pub fn add_tenant_with_groups(
        &self,
        spec: TenantSpec,
        groups: GroupSpec,
    ) -> Result<(), GraphSimError> {
        validate(&spec)?;
        if self.tenant(&spec.tenant_id).is_ok() {
            return Err(GraphSimError::DuplicateTenant(spec.tenant_id));
        }
        let mut users = SyntheticTenant::new(spec.seed, spec.users, &spec.domain);
        users.add_rooms(self.config().rooms);
        let generated = SyntheticGroups::new(spec.seed, &groups, users.users());
        self.add_tenant_from(spec, users, generated)
    }

    /// Starts serving a tenant built by the caller (hand-written users and groups); the
    /// spec's `users` count is not used.
    pub fn add_tenant_from(
        &self,
        spec: TenantSpec,
        users: SyntheticTenant,
        generated: SyntheticGroups,
    ) -> Result<(), GraphSimError> {
        validate(&spec)?;
        let store = TenantStore::with_groups(users, generated);
        let tenant = Tenant {
            epoch: fastrand::u64(..),
            store: RwLock::new(store),
            counters: Counters::default(),
            bucket: Mutex::new(None),
            fault_sequence: AtomicU64::new(0),
            reset: Mutex::new((0, None)),
            photos: Mutex::default(),
            domains: Mutex::new(domains::Domains::for_tenant(&spec)),
            provisioning: Mutex::default(),
            spec: spec.clone(),
        };
        let mut tenants = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if tenants.contains_key(&spec.tenant_id) {
            return Err(GraphSimError::DuplicateTenant(spec.tenant_id));
        }
        tenants.insert(spec.tenant_id, Arc::new(tenant));
        Ok(())
    }

    /// Applies the tenant's next change step; delta rounds from now on see its changes.
    pub fn apply_changes(
        &self,
        tenant_id: &str,
        step: &ChangeStep,
    ) -> Result<ChangeReport, GraphSimError> {
        self.apply_step(tenant_id, step, &GroupChangeStep::default())
    }

    /// Applies the tenant's next change step to users and groups, as one version.
    pub fn apply_step(
        &self,
        tenant_id: &str,
        users: &ChangeStep,
        groups: &GroupChangeStep,
    ) -> Result<ChangeReport, GraphSimError> {
        let tenant = self.tenant(tenant_id)?;
        let report = tenant.write().apply_step(users, groups);
        Ok(report)
    }

    /// Adds (`present`) or removes one member of one live group, as a change step of its
    /// own. Returns whether anything changed (an unknown or deleted group, or a membership
    /// already in that state, changes nothing).
    pub fn set_membership(
        &self,
        tenant_id: &str,
        group_id: &str,
        member: MemberRef,
        present: bool,
    ) -> Result<bool, GraphSimError> {
        let tenant = self.tenant(tenant_id)?;
        let changed = tenant.write().set_membership(group_id, member, present);
        Ok(changed)
    }

    /// Every group of the tenant as it is now, deleted ones included, in generation order.
    pub fn groups(&self, tenant_id: &str) -> Result<Vec<SimGroup>, GraphSimError> {
        Ok(self.tenant(tenant_id)?.read().groups().snapshot())
    }

    /// A synchronization reset (graph.md §1.4): every deltaLink issued before it is refused
    /// the way `mode` says; links issued afterwards, and nextLinks, keep working.
    pub fn reset(&self, tenant_id: &str, mode: ResetMode) -> Result<(), GraphSimError> {
        let tenant = self.tenant(tenant_id)?;
        let mut reset = tenant.reset.lock().unwrap_or_else(PoisonError::into_inner);
        *reset = (reset.0 + 1, Some(mode));
        Ok(())
    }

    /// Gives a user a new profile photo (`Some`, a new etag each time) or removes it
    /// (`None`). Not a directory change: `users/delta` does not show it (graph.md §1.2).
    pub fn set_photo(
        &self,
        tenant_id: &str,
        user_id: &str,
        photo: Option<Vec<u8>>,
    ) -> Result<(), GraphSimError> {
        self.tenant(tenant_id)?.photos().set(user_id, photo);
        Ok(())
    }

    /// Object ids of the tenant's room mailboxes.
    pub fn room_ids(&self, tenant_id: &str) -> Result<Vec<String>, GraphSimError> {
        let tenant = self.tenant(tenant_id)?;
        let store = tenant.read();
        let users = store.users();
        Ok(store
            .rooms()
            .iter()
            .map(|&i| users[i].user.id.clone())
            .collect())
    }

    /// Every user of the tenant, hard-deleted tombstones included, in generation order.
    pub fn snapshot(&self, tenant_id: &str) -> Result<Vec<SimUser>, GraphSimError> {
        Ok(self.tenant(tenant_id)?.read().snapshot())
    }

    /// Calls `f` with every user of the tenant (tombstones included, in generation order)
    /// without copying them as [`GraphSim::snapshot`] does. The tenant is read-locked
    /// meanwhile: `f` must not change it.
    pub fn with_users<R>(
        &self,
        tenant_id: &str,
        f: impl FnOnce(&[TenantUser]) -> R,
    ) -> Result<R, GraphSimError> {
        Ok(f(self.tenant(tenant_id)?.read().users()))
    }

    /// The tenant's change version: 0 at creation, +1 per change step.
    pub fn version(&self, tenant_id: &str) -> Result<u64, GraphSimError> {
        Ok(self.tenant(tenant_id)?.read().version())
    }

    /// Requests the tenant has received so far.
    pub fn requests(&self, tenant_id: &str) -> Result<RequestCounts, GraphSimError> {
        Ok(self.tenant(tenant_id)?.counters.snapshot())
    }

    /// 401s for bearer tokens that were missing, malformed or never issued.
    pub fn unattributed_unauthorized(&self) -> u64 {
        self.inner.unattributed_unauthorized.load(Ordering::Relaxed)
    }

    /// Ids of all tenants, sorted.
    pub fn tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// The HTTP face of the simulator: token endpoint, Graph and `/_sim/` admin routes.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    fn tenant(&self, tenant_id: &str) -> Result<Arc<Tenant>, GraphSimError> {
        let tenants = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        tenants
            .get(tenant_id)
            .cloned()
            .ok_or_else(|| GraphSimError::UnknownTenant(tenant_id.to_owned()))
    }

    /// A tenant by id or by domain name (case-insensitive), as the token endpoint accepts both.
    fn tenant_by_id_or_domain(&self, key: &str) -> Option<Arc<Tenant>> {
        let tenants = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        tenants.get(key).cloned().or_else(|| {
            tenants
                .values()
                .find(|t| {
                    t.spec.tenant_id.eq_ignore_ascii_case(key)
                        || t.spec.domain.eq_ignore_ascii_case(key)
                })
                .cloned()
        })
    }
}

fn validate(spec: &TenantSpec) -> Result<(), GraphSimError> {
    let fields = [
        ("tenant_id", &spec.tenant_id),
        ("domain", &spec.domain),
        ("client_id", &spec.client_id),
        ("client_secret", &spec.client_secret),
    ];
    for (name, value) in fields {
        if value.trim().is_empty() {
            return Err(GraphSimError::InvalidSpec(format!("{name} is empty")));
        }
    }
    let path_safe = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if !path_safe(&spec.tenant_id) || !path_safe(&spec.domain) {
        return Err(GraphSimError::InvalidSpec(
            "tenant_id and domain may only hold letters, digits, '-', '_', '.'".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
