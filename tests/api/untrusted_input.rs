//! Untrusted input, end to end: requests a client could send by mistake or on
//! purpose, to the component in the host. Random paths, queries and headers
//! (seeded, so a failure repeats) get an answer the API documents: every v2
//! response is checked against the OpenAPI document, every legacy one is the
//! Flask app's page or report. Oversized requests are refused quickly, by
//! the HTTP server as Spin's (hyper) refuses them, or by the component with a
//! bounded 400. No input gets a 5xx, and the instance serves on afterwards.
//! The parsers themselves are property-tested natively (src/untrusted_input.rs).

use std::time::{Duration, Instant};

use coworking_analytics::render;
use coworking_analytics::v2::{members, usage};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use test_support::{db_file, spawn_app, spawn_app_setting, Data, TestApp, TestDatabase, API_KEY};

const PATHS: &[&str] = &[
    "/api/v2/usage",
    "/api/v2/members",
    "/api/v2/members/1",
    "/api/v2/members/0",
    "/api/v2/members/%ff",
    "/api/v2/members/99999999999",
    "/api/v2/members/1/x",
    "/api/v2/openapi.json",
    "/api/v2/",
    "/api/v2/usage/",
    "/api/v2/%75sage",
];
const LEGACY_PATHS: &[&str] = &[
    "/api/reports/daily_usage",
    "/api/reports/user_visits",
    "//api//reports//user_visits",
    "/api/reports/%64aily_usage",
    "/health_check",
    "/readiness_check",
    "/%ff%fe",
    "/api/reports/daily_usage/..",
    "/nothing",
];
/// The API's parameter names, and near misses.
fn names() -> Vec<&'static str> {
    let near_misses: &[&str] = &["x", "", "%ff"];
    usage::PARAMETERS
        .iter()
        .chain(members::PARAMETERS)
        .chain(near_misses)
        .copied()
        .collect()
}
const VALUES: &[&str] = &[
    "2024-01-01",
    "2024-02-30",
    "+262143-12-31",
    "-4713-01-01",
    "Asia/Kathmandu",
    "Mars/Base",
    "day",
    "week",
    "month",
    "sunday",
    "-visits",
    "nope",
    "0",
    "1001",
    "-1",
    "99999999999999999999",
    "csv",
    "json",
    "xml",
    "true",
    "visits,active_members",
    "%ff%fe",
    "%00",
    "",
    "a%2Cb",
];
const ACCEPTS: &[&str] = &[
    "text/csv",
    "application/json;q=0, text/csv;q=0",
    "text/html",
    "*/*;q=abc",
    ",,,;",
    "text/*;q=0.5, application/*",
];
const ENCODINGS: &[&str] = &[
    "gzip",
    "gzip;q=0",
    "*",
    "br",
    "identity;q=0, *;q=0",
    "gzip;q=0, *;level=1",
];
const IF_NONE_MATCH: &[&str] = &["*", "\"x\"", "W/\"x\", \"y\"", "\"", "garbage"];

