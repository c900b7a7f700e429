//! Assertions that `/Users` and `/Groups` share, so each behaviour both collections have is
//! written once and checked on each: a new resource's meta and headers, auth, filters, paging,
//! PATCH, PUT and DELETE, and the counters.

use super::*;

/// A new resource in org 1 under `endpoint`: the 201 answer's `id`, `Location`, `ETag` and
/// `meta` (created = lastModified, a weak version), and a GET shows it as answered while an
/// unknown id is a 404.
pub(super) async fn assert_new_resource(
    f: &Fixture,
    r: &Reply,
    endpoint: &str,
    resource_type: &str,
) {
    assert_eq!(r.status, 201, "{}", r.body);
    let meta = &r.body["meta"];
    let id = id_of(&r.body);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let location = format!("{}/{id}", f.url(endpoint, ORG));
    assert_eq!(r.headers["location"].to_str().unwrap(), location);
    assert_eq!(meta["location"], json!(location));
    assert_eq!(meta["resourceType"], json!(resource_type));
    let version = meta["version"].as_str().unwrap();
    assert!(
        version.starts_with("W/\"") && version.ends_with('"'),
        "{version}"
    );
    assert_eq!(r.headers["etag"].to_str().unwrap(), version);
    assert!(meta["created"].is_string() && meta["created"] == meta["lastModified"]);
    let got = f.at(endpoint, Method::GET, &format!("/{id}"), None).await;
    assert_eq!((got.status, &got.body), (200, &r.body));
    let missing = f
        .at(
            endpoint,
            Method::GET,
            "/7a000000-0000-4000-8000-00000000dead",
            None,
        )
        .await;
    assert_scim_error(&missing, 404, None);
}

/// `method url` needs org 1's own bearer token (401 with `WWW-Authenticate: Bearer` for a
/// wrong one, another org's, or none), and the same request to an unknown org is a 404.
pub(super) async fn assert_needs_org_token(
    f: &Fixture,
    method: &Method,
    url: &str,
    body: Option<&Value>,
) {
    for token in [Some("wrong"), Some(TOKEN2), None] {
        let r = f.call(method.clone(), url, token, body).await;
        assert_scim_error(&r, 401, None);
        assert_eq!(r.headers["www-authenticate"].to_str().unwrap(), "Bearer");
    }
    let unknown_org = url.replace(ORG, UNKNOWN_ORG);
    let r = f
        .call(method.clone(), &unknown_org, Some(TOKEN), body)
        .await;
    assert_scim_error(&r, 404, None);
}

/// The string `attr` of each item of the array `body[list]`.
fn attrs_in(body: &Value, list: &str, attr: &str) -> Vec<String> {
    body[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[attr].as_str().unwrap().to_owned())
        .collect()
}

/// The string `attr` of each resource of a ListResponse.
pub(super) fn resource_attrs(r: &Reply, attr: &str) -> Vec<String> {
    attrs_in(&r.body, "Resources", attr)
}

/// Each `(filter, the attr of each hit)` lists exactly those hits, unpaged, on `endpoint`.
pub(super) async fn assert_filters(
    f: &Fixture,
    endpoint: &str,
    attr: &str,
    cases: &[(&str, Vec<&str>)],
) {
    for (filter, want) in cases {
        let r = f.list_at(endpoint, &filter_query(filter)).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(
            r.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
        assert_eq!(r.body["totalResults"], json!(want.len()), "{filter}");
        assert_eq!(r.body["itemsPerPage"], json!(want.len()), "{filter}");
        assert_eq!(r.body["startIndex"], json!(1));
        assert_eq!(resource_attrs(&r, attr), *want, "{filter}");
    }
}

/// Each filter is a 400 `invalidFilter` on `endpoint`.
pub(super) async fn assert_bad_filters(f: &Fixture, endpoint: &str, filters: &[&str]) {
    for bad in filters {
        let r = f.list_at(endpoint, &filter_query(bad)).await;
        assert_scim_error(&r, 400, Some("invalidFilter"));
    }
}

/// Each `(query, startIndex echoed, itemsPerPage, index of the first item)` pages `all_ids`
/// (every resource's id, in creation order) on `endpoint`.
pub(super) async fn assert_pages(
    f: &Fixture,
    endpoint: &str,
    all_ids: &[String],
    cases: &[(&str, usize, usize, usize)],
) {
    for &(query, start, per_page, first) in cases {
        let r = f.list_at(endpoint, query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["totalResults"], json!(all_ids.len()), "{query}");
        assert_eq!(r.body["startIndex"], json!(start), "{query}");
        assert_eq!(r.body["itemsPerPage"], json!(per_page), "{query}");
        assert_eq!(
            resource_attrs(&r, "id"),
            all_ids[first..first + per_page],
            "{query}"
        );
    }
}

/// Where a page keeps its items, each item's id, and the total: `Resources`, `id`,
/// `totalResults` in a ListResponse.
pub(super) const LIST_PAGE: [&str; 3] = ["Resources", "id", "totalResults"];

/// What a client paging by `itemsPerPage` sees: it GETs org 1's
/// `/{endpoint}{path}?startIndex=…&count={count}` until the total is reached, collecting the
/// ids on each page; `[items, id, total]` name the fields as in [`LIST_PAGE`].
pub(super) async fn walk_pages(
    f: &Fixture,
    endpoint: &str,
    path: &str,
    count: usize,
    [items, id, total]: [&str; 3],
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let suffix = format!("{path}?startIndex={start}&count={count}");
        let r = f.at(endpoint, Method::GET, &suffix, None).await;
        let per_page = r.body["itemsPerPage"].as_u64().unwrap() as usize;
        seen.extend(attrs_in(&r.body, items, id));
        start += per_page;
        if per_page == 0 || start > r.body[total].as_u64().unwrap() as usize {
            break;
        }
    }
    seen
}

