//! The simulator's state: orgs (token, users, groups, counters) and the Webex-wide `userName`
//! index. Group operations live in `group_store.rs`, on the same org state.
//!
//! Concurrency: each org has its own `Mutex`, held only for synchronous work (never across an
//! await). `userName` uniqueness spans all orgs (webex-scim.md §6), so a sharded global index
//! backs it; locks are always taken org first, then one shard, so they cannot deadlock.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use serde_json::{Map, Value};

use super::ScimSimConfig;
use super::counters::Counters;
use super::error::ScimError;
use super::eval::matches_object;
use super::faults::{Faults, OrgFaults};
use super::filter::{CompareOp, Filter, Literal};
use super::group_store::Groups;
use super::list::{ListQuery, sort_key, sorted_page};
use super::patch;
use super::resource::{self, Stamp};
use super::stored::StoredUser;
use super::throttle::TokenBucket;

const NAME_SHARDS: usize = 64;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the simulator; the data stays usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Org {
    pub id: Arc<str>,
    token: RwLock<String>,
    pub(super) state: Mutex<OrgState>,
    pub counters: Counters,
    pub(super) bucket: TokenBucket,
    /// The org's domain list (`domains.rs`), lower-case, in the order added.
    pub(super) domains: Mutex<Vec<String>>,
    /// The org's SSO setting (`sso.rs`).
    pub(super) sso: Mutex<super::sso::Sso>,
    /// Whether the org uses Directory Connector (`directory_connector.rs`).
    pub(super) directory_connector: Mutex<super::directory_connector::DirectoryConnector>,
    /// Its position among the orgs added: seeds its random faults (`faults.rs`).
    pub(super) index: u64,
    pub(super) faults: Mutex<OrgFaults>,
}

