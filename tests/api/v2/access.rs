//! Only a configured key reads v2; the legacy reports and the preflight stay open.

use test_support::{db_variables, spawn_app, spawn_app_on, Data, TestDatabase, API_KEY, SUPERUSER_PASSWORD};

async fn problem(response: reqwest::Response) -> (u16, Option<String>, serde_json::Value) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    (status, challenge, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_needs_a_configured_bearer_key() {
    let app = spawn_app().await;
    let url = format!("{}/api/v2/usage", app.address);
    let (status, challenge, body) = problem(app.http.get(&url).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_i64()), (401, Some(401)));
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"coworking-analytics\""));
    assert!(body["detail"].as_str().unwrap().contains("Authorization: Bearer"));

    let wrong = app.http.get(&url).bearer_auth("not-the-key").send().await.unwrap();
    let (status, challenge, _) = problem(wrong).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    let basic = app.http.get(&url).basic_auth("user", Some(API_KEY)).send().await.unwrap();
    assert_eq!(basic.status(), 401);

    assert_eq!(app.get_v2("/api/v2/usage").await.status(), 200);
    // The legacy reports never took a key.
    assert_eq!(app.get("/api/reports/daily_usage").await.status(), 200);
    // A preflight carries no credentials.
    let options = app.request(reqwest::Method::OPTIONS, "/api/v2/members").await;
    assert_eq!(options.status(), 204);
    assert_eq!(options.headers()["allow"], "GET, HEAD, OPTIONS");
    assert!(!app.host.logs().contains(API_KEY), "a key in the log");
}

/// Rotation: every key of the list is let in.
#[tokio::test(flavor = "multi_thread")]
async fn any_key_of_the_list_is_let_in() {
    let db = TestDatabase::new(Data::Seed).await;
    let mut variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    variables.push(("SPIN_VARIABLE_API_KEYS".into(), "old-key-1, new-key-2".into()));
    let app = spawn_app_on(db, &variables).await;
    for key in ["old-key-1", "new-key-2"] {
        let response = app
            .http
            .get(format!("{}/api/v2/members", app.address))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_keys_v2_says_so_and_the_log_says_it_once() {
    let db = TestDatabase::new(Data::Seed).await;
    let variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    let app = spawn_app_on(db, &variables).await;
    for _ in 0..3 {
        let (status, _, body) = problem(app.get_v2("/api/v2/usage").await).await;
        assert_eq!(status, 401);
        assert!(body["detail"].as_str().unwrap().contains("api_keys"), "{body}");
    }
    let logs = app.host.logs();
    assert_eq!(logs.matches("no API keys are configured").count(), 1, "{logs}");
}
