//! `GET /api/v2/members` and `/api/v2/members/{id}` equal plain SQL, in every
//! order and page.

use std::cmp::Ordering;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use test_support::TestApp;

use super::data::{
    random_zone, spawn_app_with_random_data, spawn_app_with_random_data_and_rollups, HOT_DAYS,
    MEMBERS,
};
use super::reference::{self, Ask};
use super::usage::assert_usage_matches;

fn ask(tz: &str, db_tz: &str, from: &str, to: &str) -> Ask {
    Ask {
        from: from.into(),
        to: to.into(),
        tz: tz.into(),
        db_tz: db_tz.into(),
        granularity: "week",
        week_start: "sunday",
    }
}

/// The reference rows in a sort's order, ties by member id.
fn sorted(mut rows: Vec<Value>, sort: &str) -> Vec<Value> {
    let key = |row: &Value, field: &str| row[field].clone();
    rows.sort_by(|a, b| {
        let by = |field: &str, descending: bool| -> Ordering {
            // NULLs last, whatever the direction.
            match (key(a, field), key(b, field)) {
                (Value::Null, Value::Null) => Ordering::Equal,
                (Value::Null, _) => Ordering::Greater,
                (_, Value::Null) => Ordering::Less,
                (x, y) => {
                    let order = compare(&x, &y);
                    if descending {
                        order.reverse()
                    } else {
                        order
                    }
                }
            }
        };
        let primary = match sort {
            "-visits" => by("visits", true),
            "visits" => by("visits", false),
            "joined_at" => by("joined_instant", false),
            "-joined_at" => by("joined_instant", true),
            "-last_visit" => by("last_instant", true),
            _ => Ordering::Equal,
        };
        primary.then(compare(&a["member_id"], &b["member_id"]))
    });
    rows
}

fn compare(x: &Value, y: &Value) -> Ordering {
    match (x.as_f64(), y.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap(),
        _ => x.as_str().cmp(&y.as_str()),
    }
}

fn strip(mut row: Value) -> Value {
    let object = row.as_object_mut().unwrap();
    object.remove("joined_instant");
    object.remove("last_instant");
    row
}

const SORTS: [&str; 6] = [
    "-visits",
    "visits",
    "joined_at",
    "-joined_at",
    "member_id",
    "-last_visit",
];

/// Lists every page of `ask` in `sort`, `limit` rows a page, following the
/// `Link` headers, and compares the whole list with plain SQL.
async fn assert_list_matches(
    app: &TestApp,
    ask: &Ask,
    sort: &str,
    include_inactive: bool,
    limit: usize,
) {
    let expected = reference::members(app, ask, include_inactive).await;
    let expected: Vec<Value> = sorted(expected, sort).into_iter().map(strip).collect();
    let mut offset = 0;
    let mut listed = Vec::new();
    loop {
        let path = format!(
            "/api/v2/members?from={}&to={}&tz={}&sort={sort}&limit={limit}&offset={offset}\
             &include_inactive={include_inactive}",
            ask.from, ask.to, ask.tz
        );
        let response = app.get_v2(&path).await;
        assert_eq!(response.status, 200, "{path}");
        let link = response.header("link").map(str::to_owned);
        let page = response.json();
        assert_eq!(page["total"], expected.len(), "{path}");
        listed.extend(page["members"].as_array().unwrap().iter().cloned());
        offset += limit;
        let next = link
            .as_deref()
            .is_some_and(|link| link.contains("rel=\"next\""));
        assert_eq!(next, offset < expected.len(), "{path}: {link:?}");
        if !next {
            break;
        }
        assert!(link.unwrap().contains(&format!("offset={offset}>")));
    }
    assert_eq!(
        listed, expected,
        "{} to {}, sort {sort} in {}, inactive {include_inactive}",
        ask.from, ask.to, ask.tz
    );
}

/// Corrections of closed time to the latest visits before `before`: member
/// 4's deleted, 5's unused, 7's moved to member 6; then `more`.
async fn correct_latest_visits(app: &TestApp, before: &str, more: &str) {
    let latest = |member: i32| {
        format!(
            "(SELECT id FROM tokens WHERE user_id = {member} AND used_at IS NOT NULL \
             AND created_at < '{before}' ORDER BY created_at DESC LIMIT 1)"
        )
    };
    app.db
        .execute(&format!(
            "DELETE FROM tokens WHERE id = {};
             UPDATE tokens SET used_at = NULL WHERE id = {};
             UPDATE tokens SET user_id = 6 WHERE id = {};
             {more}",
            latest(4),
            latest(5),
            latest(7)
        ))
        .await;
}

