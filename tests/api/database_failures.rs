use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use test_support::{
    db_variables, spawn_app, spawn_app_on, spawn_app_with, Data, TestApp, TestDatabase,
    SUPERUSER_PASSWORD,
};

/// The readiness probe's timeout in the SpinApp.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

async fn timed_get(app: &TestApp, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let (status, body) = app.get_text(path).await;
    (status, body, started.elapsed())
}

fn assert_json_error(status: u16, body: &str, expected_status: u16) {
    assert_eq!(status, expected_status, "{body}");
    let error: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
    assert!(error["error"].is_string(), "{body}");
    assert!(body.ends_with("}\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_is_ok_when_tokens_can_be_read() {
    let app = spawn_app_with(Data::Schema).await;
    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_tokens_table_fails_readiness_and_reports() {
    let app = spawn_app().await;
    app.db.execute("DROP TABLE tokens").await;

    assert_eq!(
        app.get_text("/readiness_check").await,
        (500, "failed".into())
    );
    let (status, body) = app.get_text("/api/reports/user_visits").await;
    assert_json_error(status, &body, 500);
    assert!(!body.contains("tokens"), "no database internals: {body}");
    let logs = app.host.logs();
    assert!(
        logs.contains("relation \"tokens\" does not exist"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_database_fails_fast_and_the_service_recovers() {
    let mut app = spawn_app().await;
    let (_, daily_before) = app.get_text("/api/reports/daily_usage").await;

    app.db.stop().await;

    let (status, body, took) = timed_get(&app, "/readiness_check").await;
    assert_eq!((status, body.as_str()), (500, "failed"));
    assert!(took < PROBE_TIMEOUT, "readiness took {took:?}");
    for report in ["/api/reports/daily_usage", "/api/reports/user_visits"] {
        let (status, body, took) = timed_get(&app, report).await;
        assert_json_error(status, &body, 503);
        assert!(took < PROBE_TIMEOUT, "{report} took {took:?}");
    }
    assert_eq!(app.get_text("/health_check").await, (200, "ok".into()));

    app.db.start().await;

    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
    assert_eq!(
        app.get_text("/api/reports/daily_usage").await,
        (200, daily_before)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_between_requests_fails_no_request() {
    let mut app = spawn_app().await;
    assert_eq!(app.get_text("/readiness_check").await.0, 200);

    app.db.stop().await;
    app.db.start().await;

    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
    assert_eq!(app.get_text("/api/reports/user_visits").await.0, 200);
}

/// A database host that accepts connections and never answers (a hung server,
/// a black-holed network path) must not hang the probe.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_never_answers_fails_within_the_probe_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let db = TestDatabase::new(Data::Schema).await;
    let mut variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    variables.retain(|(name, _)| name != "SPIN_VARIABLE_DB_PORT");
    variables.push(("SPIN_VARIABLE_DB_PORT".into(), port.to_string()));
    let app = spawn_app_on(db, &variables).await;

    let (status, body, took) = timed_get(&app, "/readiness_check").await;
    assert_eq!((status, body.as_str()), (500, "failed"));
    assert!(took < PROBE_TIMEOUT, "readiness took {took:?}");
    let (status, body, took) = timed_get(&app, "/api/reports/daily_usage").await;
    assert_json_error(status, &body, 503);
    assert!(took < PROBE_TIMEOUT, "daily_usage took {took:?}");
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_503_and_never_shown() {
    let db = TestDatabase::new(Data::Schema).await;
    let wrong = "not-the-password-Zq9";
    let variables = db_variables(&db, "postgres", wrong);
    let app = spawn_app_on(db, &variables).await;

    let (status, body) = app.get_text("/api/reports/daily_usage").await;

    assert_json_error(status, &body, 503);
    assert!(!body.contains(wrong));
    let logs = app.host.logs();
    assert!(logs.contains("password authentication failed"), "{logs}");
    assert!(!logs.contains(wrong), "{logs}");
}

/// A migration or a stuck session holding a lock on `tokens` must not hang the
/// probe: the readiness query's statement timeout ends the wait.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_tokens_table_fails_readiness_within_the_probe_timeout() {
    let app = spawn_app_with(Data::Schema).await;
    let mut locker = app.db.client().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let (status, body, took) = timed_get(&app, "/readiness_check").await;

    assert_eq!((status, body.as_str()), (500, "failed"));
    assert!(took < PROBE_TIMEOUT, "readiness took {took:?}");
    let logs = app.host.logs();
    assert!(
        logs.contains("canceling statement due to statement timeout"),
        "{logs}"
    );
    lock.rollback().await.unwrap();
    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
}
