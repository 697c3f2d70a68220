//! Query parameters of the v2 reports: decoded as a form (`application/x-www-
//! form-urlencoded`, as browsers and curl send them), each read once, and every
//! mistake collected, so that one 400 names them all.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeDelta};
use chrono_tz::Tz;

use spin_sdk::pg4::{DbValue, ParameterValue, RowSet};

use crate::errors::AppError;
use crate::v2::period::{
    from_epoch_days, DateRange, Granularity, WeekStart, EARLIEST, LATEST, MAX_BUCKETS,
};
use crate::v2::problem::{ParameterError, Problem};
use crate::v2::zones::{self, ZoneError};

/// Longest piece of a client's value that an error quotes back.
const QUOTE_LIMIT: usize = 64;

/// A report's range and the zone it is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPeriod {
    pub range: DateRange,
    pub tz: Tz,
}

/// The period a request asks for, before today's date in its zone is known.
/// PostgreSQL tells today's date (`TODAY_SQL`), so that the component carries
/// no zone's rules: chrono-tz's would double each instance's initial memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodRequest {
    pub tz: Tz,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

/// Today's date in the zone `$1`, as days since 1970-01-01.
pub const TODAY_SQL: &str =
    "SELECT ((now() AT TIME ZONE $1::text)::date - DATE '1970-01-01')::int4 AS today";

impl PeriodRequest {
    /// [`TODAY_SQL`]'s parameter.
    pub fn today_parameters(&self) -> Vec<ParameterValue> {
        vec![ParameterValue::Str(self.tz.name().to_owned())]
    }

    /// Today's date from [`TODAY_SQL`]'s row.
    pub fn today_from_rows(rows: &RowSet) -> Result<NaiveDate, AppError> {
        match rows.rows.first().and_then(|row| row.first()) {
            Some(DbValue::Int32(days)) => from_epoch_days(*days)
                .ok_or_else(|| AppError::Data(format!("today is {days} days from 1970"))),
            other => Err(AppError::Data(format!("today's date came as {other:?}"))),
        }
    }

    /// Whether the range depends on today: without `to`, it ends with today.
    pub fn needs_today(&self) -> bool {
        self.to.is_none()
    }

    /// The range: by default the 30 days through today in `tz`; with `from`
    /// only, through today; with `to` only, the 30 days before it. `today` is
    /// read only when [`needs_today`](Self::needs_today).
    pub fn resolve(&self, today: Option<NaiveDate>) -> Result<ReportPeriod, Problem> {
        let default = || {
            today
                .map(DateRange::last_30_days)
                .expect("today is known when the range needs it")
        };
        let range = match (self.from, self.to) {
            (None, None) => default(),
            (Some(from), None) => DateRange {
                from,
                to: default().to.max(from + TimeDelta::days(1)),
            },
            (None, Some(to)) => DateRange {
                from: to - TimeDelta::days(30),
                to,
            },
            (Some(from), Some(to)) => DateRange { from, to },
        };
        if range.from < EARLIEST {
            return Err(Problem::invalid_parameters(vec![ParameterError::new(
                "to",
                format!("the 30 days before to start before {EARLIEST}: give from too"),
            )]));
        }
        if range.from >= range.to {
            return Err(Problem::invalid_parameters(vec![ParameterError::new(
                "to",
                format!(
                    "to ({}) must be after from ({}): from is inclusive and to exclusive",
                    range.to, range.from
                ),
            )]));
        }
        Ok(ReportPeriod { range, tz: self.tz })
    }
}

/// At most [`MAX_BUCKETS`] buckets, or a 400 that says so.
pub fn check_buckets(
    period: &ReportPeriod,
    granularity: Granularity,
    week_start: WeekStart,
) -> Result<(), Problem> {
    let count = period.range.bucket_count(granularity, week_start);
    if count <= MAX_BUCKETS {
        return Ok(());
    }
    Err(Problem::invalid_parameters(vec![ParameterError::new(
        "granularity",
        format!(
            "from {} to {} makes {count} buckets by {}, more than the {MAX_BUCKETS} allowed: \
             choose a shorter range or a coarser granularity",
            period.range.from,
            period.range.to,
            granularity.as_str()
        ),
    )]))
}

/// The parameters of one request, taken one by one by the endpoint that reads them.
pub struct Params {
    values: BTreeMap<String, String>,
    errors: Vec<ParameterError>,
}

