//! Deterministic synthetic Entra tenants: users generated from a seed, and change steps applied
//! between sync cycles.
//!
//! User `i` of a tenant depends only on `(seed, i)`, so a tenant of `n` users is a prefix of the
//! same tenant with more users, and users created by a change step continue the sequence. The
//! data is varied on purpose (non-ASCII names, disabled accounts, accounts without names, missing
//! optional properties) because those are the cases a sync engine gets wrong.
//!
//! Groups ([`SyntheticGroups`]) are optional, generated from the same seed over the users.

mod changes;
mod groups;
mod names;
mod props;

use fastrand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use changes::{
    AppliedStep, ChangeKind, ChangeReport, ChangeStep, SyntheticTenant, TenantUser, Touch,
    UserState,
};
pub use groups::{
    EntraGroup, GroupChangeStep, GroupEvent, GroupSpec, MemberKind, MemberRef, Membership,
    SyntheticGroups, TenantGroup, group_id,
};
pub use props::{Prop, PropSet};

use names::{DEPARTMENTS, GIVEN_NAMES, JOB_TITLES, LOCATIONS, NAMELESS, SURNAMES};

/// A user as Microsoft Entra ID holds it. `None` means the property has no value; whether it was
/// never set (omitted on the wire) or cleared (`null`) is tracked by [`TenantUser::cleared`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraUser {
    /// Object id, a UUID.
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub employee_id: Option<String>,
    pub business_phones: Vec<String>,
    pub mobile_phone: Option<String>,
    pub fax_number: Option<String>,
    pub street_address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub usage_location: Option<String>,
    pub account_enabled: bool,
    /// Object id of the manager.
    pub manager_id: Option<String>,
}

impl EntraUser {
    /// The value of `prop` as Graph sends it, or `None` when the property has no value.
    /// `businessPhones` is always an array and `accountEnabled` always a boolean, as in Graph;
    /// `manager` is the manager's object id.
    pub fn value(&self, prop: Prop) -> Option<Value> {
        let text = |v: &Option<String>| v.as_ref().map(|s| Value::String(s.clone()));
        match prop {
            Prop::UserPrincipalName => Some(Value::String(self.user_principal_name.clone())),
            Prop::DisplayName => Some(Value::String(self.display_name.clone())),
            Prop::GivenName => text(&self.given_name),
            Prop::Surname => text(&self.surname),
            Prop::Mail => text(&self.mail),
            Prop::JobTitle => text(&self.job_title),
            Prop::Department => text(&self.department),
            Prop::EmployeeId => text(&self.employee_id),
            Prop::BusinessPhones => Some(Value::from(self.business_phones.clone())),
            Prop::MobilePhone => text(&self.mobile_phone),
            Prop::FaxNumber => text(&self.fax_number),
            Prop::StreetAddress => text(&self.street_address),
            Prop::City => text(&self.city),
            Prop::State => text(&self.state),
            Prop::PostalCode => text(&self.postal_code),
            Prop::Country => text(&self.country),
            Prop::UsageLocation => text(&self.usage_location),
            Prop::AccountEnabled => Some(Value::Bool(self.account_enabled)),
            Prop::Manager => text(&self.manager_id),
        }
    }
}

/// Generates `count` users on `domain`; the same `(seed, count)` always gives the same users.
pub fn generate_users(seed: u64, count: usize, domain: &str) -> Vec<EntraUser> {
    let domain = domain.to_ascii_lowercase();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let generated: Vec<(EntraUser, Option<usize>)> = if threads == 1 || count < PARALLEL_FROM {
        (0..count)
            .map(|index| generate_user_without_manager(seed, index, &domain))
            .collect()
    } else {
        generate_parallel(seed, count, &domain, threads)
    };
    let mut users: Vec<EntraUser> = Vec::with_capacity(count);
    for (mut user, manager) in generated {
        // Managers are earlier users, so their ids are already there.
        user.manager_id = manager.and_then(|m| users.get(m)).map(|m| m.id.clone());
        users.push(user);
    }
    users
}

