use reqwest::Method;

use crate::helpers::spawn_app;

const NOT_FOUND_PAGE: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n";
const METHOD_NOT_ALLOWED_PAGE: &str = "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n";
const ROUTES: [&str; 4] = [
    "/health_check",
    "/readiness_check",
    "/api/reports/daily_usage",
    "/api/reports/user_visits",
];

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_get_flasks_404_page() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/nope",
        "/health_check/",
        "/api/reports",
        "//health_check",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        assert_eq!(response.text().await.unwrap(), NOT_FOUND_PAGE, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn other_methods_get_405_with_allow() {
    let app = spawn_app().await;
    for path in ROUTES {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let response = app.request(method.clone(), path).await;
            assert_eq!(response.status().as_u16(), 405, "{method} {path}");
            assert_eq!(response.headers()["allow"], "GET, HEAD, OPTIONS");
            assert_eq!(response.text().await.unwrap(), METHOD_NOT_ALLOWED_PAGE);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn head_is_get_without_the_body() {
    let app = spawn_app().await;
    for path in ROUTES {
        let get = app.get(path).await;
        let get_type = get.headers()["content-type"].clone();
        let get_body = get.bytes().await.unwrap();

        let head = app.request(Method::HEAD, path).await;
        assert_eq!(head.status().as_u16(), 200, "{path}");
        assert_eq!(head.headers()["content-type"], get_type, "{path}");
        assert_eq!(
            head.headers()["content-length"],
            get_body.len().to_string().as_str(),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn options_lists_the_allowed_methods() {
    let app = spawn_app().await;
    let response = app
        .request(Method::OPTIONS, "/api/reports/user_visits")
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["allow"], "GET, HEAD, OPTIONS");
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn query_strings_do_not_change_the_route() {
    let app = spawn_app().await;
    let (plain_status, plain) = app.get_text("/api/reports/daily_usage").await;
    let (status, with_query) = app.get_text("/api/reports/daily_usage?format=x&y=1").await;
    assert_eq!((status, with_query), (plain_status, plain));
}
