//! TLS to PostgreSQL by `db_sslmode`, against a server whose certificate a
//! test authority issued. The runtime trusts an authority through its trust
//! store: OpenSSL's `SSL_CERT_FILE` in the runtime's environment, in place of
//! the system bundle (`/etc/ssl/certs/ca-certificates.crt`, which SpinKube's
//! executor mounts in the pods).

use std::time::{Duration, Instant};

use test_support::{
    db_variables, spawn_app_on, Data, TestApp, TestCa, TestDatabase, SUPERUSER_PASSWORD,
};

/// The component over `db` with this `db_sslmode` and, when given, this trust store.
async fn app_with(db: TestDatabase, sslmode: &str, trust: Option<&TestCa>) -> TestApp {
    let mut environment = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    environment.push(("SPIN_VARIABLE_DB_SSLMODE".into(), sslmode.into()));
    if let Some(ca) = trust {
        environment.push(("SSL_CERT_FILE".into(), ca.file.display().to_string()));
    }
    spawn_app_on(db, &environment).await
}

async fn database_with_tls(ca: &TestCa) -> TestDatabase {
    let db = TestDatabase::new(Data::Seed).await;
    let (certificate, key) = ca.server_certificate();
    db.enable_tls(&certificate, &key).await;
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn require_connects_over_tls_when_the_runtime_trusts_the_authority() {
    let scratch = tempfile::tempdir().unwrap();
    let ca = TestCa::new(scratch.path());
    let app = app_with(database_with_tls(&ca).await, "require", Some(&ca)).await;

    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
    assert_eq!(app.get("/api/reports/daily_usage").await.status(), 200);

    // The service's sessions are encrypted.
    let sessions = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE ssl), count(*) FROM pg_stat_ssl \
             JOIN pg_stat_activity USING (pid) WHERE application_name = 'coworking-analytics'",
            &[],
        )
        .await
        .unwrap();
    let (encrypted, all): (i64, i64) = (sessions.get(0), sessions.get(1));
    assert!(all > 0, "the service holds a pooled session");
    assert_eq!(encrypted, all, "every session of the service uses TLS");
    assert_probes_leave_no_tls_error_in_the_server_log(&app).await;
}

/// Readiness's probe hangs up after the server's first byte. After an
/// SSLRequest a server with TLS on would log `could not accept SSL connection:
/// EOF detected` for every probe; the probe's GSSENCRequest leaves nothing.
async fn assert_probes_leave_no_tls_error_in_the_server_log(app: &TestApp) {
    for _ in 0..3 {
        assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
    }
    // A line logged after the probes: once it is in the log, so is what they caused.
    let marker = "coworking-tls-test: after the probes";
    app.db
        .execute(&format!("DO $$ BEGIN RAISE LOG '{marker}'; END $$"))
        .await;
    let log_dir = app.db.data_dir().join("log");
    let started = Instant::now();
    let log = loop {
        let mut log = String::new();
        for entry in std::fs::read_dir(&log_dir).expect("the server's log directory") {
            log += &std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        }
        if log.contains(marker) {
            break log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {marker:?} in the log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!log.contains("could not accept SSL connection"), "{log}");
}

/// With TLS, the server's certificate is verified: an authority the runtime
/// does not trust fails the connection, with `require` and with the default
/// `prefer` alike (which is why RDS needs its CA in the pods).
#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_fails_the_connection() {
    let scratch = tempfile::tempdir().unwrap();
    let ca = TestCa::new(scratch.path());
    for sslmode in ["require", "prefer"] {
        let app = app_with(database_with_tls(&ca).await, sslmode, None).await;
        let (status, body) = app.get_text("/api/reports/daily_usage").await;
        assert_eq!(status, 503, "{sslmode}: {body}");
        assert_eq!(
            app.get_text("/readiness_check").await,
            (500, "failed".into())
        );
        let logs = app.host.logs();
        assert!(
            logs.contains("certificate verify failed"),
            "{sslmode}: {logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn require_against_a_server_without_tls_is_a_quick_503_that_names_tls() {
    let app = app_with(TestDatabase::new(Data::Seed).await, "require", None).await;

    let started = Instant::now();
    let (status, body) = app.get_text("/api/reports/daily_usage").await;
    let took = started.elapsed();

    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        "{\"error\":\"database unavailable, try again later\"}\n"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let logs = app.host.logs();
    let line = logs
        .lines()
        .find(|line| line.contains("ERROR in app"))
        .expect("an error line");
    assert!(line.contains("TLS"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_sslmode_is_a_500_that_names_the_variable() {
    for sslmode in ["verify-full", "on"] {
        let app = app_with(TestDatabase::new(Data::Schema).await, sslmode, None).await;
        let (status, body) = app.get_text("/api/reports/daily_usage").await;
        assert_eq!(status, 500, "{body}");
        assert!(
            body.contains("variable db_sslmode must be disable, prefer or require"),
            "{body}"
        );
        assert!(
            !body.contains("verify-full"),
            "no value in the body: {body}"
        );
        assert_eq!(
            app.get_text("/readiness_check").await,
            (500, "failed".into())
        );
    }
}