impl Params {
    /// Decode `query`. A name outside `accepted`, given twice, or given without
    /// a value, is an error.
    pub fn parse(query: &str, accepted: &[&str]) -> Params {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if !accepted.contains(&name.as_ref()) {
                errors.push(ParameterError::new(
                    &quote(&name),
                    format!(
                        "unknown parameter; this endpoint accepts {}",
                        accepted.join(", ")
                    ),
                ));
            } else if values.contains_key(name.as_ref()) {
                errors.push(ParameterError::new(
                    &name,
                    "given more than once; give it once",
                ));
            } else if value.is_empty() {
                errors.push(ParameterError::new(
                    &name,
                    "given without a value: give one, or leave the parameter out",
                ));
            } else {
                values.insert(name.into_owned(), value.into_owned());
            }
        }
        // A name given twice is reported once.
        errors.dedup();
        Params { values, errors }
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    fn fail(&mut self, name: &str, detail: impl Into<String>) {
        self.errors.push(ParameterError::new(name, detail));
    }

    /// `tz` (by default `default_tz`), `from` and `to`.
    pub fn period(&mut self, default_tz: Tz) -> Option<PeriodRequest> {
        let tz = match self.take("tz") {
            None => Some(default_tz),
            Some(name) => match zones::zone(&name) {
                Ok(tz) => Some(tz),
                Err(ZoneError::Unknown) => {
                    self.fail(
                        "tz",
                        format!(
                            "unknown time zone \"{}\": give an IANA time zone name such as \
                             UTC, Europe/Berlin or Asia/Kolkata (names are case-sensitive)",
                            quote(&name)
                        ),
                    );
                    None
                }
                Err(ZoneError::Abbreviation(region)) => {
                    self.fail(
                        "tz",
                        format!(
                            "\"{}\" is also an abbreviation of a fixed UTC offset, which the \
                             database would read instead of the zone: give a region name \
                             such as {region}",
                            quote(&name)
                        ),
                    );
                    None
                }
            },
        };
        let from = self.date("from");
        let to = self.date("to");
        Some(PeriodRequest {
            tz: tz?,
            from: from?,
            to: to?,
        })
    }

    /// An ISO 8601 calendar date (`2024-01-31`; `+12345-01-01` past year 9999).
    /// `Some(None)` when not given, `None` when wrong.
    fn date(&mut self, name: &str) -> Option<Option<NaiveDate>> {
        let Some(text) = self.take(name) else {
            return Some(None);
        };
        // chrono reads `2024-1-5` too; ISO 8601 is only what it writes back.
        match text.parse::<NaiveDate>() {
            Ok(date) if date.to_string() == text => {
                if (EARLIEST..=LATEST).contains(&date) {
                    Some(Some(date))
                } else {
                    self.fail(
                        name,
                        format!("dates must lie between {EARLIEST} and {LATEST}"),
                    );
                    None
                }
            }
            _ => {
                self.fail(
                    name,
                    format!(
                        "\"{}\" is not an ISO 8601 date: write YYYY-MM-DD, such as 2024-01-31",
                        quote(&text)
                    ),
                );
                None
            }
        }
    }

    /// `granularity` (default `day`) and `week_start` (default `monday`).
    pub fn buckets(&mut self) -> Option<(Granularity, WeekStart)> {
        let granularity = self.choice("granularity", Granularity::parse, Granularity::NAMES);
        let week_start = self.choice("week_start", WeekStart::parse, WeekStart::NAMES);
        Some((
            granularity?.unwrap_or(Granularity::Day),
            week_start?.unwrap_or(WeekStart::Monday),
        ))
    }

