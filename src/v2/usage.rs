//! `GET /api/v2/usage`: visits, tokens issued, active and new members per day,
//! week or month of a range, zero-filled, with totals for the whole range.
//!
//! A token or member falls in the bucket of its local date in the report's zone:
//! its `timestamp` is read in `db_timezone` (the zone the Coworking API writes
//! in) and shown in `tz`, both by PostgreSQL's `AT TIME ZONE`, which resolves the
//! hours that daylight saving repeats or skips. Comparing local dates instead of
//! instants keeps a day whole even where its midnight is repeated or missing.
//! One query counts every bucket and the totals (`GROUPING SETS`), so a report
//! costs one round trip after Spin's prepare.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;
use spin_sdk::pg4::{DbValue, ParameterValue, RowSet};

use crate::errors::AppError;
use crate::v2::negotiate::Format;
use crate::v2::params::{check_buckets, Params, PeriodRequest, ReportPeriod};
use crate::v2::period::{epoch_days, Granularity, WeekStart};
use crate::v2::problem::Problem;

/// The query parameters that `usage` accepts.
pub const PARAMETERS: &[&str] = &["from", "to", "tz", "granularity", "week_start", "format"];

/// The counts per bucket. Parameters: `$1` the bucket bounds as days since
/// 1970-01-01 (`int4[]`), `$2` the report's zone, `$3` the database's zone, `$4`
/// one member to count alone, or NULL for all.
/// Bucket 0 is the whole range. Rows are read in a window of the bounds'
/// wall-clock dates widened by two days, wider than any two zones' offsets
/// differ, so that an index on the timestamp can serve it.
pub const USAGE_SQL: &str = "WITH edges AS (
  SELECT array_agg(DATE '1970-01-01' + day ORDER BY n) AS day
  FROM unnest($1::int4[]) WITH ORDINALITY AS e(day, n)
),
span AS (
  SELECT day, cardinality(day) - 1 AS buckets,
         (day[1] - 2)::timestamp AS low, (day[cardinality(day)] + 2)::timestamp AS high
  FROM edges
),
issued AS (
  SELECT width_bucket(((t.created_at AT TIME ZONE $3::text) AT TIME ZONE $2::text)::date, s.day)
           AS bucket,
         s.buckets, t.user_id, t.used_at IS NOT NULL AS used
  FROM span s JOIN tokens t ON t.created_at >= s.low AND t.created_at < s.high
  WHERE $4::int4 IS NULL OR t.user_id = $4::int4
),
token_counts AS (
  SELECT COALESCE(bucket, 0) AS bucket,
         COUNT(*) FILTER (WHERE used) AS visits,
         COUNT(*) AS tokens_issued,
         COUNT(DISTINCT user_id) FILTER (WHERE used) AS active_members
  FROM issued WHERE bucket BETWEEN 1 AND buckets
  GROUP BY GROUPING SETS ((bucket), ())
),
joined AS (
  SELECT width_bucket(((u.joined_at AT TIME ZONE $3::text) AT TIME ZONE $2::text)::date, s.day)
           AS bucket,
         s.buckets
  FROM span s JOIN users u ON u.joined_at >= s.low AND u.joined_at < s.high
  WHERE $4::int4 IS NULL OR u.id = $4::int4
),
member_counts AS (
  SELECT COALESCE(bucket, 0) AS bucket, COUNT(*) AS new_members
  FROM joined WHERE bucket BETWEEN 1 AND buckets
  GROUP BY GROUPING SETS ((bucket), ())
)
SELECT COALESCE(t.bucket, m.bucket)::int4 AS bucket,
       COALESCE(t.visits, 0)::int8 AS visits,
       COALESCE(t.tokens_issued, 0)::int8 AS tokens_issued,
       COALESCE(t.active_members, 0)::int8 AS active_members,
       COALESCE(m.new_members, 0)::int8 AS new_members
