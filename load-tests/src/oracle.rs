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

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::graph_sim::{SimUser, UserState};
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
    let mut problems = Vec::new();
    let mut by_external_id: HashMap<&str, &Value> = HashMap::new();
    for user in webex {
        match user.get("externalId").and_then(Value::as_str) {
            Some(ext) => {
                if by_external_id.insert(ext, user).is_some() {
                    problems.push(format!(
                        "externalId {ext} appears on more than one webex user"
                    ));
                }
            }
            None => problems.push(format!(
                "webex user {} has no externalId",
                field(user, "userName")
            )),
        }
    }
    let mut expected_active = 0;
    let mut known = 0;
    for sim in tenant {
        let u = &sim.user;
        let found = by_external_id.get(u.id.as_str()).copied();
        if found.is_some() {
            known += 1;
        }
        let must_be_active = sim.state == UserState::Live && u.account_enabled;
        match (sim.state, found) {
            (UserState::HardDeleted, Some(w))
                if hard_delete_removes || w.get("active") != Some(&Value::Bool(false)) =>
            {
                problems.push(format!(
                    "{} was hard-deleted in entra but is still in webex",
                    u.id
                ));
            }
            (UserState::HardDeleted, _) => {}
            (_, None) if must_be_active => problems.push(format!(
                "{} ({}) is missing from webex",
                u.id, u.user_principal_name
            )),
            (_, None) => {}
            (_, Some(w)) => compare(u, w, must_be_active, &mut problems),
        }
        if must_be_active {
            expected_active += 1;
        }
    }
    if known < by_external_id.len() {
        problems.push(format!(
            "{} webex users do not come from any entra user",
            by_external_id.len() - known
        ));
    }
    let problem_count = problems.len();
    problems.truncate(SHOWN_PROBLEMS);
    Verdict {
        converged: problem_count == 0,
        expected_active,
        webex_users: webex.len(),
        problems,
        problem_count,
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

fn compare(u: &EntraUser, w: &Value, active: bool, problems: &mut Vec<String>) {
    let mut expect = |what: &str, want: Option<&str>, got: Option<&str>| {
        // Entra has no value: Webex keeps whatever it had (nulls never clear by default).
        if let Some(want) = want
            && Some(want) != got
        {
            problems.push(format!("{}: {what} is {got:?}, expected {want:?}", u.id));
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
    expect("userType", Some("user"), get("userType"));
    let got_active = match w.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => true,
    };
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

    fn webex_of(u: &EntraUser, active: bool) -> Value {
        json!({
            "id": format!("w-{}", u.id), "userName": u.user_principal_name, "externalId": u.id,
            "displayName": u.display_name, "userType": "user", "active": active,
            "name": {"givenName": u.given_name, "familyName": u.surname},
            "emails": [{"type": "work", "value": u.user_principal_name, "primary": true}],
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
    fn cleared_entra_values_do_not_require_clearing_webex() {
        let mut u = generate_users(3, 1, "contoso.example").remove(0);
        u.account_enabled = true;
        u.surname = Some("Old".into());
        let image = vec![webex_of(&u, true)];
        u.surname = None;
        assert!(check(&[live(&u)], &image, true).converged);
    }
}
