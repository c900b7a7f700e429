//! The convergence oracle: is the SCIM simulator's org what the Graph simulator's tenant
//! should map to?
//!
//! Written independently of the worker's mapping code, from the product rules, so that a
//! mapping bug shows up as a mismatch instead of being mirrored:
//! - a live, enabled Entra user exists in Webex, active, with the expected attributes;
//! - a disabled or soft-deleted user is either absent (never provisioned) or present and
//!   inactive with the expected attributes;
//! - a hard-deleted user is absent (or inactive when the tenant does not allow deletes);
//! - no Webex user exists that does not come from a tenant user, and none twice;
//! - a value Entra no longer has is not required to be cleared (Webex keeps it by design).

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::graph_sim::{MemberKind, SimGroup, SimUser, UserState};
use crate::synthetic::EntraUser;

/// The oracle's answer, with the first few problems found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    pub converged: bool,
    pub expected_active: usize,
    pub webex_users: usize,
    pub problems: Vec<String>,
    pub problem_count: usize,
}

const SHOWN_PROBLEMS: usize = 20;

/// Compares a tenant snapshot with the org's users.
pub fn check(tenant: &[SimUser], webex: &[Value], hard_delete_removes: bool) -> Verdict {
    let mut oracle = Oracle::new(
        tenant.iter().map(|u| (&u.user, u.state)),
        hard_delete_removes,
    );
    for user in webex {
        oracle.webex_user(user);
    }
    oracle.verdict()
}

/// The same check as [`check`], fed one Webex user at a time, so that neither side has to be
/// copied: a 300k-user org as `serde_json` values alone takes well over a gigabyte.
#[derive(Debug)]
pub struct Oracle<'a> {
    tenant: Vec<(&'a EntraUser, UserState)>,
    by_id: HashMap<&'a str, usize>,
    /// Per tenant user: a Webex user with its id as `externalId` was seen.
    seen: Vec<bool>,
    /// `externalId`s that name no tenant user.
    strangers: HashSet<String>,
    hard_delete_removes: bool,
    /// The users in the tenant's scope, when it does not sync all users.
    scope: Option<HashSet<String>>,
    /// Ids of room users, when rooms are synced.
    rooms: HashSet<String>,
    /// The tenant clears attributes: a value Entra no longer has must be gone from Webex.
    clearing: bool,
    /// Webex id by `externalId`, of every Webex user seen: managers are checked at the end.
    webex_ids: HashMap<String, String>,
    /// Per tenant user that must be active: the `manager.value` its Webex user carries.
    managers: Vec<Option<Option<String>>>,
    webex_users: usize,
    problems: Vec<String>,
    problem_count: usize,
}

impl<'a> Oracle<'a> {
    /// An oracle for a tenant's users (tombstones included) and their states.
    pub fn new(
        tenant: impl IntoIterator<Item = (&'a EntraUser, UserState)>,
        hard_delete_removes: bool,
    ) -> Self {
        let tenant: Vec<_> = tenant.into_iter().collect();
        let by_id = tenant
            .iter()
            .enumerate()
            .map(|(i, (u, _))| (u.id.as_str(), i))
            .collect();
        Oracle {
            seen: vec![false; tenant.len()],
            tenant,
            by_id,
            strangers: HashSet::new(),
            hard_delete_removes,
            scope: None,
            rooms: HashSet::new(),
            clearing: false,
            webex_ids: HashMap::new(),
            managers: Vec::new(),
            webex_users: 0,
            problems: Vec::new(),
            problem_count: 0,
        }
    }

    /// Checks against a scope: only its users must be active in Webex; a user outside it
    /// may be absent or inactive (with whatever attributes it had when it left the scope),
    /// never active.
    pub fn with_scope(mut self, scope: HashSet<String>) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Checks rooms too: the users with these ids are rooms, to be active in Webex with
    /// `userType` room while they exist in Entra, although their Entra account is disabled.
    pub fn with_rooms(mut self, rooms: HashSet<String>) -> Self {
        self.rooms = rooms;
        self
    }

    /// Checks a tenant that clears attributes: what Entra no longer has is gone from Webex.
    pub fn with_clearing(mut self) -> Self {
        self.clearing = true;
        self
    }

    fn must_be_active(&self, u: &EntraUser, state: UserState) -> bool {
        state == UserState::Live && (u.account_enabled || self.rooms.contains(&u.id))
    }

    fn in_scope(&self, id: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(id))
    }

