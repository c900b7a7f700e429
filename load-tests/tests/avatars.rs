//! End-to-end "sync user avatars": Entra photos become Webex avatars at URLs the coordinator
//! serves; a new photo gets a new URL (the old one stops answering), a removed photo is
//! removed in Webex, and nothing is read or written while the option is off or nothing changed.

use std::collections::BTreeMap;

use dirsync_coordinator::runs::RunKind;
use dirsync_coordinator::scope::Scope;
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::UserState;

/// Webex avatar URL of every user that has one, by Entra id.
fn avatars(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .scim
        .users(&stack.org_id)
        .into_iter()
        .filter_map(|u| {
            let photo = u["photos"]
                .as_array()?
                .iter()
                .find(|p| p["type"] == "photo")?["value"]
                .as_str()?
                .to_string();
            Some((u["externalId"].as_str()?.to_string(), photo))
        })
        .collect()
}

async fn get(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

fn jpeg(n: u8) -> Vec<u8> {
    // Only the bytes matter: a JPEG header and a body that tells photos apart.
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend(std::iter::repeat_n(n, 64));
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avatars_follow_entra_photos_at_urls_dirsync_serves() {
    let stack = Stack::start_with_workers(&StackOptions::new("avatars", 120), 1)
        .await
        .unwrap();
    let enabled: Vec<String> = stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .filter(|u| u.state == UserState::Live && u.user.account_enabled)
        .map(|u| u.user.id)
        .collect();
    let with_photo = &enabled[..10];
    for (i, id) in with_photo.iter().enumerate() {
        stack
            .graph
            .set_photo(&stack.entra_tenant, id, Some(jpeg(i as u8)))
            .unwrap();
    }
    let photo_requests = || {
        stack
            .graph
            .requests(&stack.entra_tenant)
            .unwrap()
            .photo_requests
    };

    // Off (until turned on): no photo is asked for, no avatar is set.
    let initial = stack.cycle("initial", None).await.unwrap();
    assert!(initial.converged, "{:?}", initial.verdict);
    assert_eq!(photo_requests(), 0);
    assert!(avatars(&stack).is_empty());

    // On: nothing changed in Entra's directory, but every active user's photo is looked at
    // once and the ten photos become avatars.
    stack
        .set_scope(Scope {
            avatars: true,
            ..Scope::default()
        })
        .await
        .unwrap();
    let on = stack.cycle("avatars on", None).await.unwrap();
    assert_eq!(on.kind, RunKind::Incremental);
    assert!(on.converged, "{:?}", on.verdict);
    assert_eq!(photo_requests(), enabled.len() as u64);
    assert_eq!(
        on.scim_writes, 10,
        "one avatar patch per photo, nothing else"
    );
    assert_eq!(on.users.failed, 0);
    let first = avatars(&stack);
    assert_eq!(first.keys().collect::<Vec<_>>(), {
        let mut ids: Vec<&String> = with_photo.iter().collect();
        ids.sort();
        ids
    });
    let prefix = format!("{}/avatars/{}/", stack.coordinator_url(), stack.tenant_id);
    for (i, id) in with_photo.iter().enumerate() {
        let url = &first[id];
        assert!(url.starts_with(&format!("{prefix}{id}/")), "{url}");
        assert_eq!(get(url).await, (200, jpeg(i as u8)), "{url}");
    }
    // A URL is not guessable from ids: another tag, or another user's, is not an avatar.
    let (a, b) = (&with_photo[0], &with_photo[1]);
    let forged = first[a].replace(a.as_str(), b.as_str());
    assert_eq!(get(&forged).await.0, 404);
    assert_eq!(get(&format!("{prefix}{a}/{}", "0".repeat(32))).await.0, 404);

    // Nothing changed: the photos are looked at again (the sweep), nothing is written.
    let unchanged = stack.cycle("unchanged", None).await.unwrap();
    assert_eq!(unchanged.scim_writes, 0);
    assert_eq!(avatars(&stack), first);

    // A new photo for one user, none any more for another, a first one for a third.
    let newcomer = &enabled[10];
    stack
        .graph
        .set_photo(&stack.entra_tenant, a, Some(jpeg(200)))
        .unwrap();
    stack.graph.set_photo(&stack.entra_tenant, b, None).unwrap();
    stack
        .graph
        .set_photo(&stack.entra_tenant, newcomer, Some(jpeg(201)))
        .unwrap();
    let changed = stack.cycle("photos changed", None).await.unwrap();
    assert!(changed.converged, "{:?}", changed.verdict);
    assert_eq!(changed.scim_writes, 3);
    let now = avatars(&stack);
    assert_ne!(now[a], first[a], "a new photo is a new url");
    assert_eq!(get(&now[a]).await, (200, jpeg(200)));
    assert_eq!(get(&first[a]).await.0, 404, "the old photo's url is gone");
    assert!(!now.contains_key(b), "a removed photo is removed in webex");
    assert_eq!(get(&first[b]).await.0, 404);
    assert_eq!(get(&now[newcomer]).await, (200, jpeg(201)));
    assert_eq!(now.len(), 10);

    let last = stack.cycle("unchanged again", None).await.unwrap();
    assert_eq!(last.scim_writes, 0);
    stack.shutdown().await.unwrap();
}
