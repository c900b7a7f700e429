//! A tenant's own quarantine thresholds against the real PostgreSQL: set, changed, checked
//! and reset through `dirsync tenant quarantine-thresholds` (run in-process, through the
//! admin API), over the deployment's defaults (the API server's).

use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::cli::{Cli, run};
use dirsync_coordinator::quarantine::{self, Overrides, Thresholds};
use dirsync_coordinator::{CoordinatorError, NewTenant, TenantStore};
use dirsync_load_tests::testkit::TestEnv;
use dirsync_proto::TenantId;

/// `dirsync --api-url <api> --api-token <token> <args>`.
fn cli(api: &(String, SecretString), args: &[&str]) -> Cli {
    let argv = [
        "dirsync",
        "--api-url",
        api.0.as_str(),
        "--api-token",
        api.1.expose_secret(),
    ];
    Cli::try_parse_from(argv.iter().chain(args)).unwrap()
}

async fn tenant(env: &TestEnv) -> TenantId {
    TenantStore::new(env.pool.clone())
        .with_key(env.secrets_key.clone())
        .create(&NewTenant {
            name: "Contoso".into(),
            graph_tenant_id: "contoso".into(),
            graph_login_url: "http://127.0.0.1:9".into(),
            graph_base_url: "http://127.0.0.1:9".into(),
            client_id: "app".into(),
            client_secret: SecretString::from("s3cret"),
            scim_base_url: "http://127.0.0.1:9/v2".into(),
            scim_token: SecretString::from("tok"),
            allow_hard_delete: false,
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_tenant_thresholds_round_trip_through_the_cli() {
    let env = TestEnv::new("quarantine_thresholds").await.unwrap();
    let shutdown = CancellationToken::new();
    let api = env
        .serve_admin_api(Thresholds::ENTRA, &shutdown)
        .await
        .unwrap();
    let id = tenant(&env).await;
    let other = tenant(&env).await;
    let pool = &env.pool;
    let entra = Thresholds::ENTRA;
    let tid = id.to_string();
    let set = |args: &'static [&'static str]| {
        let mut argv = vec!["tenant", "quarantine-thresholds", tid.as_str()];
        argv.extend_from_slice(args);
        run(cli(&api, &argv), CancellationToken::new())
    };

    // A new tenant has no values of its own: the deployment's, whatever they are.
    assert_eq!(
        quarantine::overrides(pool, id).await.unwrap(),
        Overrides::default()
    );
    assert_eq!(
        quarantine::thresholds(pool, id, entra).await.unwrap(),
        entra
    );
    set(&[]).await.unwrap(); // only shows them

    set(&["--min-failures", "10", "--max-percent", "15"])
        .await
        .unwrap();
    let own = Overrides {
        min_failures: Some(10),
        max_percent: Some(15),
        max_failures: None,
    };
    assert_eq!(quarantine::overrides(pool, id).await.unwrap(), own);
    // The values it does not set follow the deployment's defaults.
    let deployment = Thresholds {
        max_failures: 2_000,
        small_floor: 3,
        ..entra
    };
    assert_eq!(
        quarantine::thresholds(pool, id, deployment).await.unwrap(),
        Thresholds {
            min_failures: 10,
            max_percent: 15,
            ..deployment
        }
    );
    assert_eq!(
        quarantine::thresholds(pool, other, deployment)
            .await
            .unwrap(),
        deployment,
        "another tenant keeps the defaults"
    );

    // Values not given stay.
    set(&["--max-failures", "500"]).await.unwrap();
    let own = Overrides {
        max_failures: Some(500),
        ..own
    };
    assert_eq!(quarantine::overrides(pool, id).await.unwrap(), own);

    // Checked against the effective thresholds; nothing is saved when they make no sense.
    let err = set(&["--min-failures", "501"]).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("min failures (501) must not be more than max failures (500)"),
        "{err:#}"
    );
    // A minimum above the deployment's cap is refused for a tenant without its own cap.
    let other_id = other.to_string();
    let at_deployment = |deployment: Thresholds| {
        let (env, shutdown, other_id) = (&env, &shutdown, other_id.clone());
        async move {
            let api = env.serve_admin_api(deployment, shutdown).await.unwrap();
            let argv = [
                "tenant",
                "quarantine-thresholds",
                other_id.as_str(),
                "--min-failures",
                "200",
            ];
            run(cli(&api, &argv), CancellationToken::new()).await
        }
    };
    let err = at_deployment(Thresholds {
        min_failures: 50,
        max_failures: 100,
        ..entra
    })
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("min failures (200) must not be more than max failures (100)"),
        "{err:#}"
    );
    // (Deployment defaults that make no sense never reach the API: `dirsync serve` refuses
    // to start with them, see `config::tests`.)
    assert_eq!(quarantine::overrides(pool, id).await.unwrap(), own);
    assert_eq!(
        quarantine::overrides(pool, other).await.unwrap(),
        Overrides::default()
    );

    // The table refuses what the command line would (another writer, a typo in SQL).
    let refused = sqlx::query("UPDATE tenants SET quarantine_max_percent = 0 WHERE id = $1")
        .bind(id.0)
        .execute(pool)
        .await;
    assert!(refused.is_err(), "a 0 % threshold is refused by the table");

    // Back to the deployment's.
    set(&["--default"]).await.unwrap();
    assert_eq!(
        quarantine::overrides(pool, id).await.unwrap(),
        Overrides::default()
    );
    assert_eq!(
        quarantine::thresholds(pool, id, entra).await.unwrap(),
        entra
    );

    // An unknown tenant is named.
    let nobody = TenantId::new();
    assert!(matches!(
        quarantine::thresholds(pool, nobody, entra).await,
        Err(CoordinatorError::TenantNotFound(_))
    ));
    assert!(matches!(
        quarantine::set_thresholds(pool, nobody, Some(own), entra).await,
        Err(CoordinatorError::TenantNotFound(_))
    ));
    shutdown.cancel();
    env.cleanup().await.unwrap();
}
