//! No secret leaks, proven: the host watches every response (headers and
//! body), its own error lines and the component's output for the values of
//! the secret variables (`db_password`, `api_keys`), and every `TestApp` fails
//! its test if one was found (`test_support`'s `Drop`). So the whole suite is
//! scanned; `cargo xtask test` prints the sum. Here each error path that could
//! carry a secret is forced once, with a distinctive marker, and the watch is
//! shown to catch what it is there to catch.

use reqwest::Method;
use test_support::{
    db_variables, host_builder, spawn_app_on, spawn_app_setting, Data, TestApp, TestDatabase,
    API_KEY, SUPERUSER_PASSWORD,
};

/// A marker no real output contains.
const MARKED_PASSWORD: &str = "Pa55-marker:wrong/Zq9#%";

fn assert_watched_and_clean(app: &TestApp) {
    let report = app.host.leak_report();
    assert!(report.forms > 0, "no secret watched");
    assert!(report.responses > 0 && report.bytes > 0, "{report:?}");
    assert_eq!(report.findings, Vec::<String>::new());
}

/// The statuses of readiness, a legacy report and a v2 report (each answer
/// checked against the OpenAPI document).
async fn statuses(app: &TestApp) -> Vec<u16> {
    let mut statuses = Vec::new();
    for path in [
        "/readiness_check",
        "/api/reports/daily_usage",
        "/api/v2/usage",
    ] {
        let response = app.send_v2(Method::GET, path, Some(API_KEY), &[]).await;
        statuses.push(response.status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_leaks_nowhere() {
    let db = TestDatabase::new(Data::Seed).await;
    let mut environment = db_variables(&db, "postgres", MARKED_PASSWORD);
    environment.push(("SPIN_VARIABLE_API_KEYS".into(), API_KEY.into()));
    let app = spawn_app_on(db, &environment).await;
    assert_eq!(statuses(&app).await, [500, 503, 503]);
    assert!(app.host.logs().contains("password authentication failed"));
    assert_watched_and_clean(&app);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_leaks_nowhere() {
    let mut app = spawn_app_setting(TestDatabase::new(Data::Seed).await, &[]).await;
    app.db.stop().await;
    assert_eq!(statuses(&app).await, [500, 503, 503]);
    assert!(app.host.logs().contains("refused"), "{}", app.host.logs());
    assert_watched_and_clean(&app);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_failure_leaks_nowhere() {
    let sslmode = [("SPIN_VARIABLE_DB_SSLMODE", "require")];
    let app = spawn_app_setting(TestDatabase::new(Data::Seed).await, &sslmode).await;
    assert_eq!(statuses(&app).await, [500, 503, 503]);
    assert!(app.host.logs().contains("TLS"), "{}", app.host.logs());
    assert_watched_and_clean(&app);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permission_denied_leaks_nowhere() {
    let db = TestDatabase::new(Data::Seed).await;
    db.execute(&format!(
        "CREATE ROLE no_grants LOGIN PASSWORD '{}';",
        MARKED_PASSWORD.replace('\'', "''")
    ))
    .await;
    let mut environment = db_variables(&db, "no_grants", MARKED_PASSWORD);
    environment.push(("SPIN_VARIABLE_API_KEYS".into(), API_KEY.into()));
    let app = spawn_app_on(db, &environment).await;
    let statuses = statuses(&app).await;
    assert!(statuses.iter().all(|status| *status >= 500), "{statuses:?}");
    assert!(
        app.host.logs().contains("permission denied"),
        "{}",
        app.host.logs()
    );
    assert_watched_and_clean(&app);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_leaks_no_key() {
    let keys = [(
        "SPIN_VARIABLE_API_KEYS",
        "first-key.M4rk3r, second-key.M4rk3r",
    )];
    let app = spawn_app_setting(TestDatabase::new(Data::Seed).await, &keys).await;
    for key in ["first-key.M4rk3", "not-a-key", ""] {
        let response = app
            .send_v2(Method::GET, "/api/v2/usage", Some(key), &[])
            .await;
        assert_eq!(response.status, 401);
    }
    assert_watched_and_clean(&app);
}

/// The watch is live: a secret that the host does send (here the app's own
/// name, which `/.well-known/spin/info` answers) is found, in each form.
#[tokio::test(flavor = "multi_thread")]
async fn the_watch_finds_a_secret_that_is_sent() {
    let db = TestDatabase::new(Data::Seed).await;
    let mut environment = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    environment.retain(|(name, _)| name != "SPIN_VARIABLE_DB_PASSWORD");
    environment.push((
        "SPIN_VARIABLE_DB_PASSWORD".into(),
        "coworking-analytics".into(),
    ));
    let host = host_builder(&environment)
        .start()
        .await
        .expect("start the host");
    let info = reqwest::get(format!("{}/.well-known/spin/info", host.base_url()))
        .await
        .expect("send")
        .text()
        .await
        .unwrap();
    assert!(info.contains("coworking-analytics"));
    assert_eq!(
        host.leak_report().findings,
        ["the secret db_password (as it is) in the response body of GET /.well-known/spin/info"]
    );
}
