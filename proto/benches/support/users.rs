//! Synthetic Entra users for the benchmarks of every crate: the same deterministic users as a
//! Graph `users/delta` page (what the coordinator parses) and as [`SourceUser`]s (what a batch
//! carries to the worker).
//!
//! Shaped like the Graph simulator's tenants: every property of the coordinator's `$select`,
//! non-ASCII names, a manager for most users, a few disabled accounts and explicit nulls. It
//! lives here rather than in load-tests because the coordinator and the worker cannot depend on
//! load-tests; the benchmarks of the other crates include this file by path.

#![allow(dead_code)] // Each benchmark uses the part it needs.

use dirsync_proto::SourceUser;
use serde_json::{Map, Value, json};

/// Users in one Graph delta page (Graph's maximum for `users/delta`).
pub const PAGE_USERS: usize = 200;

const GIVEN: &[(&str, &str)] = &[
    ("Ada", "ada"),
    ("Zoë", "zoe"),
    ("Ørjan", "oerjan"),
    ("José", "jose"),
    ("Mei", "mei"),
    ("Oluwaseun", "oluwaseun"),
    ("Saanvi", "saanvi"),
    ("Łukasz", "lukasz"),
    ("Chloé", "chloe"),
    ("Hiroshi", "hiroshi"),
    ("Fatima", "fatima"),
    ("Björn", "bjoern"),
];
const SURNAMES: &[(&str, &str)] = &[
    ("Lovelace", "lovelace"),
    ("Saldaña", "saldana"),
    ("Ólafsdóttir", "olafsdottir"),
    ("Nguyễn", "nguyen"),
    ("Müller", "mueller"),
    ("García", "garcia"),
    ("Okafor", "okafor"),
    ("Kowalski", "kowalski"),
    ("Yamada", "yamada"),
    ("Haddad", "haddad"),
    ("Andersson", "andersson"),
    ("O'Brien-Smith", "obriensmith"),
];
const TITLES: &[&str] = &[
    "Software Engineer",
    "Senior Product Manager",
    "Account Executive",
    "Chargée de clientèle",
    "Financial Analyst",
    "Site Reliability Engineer",
];
const DEPARTMENTS: &[&str] = &["ENG", "SLS", "FIN", "Ventes à l'étranger", "HR", "OPS"];
/// City, state, postal code, country name, usage location.
const PLACES: &[(&str, &str, &str, &str, &str)] = &[
    ("Redmond", "WA", "98052", "United States", "US"),
    ("Köln", "NRW", "50667", "Germany", "DE"),
    ("Oslo", "Oslo", "0150", "Norway", "NO"),
    ("東京", "東京都", "100-0001", "Japan", "JP"),
    ("Lyon", "Auvergne-Rhône-Alpes", "69002", "France", "FR"),
    ("London", "England", "EC1A 1BB", "United Kingdom", "GB"),
];

/// A deterministic Entra object id (GUID form) for user `i`.
pub fn object_id(i: usize) -> String {
    // splitmix64: spreads consecutive indexes over the whole id space like real GUIDs.
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        z >> 32,
        (z >> 16) & 0xffff,
        z & 0xfff,
        (i as u64) & 0xfff,
        (z ^ i as u64) & 0xffff_ffff_ffff
    )
}

/// User `i`'s Graph properties, the manager as its Entra id (the batch's neutral form).
pub fn attributes(i: usize) -> Map<String, Value> {
    let (given, given_ascii) = GIVEN[i % GIVEN.len()];
    let (surname, surname_ascii) = SURNAMES[(i / GIVEN.len() + i) % SURNAMES.len()];
    let (city, state, postal, country, usage) = PLACES[i % PLACES.len()];
    let upn = format!("{given_ascii}.{surname_ascii}{i}@contoso.onmicrosoft.com");
    let mut user = json!({
        "userPrincipalName": upn,
        "displayName": format!("{given} {surname}"),
        "givenName": given,
        "surname": surname,
        "mail": format!("{given_ascii}.{surname_ascii}{i}@contoso.com"),
        "jobTitle": TITLES[i % TITLES.len()],
        "department": DEPARTMENTS[i % DEPARTMENTS.len()],
        "employeeId": format!("{:06}", 100_000 + i),
        "businessPhones": [format!("+1 (425) 555-{:04}", i % 10_000)],
        "mobilePhone": format!("+47 912 {:05}", i % 100_000),
        "streetAddress": format!("{} Main Street", 1 + i % 999),
        "city": city,
        "state": state,
        "postalCode": postal,
        "country": country,
        "usageLocation": usage,
        // One account in twenty disabled.
        "accountEnabled": i % 20 != 7,
    });
    let map = user.as_object_mut().expect("a json object");
    // Graph returns an explicitly cleared property as null and omits a never-set one.
    if i % 10 == 3 {
        map.insert("faxNumber".into(), Value::Null);
    }
    // One user in 25 (the first of each group of 25) is the others' manager and has none.
    if !i.is_multiple_of(25) {
        map.insert("manager".into(), Value::String(object_id(i / 25 * 25)));
    }
    map.clone()
}

/// `n` users as a batch carries them.
pub fn source_users(n: usize) -> Vec<SourceUser> {
    (0..n)
        .map(|i| SourceUser {
            id: object_id(i),
            removed: None,
            attributes: attributes(i),
        })
        .collect()
}

/// One `users/delta` page of `n` users as Graph sends it (`manager@delta`, annotations, a
/// nextLink), serialized.
pub fn graph_page(n: usize) -> Vec<u8> {
    let value: Vec<Value> = (0..n)
        .map(|i| {
            let mut user = attributes(i);
            if let Some(manager) = user.remove("manager") {
                user.insert(
                    "manager@delta".into(),
                    json!([{ "@odata.type": "#microsoft.graph.user", "id": manager }]),
                );
            }
            user.insert("id".into(), Value::String(object_id(i)));
            Value::Object(user)
        })
        .collect();
    let page = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(userPrincipalName,displayName,givenName,surname,mail,jobTitle,department,employeeId,businessPhones,mobilePhone,faxNumber,streetAddress,city,state,postalCode,country,usageLocation,accountEnabled,manager)",
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=ppqwSUjGYvb3jQpbwVAwEL7yuI3dU1LecfkkfLPtnIjsXoYQp_dpA3cNJWc",
        "value": value,
    });
    serde_json::to_vec(&page).expect("a json value serializes")
}
