//! The reports: their SQL, and the rows turned into what the Flask app returned.
//!
//! Each report has two queries with the same result: one over the rollups that
//! `db/migrations/001_report_rollups.up.sql` keeps up to date (a few thousand rows
//! at any table size, plus the tokens of open time: the last hour or two), and
//! the Flask app's query over `tokens` (a scan that grows with the table), for
//! databases where the migration was not applied.
//!
//! The SQL yields typed values that Spin can decode on any data: PostgreSQL's
//! `infinity` dates and timestamps (which would fail Spin's decoding of the whole
//! query) become the values psycopg2 gave the Flask app for them (`date.max`,
//! `datetime.max`, `date.min`, `datetime.min`). Keys are sorted here, at render time,
//! as `jsonify` sorted them.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeDelta, Timelike};
use serde::ser::{Serialize, SerializeMap, Serializer};
use spin_sdk::pg4::{DbValue, RowSet};

use crate::errors::AppError;
use crate::render::{python_date, python_datetime, DatetimeFields, PythonTime};

/// Readiness: can the `tokens` table be read? Reading at most one row costs the
/// same at any table size, unlike the original's `COUNT(*)`.
pub const READINESS_SQL: &str = "SELECT 1 FROM tokens LIMIT 1";

/// The two queries of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSql {
    /// Over the rollups of `db/migrations/001_report_rollups.up.sql`.
    pub rollups: &'static str,
    /// Over `tokens`: the Flask app's query.
    pub tokens: &'static str,
}

