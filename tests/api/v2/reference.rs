//! Each v2 figure computed by plain SQL over `tokens` and `users`, written
//! apart from the component's: every row's local date by PostgreSQL's own
//! `AT TIME ZONE`, grouped by `date_trunc`, on a client session whose
//! `TimeZone` is the report's, so that `to_char` writes the offsets.
//!
//! Rows in PostgreSQL's last year are left out: shown in a zone east of UTC
//! they would pass its last timestamp, and no range reaches them.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use test_support::TestApp;

const LAST_YEAR: &str = "294276-01-01";

/// A report's query, as the test asks it.
#[derive(Debug, Clone)]
pub struct Ask {
    pub from: String,
    pub to: String,
    pub tz: String,
    pub db_tz: String,
    pub granularity: &'static str,
    pub week_start: &'static str,
}

/// The local date of a `timestamp` column in the report's zone.
fn local_day(column: &str, ask: &Ask) -> String {
    format!(
        "((({column}) AT TIME ZONE '{}') AT TIME ZONE '{}')::date",
        ask.db_tz, ask.tz
    )
}

/// A date of the API (ISO 8601, whose year 0 is 1 BC and -1 is 2 BC) as a
/// PostgreSQL date literal, which counts years BC.
fn date_literal(iso: &str) -> String {
    match iso.strip_prefix('-') {
        Some(before_zero) => {
            let (year, month_day) = before_zero.split_once('-').expect("a date");
            let year: i64 = year.parse().expect("a year");
            format!("DATE '{:04}-{month_day} BC'", year + 1)
        }
        None => format!("DATE '{iso}'"),
    }
}

/// The first day of a day's period: `date_trunc` weeks start on Monday.
fn period_start(day: &str, ask: &Ask) -> String {
    match (ask.granularity, ask.week_start) {
        ("day", _) => day.to_string(),
        ("week", "monday") => format!("date_trunc('week', ({day})::timestamp)::date"),
        ("week", _) => format!(
            "(date_trunc('week', ({day})::timestamp + INTERVAL '1 day') - INTERVAL '1 day')::date"
        ),
        _ => format!("date_trunc('month', ({day})::timestamp)::date"),
    }
}

/// `{start: {visits, tokens_issued, active_members, new_members}}` for the buckets
/// with anything in them, and the totals. A bucket starts at its period's
/// start or at `from`, whichever is later.
pub async fn usage(
    app: &TestApp,
    ask: &Ask,
    member: Option<i32>,
) -> (BTreeMap<String, Value>, Value) {
    let client = app.db.client().await;
    let token_day = local_day("created_at", ask);
    let join_day = local_day("joined_at", ask);
    let member_filter = |column: &str| match member {
        Some(id) => format!("AND {column} = {id}"),
        None => String::new(),
    };
    let range = |day: &str| {
        format!(
            "{day} >= {} AND {day} < {}",
            date_literal(&ask.from),
            date_literal(&ask.to)
        )
    };
    let sql = format!(
        "WITH t AS (SELECT {token_day} AS day, user_id, used_at IS NOT NULL AS used FROM tokens
                    WHERE isfinite(created_at) AND created_at < '{last}' {tf}),
              u AS (SELECT {join_day} AS day FROM users
                    WHERE isfinite(joined_at) AND joined_at < '{last}' {uf}),
              tb AS (SELECT to_char(GREATEST({tp}, {from}), 'YYYY-MM-DD') AS start,
                            COUNT(*) FILTER (WHERE used) AS visits, COUNT(*) AS issued,
                            COUNT(DISTINCT user_id) FILTER (WHERE used) AS active
                     FROM t WHERE {tr} GROUP BY 1),
              ub AS (SELECT to_char(GREATEST({up}, {from}), 'YYYY-MM-DD') AS start,
                            COUNT(*) AS joined
                     FROM u WHERE {ur} GROUP BY 1)
         SELECT COALESCE(tb.start, ub.start), COALESCE(visits, 0), COALESCE(issued, 0),
                COALESCE(active, 0), COALESCE(joined, 0)
         FROM tb FULL JOIN ub ON tb.start = ub.start
         UNION ALL
         SELECT 'totals', (SELECT COUNT(*) FILTER (WHERE used) FROM t WHERE {tr}),
                (SELECT COUNT(*) FROM t WHERE {tr}),
                (SELECT COUNT(DISTINCT user_id) FILTER (WHERE used) FROM t WHERE {tr}),
                (SELECT COUNT(*) FROM u WHERE {ur})",
        last = LAST_YEAR,
        tf = member_filter("user_id"),
        uf = member_filter("id"),
        tp = period_start("day", ask),
        up = period_start("day", ask),
        from = date_literal(&ask.from),
        tr = range("day"),
        ur = range("day"),
    );
    let rows = client
        .query(&sql, &[])
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err:?}"));
    let mut buckets = BTreeMap::new();
    let mut totals = Value::Null;
    for row in rows {
        let counts = json!({
            "visits": row.get::<_, i64>(1),
            "tokens_issued": row.get::<_, i64>(2),
            "active_members": row.get::<_, i64>(3),
            "new_members": row.get::<_, i64>(4),
        });
        let start: String = row.get(0);
        if start == "totals" {
            totals = counts;
        } else {
            buckets.insert(start, counts);
        }
    }
    (buckets, totals)
}

