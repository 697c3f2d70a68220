//! What Spin's HTTP trigger does around the component, as Spin 3.6.3 and
//! containerd-shim-spin v0.24.0 do it (read in `crates/trigger-http`): its own
//! `/.well-known/spin/` endpoints, the requests it refuses without an answer,
//! and how the component's log reaches the pod's.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use test_support::{spawn_app, spawn_app_with, Data, TestApp};

/// Send `request` as it is and read until the server closes.
async fn raw(app: &TestApp, request: &str) -> String {
    let mut stream = TcpStream::connect(app.host.addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server ends the connection")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_answers_its_well_known_endpoints_itself() {
    let app = spawn_app_with(Data::Schema).await;

    let health = app.get("/.well-known/spin/health").await;
    assert_eq!(health.status().as_u16(), 200);
    assert!(health.headers().get("content-type").is_none());
    assert_eq!(health.text().await.unwrap(), "OK");

    let info = app.get("/.well-known/spin/info").await;
    assert_eq!(info.status().as_u16(), 200);
    assert_eq!(info.headers()["content-type"], "application/json");
    let spin: toml::Table = std::fs::read_to_string(test_support::project_root().join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let expected = format!(
        "{{\n  \"name\": \"{}\",\n  \"version\": \"{}\"\n}}",
        spin["application"]["name"].as_str().unwrap(),
        spin["application"]["version"].as_str().unwrap()
    );
    assert_eq!(info.text().await.unwrap(), expected);

    for path in ["/.well-known/spin/other", "/.well-known/spin/health/"] {
        let response = app.request(reqwest::Method::POST, path).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert!(response.bytes().await.unwrap().is_empty(), "{path}");
    }
    // Without the trailing slash it is the component's path, and Flask's 404.
    let (status, body) = app.get_text("/.well-known/spin").await;
    assert_eq!(status, 404);
    assert!(body.contains("Not Found"), "{body}");
}

/// A routed request without an authority, or whose absolute URI disagrees
/// with its `Host`, ends without an answer.
#[tokio::test(flavor = "multi_thread")]
async fn spin_closes_requests_without_a_host_it_can_trust() {
    let app = spawn_app_with(Data::Schema).await;
    for request in [
        "GET /health_check HTTP/1.1\r\n\r\n",
        "GET /health_check HTTP/1.0\r\n\r\n",
        "GET http://a.example/health_check HTTP/1.1\r\nHost: b.example\r\n\r\n",
        "GET /health_check HTTP/1.1\r\nHost: \r\n\r\n",
    ] {
        assert_eq!(raw(&app, request).await, "", "{request:?}");
    }
    for request in [
        "GET http://a.example/health_check HTTP/1.1\r\nHost: A.example\r\nConnection: close\r\n\r\n",
        "GET http://a.example/health_check HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /.well-known/spin/health HTTP/1.0\r\n\r\n",
    ] {
        let answer = raw(&app, request).await;
        let status = answer.lines().next().unwrap_or_default();
        assert!(status.ends_with(" 200 OK"), "{request:?}: {answer}");
    }
}

/// Each log record reaches the log in one write, so that records of requests
/// served at once never share a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_log_record_is_one_write_even_under_load() {
    let app = spawn_app().await;
    let requests = (0..48).map(|index| {
        let path = if index % 4 == 0 {
            "/api/reports/not_here"
        } else {
            "/api/reports/daily_usage"
        };
        app.get(path)
    });
    futures_util::future::join_all(requests).await;
    // A failure's record too: a missing table, logged as ERROR.
    app.db
        .execute("ALTER TABLE tokens RENAME TO tokens_gone")
        .await;
    let failures = (0..8).map(|_| app.get("/api/reports/user_visits"));
    futures_util::future::join_all(failures).await;

    let writes = app.host.log_writes();
    let (info, error) = (
        writes
            .iter()
            .filter(|w| w.contains("] INFO in app: {"))
            .count(),
        writes
            .iter()
            .filter(|w| w.contains("] ERROR in app: "))
            .count(),
    );
    assert_eq!(
        (info, error),
        (36, 8),
        "one record per report and per failure"
    );
    for write in &writes {
        assert!(
            write.ends_with('\n') && write.matches('\n').count() == 1,
            "a write that is not one whole record: {write:?}"
        );
        assert!(write.starts_with('['), "{write:?}");
    }
}

/// The component's line for a refused connection reads as one sentence, from
/// Spin's multi-line text.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_logged_on_one_line() {
    let mut app = spawn_app_with(Data::Schema).await;
    app.db.stop().await;
    assert_eq!(app.get("/api/reports/daily_usage").await.status(), 503);
    let logs = app.host.logs();
    let line = logs
        .lines()
        .find(|line| line.contains("ERROR in app"))
        .expect("an error line");
    assert!(
        line.ends_with(
            "database unavailable: Error occurred while creating a new object: error connecting \
             to server: Connection refused (os error 111)"
        ),
        "{line}"
    );
}
