//! v2 errors are RFC 9457 problems that say what to fix.

use std::time::{Duration, Instant};

use test_support::spawn_app;

#[tokio::test(flavor = "multi_thread")]
async fn a_400_names_every_bad_parameter() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v2/usage?tz=Mars/Olympus", vec!["tz"]),
        // PostgreSQL would read it as a fixed offset, not the zone.
        ("/api/v2/usage?tz=CET", vec!["tz"]),
        ("/api/v2/usage?from=2024-13-01", vec!["from"]),
        ("/api/v2/usage?from=2024-02-01&to=2024-01-01", vec!["to"]),
        (
            "/api/v2/usage?from=2000-01-01&to=2020-01-01",
            vec!["granularity"],
        ),
        (
            "/api/v2/members?sort=name&limit=5000",
            vec!["sort", "limit"],
        ),
        (
            "/api/v2/usage?colour=red&week_start=friday",
            vec!["colour", "week_start"],
        ),
        ("/api/v2/members/1?limit=5", vec!["limit"]),
        ("/api/v2/usage?fields=visits,members", vec!["fields"]),
        ("/api/v2/members/1?fields=visits,", vec!["fields"]),
        // The member list has no fields.
        ("/api/v2/members?fields=visits", vec!["fields"]),
    ];
    for (path, parameters) in cases {
        let response = app.get_v2(path).await;
        assert_eq!(response.status, 400, "{path}");
        let problem = response.json();
        assert_eq!(problem["status"], 400);
        assert_eq!(
            problem["type"],
            "tag:coworking-analytics,2026:invalid-parameters"
        );
        let named: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["parameter"].as_str().unwrap())
            .collect();
        assert_eq!(named, parameters, "{path}: {problem}");
        for error in problem["errors"].as_array().unwrap() {
            assert!(error["detail"].as_str().unwrap().len() > 10, "{error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_and_methods_are_problems() {
    let app = spawn_app().await;
    let (status, problem) = app.get_v2_json("/api/v2/nothing").await;
    assert_eq!((status, &problem["title"]), (404, &"Not Found".into()));
    let response = app
        .send_v2(
            reqwest::Method::DELETE,
            "/api/v2/usage",
            Some(test_support::API_KEY),
            &[],
        )
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD, OPTIONS"));
    // The legacy pages are as they were.
    let (status, page) = app.get_text("/api/v3/usage").await;
    assert_eq!(status, 404);
    assert!(page.starts_with("<!doctype html>"));
}

/// A stopped database: a quick 503 that names nothing internal; then recovery.
#[tokio::test(flavor = "multi_thread")]
async fn database_trouble_is_a_quick_503() {
    let mut app = spawn_app().await;
    app.db.stop().await;
    for path in ["/api/v2/usage", "/api/v2/members", "/api/v2/members/1"] {
        let started = Instant::now();
        let (status, problem) = app.get_v2_json(path).await;
        assert_eq!(status, 503, "{path}: {problem}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(problem["detail"], "database unavailable, try again later");
    }
    app.db.start().await;
    let (status, _) = app.get_v2_json("/api/v2/usage").await;
    assert_eq!(status, 200);
}
