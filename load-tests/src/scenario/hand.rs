//! Hand-written tenants: users with their attributes and managers, groups with user and
//! group members, written in the scenario file and turned into the Graph simulator's tenant.
//!
//! Objects are named by a `key` unique within their list; managers and members refer to keys.
//! Object ids are UUIDs derived from (tenant seed, key), so the same file gives the same ids
//! on every run (the simulator pages by id, and a run can be compared with the last one).

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::synthetic::{
    EntraGroup, EntraUser, MemberRef, SyntheticGroups, SyntheticTenant, TenantGroup, UserState,
};

use super::ScenarioError;

/// A tenant written out object by object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandTenant {
    /// The tenant's domain; userPrincipalNames default to `key@domain`.
    pub domain: String,
    /// Seeds the object ids and the change steps applied to this tenant.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// At least one.
    pub users: Vec<HandUser>,
    #[serde(default)]
    pub groups: Vec<HandGroup>,
}

fn default_seed() -> u64 {
    1
}

/// A user; unset attributes have no value in Entra.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandUser {
    pub key: String,
    pub display_name: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub employee_id: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub usage_location: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// Key of another user of the tenant.
    #[serde(default)]
    pub manager: Option<String>,
}

fn yes() -> bool {
    true
}

/// A group and its direct members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandGroup {
    pub key: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Security group (hard-deleted) or Microsoft 365 group (soft-deleted). Default true.
    #[serde(default = "yes")]
    pub security_enabled: bool,
    /// Keys of users.
    #[serde(default)]
    pub members: Vec<String>,
    /// Keys of other groups (nesting); cycles are refused.
    #[serde(default)]
    pub member_groups: Vec<String>,
}

impl HandTenant {
    /// Checks keys, references and nesting; `at` is the tenant's path in the file.
    pub fn validate(&self, at: &str) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| ScenarioError::Invalid { field, message };
        if self.domain.trim().is_empty() || !self.domain.contains('.') {
            return Err(invalid(
                format!("{at}.domain"),
                format!("{:?} is not a domain name", self.domain),
            ));
        }
        if self.users.is_empty() {
            return Err(invalid(
                format!("{at}.users"),
                "a hand-written tenant needs at least one user".into(),
            ));
        }
        let mut users = HashSet::new();
        let mut upns = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.key.trim().is_empty() || !users.insert(u.key.as_str()) {
                return Err(invalid(
                    format!("{at}.users[{i}].key"),
                    format!("{:?} is empty or used twice", u.key),
                ));
            }
            let upn = self.upn(u);
            if !upns.insert(upn.clone()) {
                return Err(invalid(
                    format!("{at}.users[{i}].user_principal_name"),
                    format!("{upn} is used twice"),
                ));
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            if let Some(m) = &u.manager
                && (m == &u.key || !users.contains(m.as_str()))
            {
                return Err(invalid(
                    format!("{at}.users[{i}].manager"),
                    format!("{m:?} is not another user's key"),
                ));
            }
        }
        let mut groups = HashMap::new();
        for (i, g) in self.groups.iter().enumerate() {
            if g.key.trim().is_empty() || groups.insert(g.key.as_str(), i).is_some() {
                return Err(invalid(
                    format!("{at}.groups[{i}].key"),
                    format!("{:?} is empty or used twice", g.key),
                ));
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            if let Some(m) = g.members.iter().find(|m| !users.contains(m.as_str())) {
                return Err(invalid(
                    format!("{at}.groups[{i}].members"),
                    format!("{m:?} is not a user's key"),
                ));
            }
            if let Some(m) = g
                .member_groups
                .iter()
                .find(|m| !groups.contains_key(m.as_str()))
            {
                return Err(invalid(
                    format!("{at}.groups[{i}].member_groups"),
                    format!("{m:?} is not a group's key"),
                ));
            }
        }
        if let Some(i) = self.nesting_cycle(&groups) {
            return Err(invalid(
                format!("{at}.groups[{i}].member_groups"),
                format!("group {:?} contains itself", self.groups[i].key),
            ));
        }
        Ok(())
    }

    /// A group that reaches itself through `member_groups`, if any.
    fn nesting_cycle(&self, index: &HashMap<&str, usize>) -> Option<usize> {
        (0..self.groups.len()).find(|&start| {
            let mut stack: Vec<usize> = vec![start];
            let mut seen = HashSet::new();
            while let Some(g) = stack.pop() {
                for child in &self.groups[g].member_groups {
                    let c = index[child.as_str()];
                    if c == start {
                        return true;
                    }
                    if seen.insert(c) {
                        stack.push(c);
                    }
                }
            }
            false
        })
    }

    fn upn(&self, u: &HandUser) -> String {
        u.user_principal_name
            .clone()
            .unwrap_or_else(|| format!("{}@{}", u.key, self.domain))
            .to_ascii_lowercase()
    }

    /// The tenant's users and groups as the Graph simulator holds them (validated first).
    pub fn build(&self) -> (SyntheticTenant, SyntheticGroups) {
        let user_id = |key: &str| object_id(self.seed, "user", key);
        let users = self
            .users
            .iter()
            .map(|u| EntraUser {
                id: user_id(&u.key),
                user_principal_name: self.upn(u),
                display_name: u.display_name.clone(),
                given_name: u.given_name.clone(),
                surname: u.surname.clone(),
                mail: u.mail.clone(),
                job_title: u.job_title.clone(),
                department: u.department.clone(),
                employee_id: u.employee_id.clone(),
                business_phones: u.business_phones.clone(),
                mobile_phone: u.mobile_phone.clone(),
                fax_number: None,
                street_address: None,
                city: u.city.clone(),
                state: None,
                postal_code: None,
                country: u.country.clone(),
                usage_location: u.usage_location.clone(),
                account_enabled: u.account_enabled,
                manager_id: u.manager.as_deref().map(user_id),
            })
            .collect();
        let group_id = |key: &str| object_id(self.seed, "group", key);
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let mut members: BTreeSet<MemberRef> = g
                    .members
                    .iter()
                    .map(|k| MemberRef::user(user_id(k)))
                    .collect();
                members.extend(
                    g.member_groups
                        .iter()
                        .map(|k| MemberRef::group(group_id(k))),
                );
                let nickname: String = g.key.chars().filter(char::is_ascii_alphanumeric).collect();
                TenantGroup {
                    group: EntraGroup {
                        id: group_id(&g.key),
                        display_name: g.display_name.clone(),
                        description: g.description.clone(),
                        mail_nickname: nickname,
                        security_enabled: g.security_enabled,
                    },
                    members,
                    state: UserState::Live,
                }
            })
            .collect();
        (
            SyntheticTenant::from_users(self.seed, &self.domain, users),
            SyntheticGroups::from_groups(self.seed, groups),
        )
    }

    /// The Entra object id of the user `key` (for checks against the simulators).
    pub fn user_id(&self, key: &str) -> String {
        object_id(self.seed, "user", key)
    }

    /// The Entra object id of the group `key`.
    pub fn group_id(&self, key: &str) -> String {
        object_id(self.seed, "group", key)
    }
}

/// A version-4-shaped UUID from (seed, kind, key): FNV-1a of the key into the seed of an rng.
fn object_id(seed: u64, kind: &str, key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([0]).chain(key.bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = fastrand::Rng::with_seed(seed ^ hash);
    uuid::Builder::from_random_bytes(rng.u128(..).to_be_bytes())
        .into_uuid()
        .to_string()
}
