//! The dashboard's HTTP side: where it lives, how its assets are cached and
//! compressed, and the policy that keeps the page to its own origin. What the
//! page shows is tested in a real browser (`tests/browser`).

use std::io::Read;

use reqwest::Method;

use test_support::spawn_app;

const ASSETS: [(&str, &str); 3] = [
    ("/dashboard", "text/html; charset=utf-8"),
    ("/dashboard/dashboard.css", "text/css; charset=utf-8"),
    ("/dashboard/dashboard.js", "text/javascript; charset=utf-8"),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_root_redirects_to_the_dashboard() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(response.headers()["location"], "/dashboard");

    let (status, page) = app.get_text("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<title>Coworking Analytics</title>"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_revalidated_compressed_and_kept_to_their_origin() {
    let app = spawn_app().await;
    let mut compressed = 0;
    for (path, content_type) in ASSETS {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"'), "a strong tag: {etag}");
        let plain = response.bytes().await.unwrap();

        let again = app
            .http
            .get(format!("{}{path}", app.address))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());

        let gzipped = app
            .http
            .get(format!("{}{path}", app.address))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(gzipped.headers()["vary"], "Accept-Encoding");
        let gzipped = gzipped.bytes().await.unwrap();
        compressed += gzipped.len();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gzipped[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain, "{path}");
    }
    // The whole page weighs well under issue 15's 150 KB, compressed.
    println!("the dashboard's assets: {compressed} bytes gzipped");
    assert!(compressed < 150_000, "{compressed} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_answers_get_and_head_only() {
    let app = spawn_app().await;
    for path in ["/", "/dashboard", "/dashboard/dashboard.js"] {
        let response = app.request(Method::POST, path).await;
        assert_eq!(response.status().as_u16(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
    let head = app.request(Method::HEAD, "/dashboard").await;
    assert_eq!(head.status().as_u16(), 200);
    assert!(head.bytes().await.unwrap().is_empty());
    // Other paths under it are the legacy 404.
    let (status, _) = app.get_text("/dashboard/missing.js").await;
    assert_eq!(status, 404);
}