    fn problem(&mut self, problem: String) {
        self.problem_count += 1;
        if self.problems.len() < SHOWN_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// Checks one user of the org against the tenant user it comes from.
    pub fn webex_user(&mut self, w: &Value) {
        self.webex_users += 1;
        let Some(ext) = w.get("externalId").and_then(Value::as_str) else {
            let problem = format!("webex user {} has no externalId", field(w, "userName"));
            return self.problem(problem);
        };
        if let Some(id) = w.get("id").and_then(Value::as_str) {
            self.webex_ids.insert(ext.to_owned(), id.to_owned());
        }
        let Some(&index) = self.by_id.get(ext) else {
            if !self.strangers.insert(ext.to_owned()) {
                self.problem(format!(
                    "externalId {ext} appears on more than one webex user"
                ));
            }
            return;
        };
        if std::mem::replace(&mut self.seen[index], true) {
            return self.problem(format!(
                "externalId {ext} appears on more than one webex user"
            ));
        }
        let (u, state) = self.tenant[index];
        if !self.in_scope(&u.id) {
            if active_flag(w) {
                self.problem(format!("{} is out of scope but active in webex", u.id));
            }
            return;
        }
        if state == UserState::HardDeleted {
            if self.hard_delete_removes || w.get("active") != Some(&Value::Bool(false)) {
                self.problem(format!(
                    "{} was hard-deleted in entra but is still in webex",
                    u.id
                ));
            }
            return;
        }
        let mut problems = Vec::new();
        let room = self.rooms.contains(&u.id);
        let active = self.must_be_active(u, state);
        compare(u, w, active, room, self.clearing, &mut problems);
        if active {
            if self.managers.is_empty() {
                self.managers = vec![None; self.tenant.len()];
            }
            let manager = w
                .get(ENTERPRISE)
                .and_then(|e| e.get("manager"))
                .and_then(|m| m.get("value"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            self.managers[index] = Some(manager);
        }
        for p in problems {
            self.problem(p);
        }
    }

    /// The verdict once every user of the org has been given.
    pub fn verdict(mut self) -> Verdict {
        let mut expected_active = 0;
        for i in 0..self.tenant.len() {
            let (u, state) = self.tenant[i];
            if self.must_be_active(u, state) && self.in_scope(&u.id) {
                expected_active += 1;
                if !self.seen[i] {
                    self.problem(format!(
                        "{} ({}) is missing from webex",
                        u.id, u.user_principal_name
                    ));
                }
            }
        }
        // A manager in Webex must be referenced by its Webex id; one not in Webex (yet) is
        // no requirement (the reference waits, and Webex keeps what it had).
        for i in 0..self.managers.len() {
            let Some(got) = self.managers[i].clone() else {
                continue;
            };
            let (u, _) = self.tenant[i];
            let want = u
                .manager_id
                .as_ref()
                .and_then(|m| self.webex_ids.get(m))
                .cloned();
            let cleared = self.clearing && u.manager_id.is_none();
            if (want.is_some() || cleared) && got != want {
                self.problem(format!(
                    "{}: manager.value is {got:?}, expected {want:?}",
                    u.id
                ));
            }
        }
        if !self.strangers.is_empty() {
            let problem = format!(
                "{} webex users do not come from any entra user",
                self.strangers.len()
            );
            self.problem(problem);
        }
        Verdict {
            converged: self.problem_count == 0,
            expected_active,
            webex_users: self.webex_users,
            problems: self.problems,
            problem_count: self.problem_count,
        }
    }
}

fn field<'a>(v: &'a Value, path: &str) -> &'a str {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn work_email(v: &Value) -> Option<&str> {
    v.get("emails")?
        .as_array()?
        .iter()
        .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))?
        .get("value")?
        .as_str()
}

/// A Webex user's `active` (absent means active).
fn active_flag(w: &Value) -> bool {
    match w.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => true,
    }
}

/// The users a scope of chosen users and groups covers, computed from the simulator's
/// groups independently of the coordinator's SQL: the chosen users, the user members of the
/// chosen groups and, with `nested`, of the groups nested in them at any depth. A deleted
/// group counts as empty.
pub fn expected_scope(
    groups: &[SimGroup],
    users: &[String],
    chosen: &[String],
    nested: bool,
) -> HashSet<String> {
    let by_id: HashMap<&str, &SimGroup> = groups
        .iter()
        .filter(|g| g.state == UserState::Live)
        .map(|g| (g.id.as_str(), g))
        .collect();
    let mut scope: HashSet<String> = users.iter().cloned().collect();
    let mut queue: Vec<&str> = chosen.iter().map(String::as_str).collect();
    let mut reached = HashSet::new();
    while let Some(id) = queue.pop() {
        let Some(group) = by_id.get(id) else { continue };
        if !reached.insert(id) {
            continue;
        }
        for m in &group.members {
            match m.kind {
                MemberKind::User => {
                    scope.insert(m.id.clone());
                }
                MemberKind::Group if nested => queue.push(&m.id),
                MemberKind::Group => {}
            }
        }
    }
    scope
}

