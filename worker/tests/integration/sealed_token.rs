//! The worker opens a tenant's sealed SCIM token with the deployment's key, reads a legacy
//! plain-text one as is, and refuses a token sealed for another tenant or with another key.

use dirsync_proto::{SecretField, SecretsKey, TenantId};
use dirsync_worker::WorkerError;
use dirsync_worker::tenant::load_tenant;
use secrecy::ExposeSecret;

use crate::common::{TestDb, secrets_key};

async fn set_token(db: &TestDb, tenant: TenantId, stored: &str) {
    sqlx::query("UPDATE tenants SET scim_token = $2 WHERE id = $1")
        .bind(tenant.0)
        .bind(stored)
        .execute(&db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn tokens_open_only_as_their_own_tenant_with_the_key() {
    let db = TestDb::new().await;
    let (a, _) = db.seed("http://127.0.0.1:9/v2", "token-of-a", false).await;
    let (b, _) = db.seed("http://127.0.0.1:9/v2", "token-of-b", false).await;
    let key = secrets_key();
    let sealed_a: String = sqlx::query_scalar("SELECT scim_token FROM tenants WHERE id = $1")
        .bind(a.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(
        sealed_a.starts_with("v1:") && !sealed_a.contains("token-of-a"),
        "{sealed_a}"
    );

    let loaded = load_tenant(&db.pool, Some(&key), a).await.unwrap().unwrap();
    assert_eq!(loaded.scim_token.expose_secret(), "token-of-a");

    let other_key = SecretsKey::generate().unwrap();
    let refused = [
        ("another key", Some(&other_key), a, "does not open"),
        ("no key", None, a, "set DIRSYNC_SECRETS_KEY"),
    ];
    for (name, k, tenant, expected) in refused {
        match load_tenant(&db.pool, k, tenant).await {
            Err(e @ WorkerError::Secrets(_)) => {
                assert!(
                    e.is_retryable(),
                    "{name}: a worker without the key requeues"
                );
                assert!(e.to_string().contains(expected), "{name}: {e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    // A's sealed token copied into B's row does not open as B's.
    set_token(&db, b, &sealed_a).await;
    match load_tenant(&db.pool, Some(&key), b).await {
        Err(WorkerError::Secrets(e)) => assert!(e.to_string().contains("does not open"), "{e}"),
        other => panic!("{other:?}"),
    }

    // A legacy plain-text token is used as is, with or without the key.
    set_token(&db, b, "plain-token").await;
    for k in [Some(&key), None] {
        let loaded = load_tenant(&db.pool, k, b).await.unwrap().unwrap();
        assert_eq!(loaded.scim_token.expose_secret(), "plain-token");
    }
    // And a token sealed for B by the deployment opens.
    let sealed_b = key.seal(b, SecretField::ScimToken, "rotated").unwrap();
    set_token(&db, b, &sealed_b).await;
    let loaded = load_tenant(&db.pool, Some(&key), b).await.unwrap().unwrap();
    assert_eq!(loaded.scim_token.expose_secret(), "rotated");
}
