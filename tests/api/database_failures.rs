use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use test_support::{
    db_variables, spawn_app, spawn_app_on, spawn_app_with, Data, Fault, FaultProxy, TestApp,
    TestDatabase, SUPERUSER_PASSWORD,
};

/// The readiness probe's timeout in the SpinApp.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request and how long it took; a request still unanswered after twice the
/// probe's timeout fails the test rather than hold it.
async fn timed_get(app: &TestApp, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(PROBE_TIMEOUT * 2, app.get_text(path))
        .await
        .unwrap_or_else(|_| panic!("no answer to {path} within {:?}", PROBE_TIMEOUT * 2));
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

/// The component over the seed data, reaching PostgreSQL through a proxy that
/// counts connections and injects faults.
async fn app_behind_a_proxy() -> (TestApp, FaultProxy) {
    let db = TestDatabase::new(Data::Seed).await;
    let proxy = FaultProxy::start(([127, 0, 0, 1], db.port()).into()).await;
    let variables = variables_with_port(&db, proxy.port());
    (spawn_app_on(db, &variables).await, proxy)
}

/// A GET that runs on while the test goes on: its status and body.
fn get_in_background(app: &TestApp, path: &str) -> tokio::task::JoinHandle<(u16, String)> {
    let url = format!("{}{path}", app.address);
    let http = app.http.clone();
    tokio::spawn(async move {
        let response = http.get(url).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

/// The variables that point the component at `port` on the loopback instead.
fn variables_with_port(db: &TestDatabase, port: u16) -> Vec<(String, String)> {
    let mut variables = db_variables(db, "postgres", SUPERUSER_PASSWORD);
    variables.retain(|(name, _)| name != "SPIN_VARIABLE_DB_PORT");
    variables.push(("SPIN_VARIABLE_DB_PORT".into(), port.to_string()));
    variables
}

/// A database host that accepts connections and never answers (a hung or
/// frozen server, a black-holed path): readiness probes it first and fails
/// within the kubelet's timeout; a report waits, as on Spin.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_server_that_never_answers_readiness_fails_in_time_and_a_report_waits() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let db = TestDatabase::new(Data::Schema).await;
    let variables = variables_with_port(&db, port);
    let app = spawn_app_on(db, &variables).await;

    let (status, body, took) = timed_get(&app, "/readiness_check").await;
    assert_eq!((status, body.as_str()), (500, "failed"));
    assert!(took < PROBE_TIMEOUT, "readiness took {took:?}");
    let logs = app.host.logs();
    assert!(
        logs.contains("readiness check failed: database unavailable: probe: no answer within 2 s"),
        "{logs}"
    );

    // A report opens a new connection, which Spin bounds only while TCP
    // connects: the server accepted, so the report waits for it.
    let report = get_in_background(&app, "/api/reports/daily_usage");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        !report.is_finished(),
        "the host bounded a connection's setup: Spin does not"
    );
    // The server goes away, closing what it held: the report ends.
    accepting.abort();
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), report)
        .await
        .expect("the report ends with the server")
        .unwrap();
    assert_json_error(status, &body, 503);
}

/// The same fault on a warm pool, as Spin and the shim behave: Spin bounds
/// only a new connection's TCP connect, so a report waits for as long as the
/// database does not answer (measured: no answer within 8 s on Spin 3.6.3, 30 s
/// on the shim), while readiness fails in time and takes the pod out of the
/// Service. Once the fault ends, the waiting report ends too.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_waits_as_long_as_the_database_does_not_answer() {
    let (app, proxy) = app_behind_a_proxy().await;
    let (_, daily) = app.get_text("/api/reports/daily_usage").await;

    proxy.set(Fault::BlackHole);
    let (status, body, took) = timed_get(&app, "/readiness_check").await;
    assert_eq!((status, body.as_str()), (500, "failed"));
    assert!(took < PROBE_TIMEOUT, "readiness took {took:?}");
    let report = get_in_background(&app, "/api/reports/daily_usage");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        !report.is_finished(),
        "the host answered a stalled database: Spin does not"
    );

    proxy.set(Fault::None);
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), report)
        .await
        .expect("the report ends once the fault does")
        .unwrap();
    match status {
        200 => assert_eq!(body, daily, "never a wrong body"),
        503 => assert_json_error(status, &body, 503),
        other => panic!("{other}: {body}"),
    }
    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
}

/// A connection that dies under a running report (the network resets it,
/// the database restarts) is the database's trouble: a quick 503, as for a
/// connection that cannot be made, not a 500. Found by the soak.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_reset_under_a_report_is_a_quick_503() {
    let (app, proxy) = app_behind_a_proxy().await;
    let (status, daily) = app.get_text("/api/reports/daily_usage").await;
    assert_eq!(status, 200);
    let mut locker = app.db.client().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    // The report's statement waits for the lock, on its pooled connection.
    let report = get_in_background(&app, "/api/reports/daily_usage");
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set(Fault::Reset);
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), report)
        .await
        .expect("the report ends with its connection")
        .unwrap();
    assert_json_error(status, &body, 503);
    proxy.set(Fault::None);
    lock.rollback().await.unwrap();
    assert_eq!(app.get_text("/api/reports/daily_usage").await, (200, daily));
    let logs = app.host.logs();
    assert!(
        logs.contains("database unavailable: connection closed")
            || logs.contains("database unavailable: error communicating with the server"),
        "{logs}"
    );
}

/// Each probe costs PostgreSQL a backend: readiness probes, the reports do not
/// (their connections are pooled).
#[tokio::test(flavor = "multi_thread")]
async fn only_readiness_probes_the_database() {
    let (app, proxy) = app_behind_a_proxy().await;
    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
    assert_eq!(
        proxy.connections(),
        2,
        "the probe and readiness's pooled connection"
    );
    // The reports' address (a longer statement timeout) has a pool of its own.
    assert_eq!(app.get("/api/reports/daily_usage").await.status(), 200);
    let after_first = proxy.connections();
    assert_eq!(after_first, 3);

    for _ in 0..10 {
        assert_eq!(app.get("/api/reports/daily_usage").await.status(), 200);
        assert_eq!(app.get("/api/reports/user_visits").await.status(), 200);
    }
    assert_eq!(
        proxy.connections(),
        after_first,
        "no report opened a connection"
    );
    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
    assert_eq!(
        proxy.connections(),
        after_first + 1,
        "one probe, the query pooled"
    );
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