/// The daily report over a subquery of `(day date, visits int8)` rows.
macro_rules! daily_usage_over {
    ($days:literal) => {
        concat!(
            "SELECT CASE day
         WHEN DATE 'infinity' THEN DATE '9999-12-31'
         WHEN DATE '-infinity' THEN DATE '0001-01-01'
         ELSE day
       END AS day,
       visits
FROM (",
            $days,
            ") AS daily"
        )
    };
}

/// The user visits report over a subquery of `(user_id int4, visits int8)` rows,
/// as one row of four arrays, one element per user in the same order: the ids,
/// the counts, and `joined_at` as days since 1970-01-01 and microseconds since
/// midnight (NULL where the user row is missing). One row of four lists crosses
/// Spin's PostgreSQL interface and the component boundary several times faster
/// than a row per user (measured: BENCHMARKS.md); the order is set here, in Rust.
macro_rules! user_visits_over {
    ($counts:literal) => {
        concat!(
            "SELECT array_agg(user_id) AS user_ids,
       array_agg(visits) AS visits,
       array_agg(joined_at::date - DATE '1970-01-01') AS joined_days,
       array_agg((date_part('epoch', joined_at::time) * 1000000)::int8) AS joined_times
FROM (SELECT t.user_id,
             t.visits,
             CASE users.joined_at
               WHEN TIMESTAMP 'infinity' THEN TIMESTAMP '9999-12-31 23:59:59.999999'
               WHEN TIMESTAMP '-infinity' THEN TIMESTAMP '0001-01-01 00:00:00'
               ELSE users.joined_at
             END AS joined_at
      FROM (",
            $counts,
            ") AS t
      LEFT JOIN users ON t.user_id = users.id) AS report"
        )
    };
}

// Open time is `created_at >= closed_before AND created_at <= 'infinity'`: the
// second half is always true, but it makes the pair a range to the planner,
// which then estimates a few rows (its default for a range with an unknown
// bound) instead of a third of `tokens` (its default for one unknown bound),
// and so reads them by `analytics_tokens_created_at`, without JIT compilation.

/// Used tokens per calendar day of `created_at`. The rollups keep a day's count
/// of closed time in stripes, and keep days whose count fell to zero; open time
/// (after `closed_before`) is counted from `tokens`.
pub const DAILY_USAGE: ReportSql = ReportSql {
    rollups: daily_usage_over!(
        "SELECT day, SUM(visits)::int8 AS visits
       FROM (SELECT day, visits FROM analytics.daily_used_tokens
             UNION ALL
             SELECT created_at::date, COUNT(*) FROM tokens
             WHERE created_at >= (SELECT closed_before FROM analytics.rollup_boundary)
               AND created_at <= TIMESTAMP 'infinity' AND used_at IS NOT NULL
             GROUP BY 1) AS closed_and_open
       GROUP BY day HAVING SUM(visits) <> 0"
    ),
    tokens: daily_usage_over!(
        "SELECT created_at::date AS day, COUNT(*) AS visits FROM tokens \
         WHERE used_at IS NOT NULL GROUP BY 1"
    ),
};

/// Tokens per `tokens.user_id`, with the user's `joined_at` when the user row
/// exists. The rollups keep the counts of closed time, and users whose count
/// fell to zero; open time (after `closed_before`) is counted from `tokens`.
pub const USER_VISITS: ReportSql = ReportSql {
    rollups: user_visits_over!(
        "SELECT user_id, COALESCE(closed.visits, 0) + COALESCE(open.visits, 0) AS visits
       FROM analytics.user_tokens AS closed
       FULL JOIN (SELECT user_id, COUNT(*) AS visits FROM tokens
                  WHERE created_at >= (SELECT closed_before FROM analytics.rollup_boundary)
                    AND created_at <= TIMESTAMP 'infinity'
                  GROUP BY user_id) AS open USING (user_id)
       WHERE COALESCE(closed.visits, 0) + COALESCE(open.visits, 0) <> 0"
    ),
    tokens: user_visits_over!("SELECT user_id, COUNT(*) AS visits FROM tokens GROUP BY user_id"),
};

/// Whether a rollup query's SQLSTATE means that the rollups cannot be read here
/// (the migration was not applied: no table 42P01, no schema 3F000; or the role
/// was not granted them: 42501), so that the report reads `tokens` instead.
pub fn rollups_unavailable(sqlstate: &str) -> bool {
    matches!(sqlstate, "42P01" | "3F000" | "42501")
}

/// What the log says, once, when the reports read `tokens` for want of rollups.
pub fn rollups_unavailable_notice(cause: &str) -> String {
    format!(
        "the report rollups cannot be read ({cause}): the reports read the tokens table \
         instead, which is correct but slower as it grows. Apply \
         db/migrations/001_report_rollups.up.sql, and grant the service's role USAGE on \
         schema analytics and SELECT on its tables; or set report_source=tokens, which \
         skips the attempt on every request"
    )
}

/// The daily usage report: `{"YYYY-MM-DD": used tokens created that day}`.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct DailyUsage(BTreeMap<String, i64>);

impl DailyUsage {
    /// Read the rows of [`DAILY_USAGE`]. Date strings of years 1 to 9999 sort
    /// in calendar order, so the map's order is the report's.
    pub fn from_rows(rows: &RowSet) -> Result<DailyUsage, AppError> {
        let mut days = BTreeMap::new();
        for row in &rows.rows {
            let day = match column(row, 0)? {
                DbValue::Date((year, month, day)) => {
                    python_date(*year, *month, *day)?.as_str().to_owned()
                }
                other => return Err(unexpected("day", other)),
            };
            days.insert(day, int(column(row, 1)?, "visits")?);
        }
        Ok(DailyUsage(days))
    }

    /// The days and their counts, in calendar order.
    pub fn days(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(day, visits)| (day.as_str(), *visits))
    }
}

/// One entry of the user visits report.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Visits {
    /// `str(joined_at)`, or `None` when the user row is missing.
    pub joined_at: JoinedAt,
    pub visits: i64,
}

/// The user's `joined_at`, or no user row: Python printed it `None`.
#[derive(Debug, PartialEq, Eq)]
pub struct JoinedAt(pub Option<PythonTime>);

impl Serialize for JoinedAt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(time) => time.serialize(serializer),
            None => serializer.serialize_str("None"),
        }
    }
}

/// The user visits report, by `tokens.user_id` in numeric order (each id once:
/// the queries group by it).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserVisits(Vec<(i32, Visits)>);