FROM token_counts t FULL JOIN member_counts m ON t.bucket = m.bucket";

/// A usage request's parameters, before its range is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRequest {
    pub period: PeriodRequest,
    pub granularity: Granularity,
    pub week_start: WeekStart,
    /// `format`, which overrides `Accept`.
    pub format: Option<Format>,
}

impl UsageRequest {
    pub fn parse(query: &str, default_tz: Tz) -> Result<UsageRequest, Problem> {
        let mut params = Params::parse(query, PARAMETERS);
        let period = params.period(default_tz);
        let buckets = params.buckets();
        let format = params.choice("format", Format::parse, Format::NAMES);
        let request = (|| {
            let (granularity, week_start) = buckets?;
            Some(UsageRequest {
                period: period?,
                granularity,
                week_start,
                format: format?,
            })
        })();
        params.finish(request)
    }

    /// The query, once today's date in its zone is known (when it is needed).
    pub fn resolve(&self, today: Option<NaiveDate>) -> Result<UsageQuery, Problem> {
        let period = self.period.resolve(today)?;
        check_buckets(&period, self.granularity, self.week_start)?;
        Ok(UsageQuery {
            period,
            granularity: self.granularity,
            week_start: self.week_start,
        })
    }
}

/// A usage query: its range, zone and buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub period: ReportPeriod,
    pub granularity: Granularity,
    pub week_start: WeekStart,
}

impl UsageQuery {
    /// The CSV download's name, which says what it holds:
    /// `coworking-usage_2024-01-01_2024-02-01_week.csv`; `subject` names whose.
    pub fn filename(&self, subject: &str) -> String {
        format!(
            "coworking-{subject}_{}_{}_{}.csv",
            self.period.range.from,
            self.period.range.to,
            self.granularity.as_str()
        )
    }

    /// The bounds of the buckets, in order.
    pub fn bounds(&self) -> Vec<NaiveDate> {
        self.period
            .range
            .bucket_bounds(self.granularity, self.week_start)
    }

    /// [`USAGE_SQL`]'s parameters; `member` counts one member alone.
    pub fn sql_parameters(&self, db_timezone: Tz, member: Option<i32>) -> Vec<ParameterValue> {
        let days = self
            .bounds()
            .into_iter()
            .map(|day| Some(epoch_days(day)))
            .collect();
        vec![
            ParameterValue::ArrayInt32(days),
            ParameterValue::Str(self.period.tz.name().to_owned()),
            ParameterValue::Str(db_timezone.name().to_owned()),
            member.map_or(ParameterValue::DbNull, ParameterValue::Int32),
        ]
    }
}

/// The counts of one bucket or of the whole range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Used tokens created in the bucket (the legacy reports' visits).
    pub visits: i64,
    pub tokens_issued: i64,
    /// Distinct members with a used token in the bucket.
    pub active_members: i64,
    /// Members whose `joined_at` falls in the bucket.
    pub new_members: i64,
}

/// One bucket: `[start, end)` in local dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub start: String,
    pub end: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub tz: &'static str,
    pub from: String,
    pub to: String,
    pub granularity: &'static str,
    pub week_start: &'static str,
    pub buckets: Vec<Bucket>,
    /// Over the whole range: `active_members` counts each member once.
    pub totals: Counts,
}