    /// One of a fixed set of values. `Some(None)` when not given, `None` when wrong.
    pub fn choice<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        names: &str,
    ) -> Option<Option<T>> {
        let Some(text) = self.take(name) else {
            return Some(None);
        };
        match parse(&text) {
            Some(value) => Some(Some(value)),
            None => {
                self.fail(
                    name,
                    format!("\"{}\" is not accepted: give {names}", quote(&text)),
                );
                None
            }
        }
    }

    /// A whole number in `range`. `Some(None)` when not given, `None` when wrong.
    pub fn integer(
        &mut self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<Option<i64>> {
        let Some(text) = self.take(name) else {
            return Some(None);
        };
        match text.parse::<i64>() {
            Ok(value) if range.contains(&value) => Some(Some(value)),
            _ => {
                self.fail(
                    name,
                    format!(
                        "\"{}\" is not accepted: give a whole number from {} to {}",
                        quote(&text),
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// The request's values, or a 400 that names every mistake.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Problem> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(Problem::invalid_parameters(self.errors)),
        }
    }
}

/// A client's text, cut short for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPTED: &[&str] = &["from", "to", "tz", "granularity", "week_start"];

    fn read(query: &str) -> Result<(ReportPeriod, Granularity, WeekStart), Problem> {
        read_on(query, "2024-03-10")
    }

    /// As a handler reads it, on the day `today` in the request's zone.
    fn read_on(
        query: &str,
        today: &str,
    ) -> Result<(ReportPeriod, Granularity, WeekStart), Problem> {
        let mut params = Params::parse(query, ACCEPTED);
        let period = params.period(Tz::UTC);
        let buckets = params.buckets();
        let (request, (granularity, week_start)) = params.finish(period.zip(buckets))?;
        let today = request.needs_today().then(|| date(today));
        let period = request.resolve(today)?;
        check_buckets(&period, granularity, week_start)?;
        Ok((period, granularity, week_start))
    }

    fn bad_parameters(query: &str) -> Vec<String> {
        read(query)
            .unwrap_err()
            .errors
            .into_iter()
            .map(|error| error.parameter)
            .collect()
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_default_is_the_last_30_days_in_the_zone() {
        let (period, granularity, week_start) = read("").unwrap();
        assert_eq!(period.range.from, date("2024-02-10"));
        assert_eq!(period.range.to, date("2024-03-11"));
        assert_eq!(
            (granularity, week_start),
            (Granularity::Day, WeekStart::Monday)
        );
        let (period, ..) = read_on("tz=Asia/Kolkata", "2024-03-11").unwrap();
        assert_eq!(period.tz, Tz::Asia__Kolkata);
        assert_eq!(period.range.to, date("2024-03-12"));
        // A range with its end given does not depend on today.
        let mut params = Params::parse("to=2024-01-01", ACCEPTED);
        assert!(!params.period(Tz::UTC).unwrap().needs_today());
    }

    #[test]
    fn one_bound_alone_sets_the_other() {
        let (period, ..) = read("from=2024-03-01").unwrap();
        assert_eq!(period.range.to, date("2024-03-11"));
        let (period, ..) = read("from=2025-01-01").unwrap();
        assert_eq!(period.range.to, date("2025-01-02"));
        let (period, ..) = read("to=2024-01-31").unwrap();
        assert_eq!(period.range.from, date("2024-01-01"));
    }

    #[test]
    fn every_mistake_is_named_at_once() {
        assert_eq!(
            bad_parameters(
                "tz=Mars/Base&from=2024-1-5&to=yesterday&granularity=year&week_start=friday\
                 &colour=red"
            ),
            ["colour", "tz", "from", "to", "granularity", "week_start"]
        );
        assert_eq!(bad_parameters("from=2024-02-01&to=2024-02-01"), ["to"]);
        assert_eq!(bad_parameters("from=2024-02-02&to=2024-02-01"), ["to"]);
        assert_eq!(bad_parameters("tz=UTC&tz=UTC&tz=UTC"), ["tz"]);
        assert_eq!(bad_parameters("from=2024-02-30"), ["from"]);
        assert_eq!(bad_parameters("tz=utc"), ["tz"]);
        assert_eq!(bad_parameters("tz=CET"), ["tz"]);
        assert_eq!(bad_parameters("to=&tz"), ["to", "tz"]);
    }

    #[test]
    fn too_many_buckets_is_a_400_that_says_so() {
        let problem = read("from=2000-01-01&to=2011-01-01").unwrap_err();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.errors[0].parameter, "granularity");
        assert!(
            problem.errors[0].detail.contains("4018 buckets"),
            "{problem:?}"
        );
        assert!(read("from=2000-01-01&to=2011-01-01&granularity=week").is_ok());
    }

    #[test]
    fn far_dates_within_postgresqls_range_are_accepted() {
        let (period, ..) =
            read("from=%2B262141-01-01&to=%2B262141-12-31&granularity=month").unwrap();
        assert_eq!(period.range.from.to_string(), "+262141-01-01");
        assert_eq!(period.range.to, LATEST);
        assert_eq!(bad_parameters("from=%2B262142-01-01"), ["from"]);
        let (period, ..) = read("from=-4712-01-01&to=-4711-01-01&granularity=week").unwrap();
        assert_eq!(period.range.from, EARLIEST);
        assert_eq!(bad_parameters("from=-4713-12-31&to=2000-01-01"), ["from"]);
    }

    #[test]
    fn errors_quote_a_short_piece_of_the_value() {
        let long = "x".repeat(5_000);
        let problem = read(&format!("tz={long}")).unwrap_err();
        assert!(problem.errors[0].detail.len() < 300);
        let problem = read(&format!("{long}=1")).unwrap_err();
        assert!(problem.errors[0].parameter.len() < 100);
    }
}
