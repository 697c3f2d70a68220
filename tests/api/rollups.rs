//! The reports over the rollups of `db/migrations/001_report_rollups`, and
//! without them: the same bytes either way, and a notice in the log, once, when
//! the rollups cannot be read.

use crate::reports::assert_reports_match_sql;
use test_support::{db_variables, spawn_app, spawn_app_on, Data, TestDatabase};

const NOTICE: &str = "WARNING in app: the report rollups cannot be read";

fn notices(logs: &str) -> usize {
    logs.lines().filter(|line| line.contains(NOTICE)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_over_the_rollups_equal_the_original_queries() {
    let app = spawn_app().await;
    let (_, daily_before) = app.get_text("/api/reports/daily_usage").await;
    let (_, visits_before) = app.get_text("/api/reports/user_visits").await;

    app.db.apply_rollups().await;

    assert_reports_match_sql(&app).await;
    assert_eq!(
        app.get_text("/api/reports/daily_usage").await,
        (200, daily_before)
    );
    assert_eq!(
        app.get_text("/api/reports/user_visits").await,
        (200, visits_before)
    );
    assert_reads_the_rollups(&app).await;
    // Writes after the migration reach the reports: those of closed time
    // through the triggers, those of open time (created now, as the Coworking
    // API creates them) read from tokens.
    app.db
        .execute(
            "UPDATE tokens SET used_at = NULL WHERE id % 7 = 0;
             UPDATE tokens SET used_at = created_at + interval '5 minutes' WHERE id % 11 = 0;
             DELETE FROM tokens WHERE id % 13 = 0;
             INSERT INTO tokens (user_id, token, created_at, used_at)
               VALUES (3, '424242', '2024-01-01 09:00', '2024-01-01 09:05');
             INSERT INTO tokens (user_id, token, used_at) VALUES (4, '434343', now()), (5, '535353', NULL);",
        )
        .await;
    assert_reports_match_sql(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_migration_the_reports_are_right_and_the_log_says_so_once() {
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_reports_match_sql(&app).await;
    }

    let logs = app.host.logs();
    assert_eq!(notices(&logs), 1, "{logs}");
    assert!(
        logs.contains("relation \"analytics.daily_used_tokens\" does not exist"),
        "{logs}"
    );
    assert!(
        logs.contains("db/migrations/001_report_rollups.up.sql"),
        "{logs}"
    );
}

/// The migration applied, but the service's role was not granted the rollups:
/// the reports still answer, and the log says what to grant.
#[tokio::test(flavor = "multi_thread")]
async fn rollups_without_grants_fall_back_to_tokens() {
    let db = TestDatabase::new(Data::Seed).await;
    db.apply_rollups().await;
    db.execute(
        "CREATE ROLE reader LOGIN PASSWORD 'reader pw';
         GRANT SELECT ON users, tokens TO reader;",
    )
    .await;
    let variables = db_variables(&db, "reader", "reader pw");
    let app = spawn_app_on(db, &variables).await;

    assert_reports_match_sql(&app).await;
    let logs = app.host.logs();
    assert_eq!(notices(&logs), 1, "{logs}");
    assert!(
        logs.contains("permission denied for schema analytics"),
        "{logs}"
    );
    assert!(logs.contains("grant the service's role USAGE"), "{logs}");

    app.db
        .execute(
            "GRANT USAGE ON SCHEMA analytics TO reader;
             GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO reader;",
        )
        .await;
    assert_eq!(
        user_one_visits(&app).await,
        "{\"joined_at\":\"2023-01-20 03:23:39.757813\",\"visits\":6}",
        "from the tokens table"
    );
    assert_reads_the_rollups(&app).await;
}

/// User 1's entry of the user visits report.
async fn user_one_visits(app: &test_support::TestApp) -> String {
    let (status, body) = app.get_text("/api/reports/user_visits").await;
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    report["1"].to_string()
}

/// A count changed in the rollups alone shows in the report: the component reads
/// them. Running the migration again rebuilds them from `tokens`.
async fn assert_reads_the_rollups(app: &test_support::TestApp) {
    app.db
        .execute("UPDATE analytics.user_tokens SET visits = 999 WHERE user_id = 1")
        .await;
    assert!(
        user_one_visits(app).await.contains("\"visits\":999"),
        "the report reads the rollups"
    );
    app.db.apply_rollups().await;
    assert!(user_one_visits(app).await.contains("\"visits\":6"));
}

/// The component with `report_source` set, over `db`.
async fn app_reading(db: TestDatabase, source: &str) -> test_support::TestApp {
    let mut variables = db_variables(&db, "postgres", test_support::SUPERUSER_PASSWORD);
    variables.push(("SPIN_VARIABLE_REPORT_SOURCE".into(), source.into()));
    spawn_app_on(db, &variables).await
}

/// `tokens` reads the tokens table straight away: no failed rollups query,
/// so no notice, and the rollups are not read even where they exist.
#[tokio::test(flavor = "multi_thread")]
async fn report_source_tokens_never_tries_the_rollups() {
    let app = app_reading(TestDatabase::new(Data::Seed).await, "tokens").await;
    assert_reports_match_sql(&app).await;
    assert_eq!(notices(&app.host.logs()), 0, "{}", app.host.logs());

    app.db.apply_rollups().await;
    app.db
        .execute("UPDATE analytics.user_tokens SET visits = 999 WHERE user_id = 1")
        .await;
    assert!(
        user_one_visits(&app).await.contains("\"visits\":6"),
        "from tokens"
    );
}

/// `rollups` reads them only: without the migration a report is a 500 that
/// the log explains, rather than a slow fallback.
#[tokio::test(flavor = "multi_thread")]
async fn report_source_rollups_requires_them() {
    let app = app_reading(TestDatabase::new(Data::Seed).await, "rollups").await;
    let (status, body) = app.get_text("/api/reports/daily_usage").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        app.host
            .logs()
            .contains("relation \"analytics.daily_used_tokens\" does not exist"),
        "{}",
        app.host.logs()
    );
    app.db.apply_rollups().await;
    assert_reports_match_sql(&app).await;
    assert_reads_the_rollups(&app).await;
}
