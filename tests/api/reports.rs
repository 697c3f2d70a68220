use std::fmt::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use test_support::{spawn_app, spawn_app_with, Data, TestApp};

/// The daily usage report as the Flask app would print it, computed by SQL that
/// formats the values itself, independently of the component's code.
async fn expected_daily_usage(app: &TestApp) -> String {
    let rows = app
        .db
        .client()
        .await
        .query(
            "SELECT to_char(created_at::date, 'YYYY-MM-DD'), COUNT(*) FROM tokens \
             WHERE used_at IS NOT NULL GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let entries: Vec<String> = rows
        .iter()
        .map(|row| format!("\"{}\":{}", row.get::<_, String>(0), row.get::<_, i64>(1)))
        .collect();
    format!("{{{}}}\n", entries.join(","))
}

/// The user visits report as the Flask app would print it, formatted by SQL.
async fn expected_user_visits(app: &TestApp) -> String {
    let rows = app
        .db
        .client()
        .await
        .query(
            "SELECT t.user_id, t.visits,
                    CASE WHEN u.id IS NULL THEN 'None'
                         WHEN date_part('microseconds', u.joined_at)::bigint % 1000000 = 0
                           THEN to_char(u.joined_at, 'YYYY-MM-DD HH24:MI:SS')
                         ELSE to_char(u.joined_at, 'YYYY-MM-DD HH24:MI:SS.US') END
             FROM (SELECT user_id, COUNT(*) AS visits FROM tokens GROUP BY user_id) t
             LEFT JOIN users u ON u.id = t.user_id
             ORDER BY t.user_id",
            &[],
        )
        .await
        .unwrap();
    let mut body = String::from("{");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        write!(
            body,
            "\"{}\":{{\"joined_at\":\"{}\",\"visits\":{}}}",
            row.get::<_, i32>(0),
            row.get::<_, String>(2),
            row.get::<_, i64>(1)
        )
        .unwrap();
    }
    body.push_str("}\n");
    body
}

