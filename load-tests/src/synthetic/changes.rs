//! Change steps: the deterministic edits applied to a synthetic tenant between sync cycles
//! (updates, soft and hard deletes, restores, disables, new users), and what each step did.
//!
//! Step `n` of a tenant draws from an rng seeded by `(tenant seed, n)`, so replaying the same
//! steps on the same tenant always gives the same users. Within one step each user is touched by
//! at most one kind of change, which keeps the expected delta representation unambiguous.

use fastrand::Rng;
use serde::{Deserialize, Serialize};

use super::groups::Membership;
use super::names::{DEPARTMENTS, JOB_TITLES, LOCATIONS, SUFFIXES, SURNAMES};
use super::{EntraUser, Prop, PropSet, display_name, generate_user, mix, phone, pick, street};

/// Where a user is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserState {
    Live,
    /// In deleted items, restorable (Graph: `@removed: changed`).
    SoftDeleted,
    /// Gone for good (Graph: `@removed: deleted`); kept as a tombstone.
    HardDeleted,
}

/// A user of a synthetic tenant with its lifecycle state.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantUser {
    pub user: EntraUser,
    pub state: UserState,
    /// Properties that had a value and were cleared: Graph sends them as `null`, where a
    /// never-set property is omitted.
    pub cleared: PropSet,
}

/// How many changes of each kind to apply in one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct ChangeStep {
    /// Live users whose attributes change.
    #[arg(long, default_value_t = 0)]
    pub updates: usize,
    /// Live users moved to deleted items.
    #[arg(long, default_value_t = 0)]
    pub soft_deletes: usize,
    /// Live or soft-deleted users deleted permanently.
    #[arg(long, default_value_t = 0)]
    pub hard_deletes: usize,
    /// Users created.
    #[arg(long, default_value_t = 0)]
    pub new_users: usize,
    /// Soft-deleted users restored.
    #[arg(long, default_value_t = 0)]
    pub restores: usize,
    /// Live, enabled users whose account is disabled.
    #[arg(long, default_value_t = 0)]
    pub disables: usize,
}

/// What a step actually did: counts may be lower than asked when too few users qualify.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeReport {
    /// 1 for the first step applied to the tenant.
    pub step: u64,
    pub updates: usize,
    pub soft_deletes: usize,
    pub hard_deletes: usize,
    pub new_users: usize,
    pub restores: usize,
    pub disables: usize,
    pub updated_ids: Vec<String>,
    pub soft_deleted_ids: Vec<String>,
    pub hard_deleted_ids: Vec<String>,
    pub new_ids: Vec<String>,
    pub restored_ids: Vec<String>,
    pub disabled_ids: Vec<String>,
    /// Group changes ([`GroupChangeStep`](super::GroupChangeStep)); absent in older reports.
    #[serde(default)]
    pub groups_created: usize,
    #[serde(default)]
    pub groups_deleted: usize,
    #[serde(default)]
    pub members_added: usize,
    #[serde(default)]
    pub members_removed: usize,
    #[serde(default)]
    pub created_group_ids: Vec<String>,
    /// Soft-deleted (Microsoft 365) and hard-deleted (security) groups.
    #[serde(default)]
    pub deleted_group_ids: Vec<String>,
    #[serde(default)]
    pub added_members: Vec<Membership>,
    #[serde(default)]
    pub removed_members: Vec<Membership>,
    /// Memberships that ended because the member itself was deleted (a hard-deleted user, a
    /// deleted child group); not counted in `members_removed`.
    #[serde(default)]
    pub unlinked_members: Vec<Membership>,
}

/// The kind of change a step made to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Update,
    SoftDelete,
    HardDelete,
    New,
    Restore,
    Disable,
}

/// One user touched by a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    /// Position in [`SyntheticTenant::users`].
    pub index: usize,
    pub kind: ChangeKind,
    /// Properties whose value changed (all of them for a new user, none for a state change).
    pub props: PropSet,
}

/// A step's report together with the per-user detail a change tracker needs.
#[derive(Debug, Clone)]
pub struct AppliedStep {
    pub report: ChangeReport,
    pub touched: Vec<Touch>,
}

/// A tenant's users, in generation order; hard-deleted users stay as tombstones, so positions
/// never move and ids are never reused.
#[derive(Debug, Clone)]
pub struct SyntheticTenant {
    seed: u64,
    domain: String,
    users: Vec<TenantUser>,
    /// Indices of room mailboxes in `users`.
    rooms: Vec<usize>,
    steps: u64,
}

const STEP_SALT: u64 = 0x57E9_C4A2_6E5D_0001;
const ROOM_SALT: u64 = 0x57E9_C4A2_6E5D_0002;

