//! CSV, content negotiation, conditional requests and compression.

use std::io::Read;

use reqwest::header::HeaderMap;
use serde_json::Value;

use test_support::{spawn_app, spawn_app_setting, Data, TestApp, TestDatabase, API_KEY};

const USAGE: &str = "/api/v2/usage?from=2023-01-30&to=2023-02-20&granularity=week&tz=Asia/Kolkata";

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let response = app.get_v2_with(path, headers).await;
    (response.status, response.headers, response.body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_by_accept_or_format_holds_the_json_figures() {
    let app = spawn_app().await;
    let (_, _, json) = get(&app, USAGE, &[]).await;
    let json: Value = serde_json::from_slice(&json).unwrap();
    for (path, accept) in [
        (USAGE.to_string(), "text/csv"),
        (format!("{USAGE}&format=csv"), "application/json"),
        (USAGE.to_string(), "application/json;q=0.5, text/csv;q=0.9"),
        (USAGE.to_string(), "text/csv; charset=utf-8"),
    ] {
        let (status, headers, body) = get(&app, &path, &[("accept", accept)]).await;
        assert_eq!(status, 200, "{path} {accept}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/csv; charset=utf-8; header=present")
        );
        assert_eq!(
            header(&headers, "content-disposition"),
            Some("attachment; filename=\"coworking-usage_2023-01-30_2023-02-20_week.csv\"")
        );
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF line ends");
        assert_eq!(
            lines[0],
            "start,end,visits,tokens_issued,active_members,new_members"
        );
        let buckets = json["buckets"].as_array().unwrap();
        assert_eq!(lines.len(), buckets.len() + 1);
        for (line, bucket) in lines[1..].iter().zip(buckets) {
            let expected = format!(
                "{},{},{},{},{},{}",
                bucket["start"].as_str().unwrap(),
                bucket["end"].as_str().unwrap(),
                bucket["visits"],
                bucket["tokens_issued"],
                bucket["active_members"],
                bucket["new_members"]
            );
            assert_eq!(*line, expected);
        }
    }
    // `fields` chooses the columns too, in the report's order.
    let path = format!("{USAGE}&format=csv&fields=new_members,visits");
    let (status, _, body) = get(&app, &path, &[]).await;
    assert_eq!(status, 200, "{path}");
    let text = String::from_utf8(body).unwrap();
    let bucket = &json["buckets"][1];
    assert_eq!(
        text.split_terminator("\r\n").take(3).last(),
        Some(
            format!(
                "{},{},{},{}",
                bucket["start"].as_str().unwrap(),
                bucket["end"].as_str().unwrap(),
                bucket["visits"],
                bucket["new_members"]
            )
            .as_str()
        )
    );
    assert!(
        text.starts_with("start,end,visits,new_members\r\n"),
        "{text}"
    );
    // The document is JSON only, for any client that takes JSON.
    let (status, _, _) = get(
        &app,
        "/api/v2/openapi.json",
        &[("accept", "text/csv, application/json;q=0.5")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, body) = get(&app, USAGE, &[("accept", "text/html")]).await;
    assert_eq!(status, 406);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    assert!(String::from_utf8(body).unwrap().contains("text/csv"));
}

/// Every member in one CSV, without a limit; names with quotes, commas and
/// formulas survive a spreadsheet.
#[tokio::test(flavor = "multi_thread")]
async fn a_csv_of_every_member_is_one_download() {
    let app = spawn_app().await;
    app.db
        .execute("UPDATE users SET first_name = '=HYPERLINK(\"http://x\")', last_name = 'O''Neil, \"Jr\"' WHERE id = 1")
        .await;
    let path = "/api/v2/members?include_inactive=true&sort=member_id&format=csv";
    let (status, headers, body) = get(&app, path, &[]).await;
    assert_eq!(status, 200);
    assert!(
        header(&headers, "link").is_none(),
        "one page holds every row"
    );
    let (_, _, json) = get(&app, "/api/v2/members?include_inactive=true&limit=1", &[]).await;
    let total = serde_json::from_slice::<Value>(&json).unwrap()["total"]
        .as_u64()
        .unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(body.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as u64, total);
    assert!(total >= 500, "the seed's members");
    assert_eq!(&rows[0][0], "1");
    assert_eq!(&rows[0][1], "'=HYPERLINK(\"http://x\")");
    assert_eq!(&rows[0][2], "O'Neil, \"Jr\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matching_if_none_match_is_a_304_until_the_data_changes() {
    let app = spawn_app().await;
    let (status, headers, _) = get(&app, USAGE, &[]).await;
    assert_eq!(status, 200);
    let etag = header(&headers, "etag").unwrap().to_owned();
    assert!(!etag.starts_with("W/"), "a strong ETag: {etag}");
    assert_eq!(
        header(&headers, "cache-control"),
        Some("private, max-age=0")
    );
    assert_eq!(
        header(&headers, "vary"),
        Some("Accept, Accept-Encoding, Authorization")
    );
    for condition in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".into(),
    ] {
        let (status, headers, body) = get(&app, USAGE, &[("if-none-match", &condition)]).await;
        assert_eq!(status, 304, "{condition}");
        assert!(body.is_empty());
        assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
        assert!(header(&headers, "cache-control").is_some() && header(&headers, "vary").is_some());
    }
    // CSV is another representation, with another tag.
    let (status, csv_headers, _) = get(
        &app,
        USAGE,
        &[("if-none-match", &etag), ("accept", "text/csv")],
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(header(&csv_headers, "etag"), Some(etag.as_str()));
    app.db
        .execute("INSERT INTO tokens (user_id, token, created_at, used_at) VALUES (1, '1', '2023-02-05 10:00', '2023-02-05 10:01')")
        .await;
    let (status, headers, _) = get(&app, USAGE, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 200, "the answer changed");
    assert_ne!(header(&headers, "etag"), Some(etag.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn large_answers_are_gzipped_when_asked() {
    let app = spawn_app().await;
    let path = "/api/v2/members?include_inactive=true&limit=200";
    let (_, plain_headers, plain) = get(&app, path, &[]).await;
    assert!(plain.len() > 1024 && header(&plain_headers, "content-encoding").is_none());
    let (status, headers, gzipped) =
        get(&app, path, &[("accept-encoding", "br;q=1, gzip;q=0.5")]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert!(gzipped.len() < plain.len() / 2);
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(gzipped.as_slice())
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);
    assert_ne!(header(&headers, "etag"), header(&plain_headers, "etag"));
    let (_, refused, _) = get(&app, path, &[("accept-encoding", "gzip;q=0")]).await;
    assert!(header(&refused, "content-encoding").is_none());
    // A small answer is sent as it is.
    let (_, small, _) = get(
        &app,
        "/api/v2/usage?from=2023-02-01&to=2023-02-02",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert!(header(&small, "content-encoding").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn max_age_comes_from_its_variable_and_head_has_no_body() {
    let db = TestDatabase::new(Data::Seed).await;
    let app = spawn_app_setting(db, &[("SPIN_VARIABLE_CACHE_MAX_AGE", "120")]).await;
    let (_, headers, body) = get(&app, USAGE, &[]).await;
    assert_eq!(
        header(&headers, "cache-control"),
        Some("private, max-age=120")
    );
    let head = app
        .send_v2(reqwest::Method::HEAD, USAGE, Some(API_KEY), &[])
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), header(&headers, "etag"));
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
}