/// Applies `ops` to resource `id` of `endpoint`, which must succeed with a new version (then
/// in `version`) and answer what a GET then shows. Returns the answer.
pub(super) async fn assert_patched(
    f: &Fixture,
    endpoint: &str,
    id: &str,
    ops: &Value,
    version: &mut Value,
) -> Value {
    let r = f.patch_at(endpoint, id, ops.clone()).await;
    assert_eq!(r.status, 200, "{ops}: {}", r.body);
    assert_ne!(
        r.body["meta"]["version"], *version,
        "{ops}: each write changes the version"
    );
    *version = r.body["meta"]["version"].clone();
    let got = f.at(endpoint, Method::GET, &format!("/{id}"), None).await;
    assert_eq!(got.body, r.body, "PATCH answers the stored resource");
    r.body
}

/// Each `(operations, scimType)` is a 400 that leaves `stored()` as it was, as is a PATCH
/// without the PatchOp schema; a PATCH of an unknown id is a 404.
pub(super) async fn assert_patch_errors(
    f: &Fixture,
    endpoint: &str,
    id: &str,
    cases: Vec<(Value, &str)>,
    stored: impl Fn() -> Vec<Value>,
) {
    let before = stored();
    for (ops, scim_type) in cases {
        let r = f.patch_at(endpoint, id, ops.clone()).await;
        assert_eq!(r.status, 400, "{ops}: {}", r.body);
        assert_scim_error(&r, 400, Some(scim_type));
        assert_eq!(stored(), before, "{ops} must change nothing");
    }
    let no_schema = f
        .at(
            endpoint,
            Method::PATCH,
            &format!("/{id}"),
            Some(&json!({"Operations": []})),
        )
        .await;
    assert_scim_error(&no_schema, 400, Some("invalidSyntax"));
    let missing = f
        .patch_at(
            endpoint,
            "7a000000-0000-4000-8000-00000000dead",
            json!([{"op": "replace", "path": "displayName", "value": "x"}]),
        )
        .await;
    assert_scim_error(&missing, 404, None);
}

/// A PUT answer replaced `old`: same `id`, `created` and `location`, a new version.
pub(super) fn assert_replaced(r: &Reply, old: &Value) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], old["id"]);
    assert_eq!(r.body["meta"]["created"], old["meta"]["created"]);
    assert_eq!(r.body["meta"]["location"], old["meta"]["location"]);
    assert_ne!(r.body["meta"]["version"], old["meta"]["version"]);
}

/// A PUT of `body` to an unknown id of `endpoint` is a 404.
pub(super) async fn assert_put_unknown_is_404(f: &Fixture, endpoint: &str, body: &Value) {
    let missing = f
        .at(
            endpoint,
            Method::PUT,
            "/7a000000-0000-4000-8000-00000000dead",
            Some(body),
        )
        .await;
    assert_scim_error(&missing, 404, None);
}

/// Deletes resource `id` of `endpoint` (204, no body); it is then gone for GET and DELETE.
pub(super) async fn assert_deleted(f: &Fixture, endpoint: &str, id: &str) {
    let url = format!("/{id}");
    let r = f.at(endpoint, Method::DELETE, &url, None).await;
    assert_eq!((r.status, r.body), (204, Value::Null));
    for method in [Method::GET, Method::DELETE] {
        let r = f.at(endpoint, method, &url, None).await;
        assert_scim_error(&r, 404, None);
    }
}

/// Org 1's counters are `want`, through the Rust API and `GET /_sim/orgs/{org}/counters`.
pub(super) async fn assert_counters(f: &Fixture, want: RequestCounters) {
    assert_eq!(f.sim.counters(ORG), want);
    let over_http = f
        .sim_call(Method::GET, &format!("/orgs/{ORG}/counters"), None)
        .await;
    assert_eq!(
        serde_json::from_value::<RequestCounters>(over_http.body).unwrap(),
        want
    );
}
