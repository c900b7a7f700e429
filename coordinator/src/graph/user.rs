//! Reading one user by object id or user principal name (`GET /v1.0/users/{key}`), for
//! "provision on demand".
//!
//! The user comes in the neutral form a delta page gives ([`SourceUser`]), with the walk's
//! properties, so the worker maps it exactly as a run's entry. `manager` is a relationship:
//! a plain `GET` returns it only with `$expand=manager($select=id)`, as an object whose `id`
//! becomes the `manager` attribute (the walk's `manager@delta` gives the same); a user
//! without a manager has none, as in the walk. A user the directory does not hold (unknown,
//! or deleted) is Graph's `404 Request_ResourceNotFound`, which [`read_user`] answers with
//! `None`.

use serde_json::{Map, Value};

use dirsync_proto::SourceUser;

use super::GraphClient;
use super::client::USER_SELECT;
use super::wire::take_identity;
use crate::CoordinatorError;

/// The `$select` of a single read: the walk's properties without the `manager`
/// relationship, which is expanded instead.
pub fn single_select() -> String {
    USER_SELECT
        .split(',')
        .filter(|p| *p != "manager")
        .collect::<Vec<_>>()
        .join(",")
}

/// The URL reading the user with object id or user principal name `key`.
pub fn user_url(graph_base_url: &str, key: &str) -> Result<String, CoordinatorError> {
    let key = key.trim();
    if key.is_empty() || key.len() > 1024 || key.chars().any(char::is_control) {
        return Err(CoordinatorError::Invalid(
            "user must be an entra object id or a user principal name".into(),
        ));
    }
    let mut url = url::Url::parse(&format!(
        "{}/v1.0/users/",
        graph_base_url.trim_end_matches('/')
    ))
    .map_err(|e| CoordinatorError::Invalid(format!("graph base url: {e}")))?;
    // One path segment, percent-encoded: a guest's `#EXT#` or a `/` cannot escape it.
    url.path_segments_mut()
        .map_err(|()| CoordinatorError::Invalid("graph base url cannot have paths".into()))?
        .pop_if_empty()
        .push(key);
    url.query_pairs_mut()
        .append_pair("$select", &single_select())
        .append_pair("$expand", "manager($select=id)");
    Ok(url.into())
}

/// Parses the answer into the walk's neutral form (pure).
pub fn parse_user(body: &[u8]) -> Result<SourceUser, CoordinatorError> {
    let mut object: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::GraphPage(format!("user: {e}")))?;
    let (id, _) = take_identity(&mut object)?;
    let manager = object.remove("manager");
    object.retain(|k, _| !k.starts_with('@') && !k.contains("@odata."));
    if let Some(mid) = manager
        .as_ref()
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
    {
        object.insert("manager".into(), Value::String(mid.to_string()));
    }
    Ok(SourceUser {
        id,
        removed: None,
        attributes: object,
    })
}

impl GraphClient {
    /// The user with object id or user principal name `key`; `None` when the directory has
    /// no such user (Graph's 404).
    pub async fn read_user(&self, key: &str) -> Result<Option<SourceUser>, CoordinatorError> {
        let url = user_url(self.graph_base_url(), key)?;
        match self.fetch(&url, parse_user).await {
            Ok(user) => Ok(Some(user)),
            Err(CoordinatorError::GraphStatus { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_walks_properties_and_expand_the_manager() {
        let url = user_url("http://g/", "ada@contoso.example").unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/v1.0/users/ada@contoso.example");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs[0].0, "$select");
        assert!(!pairs[0].1.split(',').any(|p| p == "manager"), "{url}");
        assert!(pairs[0].1.contains("accountEnabled"));
        assert_eq!(pairs[1], ("$expand".into(), "manager($select=id)".into()));
        // A guest's UPN and a slash stay inside the one segment.
        let guest = user_url("http://g", "ada_x.com#EXT#@c.example").unwrap();
        assert!(
            guest.contains("/v1.0/users/ada_x.com%23EXT%23@c.example?"),
            "{guest}"
        );
        let slash = user_url("http://g", "a/b").unwrap();
        assert!(slash.contains("/v1.0/users/a%2Fb?"), "{slash}");
        for bad in ["", "  ", "a\nb"] {
            assert!(user_url("http://g", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_user_parses_into_the_walks_form() {
        let body = br##"{
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,displayName)/$entity",
            "id": "u1", "displayName": "Ada", "mobilePhone": null, "accountEnabled": true,
            "manager": {"@odata.type": "#microsoft.graph.user", "id": "m1"}
        }"##;
        let user = parse_user(body).unwrap();
        assert_eq!(user.id, "u1");
        assert_eq!(user.removed, None);
        assert_eq!(user.attributes["manager"], "m1");
        assert_eq!(user.attributes["mobilePhone"], Value::Null);
        assert!(!user.attributes.keys().any(|k| k.starts_with('@')));
        let alone = parse_user(br#"{"id": "u2", "displayName": "Bo"}"#).unwrap();
        assert!(!alone.attributes.contains_key("manager"));
        assert!(parse_user(br#"{"displayName": "no id"}"#).is_err());
        assert!(parse_user(b"<html>").is_err());
    }
}