/// The enterprise extension's key in a SCIM user.
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn compare(
    u: &EntraUser,
    w: &Value,
    active: bool,
    room: bool,
    clearing: bool,
    problems: &mut Vec<String>,
) {
    let mut expect = |what: &str, want: Option<&str>, got: Option<&str>| {
        match want {
            Some(want) if Some(want) != got => {
                problems.push(format!("{}: {what} is {got:?}, expected {want:?}", u.id));
            }
            // Entra has no value: Webex keeps whatever it had (nulls never clear by
            // default), unless the tenant clears attributes.
            None if clearing && got.is_some() => {
                problems.push(format!("{}: {what} is {got:?}, expected it cleared", u.id));
            }
            _ => {}
        }
    };
    let get = |path: &str| Some(field(w, path)).filter(|s| !s.is_empty());
    expect("userName", Some(&u.user_principal_name), get("userName"));
    expect("work email", Some(&u.user_principal_name), work_email(w));
    expect("displayName", Some(&u.display_name), get("displayName"));
    expect(
        "name.givenName",
        u.given_name.as_deref(),
        get("name.givenName"),
    );
    expect(
        "name.familyName",
        u.surname.as_deref(),
        get("name.familyName"),
    );
    let user_type = if room { "room" } else { "user" };
    expect("userType", Some(user_type), get("userType"));
    let entry = |list: &str, kind: &str, sub: &str| -> Option<String> {
        w.get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("type").and_then(Value::as_str) == Some(kind))?
            .get(sub)?
            .as_str()
            .map(str::to_owned)
    };
    let enterprise = |name: &str| -> Option<String> {
        w.get(ENTERPRISE)?.get(name)?.as_str().map(str::to_owned)
    };
    let country = u
        .usage_location
        .as_deref()
        .filter(|c| isocountry::CountryCode::for_alpha2(c).is_ok());
    // The seed's attribute table.
    let table: [(&str, Option<&str>, Option<String>); 11] = [
        (
            "title",
            u.job_title.as_deref(),
            get("title").map(str::to_owned),
        ),
        (
            "work street",
            u.street_address.as_deref(),
            entry("addresses", "work", "streetAddress"),
        ),
        (
            "work locality",
            u.city.as_deref(),
            entry("addresses", "work", "locality"),
        ),
        (
            "work region",
            u.state.as_deref(),
            entry("addresses", "work", "region"),
        ),
        (
            "work postal code",
            u.postal_code.as_deref(),
            entry("addresses", "work", "postalCode"),
        ),
        (
            "work country",
            country,
            entry("addresses", "work", "country"),
        ),
        (
            "work phone",
            u.business_phones.first().map(String::as_str),
            entry("phoneNumbers", "work", "value"),
        ),
        (
            "mobile phone",
            u.mobile_phone.as_deref(),
            entry("phoneNumbers", "mobile", "value"),
        ),
        (
            "fax",
            u.fax_number.as_deref(),
            entry("phoneNumbers", "fax", "value"),
        ),
        (
            "department",
            u.department.as_deref(),
            enterprise("department"),
        ),
        (
            "employeeNumber",
            u.employee_id.as_deref(),
            enterprise("employeeNumber"),
        ),
    ];
    for (what, want, got) in table {
        expect(what, want, got.as_deref());
    }
    let got_active = active_flag(w);
    if got_active != active {
        problems.push(format!(
            "{}: active is {got_active}, expected {active}",
            u.id
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::generate_users;
    use serde_json::json;

    /// The Webex image of `u` under the seed's attribute table (managers by `w-` + id).
    fn webex_of(u: &EntraUser, active: bool) -> Value {
        let mut phones = vec![];
        for (kind, value) in [
            ("work", u.business_phones.first()),
            ("mobile", u.mobile_phone.as_ref()),
            ("fax", u.fax_number.as_ref()),
        ] {
            if let Some(v) = value {
                phones.push(json!({"type": kind, "value": v}));
            }
        }
        json!({
            "id": format!("w-{}", u.id), "userName": u.user_principal_name, "externalId": u.id,
            "displayName": u.display_name, "userType": "user", "active": active,
            "name": {"givenName": u.given_name, "familyName": u.surname},
            "emails": [{"type": "work", "value": u.user_principal_name, "primary": true}],
            "title": u.job_title,
            "phoneNumbers": phones,
            "addresses": [{"type": "work", "streetAddress": u.street_address, "locality": u.city,
                           "region": u.state, "postalCode": u.postal_code,
                           "country": u.usage_location}],
            ENTERPRISE: {"department": u.department, "employeeNumber": u.employee_id,
                         "manager": u.manager_id.as_ref().map(|m| json!({"value": format!("w-{m}")}))},
        })
    }

    fn live(u: &EntraUser) -> SimUser {
        SimUser {
            user: u.clone(),
            state: UserState::Live,
        }
    }

    #[test]
    fn accepts_an_exact_image_and_rejects_each_kind_of_drift() {
        let users: Vec<EntraUser> = generate_users(7, 6, "contoso.example")
            .into_iter()
            .map(|mut u| {
                u.account_enabled = true;
                u
            })
            .collect();
        let tenant: Vec<SimUser> = users.iter().map(live).collect();
        let image: Vec<Value> = users.iter().map(|u| webex_of(u, true)).collect();
        assert!(check(&tenant, &image, true).converged);

        let mut missing = image.clone();
        missing.pop();
        assert!(!check(&tenant, &missing, true).converged, "missing user");

        let mut renamed = image.clone();
        renamed[0]["displayName"] = json!("Someone Else");
        assert!(
            !check(&tenant, &renamed, true).converged,
            "wrong displayName"
        );

        // The seed's table: each mapped attribute and the manager reference are checked.
        let with_manager = users.iter().position(|u| u.manager_id.is_some()).unwrap();
        let with_phone = users
            .iter()
            .position(|u| !u.business_phones.is_empty())
            .unwrap();
        let drifts: [(&str, usize, &str, Value); 3] = [
            ("title", 0, "/title", json!("Someone's title")),
            (
                "work phone",
                with_phone,
                "/phoneNumbers/0/value",
                json!("+0 000"),
            ),
            (
                "manager",
                with_manager,
                "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager/value",
                json!("w-somebody-else"),
            ),
        ];
        for (what, i, pointer, value) in drifts {
            let mut drifted = image.clone();
            *drifted[i].pointer_mut(pointer).unwrap() = value;
            assert!(!check(&tenant, &drifted, true).converged, "wrong {what}");
        }

        let mut extra = image.clone();
        extra.push(
            json!({"id": "x", "userName": "stranger@contoso.example", "externalId": "not-a-user"}),
        );
        assert!(!check(&tenant, &extra, true).converged, "extra user");

        let mut dup = image.clone();
        dup.push(image[1].clone());
        assert!(!check(&tenant, &dup, true).converged, "duplicate");

        let mut soft = tenant.clone();
        soft[2].state = UserState::SoftDeleted;
        assert!(
            !check(&soft, &image, true).converged,
            "soft-deleted user still active"
        );
        let mut deactivated = image.clone();
        deactivated[2]["active"] = json!(false);
        assert!(
            check(&soft, &deactivated, true).converged,
            "soft-deleted and inactive is right"
        );
        let mut absent = image.clone();
        absent.remove(2);
        assert!(
            check(&soft, &absent, true).converged,
            "never-provisioned inactive user may be absent"
        );

        let mut hard = tenant.clone();
        hard[3].state = UserState::HardDeleted;
        assert!(
            !check(&hard, &image, true).converged,
            "hard-deleted user still present"
        );
        let mut gone = image.clone();
        gone.remove(3);
        assert!(check(&hard, &gone, true).converged);
        let mut kept_inactive = image.clone();
        kept_inactive[3]["active"] = json!(false);
        assert!(
            check(&hard, &kept_inactive, false).converged,
            "no-delete tenants deactivate"
        );
    }

    #[test]
    fn counts_every_problem_but_shows_the_first_few() {
        let users: Vec<EntraUser> = generate_users(5, 30, "contoso.example")
            .into_iter()
            .map(|mut u| {
                u.account_enabled = true;
                u
            })
            .collect();
        let tenant: Vec<SimUser> = users.iter().map(live).collect();
        let stranger =
            |ext: &str| json!({"userName": format!("{ext}@x.example"), "externalId": ext});
        // (webex users, problems counted)
        let cases = [
            (vec![], 30),
            (users.iter().map(|u| webex_of(u, true)).collect(), 0),
            (vec![stranger("a"), stranger("b")], 31),
            (vec![stranger("a"), stranger("a")], 32),
        ];
        for (webex, count) in cases {
            let verdict = check(&tenant, &webex, true);
            assert_eq!(verdict.problem_count, count, "{:?}", verdict.problems);
            assert_eq!(verdict.problems.len(), count.min(SHOWN_PROBLEMS));
            assert_eq!(verdict.webex_users, webex.len());
            assert_eq!(verdict.expected_active, 30);
        }
    }

    #[test]
    fn cleared_entra_values_do_not_require_clearing_webex() {
        let mut u = generate_users(3, 1, "contoso.example").remove(0);
        u.account_enabled = true;
        u.surname = Some("Old".into());
        let image = vec![webex_of(&u, true)];
        u.surname = None;
        assert!(check(&[live(&u)], &image, true).converged);
    }
}