fn generate_parallel(
    seed: u64,
    count: usize,
    domain: &str,
    threads: usize,
) -> Vec<(EntraUser, Option<usize>)> {
    // Users are independent of each other, so large tenants are generated in parallel chunks.
    let chunk = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * chunk..((t + 1) * chunk).min(count);
                scope.spawn(move || {
                    range
                        .map(|index| generate_user_without_manager(seed, index, domain))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut users = Vec::with_capacity(count);
        for worker in workers {
            // Generation cannot panic; if it ever did, re-raise the panic here.
            users.extend(
                worker
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        users
    })
}

/// Tenants smaller than this are generated on the calling thread.
const PARALLEL_FROM: usize = 20_000;

/// The object id of user `index` of the tenant generated from `seed`.
pub fn user_id(seed: u64, index: usize) -> String {
    let mut rng = Rng::with_seed(mix(seed ^ ID_SALT, index as u64));
    uuid::Builder::from_random_bytes(rng.u128(..).to_be_bytes())
        .into_uuid()
        .to_string()
}

/// User `index` of the tenant generated from `seed`; `domain` must already be lowercase.
pub(crate) fn generate_user(seed: u64, index: usize, domain: &str) -> EntraUser {
    let (mut user, manager) = generate_user_without_manager(seed, index, domain);
    user.manager_id = manager.map(|m| user_id(seed, m));
    user
}

/// User `index` with `manager_id` unset, and the index of its manager, if any: whole-tenant
/// generation copies the manager's id from the users it already has.
fn generate_user_without_manager(
    seed: u64,
    index: usize,
    domain: &str,
) -> (EntraUser, Option<usize>) {
    let mut rng = Rng::with_seed(mix(seed, index as u64));
    let percent = |rng: &mut Rng, p: u32| rng.u32(0..1000) < p * 10;

    // About 3% are rooms, shared mailboxes and service accounts whose names were never set.
    let nameless = rng.u32(0..1000) < 30;
    let (given_name, surname, display_name, stem) = if nameless {
        let (shown, ascii) = pick(&mut rng, NAMELESS);
        (
            None,
            None,
            format!("{shown} {index}"),
            format!("{ascii}.{index}"),
        )
    } else {
        let (given, given_ascii) = pick(&mut rng, GIVEN_NAMES);
        let (surname, surname_ascii) = pick(&mut rng, SURNAMES);
        let display = display_name(given, surname);
        (
            Some(given.to_owned()),
            Some(surname.to_owned()),
            display,
            format!("{given_ascii}.{surname_ascii}.{index}"),
        )
    };
    let user_principal_name = format!("{stem}@{domain}");

    let located = percent(&mut rng, 88);
    let location = pick(&mut rng, LOCATIONS);
    let usage_location = if located || percent(&mut rng, 90) {
        Some(location.usage_location.to_owned())
    } else {
        None
    };
    let manager = if index > 0 && percent(&mut rng, 90) {
        Some(rng.usize(0..index))
    } else {
        None
    };

    let user = EntraUser {
        id: user_id(seed, index),
        mail: percent(&mut rng, 95).then(|| user_principal_name.clone()),
        user_principal_name,
        display_name,
        given_name,
        surname,
        job_title: percent(&mut rng, 92).then(|| pick(&mut rng, JOB_TITLES).to_owned()),
        department: percent(&mut rng, 90).then(|| pick(&mut rng, DEPARTMENTS).to_owned()),
        employee_id: percent(&mut rng, 90).then(|| format!("E{index:07}")),
        business_phones: if percent(&mut rng, 80) {
            vec![phone(&mut rng, location.phone_prefix)]
        } else {
            Vec::new()
        },
        mobile_phone: percent(&mut rng, 60).then(|| phone(&mut rng, location.phone_prefix)),
        fax_number: percent(&mut rng, 3).then(|| phone(&mut rng, location.phone_prefix)),
        street_address: located.then(|| street(&mut rng, location.streets)),
        city: located.then(|| location.city.to_owned()),
        state: if located {
            location.state.map(str::to_owned)
        } else {
            None
        },
        postal_code: located.then(|| location.postal_code.to_owned()),
        country: located.then(|| location.country.to_owned()),
        usage_location,
        // About 2% of accounts are disabled.
        account_enabled: rng.u32(0..1000) >= 20,
        manager_id: None,
    };
    (user, manager)
}

/// "Given Surname", or "SurnameGiven" when both are Han characters, as such names are written.
pub(crate) fn display_name(given: &str, surname: &str) -> String {
    let han = |s: &str| s.chars().all(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c));
    if han(given) && han(surname) {
        format!("{surname}{given}")
    } else {
        format!("{given} {surname}")
    }
}

pub(crate) fn phone(rng: &mut Rng, prefix: &str) -> String {
    format!("{prefix} {:04}", rng.u32(0..10_000))
}

pub(crate) fn street(rng: &mut Rng, streets: &[&str]) -> String {
    format!("{} {}", rng.u32(1..400), pick(rng, streets))
}

pub(crate) fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.usize(0..items.len())]
}

const ID_SALT: u64 = 0x1D5A_17ED_0B1E_C7ED;