/// Every listed member's row, in member id order: members with a token in the
/// range (or every member), with their figures and times in the report's zone,
/// and (to sort by, then drop) `joined_instant` and `last_instant` as epochs.
pub async fn members(app: &TestApp, ask: &Ask, include_inactive: bool) -> Vec<Value> {
    let client = app.db.client().await;
    client
        .batch_execute(&format!("SET TIME ZONE '{}'", ask.tz))
        .await
        .unwrap();
    let day = local_day("created_at", ask);
    // ISO 8601 writes years past 9999 with a sign, and years BC as 0, -1, ...;
    // an offset of local mean time with its seconds.
    let iso = |instant: &str| {
        format!(
            "CASE WHEN extract(year FROM {instant}) > 9999 THEN '+' || to_char({instant}, 'YYYY') \
                  WHEN extract(year FROM {instant}) < 0 \
                  THEN '-' || lpad((-1 - extract(year FROM {instant})::int)::text, 4, '0') \
                  ELSE to_char({instant}, 'YYYY') END \
             || to_char({instant}, '-MM-DD\"T\"HH24:MI:SS.US') || to_char({instant}, 'TZH:TZM') \
             || CASE WHEN extract(timezone FROM {instant})::int % 60 <> 0 \
                  THEN ':' || lpad((abs(extract(timezone FROM {instant})::int) % 60)::text, 2, '0') \
                  ELSE '' END"
        )
    };
    let sql = format!(
        "WITH a AS (SELECT user_id, COUNT(*) FILTER (WHERE used_at IS NOT NULL) AS visits,
                           COUNT(*) AS issued,
                           MAX(created_at AT TIME ZONE '{db}') FILTER (WHERE used_at IS NOT NULL) AS last
                    FROM tokens WHERE isfinite(created_at) AND created_at < '{last_year}'
                      AND {day} >= {from} AND {day} < {to}
                    GROUP BY user_id),
              ids AS (SELECT user_id AS id FROM a UNION SELECT id FROM users WHERE {inactive})
         SELECT ids.id, u.first_name::text, u.last_name::text,
                CASE WHEN isfinite(u.joined_at) THEN {joined} END,
                COALESCE(a.visits, 0), COALESCE(a.issued, 0), {last},
                CASE WHEN isfinite(u.joined_at)
                  THEN extract(epoch FROM u.joined_at AT TIME ZONE '{db}')::float8 END,
                extract(epoch FROM a.last)::float8
         FROM ids LEFT JOIN a ON a.user_id = ids.id LEFT JOIN users u ON u.id = ids.id
         ORDER BY ids.id",
        db = ask.db_tz,
        last_year = LAST_YEAR,
        from = date_literal(&ask.from),
        to = date_literal(&ask.to),
        inactive = include_inactive,
        joined = iso(&format!("(u.joined_at AT TIME ZONE '{}')", ask.db_tz)),
        last = iso("a.last"),
    );
    let rows = client
        .query(&sql, &[])
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err:?}"));
    rows.iter()
        .map(|row| {
            json!({
                "member_id": row.get::<_, i32>(0),
                "first_name": row.get::<_, Option<String>>(1),
                "last_name": row.get::<_, Option<String>>(2),
                "joined_at": row.get::<_, Option<String>>(3),
                "visits": row.get::<_, i64>(4),
                "tokens_issued": row.get::<_, i64>(5),
                "last_visit": row.get::<_, Option<String>>(6),
                "joined_instant": row.get::<_, Option<f64>>(7),
                "last_instant": row.get::<_, Option<f64>>(8),
            })
        })
        .collect()
}