fn random_query(rng: &mut StdRng) -> String {
    let pairs = rng.random_range(0..6);
    (0..pairs)
        .map(|_| {
            let name = *names().choose(rng).unwrap();
            let value = VALUES.choose(rng).unwrap();
            if rng.random_bool(0.1) {
                name.to_string()
            } else {
                format!("{name}={value}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn random_headers(rng: &mut StdRng) -> Vec<(&'static str, &'static str)> {
    let mut headers = Vec::new();
    for (name, values) in [
        ("accept", ACCEPTS),
        ("accept-encoding", ENCODINGS),
        ("if-none-match", IF_NONE_MATCH),
    ] {
        if rng.random_bool(0.4) {
            headers.push((name, *values.choose(rng).unwrap()));
        }
    }
    headers
}

/// The legacy answers: a report, the Flask pages, a Werkzeug redirect.
async fn assert_legacy_answer(path: &str, response: reqwest::Response) {
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("a body");
    match status {
        200 | 308 => {}
        404 => assert_eq!(body, render::not_found().body(), "{path}"),
        405 => assert_eq!(body, render::method_not_allowed().body(), "{path}"),
        _ => panic!("{path}: {status} {:?}", String::from_utf8_lossy(&body)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_requests_get_documented_answers_and_never_a_5xx() {
    let app = spawn_app().await;
    let mut rng = StdRng::seed_from_u64(16);
    for _ in 0..300 {
        let path = PATHS.choose(&mut rng).unwrap();
        let query = random_query(&mut rng);
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let method = if rng.random_bool(0.9) {
            reqwest::Method::GET
        } else {
            reqwest::Method::DELETE
        };
        let key = if rng.random_bool(0.9) {
            Some(API_KEY)
        } else {
            Some("not-the-key")
        };
        let headers = random_headers(&mut rng);
        // The contract check: a documented status and a body of its schema.
        let response = app.send_v2(method, &target, key, &headers).await;
        assert!(
            response.status < 500,
            "{target} {headers:?}: {}",
            response.status
        );
    }
    for _ in 0..150 {
        let path = LEGACY_PATHS.choose(&mut rng).unwrap();
        let query = random_query(&mut rng);
        let target = format!("{path}?{query}");
        let response = app.get(&target).await;
        assert_legacy_answer(&target, response).await;
    }
    let (status, _) = app.get_v2_json("/api/v2/usage").await;
    assert_eq!(status, 200);
}

/// A request sent over a raw socket, for sizes reqwest would refuse to build:
/// its status, and how long the answer took.
async fn raw_status(app: &TestApp, head: &str) -> (u16, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(app.host.addr())
        .await
        .expect("connect");
    // The server may answer and close before it has read it all.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_requests_are_refused_quickly_and_the_instance_serves_on() {
    let app = spawn_app().await;
    let host = app.host.addr();
    let authorization = format!("Authorization: Bearer {API_KEY}\r\n");
    let cases = [
        // A query string over the 64 KiB a URI may have.
        (
            format!("GET /api/v2/usage?from={} HTTP/1.1\r\nHost: {host}\r\n{authorization}Connection: close\r\n\r\n", "1".repeat(70_000)),
            414,
        ),
        // A header over the server's 400 KiB buffer.
        (
            format!("GET /api/v2/usage HTTP/1.1\r\nHost: {host}\r\n{authorization}X-Big: {}\r\nConnection: close\r\n\r\n", "y".repeat(1 << 20)),
            431,
        ),
        // More than 100 headers.
        (
            format!(
                "GET /api/v2/usage HTTP/1.1\r\nHost: {host}\r\n{authorization}{}Connection: close\r\n\r\n",
                (0..120).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            ),
            431,
        ),
        // 10,000 parameters: one error for each name, not for each of them.
        (
            format!(
                "GET /api/v2/usage?{} HTTP/1.1\r\nHost: {host}\r\n{authorization}Connection: close\r\n\r\n",
                vec!["x=1"; 10_000].join("&")
            ),
            400,
        ),
    ];
    for (request, expected) in cases {
        let (status, took) = raw_status(&app, &request).await;
        assert_eq!(status, expected, "{}", &request[..60]);
        assert!(took < Duration::from_secs(5), "{expected} took {took:?}");
    }
    let many = vec!["to=1"; 10_000].join("&");
    let response = app.get_v2(&format!("/api/v2/members?{many}")).await;
    assert_eq!(response.status, 400);
    assert!(response.body.len() < 1024, "{}", response.text());
    let (status, _) = app.get_v2_json("/api/v2/usage").await;
    assert_eq!(status, 200);
}

/// Text that is not UTF-8 can come only from a `SQL_ASCII` database (one that
/// stores any byte). PostgreSQL refuses to send a Latin-1 name there to a
/// UTF-8 client such as Spin's (SQLSTATE 22021), so it never reaches a
/// writer. The reports that show names answer a 500 that says why (the log
/// has PostgreSQL's message), never a panic or a wrong name; the rest serve on.
#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_is_not_utf8_fails_only_the_reports_that_show_names() {
    let db = TestDatabase::new(Data::Empty).await;
    db.execute(
        "CREATE DATABASE legacy_bytes TEMPLATE template0 ENCODING 'SQL_ASCII' \
         LC_COLLATE 'C' LC_CTYPE 'C'",
    )
    .await;
    let legacy = db.client_to("legacy_bytes").await;
    for file in Data::Seed.files() {
        legacy.batch_execute(&db_file(file)).await.expect(file);
    }
    legacy
        .batch_execute("UPDATE users SET first_name = E'Ren\\xe9e' WHERE id = 1")
        .await
        .expect("store a Latin-1 name");
    let app = spawn_app_setting(db, &[("SPIN_VARIABLE_DB_NAME", "legacy_bytes")]).await;

    for path in ["/api/reports/daily_usage", "/api/reports/user_visits"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    let (status, _) = app
        .get_v2_json("/api/v2/usage?from=2023-01-01&to=2023-03-01")
        .await;
    assert_eq!(status, 200);
    for path in [
        "/api/v2/members?from=2023-01-01&to=2023-03-01&include_inactive=true&sort=member_id",
        "/api/v2/members?include_inactive=true&sort=member_id&format=csv",
        "/api/v2/members/1",
    ] {
        let response = app.get_v2(path).await;
        assert_eq!(response.status, 500, "{path}");
        assert_eq!(
            response.json()["detail"],
            "the report data holds a value it cannot represent",
            "{path}"
        );
    }
    let logs = app.host.logs();
    assert!(
        logs.contains("report data error: ERROR 22021: invalid byte sequence"),
        "{logs}"
    );
}