/// Combines two words into a well-mixed seed (splitmix64 finaliser on both).
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    splitmix64(a ^ splitmix64(b.wrapping_add(0x9E37_79B9_7F4A_7C15)))
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn generation_is_deterministic_per_seed() {
        let cases = [
            (1_u64, 1_u64, 500_usize, true),
            (1, 2, 500, false),
            (42, 42, 50, true),
            (0, 1, 50, false),
        ];
        for (seed_a, seed_b, count, same) in cases {
            let a = generate_users(seed_a, count, "contoso.example");
            let b = generate_users(seed_b, count, "contoso.example");
            assert_eq!(a.len(), count);
            assert_eq!(a == b, same, "seeds {seed_a} and {seed_b}");
            if !same {
                let ids_a: HashSet<_> = a.iter().map(|u| &u.id).collect();
                assert!(
                    b.iter().all(|u| !ids_a.contains(&u.id)),
                    "seeds {seed_a}/{seed_b} share ids"
                );
            }
        }
    }

    #[test]
    fn a_smaller_tenant_is_a_prefix_of_a_larger_one() {
        let small = generate_users(7, 100, "a.example");
        let large = generate_users(7, 300, "a.example");
        assert_eq!(small[..], large[..100]);
    }

    #[test]
    fn ids_are_uuids_and_upns_unique_lowercase_ascii_on_the_domain() {
        let users = generate_users(3, 5_000, "Fabrikam.Example");
        let mut ids = HashSet::new();
        let mut upns = HashSet::new();
        for user in &users {
            let id = uuid::Uuid::parse_str(&user.id).expect("uuid");
            assert_eq!(id.get_version_num(), 4);
            assert!(ids.insert(user.id.clone()), "duplicate id {}", user.id);
            let upn = &user.user_principal_name;
            assert!(upns.insert(upn.clone()), "duplicate upn {upn}");
            assert!(upn.ends_with("@fabrikam.example"), "{upn}");
            assert!(
                upn.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()),
                "{upn}"
            );
        }
    }

    #[test]
    fn population_has_the_required_variety() {
        let users = generate_users(11, 10_000, "contoso.example");
        let share = |pred: &dyn Fn(&EntraUser) -> bool| {
            users.iter().filter(|u| pred(u)).count() as f64 / 100.0
        };
        // (what, percentage, low, high)
        let cases: [(&str, f64, f64, f64); 8] = [
            ("disabled", share(&|u| !u.account_enabled), 1.0, 3.5),
            (
                "nameless",
                share(&|u| u.given_name.is_none() && u.surname.is_none()),
                2.0,
                4.5,
            ),
            (
                "non-ascii display name",
                share(&|u| !u.display_name.is_ascii()),
                20.0,
                80.0,
            ),
            (
                "with manager",
                share(&|u| u.manager_id.is_some()),
                85.0,
                95.0,
            ),
            (
                "with job title",
                share(&|u| u.job_title.is_some()),
                88.0,
                96.0,
            ),
            (
                "with business phone",
                share(&|u| !u.business_phones.is_empty()),
                75.0,
                85.0,
            ),
            ("with city", share(&|u| u.city.is_some()), 84.0, 92.0),
            (
                "with usage location",
                share(&|u| u.usage_location.is_some()),
                95.0,
                100.0,
            ),
        ];
        for (what, pct, low, high) in cases {
            assert!(
                (low..=high).contains(&pct),
                "{what}: {pct}% not in {low}..={high}"
            );
        }
        for name in ["José", "Zoë", "Łukasz", "Søren", "Björk", "Renée"] {
            assert!(
                users.iter().any(|u| u.given_name.as_deref() == Some(name)),
                "no {name}"
            );
        }
        for name in ["Nguyễn", "Müller", "Dvořák", "Ólafsdóttir", "O'Brien", "张"] {
            assert!(
                users.iter().any(|u| u.surname.as_deref() == Some(name)),
                "no {name}"
            );
        }
    }

    #[test]
    fn managers_are_earlier_users() {
        let users = generate_users(5, 2_000, "contoso.example");
        for (i, user) in users.iter().enumerate() {
            if let Some(manager) = &user.manager_id {
                assert!(
                    users[..i].iter().any(|u| &u.id == manager),
                    "user {i} manager not earlier"
                );
            }
        }
    }

    #[test]
    fn display_names_follow_name_order_conventions() {
        let cases = [
            ("Ada", "Lovelace", "Ada Lovelace"),
            ("伟", "张", "张伟"),
            ("José", "张", "José 张"),
        ];
        for (given, surname, expected) in cases {
            assert_eq!(display_name(given, surname), expected);
        }
    }

    #[test]
    fn value_reports_graph_shapes() {
        let mut user = generate_users(9, 1, "contoso.example").remove(0);
        user.business_phones.clear();
        user.job_title = None;
        assert_eq!(user.value(Prop::BusinessPhones), Some(Value::Array(vec![])));
        assert_eq!(user.value(Prop::JobTitle), None);
        assert_eq!(
            user.value(Prop::AccountEnabled),
            Some(Value::Bool(user.account_enabled))
        );
        assert_eq!(
            user.value(Prop::DisplayName),
            Some(Value::String(user.display_name.clone()))
        );
    }
}
