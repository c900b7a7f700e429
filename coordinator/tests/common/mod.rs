//! What the coordinator's integration tests share: a Graph client pointed at a fake Graph,
//! a scripted fake Graph (`fake_graph`), and a fresh database per test (`db`). Each test binary uses a part of it.
#![allow(dead_code)]

pub mod db;
pub mod fake_graph;

use secrecy::SecretString;

use dirsync_coordinator::Tenant;
use dirsync_coordinator::graph::GraphClient;
use dirsync_proto::TenantId;

/// A Graph client whose login and Graph roots are both `url` (a fake Graph on loopback).
pub fn client(url: &str) -> GraphClient {
    let tenant = Tenant {
        id: TenantId::new(),
        name: "t".into(),
        graph_tenant_id: "contoso".into(),
        graph_login_url: url.into(),
        graph_base_url: url.into(),
        client_id: "app".into(),
        client_secret: SecretString::from("s3cret"),
        scim_base_url: "http://unused/v2".into(),
        status: "NotRun".into(),
        delta_link: None,
        authorized: true,
        scope: Default::default(),
        groups_delta_link: None,
        full_walk_requested: false,
    };
    GraphClient::new(reqwest::Client::new(), &tenant)
}