impl UserVisits {
    /// Read the row of arrays of [`USER_VISITS`]. `array_agg` of no rows is NULL.
    pub fn from_rows(rows: &RowSet) -> Result<UserVisits, AppError> {
        let [row] = rows.rows.as_slice() else {
            return Err(AppError::Data(format!(
                "the user visits query gave {} rows instead of one",
                rows.rows.len()
            )));
        };
        let user_ids = int32_array(column(row, 0)?, "user_ids")?;
        let visits = int64_array(column(row, 1)?, "visits")?;
        let days = int32_array(column(row, 2)?, "joined_days")?;
        let times = int64_array(column(row, 3)?, "joined_times")?;
        if [visits.len(), days.len(), times.len()] != [user_ids.len(); 3] {
            return Err(AppError::Data(
                "the user visits arrays differ in length".into(),
            ));
        }
        let mut users = Vec::with_capacity(user_ids.len());
        for (index, user_id) in user_ids.iter().enumerate() {
            let user_id = user_id.ok_or_else(|| AppError::Data("a user_id is NULL".into()))?;
            let visits = visits[index].ok_or_else(|| AppError::Data("a count is NULL".into()))?;
            let joined_at = match (days[index], times[index]) {
                (Some(days), Some(micros)) => {
                    JoinedAt(Some(python_datetime(datetime_from_epoch(days, micros)?)?))
                }
                _ => JoinedAt(None),
            };
            users.push((user_id, Visits { joined_at, visits }));
        }
        users.sort_unstable_by_key(|(user_id, _)| *user_id);
        Ok(UserVisits(users))
    }
}

/// The fields of the timestamp `days` after 1970-01-01 and `micros` after that
/// day's midnight.
fn datetime_from_epoch(days: i32, micros: i64) -> Result<DatetimeFields, AppError> {
    let out_of_range = || {
        AppError::Data(format!(
            "joined_at {days} days, {micros} µs is out of range"
        ))
    };
    let date = NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(TimeDelta::days(days.into())))
        .ok_or_else(out_of_range)?;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(
        u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| out_of_range())?,
        u32::try_from(micros.rem_euclid(1_000_000) * 1_000).map_err(|_| out_of_range())?,
    )
    .ok_or_else(out_of_range)?;
    // Months, days, hours, minutes and seconds are small: the casts cannot truncate.
    Ok((
        date.year(),
        date.month() as u8,
        date.day() as u8,
        time.hour() as u8,
        time.minute() as u8,
        time.second() as u8,
        time.nanosecond(),
    ))
}

impl Serialize for UserVisits {
    /// Integer keys become JSON strings, in numeric order as Python sorted them.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (user_id, visits) in &self.0 {
            map.serialize_entry(user_id, visits)?;
        }
        map.end()
    }
}

fn column(row: &[DbValue], index: usize) -> Result<&DbValue, AppError> {
    row.get(index)
        .ok_or_else(|| AppError::Data(format!("row has no column {index}")))
}

fn int32_array<'a>(value: &'a DbValue, name: &str) -> Result<&'a [Option<i32>], AppError> {
    match value {
        DbValue::ArrayInt32(values) => Ok(values),
        DbValue::DbNull => Ok(&[]),
        other => Err(unexpected(name, other)),
    }
}

fn int64_array<'a>(value: &'a DbValue, name: &str) -> Result<&'a [Option<i64>], AppError> {
    match value {
        DbValue::ArrayInt64(values) => Ok(values),
        DbValue::DbNull => Ok(&[]),
        other => Err(unexpected(name, other)),
    }
}

fn int(value: &DbValue, name: &str) -> Result<i64, AppError> {
    match value {
        DbValue::Int64(count) => Ok(*count),
        other => Err(unexpected(name, other)),
    }
}