impl SyntheticTenant {
    /// Generates `count` users; about 0.5% (at least one when `count > 0`) start soft-deleted, so
    /// restores have something to act on.
    pub fn new(seed: u64, count: usize, domain: &str) -> SyntheticTenant {
        let domain = domain.to_ascii_lowercase();
        let mut users: Vec<TenantUser> = super::generate_users(seed, count, &domain)
            .into_iter()
            .map(|user| TenantUser {
                user,
                state: UserState::Live,
                cleared: PropSet::EMPTY,
            })
            .collect();
        let mut rng = Rng::with_seed(mix(seed ^ STEP_SALT, 0));
        for index in choose(&mut rng, (0..count).collect(), count.div_ceil(200)) {
            users[index].state = UserState::SoftDeleted;
        }
        SyntheticTenant {
            seed,
            domain,
            users,
            rooms: Vec::new(),
            steps: 0,
        }
    }

    /// A tenant of the given users, all live, in this order (hand-written tenants of the load
    /// harness); later steps draw from `seed` and new users continue the generated sequence.
    pub fn from_users(seed: u64, domain: &str, users: Vec<EntraUser>) -> SyntheticTenant {
        SyntheticTenant {
            seed,
            domain: domain.to_ascii_lowercase(),
            users: users
                .into_iter()
                .map(|user| TenantUser {
                    user,
                    state: UserState::Live,
                    cleared: PropSet::EMPTY,
                })
                .collect(),
            rooms: Vec::new(),
            steps: 0,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Adds `count` room mailboxes: in Entra a room is a user object with a disabled account
    /// (`Conf Room N`, `room-N@domain`), found as a room only through the places API.
    pub fn add_rooms(&mut self, count: usize) {
        for n in 0..count {
            let upn = format!("room-{n:04}@{}", self.domain);
            let mut rng = Rng::with_seed(mix(self.seed ^ ROOM_SALT, n as u64));
            let id = uuid::Builder::from_random_bytes(rng.u128(..).to_be_bytes())
                .into_uuid()
                .to_string();
            self.rooms.push(self.users.len());
            self.users.push(TenantUser {
                user: super::EntraUser {
                    id,
                    display_name: format!("Conf Room {n}"),
                    mail: Some(upn.clone()),
                    user_principal_name: upn,
                    given_name: None,
                    surname: None,
                    job_title: None,
                    department: None,
                    employee_id: None,
                    business_phones: Vec::new(),
                    mobile_phone: None,
                    fax_number: None,
                    street_address: None,
                    city: None,
                    state: None,
                    postal_code: None,
                    country: None,
                    usage_location: None,
                    account_enabled: false,
                    manager_id: None,
                },
                state: UserState::Live,
                cleared: PropSet::EMPTY,
            });
        }
    }

    /// Indices (in [`Self::users`]) of the room mailboxes.
    pub fn rooms(&self) -> &[usize] {
        &self.rooms
    }

    /// Every user ever generated, tombstones included, in generation order.
    pub fn users(&self) -> &[TenantUser] {
        &self.users
    }

    /// How many steps have been applied.
    pub fn steps_applied(&self) -> u64 {
        self.steps
    }

    /// Applies the next step. Order: restores, hard deletes, soft deletes, disables, updates,
    /// new users; each picks among users not yet touched by this step.
    pub fn apply(&mut self, step: &ChangeStep) -> AppliedStep {
        self.steps += 1;
        let mut rng = Rng::with_seed(mix(self.seed ^ STEP_SALT, self.steps));
        let mut touched_mask = vec![false; self.users.len()];
        let mut touched = Vec::new();

        let kinds: [(ChangeKind, usize, Eligible); 5] = [
            (ChangeKind::Restore, step.restores, |u| {
                u.state == UserState::SoftDeleted
            }),
            (ChangeKind::HardDelete, step.hard_deletes, |u| {
                u.state != UserState::HardDeleted
            }),
            (ChangeKind::SoftDelete, step.soft_deletes, |u| {
                u.state == UserState::Live
            }),
            (ChangeKind::Disable, step.disables, |u| {
                u.state == UserState::Live && u.user.account_enabled
            }),
            (ChangeKind::Update, step.updates, |u| {
                u.state == UserState::Live
            }),
        ];
        for (kind, wanted, eligible) in kinds {
            // Rooms stay as added: change steps model people.
            let candidates = (0..self.users.len())
                .filter(|&i| {
                    !touched_mask[i]
                        && eligible(&self.users[i])
                        && self.rooms.binary_search(&i).is_err()
                })
                .collect();
            for index in choose(&mut rng, candidates, wanted) {
                touched_mask[index] = true;
                let props = self.change(&mut rng, index, kind);
                touched.push(Touch { index, kind, props });
            }
        }
        for _ in 0..step.new_users {
            let index = self.users.len();
            let user = generate_user(self.seed, index, &self.domain);
            self.users.push(TenantUser {
                user,
                state: UserState::Live,
                cleared: PropSet::EMPTY,
            });
            touched.push(Touch {
                index,
                kind: ChangeKind::New,
                props: PropSet::all(),
            });
        }

        let report = self.report(&touched);
        AppliedStep { report, touched }
    }

    fn change(&mut self, rng: &mut Rng, index: usize, kind: ChangeKind) -> PropSet {
        let mut props = PropSet::EMPTY;
        match kind {
            ChangeKind::Restore => self.users[index].state = UserState::Live,
            ChangeKind::HardDelete => self.users[index].state = UserState::HardDeleted,
            ChangeKind::SoftDelete => self.users[index].state = UserState::SoftDeleted,
            ChangeKind::Disable => {
                self.users[index].user.account_enabled = false;
                props.insert(Prop::AccountEnabled);
            }
            ChangeKind::Update => {
                let manager = self.new_manager(rng, index);
                props = update(rng, &mut self.users[index], manager);
            }
            ChangeKind::New => props = PropSet::all(),
        }
        props
    }

    /// A live user other than `index` and its current manager, if one turns up quickly.
    fn new_manager(&self, rng: &mut Rng, index: usize) -> Option<String> {
        let current = self.users[index].user.manager_id.as_deref();
        (0..8)
            .map(|_| &self.users[rng.usize(0..self.users.len())])
            .find_map(|candidate| {
                let id = candidate.user.id.as_str();
                (candidate.state == UserState::Live
                    && id != self.users[index].user.id
                    && Some(id) != current)
                    .then(|| id.to_owned())
            })
    }

    fn report(&self, touched: &[Touch]) -> ChangeReport {
        let mut report = ChangeReport {
            step: self.steps,
            ..ChangeReport::default()
        };
        for touch in touched {
            let id = self.users[touch.index].user.id.clone();
            match touch.kind {
                ChangeKind::Update => report.updated_ids.push(id),
                ChangeKind::SoftDelete => report.soft_deleted_ids.push(id),
                ChangeKind::HardDelete => report.hard_deleted_ids.push(id),
                ChangeKind::New => report.new_ids.push(id),
                ChangeKind::Restore => report.restored_ids.push(id),
                ChangeKind::Disable => report.disabled_ids.push(id),
            }
        }
        report.updates = report.updated_ids.len();
        report.soft_deletes = report.soft_deleted_ids.len();
        report.hard_deletes = report.hard_deleted_ids.len();
        report.new_users = report.new_ids.len();
        report.restores = report.restored_ids.len();
        report.disables = report.disabled_ids.len();
        report
    }
}

/// Whether a user qualifies for a kind of change.
type Eligible = fn(&TenantUser) -> bool;

/// Up to `amount` distinct candidates (partial Fisher-Yates), returned in ascending order.
pub(crate) fn choose(rng: &mut Rng, mut candidates: Vec<usize>, amount: usize) -> Vec<usize> {
    let amount = amount.min(candidates.len());
    for i in 0..amount {
        let j = rng.usize(i..candidates.len());
        candidates.swap(i, j);
    }
    candidates.truncate(amount);
    candidates.sort_unstable();
    candidates
}

/// The edits an update can make; one to three are applied.
#[derive(Clone, Copy)]
enum Edit {
    DisplayName,
    JobTitle,
    Department,
    Surname,
    MobilePhone,
    Manager,
    Relocate,
    BusinessPhone,
    Enable,
}

const EDITS: [Edit; 9] = [
    Edit::DisplayName,
    Edit::JobTitle,
    Edit::Department,
    Edit::Surname,
    Edit::MobilePhone,
    Edit::Manager,
    Edit::Relocate,
    Edit::BusinessPhone,
    Edit::Enable,
];

/// Changes one to three attributes of `target` and returns which properties really changed
/// (never empty).
fn update(rng: &mut Rng, target: &mut TenantUser, new_manager: Option<String>) -> PropSet {
    let mut edits = EDITS;
    rng.shuffle(&mut edits);
    let wanted = rng.usize(1..=3);
    let mut editor = Editor {
        user: &mut target.user,
        cleared: &mut target.cleared,
        changed: PropSet::EMPTY,
    };
    let mut applied = 0;
    for edit in edits {
        if applied == wanted {
            break;
        }
        let before = editor.changed;
        editor.apply(rng, edit, new_manager.as_deref());
        applied += usize::from(editor.changed != before);
    }
    editor.changed
}

/// Edits a user while recording which properties changed and which were cleared.
struct Editor<'a> {
    user: &'a mut EntraUser,
    cleared: &'a mut PropSet,
    changed: PropSet,
}

impl Editor<'_> {
    fn apply(&mut self, rng: &mut Rng, edit: Edit, new_manager: Option<&str>) {
        match edit {
            Edit::DisplayName => {
                let current = self.user.display_name.clone();
                let next = match SUFFIXES.iter().find(|s| current.ends_with(*s)) {
                    Some(suffix) => current[..current.len() - suffix.len()].to_owned(),
                    None => format!("{current}{}", pick(rng, SUFFIXES)),
                };
                self.user.display_name = next;
                self.changed.insert(Prop::DisplayName);
            }
            Edit::JobTitle => {
                let next = if self.user.job_title.is_some() && rng.u32(0..100) < 20 {
                    None
                } else {
                    Some(other(rng, JOB_TITLES, self.user.job_title.as_deref()))
                };
                self.set(Prop::JobTitle, next);
            }
            Edit::Department => {
                let next = other(rng, DEPARTMENTS, self.user.department.as_deref());
                self.set(Prop::Department, Some(next));
            }
            Edit::Surname => {
                let Some(given) = self.user.given_name.clone() else {
                    return;
                };
                let names: Vec<&str> = SURNAMES.iter().map(|(shown, _)| *shown).collect();
                let next = other(rng, &names, self.user.surname.as_deref());
                self.user.display_name = display_name(&given, &next);
                self.changed.insert(Prop::DisplayName);
                self.set(Prop::Surname, Some(next));
            }
            Edit::MobilePhone => {
                let next = if self.user.mobile_phone.is_some() && rng.u32(0..100) < 30 {
                    None
                } else {
                    let prefix = pick(rng, LOCATIONS).phone_prefix;
                    Some(phone(rng, prefix))
                };
                self.set(Prop::MobilePhone, next);
            }
            Edit::Manager => {
                if let Some(manager) = new_manager {
                    self.set(Prop::Manager, Some(manager.to_owned()));
                }
            }
            Edit::Relocate => {
                let location = pick(rng, LOCATIONS);
                if self.user.city.as_deref() == Some(location.city) {
                    return;
                }
                self.set(Prop::StreetAddress, Some(street(rng, location.streets)));
                self.set(Prop::City, Some(location.city.to_owned()));
                self.set(Prop::State, location.state.map(str::to_owned));
                self.set(Prop::PostalCode, Some(location.postal_code.to_owned()));
                self.set(Prop::Country, Some(location.country.to_owned()));
                self.set(
                    Prop::UsageLocation,
                    Some(location.usage_location.to_owned()),
                );
            }
            Edit::BusinessPhone => {
                let prefix = pick(rng, LOCATIONS).phone_prefix;
                let next = vec![phone(rng, prefix)];
                if self.user.business_phones != next {
                    self.user.business_phones = next;
                    self.changed.insert(Prop::BusinessPhones);
                }
            }
            Edit::Enable => {
                if !self.user.account_enabled {
                    self.user.account_enabled = true;
                    self.changed.insert(Prop::AccountEnabled);
                }
            }
        }
    }

