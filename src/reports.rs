//! The reports: their SQL, and the rows turned into what the Flask app returned.
//!
//! Each report has two queries with the same result: one over the rollups that
//! `db/migrations/001_report_rollups.up.sql` keeps up to date (a few thousand rows
//! at any table size), and the Flask app's query over `tokens` (a scan that grows
//! with the table), for databases where the migration was not applied.
//!
//! The SQL yields typed values that Spin can decode on any data: PostgreSQL's
//! `infinity` dates and timestamps (which would fail Spin's decoding of the whole
//! query) become the values psycopg2 gave the Flask app for them (`date.max`,
//! `datetime.max`, `date.min`, `datetime.min`). Keys are sorted here, at render time,
//! as `jsonify` sorted them.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use spin_sdk::pg4::{DbValue, RowSet};

use crate::errors::AppError;
use crate::render::{python_date, python_datetime, PythonTime};

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

/// The user visits report over a subquery of `(user_id int4, visits int8)` rows.
macro_rules! user_visits_over {
    ($counts:literal) => {
        concat!(
            "SELECT t.user_id,
       t.visits,
       CASE users.joined_at
         WHEN TIMESTAMP 'infinity' THEN TIMESTAMP '9999-12-31 23:59:59.999999'
         WHEN TIMESTAMP '-infinity' THEN TIMESTAMP '0001-01-01 00:00:00'
         ELSE users.joined_at
       END AS joined_at
FROM (",
            $counts,
            ") AS t
LEFT JOIN users ON t.user_id = users.id"
        )
    };
}

/// Used tokens per calendar day of `created_at`. The rollups keep a day's count
/// in stripes and keep days whose count fell to zero.
pub const DAILY_USAGE: ReportSql = ReportSql {
    rollups: daily_usage_over!(
        "SELECT day, SUM(visits)::int8 AS visits FROM analytics.daily_used_tokens \
         GROUP BY day HAVING SUM(visits) <> 0"
    ),
    tokens: daily_usage_over!(
        "SELECT created_at::date AS day, COUNT(*) AS visits FROM tokens \
         WHERE used_at IS NOT NULL GROUP BY 1"
    ),
};

/// Tokens per `tokens.user_id`, with the user's `joined_at` when the user row
/// exists. The rollups keep users whose count fell to zero.
pub const USER_VISITS: ReportSql = ReportSql {
    rollups: user_visits_over!(
        "SELECT user_id, visits FROM analytics.user_tokens WHERE visits <> 0"
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
         schema analytics and SELECT on its tables"
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
    /// Read the rows of [`USER_VISITS`].
    pub fn from_rows(rows: &RowSet) -> Result<UserVisits, AppError> {
        let mut users = Vec::with_capacity(rows.rows.len());
        for row in &rows.rows {
            let user_id = match column(row, 0)? {
                DbValue::Int32(id) => *id,
                other => return Err(unexpected("user_id", other)),
            };
            let joined_at = match column(row, 2)? {
                DbValue::Datetime(datetime) => JoinedAt(Some(python_datetime(*datetime)?)),
                DbValue::DbNull => JoinedAt(None),
                other => return Err(unexpected("joined_at", other)),
            };
            let visits = int(column(row, 1)?, "visits")?;
            users.push((user_id, Visits { joined_at, visits }));
        }
        users.sort_unstable_by_key(|(user_id, _)| *user_id);
        Ok(UserVisits(users))
    }
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
        assert_eq!(body(&UserVisits::from_rows(&set).unwrap()), "{}\n");
    }

    #[test]
    fn user_visits_orders_ids_numerically_and_prints_python_values() {
        let set = rows(
            &["user_id", "visits", "joined_at"],
            vec![
                vec![
                    DbValue::Int32(10),
                    DbValue::Int64(2),
                    DbValue::Datetime((2023, 1, 20, 3, 23, 39, 757_813_000)),
                ],
                vec![DbValue::Int32(9), DbValue::Int64(1), DbValue::DbNull],
                vec![
                    DbValue::Int32(-3),
                    DbValue::Int64(5),
                    DbValue::Datetime((2022, 12, 1, 0, 0, 0, 0)),
                ],
            ],
        );
        let report = UserVisits::from_rows(&set).unwrap();
        assert_eq!(
            body(&report),
            "{\"-3\":{\"joined_at\":\"2022-12-01 00:00:00\",\"visits\":5},\
             \"9\":{\"joined_at\":\"None\",\"visits\":1},\
             \"10\":{\"joined_at\":\"2023-01-20 03:23:39.757813\",\"visits\":2}}\n"
        );
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