impl Org {
    pub fn token_matches(&self, token: &str) -> bool {
        let expected = self.token.read().unwrap_or_else(PoisonError::into_inner);
        // Constant-time comparison: the token is a secret.
        expected.len() == token.len()
            && expected
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[derive(Default)]
pub(super) struct OrgState {
    pub users: HashMap<String, StoredUser>,
    /// Creation order, the stable order of unsorted lists.
    order: BTreeMap<u64, String>,
    /// Lower-cased userName → id.
    by_name: HashMap<String, String>,
    next_seq: u64,
    /// Beside the users, under the same lock: members must be users of the org.
    pub groups: Groups,
}

/// Lower-cased userName → (org, user id).
type NameShard = HashMap<String, (Arc<str>, String)>;

/// Which user holds each userName, across every org of the simulator.
struct NameIndex {
    shards: Vec<Mutex<NameShard>>,
    hasher: RandomState,
}

impl NameIndex {
    fn new() -> Self {
        NameIndex {
            shards: (0..NAME_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, NameShard> {
        let i = (self.hasher.hash_one(key) % NAME_SHARDS as u64) as usize;
        lock(&self.shards[i])
    }

    /// Takes `key` for the user, unless another user holds it.
    fn claim(&self, key: &str, org: &Arc<str>, id: &str) -> Result<(), ScimError> {
        let mut shard = self.shard(key);
        match shard.get(key) {
            Some((o, i)) if !(o == org && i == id) => Err(ScimError::Uniqueness(format!(
                "userName {key:?} already exists"
            ))),
            _ => {
                shard.insert(key.to_owned(), (org.clone(), id.to_owned()));
                Ok(())
            }
        }
    }

    fn release(&self, key: &str, org: &Arc<str>, id: &str) {
        let mut shard = self.shard(key);
        if shard.get(key).is_some_and(|(o, i)| o == org && i == id) {
            shard.remove(key);
        }
    }
}

pub(crate) struct Store {
    pub config: ScimSimConfig,
    orgs: RwLock<HashMap<String, Arc<Org>>>,
    names: NameIndex,
    version: AtomicU64,
    /// Requests past authentication and throttling, for `fail_every`.
    pub(super) fault_sequence: AtomicU64,
    /// The random faults now, and their generation (bumped by every change, so each org's
    /// generator starts over from its seed).
    faults: RwLock<(Faults, u64)>,
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("user {id} not found"))
}

fn user_name_key(r: &Map<String, Value>) -> String {
    r.get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase()
}

fn meta_str(r: &Map<String, Value>, key: &str) -> String {
    r.get("meta")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// What a rewrite (PATCH, PUT) keeps of a user or group: its `meta.created` and `meta.location`.
pub(super) fn kept_meta(r: &Map<String, Value>) -> (String, String) {
    (meta_str(r, "created"), meta_str(r, "location"))
}

/// A new user's or group's id and its `meta.location` under `…/v2/{endpoint}` (`Users`,
/// `Groups`).
pub(super) fn new_location(org: &Org, base_url: &str, endpoint: &str) -> (String, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let location = format!("{base_url}/identity/scim/{}/v2/{endpoint}/{id}", org.id);
    (id, location)
}

impl Store {
    pub fn new(config: ScimSimConfig) -> Self {
        Store {
            orgs: RwLock::new(HashMap::new()),
            names: NameIndex::new(),
            version: AtomicU64::new(76_678_575_420),
            fault_sequence: AtomicU64::new(0),
            faults: RwLock::new((config.faults, 0)),
            config,
        }
    }

    /// The random faults now and their generation.
    pub(super) fn faults(&self) -> (Faults, u64) {
        *self.faults.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the random faults; every org starts over from its seed.
    pub(super) fn set_faults(&self, faults: Faults) {
        let mut now = self.faults.write().unwrap_or_else(PoisonError::into_inner);
        *now = (faults, now.1 + 1);
    }

    pub(super) fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::Relaxed)
    }

    /// Calls `f` with the server's part of a write of resource `id`: a new version and one
    /// timestamp, which is also `created` when there is none to keep (a new resource).
    pub(super) fn stamped<T>(
        &self,
        org: &Org,
        id: &str,
        location: &str,
        created: Option<&str>,
        f: impl FnOnce(&Stamp<'_>) -> T,
    ) -> T {
        let now = now();
        f(&Stamp {
            org_id: &org.id,
            id,
            location,
            created: created.unwrap_or(&now),
            now: &now,
            version: self.next_version(),
        })
    }

    /// Adds an org, or changes the token of an existing one (its users stay).
    pub fn add_org(&self, org_id: &str, token: &str) {
        let mut orgs = self.orgs.write().unwrap_or_else(PoisonError::into_inner);
        match orgs.get(org_id) {
            Some(org) => {
                *org.token.write().unwrap_or_else(PoisonError::into_inner) = token.to_owned()
            }
            None => {
                let org = Org {
                    id: Arc::from(org_id),
                    token: RwLock::new(token.to_owned()),
                    state: Mutex::new(OrgState::default()),
                    counters: Counters::default(),
                    bucket: TokenBucket::default(),
                    domains: Mutex::default(),
                    sso: Mutex::default(),
                    directory_connector: Mutex::default(),
                    index: orgs.len() as u64,
                    faults: Mutex::default(),
                };
                orgs.insert(org_id.to_owned(), Arc::new(org));
            }
        }
    }

    pub fn org(&self, org_id: &str) -> Option<Arc<Org>> {
        self.orgs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(org_id)
            .cloned()
    }

    /// Every user of the org, in creation order.
    pub fn users(&self, org: &Org) -> Vec<Value> {
        let mut users = Vec::new();
        self.for_each_user(org, |u| users.push(u));
        users
    }

    /// Calls `f` with every user of the org, in creation order, one at a time: a large org
    /// need not exist twice in memory. The org stays locked meanwhile.
    pub fn for_each_user(&self, org: &Org, mut f: impl FnMut(Value)) {
        let st = lock(&org.state);
        for u in st.order.values().filter_map(|id| st.users.get(id)) {
            f(Value::Object(u.resource()));
        }
    }

    pub fn create(&self, org: &Org, base_url: &str, body: Value) -> Result<Value, ScimError> {
        let (id, location) = new_location(org, base_url, "Users");
        let resource = self.stamped(org, &id, &location, None, |s| resource::from_body(body, s))?;
        let key = user_name_key(&resource);
        let mut st = lock(&org.state);
        self.names.claim(&key, &org.id, &id)?;
        let seq = st.next_seq;
        st.next_seq += 1;
        st.order.insert(seq, id.clone());
        st.by_name.insert(key, id.clone());
        st.users.insert(id, StoredUser::new(seq, &resource));
        Ok(Value::Object(resource))
    }

    pub fn get(&self, org: &Org, id: &str) -> Result<Value, ScimError> {
        let st = lock(&org.state);
        st.users
            .get(id)
            .map(|u| Value::Object(u.resource()))
            .ok_or_else(|| not_found(id))
    }

    pub fn list(&self, org: &Org, q: &ListQuery) -> Value {
        let st = lock(&org.state);
        let hits: Vec<&StoredUser> = match &q.filter {
            None => st
                .order
                .values()
                .filter_map(|id| st.users.get(id))
                .collect(),
            Some(f) => match indexed(f, &st) {
                Some(ids) => {
                    let mut hits: Vec<&StoredUser> = ids
                        .iter()
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .filter_map(|id| st.users.get(id))
                        .filter(|u| matches_object(f, &u.resource()))
                        .collect();
                    hits.sort_by_key(|u| u.seq);
                    hits
                }
                None => st
                    .order
                    .values()
                    .filter_map(|id| st.users.get(id))
                    .filter(|u| matches_object(f, &u.resource()))
                    .collect(),
            },
        };
        sorted_page(
            hits,
            q,
            |u, by| sort_key(&u.resource(), by),
            |u| Value::Object(u.resource()),
        )
    }

    pub fn patch(&self, org: &Org, id: &str, body: Value) -> Result<Value, ScimError> {
        let ops = patch::parse_owned(body)?;
        let mut st = lock(&org.state);
        let mut r = st.users.get(id).ok_or_else(|| not_found(id))?.resource();
        let old_name = r
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (created, location) = kept_meta(&r);
        patch::apply_owned(&mut r, ops)?;
        self.stamped(org, id, &location, Some(&created), |s| {
            resource::after_patch(&mut r, &old_name, s)
        })?;
        self.commit(org, &mut st, id, &old_name.to_lowercase(), r)
    }

    pub fn put(&self, org: &Org, id: &str, body: Value) -> Result<Value, ScimError> {
        let mut st = lock(&org.state);
        let old = st.users.get(id).ok_or_else(|| not_found(id))?.resource();
        let old_key = user_name_key(&old);
        let (created, location) = kept_meta(&old);
        let r = self.stamped(org, id, &location, Some(&created), |s| {
            resource::from_body(body, s)
        })?;
        self.commit(org, &mut st, id, &old_key, r)
    }

    /// Stores the new state of user `id`, moving its userName claim if it changed.
    fn commit(
        &self,
        org: &Org,
        st: &mut OrgState,
        id: &str,
        old_key: &str,
        r: Map<String, Value>,
    ) -> Result<Value, ScimError> {
        let new_key = user_name_key(&r);
        if new_key != old_key {
            self.names.claim(&new_key, &org.id, id)?;
            self.names.release(old_key, &org.id, id);
            st.by_name.remove(old_key);
            st.by_name.insert(new_key, id.to_owned());
        }
        if let Some(u) = st.users.get_mut(id) {
            u.replace(&r);
        }
        Ok(Value::Object(r))
    }

    pub fn delete(&self, org: &Org, id: &str) -> Result<(), ScimError> {
        let mut st = lock(&org.state);
        let user = st.users.remove(id).ok_or_else(|| not_found(id))?;
        st.order.remove(&user.seq);
        let key = user_name_key(&user.resource());
        st.by_name.remove(&key);
        self.names.release(&key, &org.id, id);
        self.forget_member(&mut st, id);
        Ok(())
    }
}

/// User ids that can satisfy `f`, from the indexes, when `f` allows it (`userName eq`, `id eq`,
/// their `or`, or an `and` with one of them); `None` means a scan is needed.
fn indexed(f: &Filter, st: &OrgState) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, Literal::String(s)) if p.is_attr("userName") => Some(
            st.by_name
                .get(&s.to_lowercase())
                .cloned()
                .into_iter()
                .collect(),
        ),
        Filter::Compare(p, CompareOp::Eq, Literal::String(s)) if p.is_attr("id") => {
            let id = s.to_lowercase();
            Some(if st.users.contains_key(&id) {
                vec![id]
            } else {
                Vec::new()
            })
        }
        Filter::Or(a, b) => {
            let mut ids = indexed(a, st)?;
            ids.extend(indexed(b, st)?);
            Some(ids)
        }
        Filter::And(a, b) => indexed(a, st).or_else(|| indexed(b, st)),
        _ => None,
    }
}
