//! Spin's per-instance memory limit (`spin up --max-instance-memory`, set on
//! SpinKube from the SpinApp's `invocationLimits.memory`): a report that needs
//! more fails alone, with a 500, and the service goes on.

use test_support::{
    db_variables, host_builder, start_app, Data, TestApp, TestDatabase, SUPERUSER_PASSWORD,
};

const MIB: usize = 1 << 20;

/// 50,000 users with a token each: a user visits report of about 3 MB.
async fn many_users() -> TestDatabase {
    let db = TestDatabase::new(Data::Schema).await;
    db.execute(
        "INSERT INTO users (id, first_name, last_name, joined_at)
           SELECT n, 'F', 'L', TIMESTAMP '2023-01-01' + n * INTERVAL '1 second 7 microseconds'
           FROM generate_series(1, 50000) AS n;
         INSERT INTO tokens (user_id, token, created_at, used_at)
           SELECT n, '123456', TIMESTAMP '2023-02-01', NULL FROM generate_series(1, 50000) AS n;",
    )
    .await;
    db
}

async fn app_with_memory_limit(db: TestDatabase, bytes: usize) -> TestApp {
    let variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    start_app(db, host_builder(&variables).max_instance_memory(bytes)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_over_the_instance_memory_limit_fails_alone() {
    let app = app_with_memory_limit(many_users().await, 4 * MIB).await;

    // The instance traps: Spin answers 500 with an empty body and no type.
    let response = app.get("/api/reports/user_visits").await;
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.headers().get("content-type").is_none());
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(app.get_text("/health_check").await, (200, "ok".into()));
    assert_eq!(
        app.get_text("/api/reports/daily_usage").await,
        (200, "{}\n".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_within_the_limit_is_whole() {
    let app = app_with_memory_limit(many_users().await, 64 * MIB).await;

    let (status, body) = app.get_text("/api/reports/user_visits").await;
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report.as_object().unwrap().len(), 50_000);
    assert_eq!(
        report["50000"].to_string(),
        "{\"joined_at\":\"2023-01-01 13:53:20.350000\",\"visits\":1}"
    );
    let peak = app.host.peak_instance_memory();
    assert!(peak > 4 * MIB && peak < 64 * MIB, "{peak} bytes");
}
