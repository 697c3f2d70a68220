use reqwest::Method;

use test_support::spawn_app;

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
    // `/` is the dashboard's (a redirect there), no longer the legacy 404.
    for path in [
        "/nope",
        "/health_check/",
        "/health_check//",
        "/api/reports",
        "/api//reports",
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

/// Werkzeug strips leading slashes before matching: Flask answered these.
#[tokio::test(flavor = "multi_thread")]
async fn leading_repeated_slashes_reach_the_route() {
    let app = spawn_app().await;
    for path in ["//health_check", "///health_check"] {
        assert_eq!(app.get_text(path).await, (200, "ok".into()), "{path}");
    }
}

/// Werkzeug redirects a route written with inner repeated slashes to the
/// merged path, with the query as it came: Flask 3.1 behind gunicorn answered
/// these bytes (with its own Host).
#[tokio::test(flavor = "multi_thread")]
async fn inner_repeated_slashes_are_redirected_like_werkzeug() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let host = app.address.trim_start_matches("http://");
    let query = "x=1&y=%20&z=%zz&w=a+b";
    let url = format!("{}/api//reports//daily_usage?{query}", app.address);

    let response = no_redirects.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 308);
    let location = format!("http://{host}/api/reports/daily_usage?{query}");
    assert_eq!(response.headers()["location"], location.as_str());
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let escaped = location.replace('&', "&amp;");
    let page = format!(
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n\
         <p>You should be redirected automatically to the target URL: <a href=\"{escaped}\">{escaped}</a>. \
         If not, click the link.\n"
    );
    assert_eq!(
        response.headers()["content-length"],
        page.len().to_string().as_str()
    );
    assert_eq!(response.text().await.unwrap(), page);

    let head = no_redirects.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 308);
    assert_eq!(head.headers()["location"], location.as_str());
    // Methods the route does not take: 405, as for the merged path.
    let post = no_redirects.post(&url).send().await.unwrap();
    assert_eq!(post.status().as_u16(), 405);
    // Following the redirect reaches the report.
    let (_, report) = app.get_text("/api/reports/daily_usage").await;
    assert_eq!(
        app.http
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        report
    );
}