impl UsageReport {
    /// The report from [`USAGE_SQL`]'s rows: every bucket, with zeros where no row is.
    pub fn from_rows(query: &UsageQuery, rows: &RowSet) -> Result<UsageReport, AppError> {
        let mut counts: BTreeMap<i32, Counts> = BTreeMap::new();
        for row in &rows.rows {
            let number = |index: usize| -> Result<i64, AppError> {
                match row.get(index) {
                    Some(DbValue::Int64(value)) => Ok(*value),
                    other => Err(AppError::Data(format!(
                        "usage column {index} holds {other:?}, not an int8"
                    ))),
                }
            };
            let bucket = match row.first() {
                Some(DbValue::Int32(bucket)) => *bucket,
                other => {
                    return Err(AppError::Data(format!(
                        "usage bucket holds {other:?}, not an int4"
                    )))
                }
            };
            counts.insert(
                bucket,
                Counts {
                    visits: number(1)?,
                    tokens_issued: number(2)?,
                    active_members: number(3)?,
                    new_members: number(4)?,
                },
            );
        }
        let bounds = query.bounds();
        let buckets = bounds
            .windows(2)
            .zip(1..)
            .map(|(pair, number)| Bucket {
                start: pair[0].to_string(),
                end: pair[1].to_string(),
                counts: counts.get(&number).copied().unwrap_or_default(),
            })
            .collect();
        Ok(UsageReport {
            tz: query.period.tz.name(),
            from: query.period.range.from.to_string(),
            to: query.period.range.to.to_string(),
            granularity: query.granularity.as_str(),
            week_start: query.week_start.as_str(),
            buckets,
            totals: counts.get(&0).copied().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::pg4::{Column, DbDataType};

    fn query(text: &str) -> UsageQuery {
        let request = UsageRequest::parse(text, Tz::UTC).unwrap();
        request.resolve("2024-03-10".parse().ok()).unwrap()
    }

    fn rows(values: &[[i64; 5]]) -> RowSet {
        RowSet {
            columns: [
                "bucket",
                "visits",
                "tokens_issued",
                "active_members",
                "new_members",
            ]
            .iter()
            .map(|name| Column {
                name: (*name).into(),
                data_type: DbDataType::Int64,
            })
            .collect(),
            rows: values
                .iter()
                .map(|row| {
                    let mut values = vec![DbValue::Int32(row[0] as i32)];
                    values.extend(row[1..].iter().map(|value| DbValue::Int64(*value)));
                    values
                })
                .collect(),
        }
    }

    #[test]
    fn buckets_without_rows_are_zero() {
        let query = query("from=2024-01-01&to=2024-01-04&tz=Asia/Kathmandu");
        let report =
            UsageReport::from_rows(&query, &rows(&[[2, 5, 7, 3, 1], [0, 5, 9, 3, 1]])).unwrap();
        assert_eq!(report.tz, "Asia/Kathmandu");
        let starts: Vec<&str> = report.buckets.iter().map(|b| b.start.as_str()).collect();
        assert_eq!(starts, ["2024-01-01", "2024-01-02", "2024-01-03"]);
        assert_eq!(report.buckets[0].counts, Counts::default());
        assert_eq!(report.buckets[1].counts.visits, 5);
        assert_eq!(report.buckets[2].end, "2024-01-04");
        assert_eq!(report.totals.tokens_issued, 9);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["buckets"][1],
            serde_json::json!({"start": "2024-01-02", "end": "2024-01-03", "visits": 5,
                               "tokens_issued": 7, "active_members": 3, "new_members": 1})
        );
    }

    #[test]
    fn an_empty_range_has_zero_totals() {
        let query = query("granularity=week");
        let report = UsageReport::from_rows(&query, &rows(&[])).unwrap();
        assert_eq!(report.totals, Counts::default());
        assert_eq!(report.buckets.len(), 5);
    }

    #[test]
    fn bounds_cross_as_days_and_zones_as_names() {
        let query = query("from=1970-01-01&to=1970-01-03&tz=America/St_Johns");
        // wit-bindgen derives Debug for the values, not PartialEq.
        assert_eq!(
            format!("{:?}", query.sql_parameters(Tz::Europe__Berlin, Some(7))),
            format!(
                "{:?}",
                vec![
                    ParameterValue::ArrayInt32(vec![Some(0), Some(1), Some(2)]),
                    ParameterValue::Str("America/St_Johns".into()),
                    ParameterValue::Str("Europe/Berlin".into()),
                    ParameterValue::Int32(7),
                ]
            )
        );
    }
}
