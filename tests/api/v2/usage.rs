//! `GET /api/v2/usage` equals plain SQL, bucket by bucket and in its totals.

use chrono::{NaiveDate, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use test_support::{spawn_app, TestApp};

use super::data::{
    random_zone, spawn_app_with_random_data, spawn_app_with_random_data_and_rollups,
};
use super::reference::{self, Ask};

fn usage_path(ask: &Ask) -> String {
    format!(
        "/api/v2/usage?from={}&to={}&tz={}&granularity={}&week_start={}",
        ask.from, ask.to, ask.tz, ask.granularity, ask.week_start
    )
}

/// The report for `ask` against the reference: the zone and range as asked,
/// buckets in order that tile the range, each equal to the reference or zero.
pub async fn assert_usage_matches(
    app: &TestApp,
    ask: &Ask,
    path: &str,
    member: Option<i32>,
    report: &Value,
) {
    let (expected, totals) = reference::usage(app, ask, member).await;
    assert_eq!(report["tz"], ask.tz.as_str(), "{path}");
    assert_eq!(report["from"], ask.from.as_str(), "{path}");
    assert_eq!(report["to"], ask.to.as_str(), "{path}");
    let buckets = report["buckets"].as_array().expect("buckets");
    assert_eq!(
        buckets.first().map(|b| &b["start"]),
        Some(&Value::from(ask.from.as_str()))
    );
    assert_eq!(
        buckets.last().map(|b| &b["end"]),
        Some(&Value::from(ask.to.as_str()))
    );
    for pair in buckets.windows(2) {
        assert_eq!(
            pair[0]["end"], pair[1]["start"],
            "{path}: buckets tile the range"
        );
    }
    // The figures that `fields` chose: each bucket and the totals hold exactly those.
    let fields: Vec<&str> = report["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|field| field.as_str().unwrap())
        .collect();
    let chosen = |counts: &Value| -> Value {
        fields
            .iter()
            .map(|field| (field.to_string(), counts[field].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let zero = chosen(
        &serde_json::json!({"visits": 0, "tokens_issued": 0, "active_members": 0, "new_members": 0}),
    );
    let mut seen = 0;
    for bucket in buckets {
        let start = bucket["start"].as_str().unwrap();
        let want = expected.get(start).map_or(zero.clone(), chosen);
        seen += usize::from(expected.contains_key(start));
        let mut figures = bucket.as_object().unwrap().clone();
        figures.remove("start");
        figures.remove("end");
        assert_eq!(Value::from(figures), want, "{path}: the bucket {start}");
    }
    assert_eq!(
        seen,
        expected.len(),
        "{path}: a reference bucket is missing: {expected:?}"
    );
    assert_eq!(report["totals"], chosen(&totals), "{path}: totals");
}

/// `fields` for a random round: all four (read from `tokens`), the three
/// that the rollups hold, or one of them.
pub fn random_fields(rng: &mut StdRng) -> &'static str {
    [
        "visits,tokens_issued,active_members,new_members",
        "visits,tokens_issued,new_members",
        "new_members,tokens_issued",
        "visits",
    ][rng.random_range(0..4)]
}

/// Random ranges, zones, granularities, week starts and fields, over data
/// written in three database zones, with and without the rollups: every
/// figure equals the reference.
#[tokio::test(flavor = "multi_thread")]
async fn usage_equals_plain_sql_in_random_zones() {
    let mut rng = StdRng::seed_from_u64(14);
    for (seed, db_tz, rollups) in [
        (1, "UTC", true),
        (2, "America/New_York", true),
        (3, "Australia/Lord_Howe", false),
    ] {
        let app = if rollups {
            spawn_app_with_random_data_and_rollups(seed, db_tz, db_tz, &[]).await
        } else {
            spawn_app_with_random_data(seed, db_tz).await
        };
        for _ in 0..25 {
            let ask = random_ask(&mut rng, db_tz);
            let path = format!("{}&fields={}", usage_path(&ask), random_fields(&mut rng));
            let (status, report) = app.get_v2_json(&path).await;
            assert_eq!(status, 200, "{path}: {report}");
            assert_usage_matches(&app, &ask, &path, None, &report).await;
        }
        // A range without any data: every bucket and total zero.
        let empty = Ask {
            from: "1999-12-25".into(),
            to: "2000-02-01".into(),
            tz: "Asia/Kathmandu".into(),
            db_tz: db_tz.into(),
            granularity: "week",
            week_start: "sunday",
        };
        let path = usage_path(&empty);
        let (status, report) = app.get_v2_json(&path).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["totals"]["tokens_issued"], 0);
        assert_usage_matches(&app, &empty, &path, None, &report).await;
    }
}

/// A range around one of the data's hot days, by any granularity.
fn random_ask(rng: &mut StdRng, db_tz: &str) -> Ask {
    let centre: NaiveDate = ["2011-12-30", "2024-03-31", "2024-10-06", "2024-11-03"]
        [rng.random_range(0..4)]
    .parse()
    .unwrap();
    let from = centre - TimeDelta::days(rng.random_range(0..40));
    let to = centre + TimeDelta::days(rng.random_range(1..40));
    Ask {
        from: from.to_string(),
        to: to.to_string(),
        tz: random_zone(rng).into(),
        db_tz: db_tz.into(),
        granularity: ["day", "week", "month"][rng.random_range(0..3)],
        week_start: ["monday", "sunday"][rng.random_range(0..2)],
    }
}

/// Samoa skipped 2011-12-30: that day's bucket is empty, and the days around it
/// hold everything.
#[tokio::test(flavor = "multi_thread")]
async fn a_skipped_day_is_an_empty_bucket() {
    let app = spawn_app_with_random_data(4, "UTC").await;
    let ask = Ask {
        from: "2011-12-28".into(),
        to: "2012-01-02".into(),
        tz: "Pacific/Apia".into(),
        db_tz: "UTC".into(),
        granularity: "day",
        week_start: "monday",
    };
    let path = usage_path(&ask);
    let (status, report) = app.get_v2_json(&path).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["buckets"][2]["start"], "2011-12-30");
    assert_eq!(report["buckets"][2]["tokens_issued"], 0);
    assert!(
        report["buckets"][1]["tokens_issued"].as_i64().unwrap() > 0,
        "{report}"
    );
    assert_usage_matches(&app, &ask, &path, None, &report).await;
}

/// The far dates PostgreSQL holds: a token in 262141 AD and one in 4712 BC
/// count in ranges of their years; `infinity` counts nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn far_dates_count_in_their_years() {
    let app = spawn_app_with_random_data(5, "UTC").await;
    for (from, to) in [
        ("%2B262141-01-01", "%2B262141-12-31"),
        ("-4711-01-01", "-4710-01-01"),
    ] {
        let path = format!("/api/v2/usage?from={from}&to={to}&granularity=month&tz=Asia/Kathmandu");
        let (status, report) = app.get_v2_json(&path).await;
        assert_eq!(status, 200, "{path}: {report}");
        assert_eq!(report["totals"]["visits"], 1, "{path}: {report}");
        assert_eq!(report["totals"]["active_members"], 1, "{path}");
    }
}

/// In UTC over the seed, the daily visits are the legacy daily report's.
#[tokio::test(flavor = "multi_thread")]
async fn daily_visits_in_utc_are_the_legacy_daily_usage() {
    let app = spawn_app().await;
    let (_, legacy) = app.get_text("/api/reports/daily_usage").await;
    let legacy: serde_json::Map<String, Value> = serde_json::from_str(&legacy).unwrap();
    let (status, report) = app
        .get_v2_json("/api/v2/usage?from=2023-01-01&to=2023-04-01&tz=UTC")
        .await;
    assert_eq!(status, 200, "{report}");
    let mut total = 0;
    for bucket in report["buckets"].as_array().unwrap() {
        let day = bucket["start"].as_str().unwrap();
        let expected = legacy.get(day).and_then(Value::as_i64).unwrap_or(0);
        assert_eq!(bucket["visits"].as_i64(), Some(expected), "{day}");
        total += expected;
    }
    assert!(total > 0);
    assert_eq!(report["totals"]["visits"], total);
}

/// Without `from` and `to`: the 30 days through today in the zone, by day.
#[tokio::test(flavor = "multi_thread")]
async fn the_default_range_is_the_last_30_days() {
    let app = spawn_app().await;
    let (status, report) = app.get_v2_json("/api/v2/usage?tz=Pacific/Kiritimati").await;
    assert_eq!(status, 200, "{report}");
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Pacific::Kiritimati)
        .date_naive();
    assert_eq!(report["to"], (today + TimeDelta::days(1)).to_string());
    assert_eq!(report["buckets"].as_array().unwrap().len(), 30);
    assert_eq!(report["granularity"], "day");
    assert_eq!(report["tz"], "Pacific/Kiritimati");
}