    fn set(&mut self, prop: Prop, value: Option<String>) {
        let field = match prop {
            Prop::GivenName => &mut self.user.given_name,
            Prop::Surname => &mut self.user.surname,
            Prop::Mail => &mut self.user.mail,
            Prop::JobTitle => &mut self.user.job_title,
            Prop::Department => &mut self.user.department,
            Prop::EmployeeId => &mut self.user.employee_id,
            Prop::MobilePhone => &mut self.user.mobile_phone,
            Prop::FaxNumber => &mut self.user.fax_number,
            Prop::StreetAddress => &mut self.user.street_address,
            Prop::City => &mut self.user.city,
            Prop::State => &mut self.user.state,
            Prop::PostalCode => &mut self.user.postal_code,
            Prop::Country => &mut self.user.country,
            Prop::UsageLocation => &mut self.user.usage_location,
            Prop::Manager => &mut self.user.manager_id,
            Prop::UserPrincipalName
            | Prop::DisplayName
            | Prop::BusinessPhones
            | Prop::AccountEnabled => return,
        };
        if *field == value {
            return;
        }
        if value.is_some() {
            self.cleared.remove(prop);
        } else {
            self.cleared.insert(prop);
        }
        *field = value;
        self.changed.insert(prop);
    }
}

/// An item of `items` different from `current` (lists have at least two distinct items).
fn other(rng: &mut Rng, items: &[&str], current: Option<&str>) -> String {
    loop {
        let item = pick(rng, items);
        if Some(item) != current {
            return item.to_owned();
        }
    }
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
