//! Whole-scenario checks that serde cannot make: sizes above zero, one source per tenant,
//! unique names, cycles that name existing tenants, a tenant's token revoked at most once.
//! Each error names the field's path.

use std::collections::HashSet;

use super::{Scenario, ScenarioError};

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

pub(super) fn validate(s: &Scenario) -> Result<(), ScenarioError> {
    if s.name.trim().is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if s.fleet.workers == 0 {
        return Err(invalid("fleet.workers", "at least one worker is needed"));
    }
    if s.fleet.coordinators > super::MAX_COORDINATORS {
        return Err(invalid(
            "fleet.coordinators",
            format!(
                "must be between 0 (the coordinator runs in the harness process) and {}",
                super::MAX_COORDINATORS
            ),
        ));
    }
    let scim = &s.fleet.scim;
    for (field, rate) in [
        ("fleet.scim.error_rate", scim.error_rate),
        ("fleet.scim.throttle_rate", scim.throttle_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(invalid(
                field,
                format!("must be a probability between 0 and 1, not {rate}"),
            ));
        }
    }
    if scim.error_rate == 1.0 || scim.throttle_rate == 1.0 {
        // Every request would fail: no cycle could ever end.
        let field = if scim.error_rate == 1.0 {
            "fleet.scim.error_rate"
        } else {
            "fleet.scim.throttle_rate"
        };
        return Err(invalid(field, "must be below 1 (every request would fail)"));
    }
    if !(1..=60).contains(&scim.retry_after_s) {
        return Err(invalid(
            "fleet.scim.retry_after_s",
            "must be between 1 and 60 seconds",
        ));
    }
    if scim.throttle_burst_ms > 0 && scim.throttle_rate == 0.0 {
        return Err(invalid(
            "fleet.scim.throttle_burst_ms",
            "a burst follows a drawn 429: set throttle_rate too",
        ));
    }
    if scim.throttle_burst_ms > 60_000 {
        return Err(invalid(
            "fleet.scim.throttle_burst_ms",
            "must be at most 60000 (one minute)",
        ));
    }
    if s.fleet.scim.rate_limit_per_org == Some(0) {
        return Err(invalid(
            "fleet.scim.rate_limit_per_org",
            "must be at least 1 (null: unlimited)",
        ));
    }
    if s.fleet.scim.fail_every == Some(0) {
        return Err(invalid(
            "fleet.scim.fail_every",
            "must be at least 1 (null: off)",
        ));
    }
    if s.fleet.graph.page_size == 0 {
        return Err(invalid("fleet.graph.page_size", "must be at least 1"));
    }
    if s.fleet.graph.fail_every == Some(0) || s.fleet.graph.ru_budget_per_10s == Some(0) {
        return Err(invalid(
            "fleet.graph",
            "fail_every and ru_budget_per_10s must be at least 1 (null: off)",
        ));
    }
    if s.tenants.is_empty() {
        return Err(invalid("tenants", "at least one tenant is needed"));
    }
    let mut names = HashSet::new();
    let mut domains = HashSet::new();
    for (i, t) in s.tenants.iter().enumerate() {
        let at = format!("tenants[{i}]");
        if t.name.trim().is_empty() || !names.insert(t.name.as_str()) {
            return Err(invalid(
                format!("{at}.name"),
                format!("{:?} is empty or used twice", t.name),
            ));
        }
        if t.copies == 0 {
            return Err(invalid(format!("{at}.copies"), "must be at least 1"));
        }
        match (&t.synthetic, &t.hand_written) {
            (Some(syn), None) => {
                if syn.users == 0 {
                    return Err(invalid(
                        format!("{at}.synthetic.users"),
                        "must be at least 1",
                    ));
                }
                if let Some(g) = syn.groups
                    && g.count > 0
                    && g.max_members == 0
                {
                    return Err(invalid(
                        format!("{at}.synthetic.groups.max_members"),
                        "must be at least 1",
                    ));
                }
            }
            (None, Some(hand)) => {
                hand.validate(&format!("{at}.hand_written"))?;
                if t.copies != 1 {
                    return Err(invalid(
                        format!("{at}.copies"),
                        "a hand-written tenant cannot be copied (its userNames would clash)",
                    ));
                }
                if !domains.insert(hand.domain.to_ascii_lowercase()) {
                    return Err(invalid(
                        format!("{at}.hand_written.domain"),
                        format!("{} is the domain of another tenant", hand.domain),
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    at,
                    "give exactly one of \"synthetic\" and \"hand_written\"",
                ));
            }
        }
    }
    for (i, t) in s.tenants.iter().enumerate() {
        if let Some(scope) = &t.scope {
            check_scope(&format!("tenants[{i}].scope"), t, scope)?;
        }
    }
    if s.cycles.is_empty() {
        return Err(invalid("cycles", "at least one cycle is needed"));
    }
    // Tenant entries whose Webex token a chaos cycle revoked: it stays revoked.
    let mut revoked: Vec<(&str, usize)> = Vec::new();
    for (i, c) in s.cycles.iter().enumerate() {
        if c.name.trim().is_empty() {
            return Err(invalid(format!("cycles[{i}].name"), "must not be empty"));
        }
        if let Some(unknown) = c
            .tenants
            .iter()
            .flatten()
            .find(|n| !names.contains(n.as_str()))
        {
            return Err(invalid(
                format!("cycles[{i}].tenants"),
                format!("no tenant is named {unknown:?}"),
            ));
        }
        if let Some(chaos) = &c.chaos {
            chaos.validate(&format!("cycles[{i}].chaos"), s)?;
            if let Some(name) = chaos.revoke_scim_token.as_deref() {
                let field = format!("cycles[{i}].chaos.revoke_scim_token");
                if let Some((_, j)) = revoked.iter().find(|(n, _)| *n == name) {
                    return Err(invalid(
                        field,
                        format!("{name:?} was revoked in cycles[{j}] already (it stays revoked)"),
                    ));
                }
                revoked.push((name, i));
                if revoked.len() == s.tenants.len() {
                    return Err(invalid(
                        field,
                        "would leave no tenant whose token works (a revoked token stays revoked)",
                    ));
                }
            }
        }
        if c.tenants.is_some() && c.changes.is_none() {
            return Err(invalid(
                format!("cycles[{i}].tenants"),
                "names the tenants \"changes\" apply to, but there are no changes",
            ));
        }
    }
    Ok(())
}

fn check_scope(
    at: &str,
    t: &super::TenantEntry,
    scope: &super::ScopeSpec,
) -> Result<(), ScenarioError> {
    match (&t.synthetic, &t.hand_written) {
        (Some(syn), _) => {
            if !scope.groups.is_empty() || !scope.users.is_empty() {
                return Err(invalid(
                    at,
                    "a synthetic tenant chooses groups with \"first_groups\" (keys are for hand-written tenants)",
                ));
            }
            let count = syn.groups.map_or(0, |g| g.count);
            if scope.first_groups == 0 || scope.first_groups > count {
                return Err(invalid(
                    format!("{at}.first_groups"),
                    format!("must be between 1 and the tenant's {count} groups"),
                ));
            }
        }
        (None, Some(hand)) => {
            if scope.first_groups != 0 {
                return Err(invalid(
                    format!("{at}.first_groups"),
                    "is for synthetic tenants; name groups by key",
                ));
            }
            if let Some(k) = scope
                .groups
                .iter()
                .find(|k| !hand.groups.iter().any(|g| &g.key == *k))
            {
                return Err(invalid(
                    format!("{at}.groups"),
                    format!("{k:?} is not a group's key"),
                ));
            }
            if let Some(k) = scope
                .users
                .iter()
                .find(|k| !hand.users.iter().any(|u| &u.key == *k))
            {
                return Err(invalid(
                    format!("{at}.users"),
                    format!("{k:?} is not a user's key"),
                ));
            }
            if scope.groups.is_empty() && scope.users.is_empty() {
                return Err(invalid(at, "choose at least one group or user"));
            }
        }
        (None, None) => {}
    }
    Ok(())
}