pub async fn assert_reports_match_sql(app: &TestApp) {
    let (status, daily) = app.get_text("/api/reports/daily_usage").await;
    assert_eq!(status, 200);
    assert_eq!(daily, expected_daily_usage(app).await);
    let (status, visits) = app.get_text("/api/reports/user_visits").await;
    assert_eq!(status, 200);
    assert_eq!(visits, expected_user_visits(app).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn daily_usage_on_the_seed_counts_used_tokens_per_day() {
    let app = spawn_app().await;

    let response = app.get("/api/reports/daily_usage").await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.text().await.unwrap();
    assert_eq!(body, expected_daily_usage(&app).await);
    assert!(body.starts_with("{\"2023-02-07\":"), "{body}");
}

/// The Flask app logged each daily report it computed, as Python printed the dict.
#[tokio::test(flavor = "multi_thread")]
async fn daily_usage_is_logged_as_one_line_each_time() {
    let app = spawn_app().await;
    let python_dict: String = app
        .db
        .client()
        .await
        .query_one(
            "SELECT '{' || string_agg(format('''%s'': %s', day, visits), ', ' ORDER BY day) || '}'
             FROM (SELECT to_char(created_at::date, 'YYYY-MM-DD') AS day, COUNT(*) AS visits
                   FROM tokens WHERE used_at IS NOT NULL GROUP BY 1) AS daily",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    app.get_text("/api/reports/daily_usage").await;
    app.get_text("/api/reports/daily_usage").await;

    let logs = app.host.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.ends_with(&format!("] INFO in app: {python_dict}")))
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(
        lines[0].starts_with("[20"),
        "a timestamp first: {}",
        lines[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn user_visits_on_the_seed_counts_every_token_per_user() {
    let app = spawn_app().await;

    let response = app.get("/api/reports/user_visits").await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.text().await.unwrap();
    assert_eq!(body, expected_user_visits(&app).await);
    assert!(
        body.starts_with("{\"1\":{\"joined_at\":\"2023-01-20 03:23:39.757813\","),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_tables_give_empty_objects() {
    let app = spawn_app_with(Data::Schema).await;
    assert_eq!(
        app.get_text("/api/reports/daily_usage").await,
        (200, "{}\n".into())
    );
    assert_eq!(
        app.get_text("/api/reports/user_visits").await,
        (200, "{}\n".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn joined_at_prints_like_python_and_missing_users_print_none() {
    let app = spawn_app_with(Data::Schema).await;
    app.db
        .execute(
            "ALTER TABLE tokens DROP CONSTRAINT tokens_users_id_fk;
             INSERT INTO users (id, first_name, last_name, joined_at) VALUES
               (1, 'Whole', 'Second', '2023-01-02 03:04:05'),
               (2, 'Some', 'Micros', '2023-01-02 03:04:05.000007'),
               (3, 'Far', 'Future', 'infinity'),
               (4, 'Far', 'Past', '-infinity');
             INSERT INTO tokens (user_id, token, created_at, used_at) VALUES
               (1, '000001', '2023-02-01 10:00:00', NULL),
               (2, '000002', '2023-02-01 10:00:00', NULL),
               (3, '000003', '2023-02-01 10:00:00', NULL),
               (4, '000004', '2023-02-01 10:00:00', NULL),
               (-7, '000005', '2023-02-01 10:00:00', NULL),
               (42, '000006', '2023-02-01 10:00:00', '2023-02-01 10:05:00');",
        )
        .await;

    let (status, body) = app.get_text("/api/reports/user_visits").await;

    assert_eq!(status, 200);
    assert_eq!(
        body,
        concat!(
            "{\"-7\":{\"joined_at\":\"None\",\"visits\":1},",
            "\"1\":{\"joined_at\":\"2023-01-02 03:04:05\",\"visits\":1},",
            "\"2\":{\"joined_at\":\"2023-01-02 03:04:05.000007\",\"visits\":1},",
            // psycopg2 gave Flask datetime.max and datetime.min for the infinities.
            "\"3\":{\"joined_at\":\"9999-12-31 23:59:59.999999\",\"visits\":1},",
            "\"4\":{\"joined_at\":\"0001-01-01 00:00:00\",\"visits\":1},",
            "\"42\":{\"joined_at\":\"None\",\"visits\":1}}\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_user_with_many_tokens() {
    let app = spawn_app_with(Data::Schema).await;
    app.db
        .execute(
            "INSERT INTO users (id, first_name, last_name, joined_at)
               VALUES (7, 'Busy', 'Member', '2022-12-31 23:59:59.5');
             INSERT INTO tokens (user_id, token, created_at, used_at)
               SELECT 7, lpad(n::text, 6, '0'),
                      TIMESTAMP '2023-03-01' + n * INTERVAL '1 minute',
                      CASE WHEN n % 3 = 0 THEN NULL
                           ELSE TIMESTAMP '2023-03-01' + n * INTERVAL '1 minute' END
               FROM generate_series(1, 5000) AS n;",
        )
        .await;

    assert_eq!(
        app.get_text("/api/reports/user_visits").await,
        (
            200,
            "{\"7\":{\"joined_at\":\"2022-12-31 23:59:59.500000\",\"visits\":5000}}\n".into()
        )
    );
    assert_reports_match_sql(&app).await;
}

/// Random data sets, with the odd values real tables collect, give what the
/// original queries give.
#[tokio::test(flavor = "multi_thread")]
async fn random_data_sets_match_the_original_queries() {
    let app = spawn_app_with(Data::Schema).await;
    app.db
        .execute("ALTER TABLE tokens DROP CONSTRAINT tokens_users_id_fk")
        .await;
    let mut rng = StdRng::seed_from_u64(0x00C0_FFEE);
    for round in 0..3 {
        // The first round reads `tokens`, the others the rollups that the
        // migration's triggers keep through these writes.
        if round == 1 {
            app.db.apply_rollups().await;
        }
        let mut sql = String::from("TRUNCATE users, tokens;");
        let users = rng.random_range(1..200);
        for id in 1..=users {
            let micros = if rng.random_bool(0.2) {
                0
            } else {
                rng.random_range(0..1_000_000)
            };
            write!(
                sql,
                "INSERT INTO users (id, first_name, last_name, joined_at) VALUES \
                 ({id}, 'F', 'L', TIMESTAMP '2020-01-01' + interval '{} seconds' + interval '{micros} microseconds');",
                rng.random_range(0..100_000_000)
            )
            .unwrap();
        }
        for _ in 0..rng.random_range(0..3000) {
            // Some tokens belong to users that do not exist.
            let user = rng.random_range(-5..users + 20);
            let created = rng.random_range(0..60 * 60 * 24 * 400);
            let used = if rng.random_bool(0.6) {
                format!(
                    "TIMESTAMP '2022-06-01' + interval '{} seconds'",
                    created + 60
                )
            } else {
                "NULL".into()
            };
            write!(
                sql,
                "INSERT INTO tokens (user_id, token, created_at, used_at) VALUES \
                 ({user}, '123456', TIMESTAMP '2022-06-01' + interval '{created} seconds', {used});"
            )
            .unwrap();
        }
        app.db.execute(&sql).await;
        eprintln!("round {round}: {users} users");
        assert_reports_match_sql(&app).await;
    }
}