/// The first of `path`'s list is member 3, with the 1,000 visits more that
/// only the rollups hold.
async fn assert_member_3_leads(app: &TestApp, path: &str) {
    let (status, leaders) = app.get_v2_json(path).await;
    assert_eq!(status, 200, "{path}: {leaders}");
    assert_eq!(leaders["members"][0]["member_id"], 3, "{path}: {leaders}");
    assert!(
        leaders["members"][0]["visits"].as_i64().unwrap() > 1000,
        "{path}: {leaders}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_order_and_page_equals_plain_sql() {
    let mut rng = StdRng::seed_from_u64(15);
    let db_tz = "Europe/London";
    let app = spawn_app_with_random_data(6, db_tz).await;
    for round in 0..8 {
        let tz = random_zone(&mut rng);
        // Every other range ends on days crowded with tokens, so that its ends
        // cut through them in each zone.
        let (from, to) = if round % 4 < 2 {
            ("2024-03-01", "2024-11-30")
        } else {
            let first = rng.random_range(0..HOT_DAYS.len() - 1);
            let last = rng.random_range(first + 1..HOT_DAYS.len());
            (HOT_DAYS[first], HOT_DAYS[last])
        };
        let limit = rng.random_range(1..15);
        assert_list_matches(
            &app,
            &ask(tz, db_tz, from, to),
            SORTS[round % 6],
            round % 2 == 1,
            limit,
        )
        .await;
    }
}

/// With the rollups, a range that starts before every token reads the
/// per-member counts of closed time, less the tokens after the range's end
/// and plus those of open time (written now). Ends that cut through crowded days, and members whose latest visit
/// is after the end (looked up), equal plain SQL, before and after
/// corrections of closed time; a count that only the rollups hold shows that
/// they were read, and only there.
#[tokio::test(flavor = "multi_thread")]
async fn all_time_from_the_rollups_equals_plain_sql() {
    let mut rng = StdRng::seed_from_u64(16);
    let db_tz = "America/Havana";
    let app = spawn_app_with_random_data_and_rollups(9, db_tz, db_tz, &[]).await;
    let all_time = |tz: &'static str, to: &'static str| ask(tz, db_tz, "-4712-01-01", to);
    // Tokens of open time: written now, after the rollups' boundary.
    app.db
        .execute(&format!(
            "INSERT INTO tokens (user_id, token, created_at, used_at) \
             SELECT id % 7 + 1, '999999', now() AT TIME ZONE '{db_tz}', \
                    CASE WHEN id % 2 = 0 THEN now() AT TIME ZONE '{db_tz}' END \
             FROM generate_series(1, 12) AS id"
        ))
        .await;
    let ends = [HOT_DAYS[0], HOT_DAYS[3], HOT_DAYS[7], "2100-01-01"];
    for round in 0..10 {
        let tz = random_zone(&mut rng);
        let to = ends[round % ends.len()];
        assert_list_matches(&app, &all_time(tz, to), SORTS[round % 6], round % 3 == 0, 7).await;
    }
    // Corrections of closed time: a member's latest visit taken away, one
    // unused, a token moved to another member and an early one added.
    correct_latest_visits(
        &app,
        "2100-01-01",
        "INSERT INTO tokens (user_id, token, created_at, used_at) \
         VALUES (8, '000008', '1900-01-01 10:00', '1900-01-01 10:05');",
    )
    .await;
    // The most visits first, without the inactive: only the rollups' leaders
    // are read, with the members that the window changes. Small pages, so
    // that members whose tokens after the end take them off the top (and open
    // time's, which put them on) are paged through.
    for (round, to) in ends.into_iter().enumerate() {
        let tz = random_zone(&mut rng);
        assert_list_matches(&app, &all_time(tz, to), "-visits", false, 1 + round % 3).await;
    }
    for (round, to) in ends.into_iter().enumerate() {
        let sort = if round % 2 == 0 {
            "-last_visit"
        } else {
            "-visits"
        };
        assert_list_matches(&app, &all_time("Asia/Kolkata", to), sort, false, 50).await;
    }

    // Tokens that only the rollups hold, for member 3.
    app.db
        .execute(
            "UPDATE analytics.user_tokens SET visits = visits + 1000, used = used + 1000 \
             WHERE user_id = 3",
        )
        .await;
    assert_member_3_leads(
        &app,
        "/api/v2/members?from=-4712-01-01&to=2100-01-01&tz=UTC&limit=1",
    )
    .await;
    let issued = |from: &'static str, to: &'static str| {
        let app = &app;
        async move {
            let path = format!(
                "/api/v2/members?from={from}&to={to}&tz=UTC&sort=member_id&limit=1000\
                 &include_inactive=true"
            );
            let (status, page) = app.get_v2_json(&path).await;
            assert_eq!(status, 200, "{path}: {page}");
            let listed = page["members"].as_array().unwrap();
            let listed = listed.iter().find(|row| row["member_id"] == 3).unwrap();
            let ask = ask("UTC", db_tz, from, to);
            let expected = reference::members(app, &ask, true).await;
            let expected = expected.iter().find(|row| row["member_id"] == 3).unwrap();
            listed["tokens_issued"].as_i64().unwrap() - expected["tokens_issued"].as_i64().unwrap()
        }
    };
    assert_eq!(issued("-4712-01-01", "2100-01-01").await, 1000);
    assert_eq!(issued("-4712-01-01", HOT_DAYS[7]).await, 1000);
    // Starting after the first token, or ending so long before today that the
    // window after the end would be longer than the range: from `tokens`.
    assert_eq!(issued("2000-01-01", "2100-01-01").await, 0);
    assert_eq!(issued("-4712-01-01", "-4700-01-01").await, 0);
}

/// With the rollups, a page of the most visits first over a month reads the
/// month's per-member counts, corrected by the tokens in the hours where the
/// month in the report's zone and in UTC differ, and by open time. Months
/// whose edges cut through crowded days, in random zones, equal plain SQL,
/// before and after corrections of closed time (one moves a token to the
/// month before), and with the boundary moved back into a month; a count
/// that only the month's rollups hold shows that they were read, and only
/// where they serve.
#[tokio::test(flavor = "multi_thread")]
async fn a_month_from_the_rollups_equals_plain_sql() {
    let mut rng = StdRng::seed_from_u64(17);
    let app = spawn_app_with_random_data_and_rollups(10, "UTC", "UTC", &[]).await;
    let months = [
        ("2024-03-01", "2024-04-01"),
        ("2024-04-01", "2024-05-01"),
        ("2024-10-01", "2024-11-01"),
        ("2024-11-01", "2024-12-01"),
        ("2011-12-01", "2012-01-01"),
    ];
    let check_months = |rng: &mut StdRng| {
        let app = &app;
        let zones: Vec<&str> = (0..months.len()).map(|_| random_zone(rng)).collect();
        async move {
            for (round, ((from, to), tz)) in months.into_iter().zip(zones).enumerate() {
                let ask = ask(tz, "UTC", from, to);
                assert_list_matches(app, &ask, "-visits", false, 1 + round % 3).await;
            }
        }
    };
    check_months(&mut rng).await;
    // Corrections of closed time: a member's latest visit of March taken
    // away, one unused, one moved to another member, one moved into February,
    // and one added.
    correct_latest_visits(
        &app,
        "2024-04-01",
        "UPDATE tokens SET created_at = '2024-02-29 22:00' WHERE id = (SELECT id FROM tokens \
           WHERE user_id = 8 AND used_at IS NOT NULL AND created_at >= '2024-03-01' \
           ORDER BY created_at LIMIT 1);
         INSERT INTO tokens (user_id, token, created_at, used_at) \
           VALUES (9, '000009', '2024-03-31 23:00', '2024-03-31 23:05');",
    )
    .await;
    check_months(&mut rng).await;
    // The boundary back in the middle of a crowded end of March: the rest of
    // the month, and the months after it, are open time.
    app.db
        .execute("SELECT analytics.move_rollup_boundary('2024-03-30 12:00')")
        .await;
    check_months(&mut rng).await;
    for tz in ["Asia/Kolkata", "Pacific/Kiritimati", "America/Havana"] {
        let ask = ask(tz, "UTC", "2024-03-01", "2024-04-01");
        assert_list_matches(&app, &ask, "-visits", false, 2).await;
    }
    app.db.execute("SELECT analytics.close_rollups()").await;

    // Tokens that only the rollups of March hold, for member 3.
    app.db
        .execute(
            "UPDATE analytics.member_months SET visits = visits + 1000, used = used + 1000 \
             WHERE user_id = 3 AND month = '2024-03-01'",
        )
        .await;
    assert_member_3_leads(
        &app,
        "/api/v2/members?from=2024-03-01&to=2024-04-01&tz=Asia/Kolkata&limit=1",
    )
    .await;
    // Not a month (the difference would be more than a quarter of the
    // range), or not listed by the most visits first: from `tokens`.
    for path in [
        "/api/v2/members?from=2024-03-04&to=2024-03-25&tz=UTC&limit=1",
        "/api/v2/members?from=2024-03-01&to=2024-04-01&tz=UTC&limit=1&sort=visits",
        "/api/v2/members?from=2024-03-01&to=2024-04-01&tz=UTC&include_inactive=true",
    ] {
        let (status, page) = app.get_v2_json(path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let members = page["members"].as_array().unwrap();
        assert!(
            members
                .iter()
                .all(|row| row["visits"].as_i64().unwrap() < 1000),
            "{path}: {page}"
        );
    }
}

/// One member: the row of the list and that member's usage series.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_has_its_row_and_its_own_series() {
    let db_tz = "America/New_York";
    let app = spawn_app_with_random_data(7, db_tz).await;
    let ask = ask("Asia/Kolkata", db_tz, "2024-02-25", "2024-11-10");
    let rows: Vec<Value> = reference::members(&app, &ask, true)
        .await
        .into_iter()
        .map(strip)
        .collect();
    // A member with tokens, one without a member row, one without tokens.
    for id in [3, MEMBERS + 2, 1001] {
        let path = format!(
            "/api/v2/members/{id}?from={}&to={}&tz={}&granularity=week&week_start=sunday",
            ask.from, ask.to, ask.tz
        );
        let (status, report) = app.get_v2_json(&path).await;
        assert_eq!(status, 200, "{path}: {report}");
        let expected = rows
            .iter()
            .find(|row| row["member_id"] == id)
            .expect("a reference row");
        assert_eq!(&report["member"], expected, "{path}");
        assert_usage_matches(&app, &ask, &path, Some(id), &report["usage"]).await;
    }
    for missing in ["9999", "0", "abc", "99999999999"] {
        let (status, problem) = app.get_v2_json(&format!("/api/v2/members/{missing}")).await;
        assert_eq!(status, 404, "{missing}: {problem}");
        assert_eq!(problem["status"], 404);
    }
}

/// Far and infinite `joined_at`: shown with ISO 8601's sign, or null.
#[tokio::test(flavor = "multi_thread")]
async fn far_times_show_with_a_sign_and_infinite_ones_as_null() {
    let app = spawn_app_with_random_data(8, "UTC").await;
    let (status, page) = app
        .get_v2_json("/api/v2/members?include_inactive=true&sort=-joined_at&limit=2&tz=UTC")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["members"][0]["member_id"], 1001);
    assert_eq!(
        page["members"][0]["joined_at"],
        "+200000-01-01T00:00:00.000000+00:00"
    );
    let (_, page) = app
        .get_v2_json(
            "/api/v2/members?include_inactive=true&sort=joined_at&tz=Asia/Kolkata&limit=1000",
        )
        .await;
    let members = page["members"].as_array().unwrap();
    let minus_infinity = members.iter().find(|m| m["member_id"] == 1002).unwrap();
    assert_eq!(minus_infinity["joined_at"], Value::Null);
    // PostgreSQL's last day, which no zone's conversion can take: null, not a 500.
    app.db
        .execute("INSERT INTO users (id, first_name, last_name, joined_at) VALUES (1003, 'Last', 'Day', '294276-12-31 20:00')")
        .await;
    let (status, page) = app
        .get_v2_json(
            "/api/v2/members?include_inactive=true&sort=member_id&tz=Asia/Kolkata&limit=1000",
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let last_day = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member_id"] == 1003)
        .unwrap();
    assert_eq!(last_day["joined_at"], Value::Null);
    let (_, page) = app
        .get_v2_json("/api/v2/members?from=-4711-01-01&to=-4710-01-01&tz=Asia/Kolkata")
        .await;
    // Local mean time in Kolkata then: +05:53:28.
    assert_eq!(
        page["members"][0]["last_visit"],
        "-4711-06-01T17:53:28.000000+05:53:28"
    );
}
