//! Tenant secrets at rest, against a real PostgreSQL (one fresh database per test): the
//! stored columns never hold the plaintext, a value sealed for one tenant does not open as
//! another's, a store without the key says how to get one, and a legacy plain-text row is
//! read and then sealed in place.

mod common;

use common::db::TestDb;
use secrecy::{ExposeSecret, SecretString};

use dirsync_coordinator::{CoordinatorError, NewTenant, TenantStore};
use dirsync_proto::{SecretsKey, TenantId};

impl TestDb {
    /// The two secret columns as stored.
    async fn stored(&self, id: TenantId) -> (String, String) {
        sqlx::query_as("SELECT client_secret, scim_token FROM tenants WHERE id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn new_tenant(name: &str, secret: &str, token: &str) -> NewTenant {
    NewTenant {
        name: name.into(),
        graph_tenant_id: "contoso".into(),
        graph_login_url: "http://127.0.0.1:9".into(),
        graph_base_url: "http://127.0.0.1:9".into(),
        client_id: "app".into(),
        client_secret: SecretString::from(secret.to_owned()),
        scim_base_url: "http://127.0.0.1:9/identity/scim/org/v2".into(),
        scim_token: SecretString::from(token.to_owned()),
        allow_hard_delete: false,
    }
}

fn message(result: Result<impl std::fmt::Debug, CoordinatorError>) -> String {
    result.unwrap_err().to_string()
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_bound_to_their_tenant() {
    let db = TestDb::new("c_sealed").await;
    let key = SecretsKey::generate().unwrap();
    let store = TenantStore::new(db.pool.clone()).with_key(key.clone());
    let (secret_a, token_a) = ("graph-secret-of-a~.-_", "scim-token-of-a");
    let a = store
        .create(&new_tenant("A", secret_a, token_a))
        .await
        .unwrap();
    let b = store
        .create(&new_tenant("B", "graph-secret-of-b", "scim-token-of-b"))
        .await
        .unwrap();

    let (stored_secret, stored_token) = db.stored(a).await;
    for (stored, plain) in [(&stored_secret, secret_a), (&stored_token, token_a)] {
        assert!(stored.starts_with("v1:"), "{stored}");
        assert!(!stored.contains(plain), "{stored}");
    }
    assert_eq!(
        store.get(a).await.unwrap().client_secret.expose_secret(),
        secret_a
    );
    // Reading a sealed row leaves it as it was.
    assert_eq!(db.stored(a).await, (stored_secret.clone(), stored_token));

    // A's sealed secret copied into B's row does not open as B's.
    sqlx::query("UPDATE tenants SET client_secret = $2 WHERE id = $1")
        .bind(b.0)
        .bind(&stored_secret)
        .execute(&db.pool)
        .await
        .unwrap();
    let err = message(store.get(b).await);
    assert!(err.contains("does not open"), "{err}");
    assert!(!err.contains(secret_a), "{err}");

    // Another deployment's key opens nothing; no key says how to make one.
    let other = TenantStore::new(db.pool.clone()).with_key(SecretsKey::generate().unwrap());
    assert!(message(other.get(a).await).contains("does not open"));
    let keyless = TenantStore::new(db.pool.clone());
    for err in [
        message(keyless.get(a).await),
        message(keyless.create(&new_tenant("C", "s", "t")).await),
    ] {
        assert!(err.contains("set DIRSYNC_SECRETS_KEY"), "{err}");
        assert!(err.contains("openssl rand -base64 32"), "{err}");
    }
    // What needs no secret works without the key.
    keyless.set_auto_sync(a, false).await.unwrap();
}

#[tokio::test]
async fn a_legacy_plain_text_row_is_read_then_sealed_in_place() {
    let db = TestDb::new("c_sealed").await;
    let key = SecretsKey::generate().unwrap();
    let id = TenantId::new();
    sqlx::query(
        "INSERT INTO tenants (id, name, graph_tenant_id, graph_login_url, graph_base_url, client_id, \
         client_secret, scim_base_url, scim_token) \
         VALUES ($1, 'old', 'g', 'http://login', 'http://graph', 'c', 'plain-secret', \
         'http://scim/v2', 'plain-token')",
    )
    .bind(id.0)
    .execute(&db.pool)
    .await
    .unwrap();
    let store = TenantStore::new(db.pool.clone()).with_key(key.clone());

    let first = store.get(id).await.unwrap();
    assert_eq!(first.client_secret.expose_secret(), "plain-secret");
    let (stored_secret, stored_token) = db.stored(id).await;
    for (stored, plain) in [
        (&stored_secret, "plain-secret"),
        (&stored_token, "plain-token"),
    ] {
        assert!(stored.starts_with("v1:"), "{stored}");
        assert!(!stored.contains(plain), "{stored}");
    }
    let token = key
        .open(id, dirsync_proto::SecretField::ScimToken, &stored_token)
        .unwrap();
    assert_eq!(token.expose_secret(), "plain-token");
    let again = store.get(id).await.unwrap();
    assert_eq!(again.client_secret.expose_secret(), "plain-secret");
    assert_eq!(db.stored(id).await, (stored_secret, stored_token));
}
