//! `GET /api/v2/usage`: visits, tokens issued, active and new members per day,
//! week or month of a range, zero-filled, with totals for the whole range.
//!
//! A token or member falls in the bucket of its local date in the report's zone:
//! its `timestamp` is read in `db_timezone` (the zone the Coworking API writes
//! in) and shown in `tz`, both by PostgreSQL's `AT TIME ZONE`, which resolves the
//! hours that daylight saving repeats or skips. Comparing local dates instead of
//! instants keeps a day whole even where its midnight is repeated or missing.
//! One query counts every bucket and the totals (`GROUPING SETS`), so a report
//! costs one round trip after Spin's prepare; `fields` chooses the figures
//! (`measures`), and which query reads them (`usage_sql`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;
use spin_sdk::pg4::{DbValue, ParameterValue, RowSet};

use crate::errors::AppError;
use crate::v2::measures::{Counts, Measures};
use crate::v2::negotiate::Format;
use crate::v2::params::{check_buckets, Params, PeriodRequest, ReportPeriod};
use crate::v2::period::{epoch_days, Granularity, WeekStart};
use crate::v2::problem::Problem;

/// The query parameters that `usage` accepts.
pub const PARAMETERS: &[&str] = &[
    "from",
    "to",
    "tz",
    "granularity",
    "week_start",
    "fields",
    "format",
];

/// A usage request's parameters, before its range is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRequest {
    pub period: PeriodRequest,
    pub granularity: Granularity,
    pub week_start: WeekStart,
    /// `fields`: the figures of each bucket, by default all.
    pub measures: Measures,
    /// `format`, which overrides `Accept`.
    pub format: Option<Format>,
}

impl UsageRequest {
    pub fn parse(query: &str, default_tz: Tz) -> Result<UsageRequest, Problem> {
        let mut params = Params::parse(query, PARAMETERS);
        let period = params.period(default_tz);
        let buckets = params.buckets();
        let measures = params.choice("fields", Measures::parse, Measures::NAMES);
        let format = params.choice("format", Format::parse, Format::NAMES);
        let request = (|| {
            let (granularity, week_start) = buckets?;
            Some(UsageRequest {
                period: period?,
                granularity,
                week_start,
                measures: measures?.unwrap_or(Measures::ALL),
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
            measures: self.measures,
        })
    }
}

/// A usage query: its range, zone, buckets and figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub period: ReportPeriod,
    pub granularity: Granularity,
    pub week_start: WeekStart,
    pub measures: Measures,
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

    /// The parameters of the `usage_sql` queries; `member` counts one member alone.
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
    /// The figures each bucket holds, as `fields` chose them.
    pub fields: Vec<&'static str>,
    pub buckets: Vec<Bucket>,
    /// Over the whole range: `active_members` counts each member once.
    pub totals: Counts,
}

impl UsageReport {
    /// The report from the rows of a `usage_sql` query: every bucket, with
    /// zeros where no row is. Column 1 + i holds the i-th of `Measure::ALL`.
    pub fn from_rows(query: &UsageQuery, rows: &RowSet) -> Result<UsageReport, AppError> {
        let mut counts: BTreeMap<i32, Counts> = BTreeMap::new();
        for row in &rows.rows {
            let bucket = match row.first() {
                Some(DbValue::Int32(bucket)) => *bucket,
                other => {
                    return Err(AppError::Data(format!(
                        "usage bucket holds {other:?}, not an int4"
                    )))
                }
            };
            let mut figures = Counts::default();
            for measure in query.measures.iter() {
                let index = 1 + measure.position();
                match row.get(index) {
                    Some(DbValue::Int64(value)) => figures.set(measure, *value),
                    other => {
                        return Err(AppError::Data(format!(
                            "usage column {index} holds {other:?}, not an int8"
                        )))
                    }
                }
            }
            counts.insert(bucket, figures);
        }
        let zero = Counts::zero(query.measures);
        let bounds = query.bounds();
        let buckets = bounds
            .windows(2)
            .zip(1..)
            .map(|(pair, number)| Bucket {
                start: pair[0].to_string(),
                end: pair[1].to_string(),
                counts: counts.get(&number).copied().unwrap_or(zero),
            })
            .collect();
        Ok(UsageReport {
            tz: query.period.tz.name(),
            from: query.period.range.from.to_string(),
            to: query.period.range.to.to_string(),
            granularity: query.granularity.as_str(),
            week_start: query.week_start.as_str(),
            fields: query.measures.names(),
            buckets,
            totals: counts.get(&0).copied().unwrap_or(zero),
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
        assert_eq!(report.buckets[0].counts, Counts::zero(Measures::ALL));
        assert_eq!(report.buckets[1].counts.visits, Some(5));
        assert_eq!(report.buckets[2].end, "2024-01-04");
        assert_eq!(report.totals.tokens_issued, Some(9));
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
        assert_eq!(report.totals, Counts::zero(Measures::ALL));
        assert_eq!(report.buckets.len(), 5);
    }

    #[test]
    fn fields_choose_the_figures_and_only_theirs_are_read() {
        let query = query("from=2024-01-01&to=2024-01-03&fields=new_members,visits");
        let mut set = rows(&[[1, 4, 6, 0, 2], [0, 4, 6, 0, 2]]);
        // Over the rollups, active_members is NULL.
        for row in &mut set.rows {
            row[3] = DbValue::DbNull;
        }
        let report = UsageReport::from_rows(&query, &set).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["fields"], serde_json::json!(["visits", "new_members"]));
        assert_eq!(
            json["buckets"][0],
            serde_json::json!({"start": "2024-01-01", "end": "2024-01-02", "visits": 4,
                               "new_members": 2})
        );
        assert_eq!(json["buckets"][1]["visits"], 0);
        assert_eq!(
            json["totals"],
            serde_json::json!({"visits": 4, "new_members": 2})
        );
        // A chosen figure that the query left NULL is an error, not a zero.
        let all = self::query("from=2024-01-01&to=2024-01-03");
        assert!(UsageReport::from_rows(&all, &set).is_err());
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
