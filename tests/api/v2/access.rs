//! Only a configured key reads v2; the legacy reports and the preflight stay open.

use reqwest::Method;
use test_support::{
    db_variables, spawn_app, spawn_app_on, spawn_app_setting, Data, TestDatabase, V2Response,
    API_KEY, SUPERUSER_PASSWORD,
};

fn problem(response: V2Response) -> (u16, Option<String>, serde_json::Value) {
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let challenge = response.header("www-authenticate").map(str::to_owned);
    (response.status, challenge, response.json())
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_needs_a_configured_bearer_key() {
    let app = spawn_app().await;
    let path = "/api/v2/usage";
    let (status, challenge, body) = problem(app.send_v2(Method::GET, path, None, &[]).await);
    assert_eq!((status, body["status"].as_i64()), (401, Some(401)));
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"coworking-analytics\"")
    );
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));

    let wrong = app
        .send_v2(Method::GET, path, Some("not-the-key"), &[])
        .await;
    let (status, challenge, _) = problem(wrong);
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    let basic = [("authorization", "Basic dXNlcjp0ZXN0LWFwaS1rZXk=")];
    assert_eq!(
        app.send_v2(Method::GET, path, None, &basic).await.status,
        401
    );

    assert_eq!(app.get_v2(path).await.status, 200);
    // The legacy reports never took a key.
    assert_eq!(app.get("/api/reports/daily_usage").await.status(), 200);
    // A preflight carries no credentials.
    let options = app
        .send_v2(Method::OPTIONS, "/api/v2/members", None, &[])
        .await;
    assert_eq!(options.status, 204);
    assert_eq!(options.header("allow"), Some("GET, HEAD, OPTIONS"));
    // The document is open too.
    let document = app
        .send_v2(Method::GET, "/api/v2/openapi.json", None, &[])
        .await;
    assert_eq!(document.status, 200);
    assert_eq!(document.json()["openapi"], "3.1.0");
    assert!(!app.host.logs().contains(API_KEY), "a key in the log");
}

/// Rotation: every key of the list is let in.
#[tokio::test(flavor = "multi_thread")]
async fn any_key_of_the_list_is_let_in() {
    let db = TestDatabase::new(Data::Seed).await;
    let keys = [("SPIN_VARIABLE_API_KEYS", "old-key-1, new-key-2")];
    let app = spawn_app_setting(db, &keys).await;
    for key in ["old-key-1", "new-key-2"] {
        let response = app
            .send_v2(Method::GET, "/api/v2/members", Some(key), &[])
            .await;
        assert_eq!(response.status, 200, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_keys_v2_says_so_and_the_log_says_it_once() {
    let db = TestDatabase::new(Data::Seed).await;
    let variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    let app = spawn_app_on(db, &variables).await;
    for _ in 0..3 {
        let (status, _, body) = problem(app.get_v2("/api/v2/usage").await);
        assert_eq!(status, 401);
        assert!(
            body["detail"].as_str().unwrap().contains("api_keys"),
            "{body}"
        );
    }
    let logs = app.host.logs();
    assert_eq!(
        logs.matches("no API keys are configured").count(),
        1,
        "{logs}"
    );
}