fn unexpected(name: &str, value: &DbValue) -> AppError {
    AppError::Data(format!("column {name} holds an unexpected value {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json_line;
    use spin_sdk::pg4::{Column, DbDataType};

    fn rows(names: &[&str], rows: Vec<Vec<DbValue>>) -> RowSet {
        RowSet {
            columns: names
                .iter()
                .map(|name| Column {
                    name: name.to_string(),
                    data_type: DbDataType::Other(String::new()),
                })
                .collect(),
            rows,
        }
    }

    fn body(value: &impl Serialize) -> String {
        String::from_utf8(json_line(value).unwrap()).unwrap()
    }

    #[test]
    fn daily_usage_sorts_days_and_renders_compactly() {
        let set = rows(
            &["day", "visits"],
            vec![
                vec![DbValue::Date((2023, 2, 10)), DbValue::Int64(7)],
                vec![DbValue::Date((2023, 2, 7)), DbValue::Int64(40)],
                vec![DbValue::Date((999, 12, 31)), DbValue::Int64(1)],
            ],
        );
        let report = DailyUsage::from_rows(&set).unwrap();
        assert_eq!(
            body(&report),
            "{\"0999-12-31\":1,\"2023-02-07\":40,\"2023-02-10\":7}\n"
        );
    }

    #[test]
    fn empty_reports_are_empty_objects() {
        let set = rows(&["day", "visits"], vec![]);
        assert_eq!(body(&DailyUsage::from_rows(&set).unwrap()), "{}\n");
    }

    #[test]
    fn user_visits_orders_ids_numerically_and_prints_python_values() {
        // 2023-01-20 is day 19377 after 1970-01-01; 03:23:39.757813 is 12219757813 µs.
        let set = rows(
            &["user_ids", "visits", "joined_days", "joined_times"],
            vec![vec![
                DbValue::ArrayInt32(vec![Some(10), Some(9), Some(-3)]),
                DbValue::ArrayInt64(vec![Some(2), Some(1), Some(5)]),
                DbValue::ArrayInt32(vec![Some(19377), None, Some(-1)]),
                DbValue::ArrayInt64(vec![Some(12_219_757_813), None, Some(0)]),
            ]],
        );
        let report = UserVisits::from_rows(&set).unwrap();
        assert_eq!(
            body(&report),
            "{\"-3\":{\"joined_at\":\"1969-12-31 00:00:00\",\"visits\":5},\
             \"9\":{\"joined_at\":\"None\",\"visits\":1},\
             \"10\":{\"joined_at\":\"2023-01-20 03:23:39.757813\",\"visits\":2}}\n"
        );
    }

    #[test]
    fn no_users_is_a_null_row_of_arrays() {
        let set = rows(
            &["user_ids", "visits", "joined_days", "joined_times"],
            vec![vec![DbValue::DbNull; 4]],
        );
        assert_eq!(body(&UserVisits::from_rows(&set).unwrap()), "{}\n");
    }

    #[test]
    fn the_extremes_of_python_datetimes_come_back_whole() {
        // datetime.min and datetime.max, which the SQL gives for the infinities.
        assert_eq!(
            datetime_from_epoch(-719_162, 0).unwrap(),
            (1, 1, 1, 0, 0, 0, 0)
        );
        assert_eq!(
            datetime_from_epoch(2_932_896, 86_399_999_999).unwrap(),
            (9999, 12, 31, 23, 59, 59, 999_999_000)
        );
        assert!(datetime_from_epoch(0, 86_400_000_000).is_err());
        assert!(datetime_from_epoch(0, -1).is_err());
    }

    #[test]
    fn arrays_of_different_lengths_fail_the_report() {
        let set = rows(
            &["user_ids", "visits", "joined_days", "joined_times"],
            vec![vec![
                DbValue::ArrayInt32(vec![Some(1), Some(2)]),
                DbValue::ArrayInt64(vec![Some(1)]),
                DbValue::ArrayInt32(vec![None, None]),
                DbValue::ArrayInt64(vec![None, None]),
            ]],
        );
        assert!(matches!(
            UserVisits::from_rows(&set),
            Err(AppError::Data(_))
        ));
    }

    #[test]
    fn values_python_cannot_hold_fail_the_report() {
        let set = rows(
            &["day", "visits"],
            vec![vec![DbValue::Date((10000, 1, 1)), DbValue::Int64(1)]],
        );
        assert!(matches!(
            DailyUsage::from_rows(&set),
            Err(AppError::Data(_))
        ));
    }

    #[test]
    fn missing_or_forbidden_rollups_fall_back_to_tokens() {
        for code in ["42P01", "3F000", "42501"] {
            assert!(rollups_unavailable(code), "{code}");
        }
        // A syntax error, a timeout or a broken connection is not a missing migration.
        for code in ["42601", "57014", "08006", "XX000"] {
            assert!(!rollups_unavailable(code), "{code}");
        }
        let notice = rollups_unavailable_notice("ERROR 42P01: relation does not exist");
        assert!(
            notice.contains("db/migrations/001_report_rollups.up.sql"),
            "{notice}"
        );
    }

    #[test]
    fn unexpected_types_fail_the_report() {
        let set = rows(
            &["day", "visits"],
            vec![vec![DbValue::Str("2023-02-07".into()), DbValue::Int64(1)]],
        );
        assert!(matches!(
            DailyUsage::from_rows(&set),
            Err(AppError::Data(_))
        ));
    }
}
