//! `$filter=id eq '…' or …` on `users/delta` (graph.md §1.1): a targeted read of up to 50 users
//! whose deltaLink tracks only them; more ids, or any other filter, is a 400.

use std::collections::BTreeSet;

use dirsync_load_tests::graph_sim::{GraphSimConfig, UserState};
use dirsync_load_tests::synthetic::ChangeStep;
use reqwest::StatusCode;

use crate::harness::{Harness, ids, spec};

#[tokio::test]
async fn users_delta_filter_by_ids() {
    let tenant = spec("filtered", 7, 400);
    let h = Harness::start(GraphSimConfig::default(), std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let live: Vec<String> = h
        .sim
        .snapshot("filtered")
        .unwrap()
        .into_iter()
        .filter(|u| u.state == UserState::Live)
        .map(|u| u.user.id)
        .collect();
    let filter = |ids: &[String]| {
        let clauses: Vec<String> = ids.iter().map(|id| format!("id eq '{id}'")).collect();
        h.url(&format!(
            "/v1.0/users/delta?$select=displayName&$filter={}",
            clauses.join(" or ").replace(' ', "%20")
        ))
    };
    for n in [1, 50] {
        let wanted = &live[100..100 + n];
        let (status, page) = h.get(&filter(wanted), &token, false).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.get("@odata.deltaLink").is_some(), "one page: {page}");
        let got: BTreeSet<String> = ids(page["value"].as_array().unwrap()).into_iter().collect();
        assert_eq!(
            got,
            wanted.iter().cloned().collect::<BTreeSet<_>>(),
            "{n} ids"
        );
    }
    let (status, body) = h.get(&filter(&live[..51]), &token, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let (status, body) = h
        .get(
            &h.url("/v1.0/users/delta?$filter=displayName%20eq%20'x'"),
            &token,
            false,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");

    // The deltaLink of a filtered read tracks only those users.
    let wanted = &live[..3];
    let (_, page) = h.get(&filter(wanted), &token, false).await;
    let delta_link = page["@odata.deltaLink"].as_str().unwrap().to_owned();
    let report = h
        .sim
        .apply_changes(
            "filtered",
            &ChangeStep {
                soft_deletes: 200,
                ..ChangeStep::default()
            },
        )
        .unwrap();
    let (entries, _, _) = h.round(&delta_link, &token, false).await;
    let expected: BTreeSet<String> = report
        .soft_deleted_ids
        .iter()
        .filter(|id| wanted.contains(id))
        .cloned()
        .collect();
    assert!(
        !expected.is_empty(),
        "200 of ~400 soft-deleted hits one of three"
    );
    assert_eq!(ids(&entries).into_iter().collect::<BTreeSet<_>>(), expected);
}
