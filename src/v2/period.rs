//! The calendar of a v2 report: its range of local dates, and the buckets
//! (days, weeks or months) that cut it. Only dates here: which instants a
//! local date starts at, in which zone, PostgreSQL decides (`v2::usage`), with
//! the same time-zone database and rules that `AT TIME ZONE` uses on the data.

use chrono::{Datelike, Months, NaiveDate, TimeDelta, Weekday};

/// The most buckets one report may have: ten years by day.
pub const MAX_BUCKETS: i64 = 3_700;

/// The earliest and latest dates a range may name. PostgreSQL's timestamps
/// start in 4714 BC (ISO year -4713) and chrono's dates end in year 262142;
/// a year inside both on each side leaves room for every zone's offset and
/// for the start of the period after the last.
pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(-4712, 1, 1) {
    Some(date) => date,
    None => unreachable!(),
};
pub const LATEST: NaiveDate = match NaiveDate::from_ymd_opt(262_141, 12, 31) {
    Some(date) => date,
    None => unreachable!(),
};

/// How long a bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Month,
}

impl Granularity {
    pub const NAMES: &'static str = "day, week or month";

    pub fn parse(text: &str) -> Option<Granularity> {
        match text {
            "day" => Some(Granularity::Day),
            "week" => Some(Granularity::Week),
            "month" => Some(Granularity::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }
}

/// The first day of a week bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeekStart {
    Monday,
    Sunday,
}

impl WeekStart {
    pub const NAMES: &'static str = "monday or sunday";

    pub fn parse(text: &str) -> Option<WeekStart> {
        match text {
            "monday" => Some(WeekStart::Monday),
            "sunday" => Some(WeekStart::Sunday),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WeekStart::Monday => "monday",
            WeekStart::Sunday => "sunday",
        }
    }

    fn weekday(self) -> Weekday {
        match self {
            WeekStart::Monday => Weekday::Mon,
            WeekStart::Sunday => Weekday::Sun,
        }
    }
}

/// A range of local dates: `from` inclusive, `to` exclusive, `from < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    /// The 30 days up to and including `today`.
    pub fn last_30_days(today: NaiveDate) -> DateRange {
        DateRange {
            from: today - TimeDelta::days(29),
            to: today + TimeDelta::days(1),
        }
    }

    /// How many buckets of `granularity` the range touches, computed without
    /// making them (a range may span millennia).
    pub fn bucket_count(self, granularity: Granularity, week_start: WeekStart) -> i64 {
        let last = self.to - TimeDelta::days(1);
        match granularity {
            Granularity::Day => (self.to - self.from).num_days(),
            Granularity::Week => {
                (last - period_start(self.from, granularity, week_start)).num_days() / 7 + 1
            }
            Granularity::Month => month_index(last) - month_index(self.from) + 1,
        }
    }

    /// The bounds of the buckets, in order: `from`, each period start after it and
    /// before `to`, then `to`. Bucket `i` is `[bounds[i], bounds[i + 1])`, so the
    /// first and last buckets are cut to the range.
    pub fn bucket_bounds(self, granularity: Granularity, week_start: WeekStart) -> Vec<NaiveDate> {
        let mut bounds = vec![self.from];
        let mut start = period_start(self.from, granularity, week_start);
        while let Some(next) = next_period_start(start, granularity).filter(|next| *next < self.to)
        {
            bounds.push(next);
            start = next;
        }
        bounds.push(self.to);
        bounds
    }
}

/// The first day of the period that holds `date`.
fn period_start(date: NaiveDate, granularity: Granularity, week_start: WeekStart) -> NaiveDate {
    match granularity {
        Granularity::Day => date,
        Granularity::Week => {
            let into_week = date.weekday().days_since(week_start.weekday());
            date - TimeDelta::days(i64::from(into_week))
        }
        Granularity::Month => date.with_day(1).expect("every month has a first day"),
    }
}

/// `None` past chrono's last date.
fn next_period_start(start: NaiveDate, granularity: Granularity) -> Option<NaiveDate> {
    match granularity {
        Granularity::Day => start.checked_add_signed(TimeDelta::days(1)),
        Granularity::Week => start.checked_add_signed(TimeDelta::days(7)),
        Granularity::Month => start.checked_add_months(Months::new(1)),
    }
}

fn month_index(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

/// Days since 1970-01-01: how dates cross to PostgreSQL (`DATE '1970-01-01' + n`),
/// which spells years before 1 AD its own way.
pub fn epoch_days(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    i32::try_from((date - epoch).num_days()).expect("dates between EARLIEST and LATEST fit")
}

/// The date `days` after 1970-01-01, if chrono holds it.
pub fn from_epoch_days(days: i32) -> Option<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    epoch.checked_add_signed(TimeDelta::days(i64::from(days)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn range(from: &str, to: &str) -> DateRange {
        DateRange {
            from: date(from),
            to: date(to),
        }
    }

    /// The bounds, made one by one, agree with the count computed without them.
    fn check(range: DateRange, granularity: Granularity, week_start: WeekStart) -> Vec<String> {
        let bounds = range.bucket_bounds(granularity, week_start);
        assert_eq!(
            bounds.len() as i64 - 1,
            range.bucket_count(granularity, week_start),
            "{range:?} {granularity:?} {week_start:?}"
        );
        assert!(bounds.windows(2).all(|pair| pair[0] < pair[1]));
        bounds.iter().map(NaiveDate::to_string).collect()
    }

    #[test]
    fn weeks_start_on_the_chosen_day_and_are_cut_to_the_range() {
        // 2024-01-03 is a Wednesday.
        let january = range("2024-01-03", "2024-01-17");
        assert_eq!(
            check(january, Granularity::Week, WeekStart::Monday),
            ["2024-01-03", "2024-01-08", "2024-01-15", "2024-01-17"]
        );
        assert_eq!(
            check(january, Granularity::Week, WeekStart::Sunday),
            ["2024-01-03", "2024-01-07", "2024-01-14", "2024-01-17"]
        );
        // A range that starts on the week's first day has no cut first bucket.
        assert_eq!(
            check(
                range("2024-01-07", "2024-01-14"),
                Granularity::Week,
                WeekStart::Sunday
            ),
            ["2024-01-07", "2024-01-14"]
        );
    }

    #[test]
    fn months_follow_the_calendar() {
        assert_eq!(
            check(
                range("2024-01-31", "2024-04-01"),
                Granularity::Month,
                WeekStart::Monday
            ),
            ["2024-01-31", "2024-02-01", "2024-03-01", "2024-04-01"]
        );
        assert_eq!(
            check(
                range("2023-12-15", "2024-01-02"),
                Granularity::Month,
                WeekStart::Monday
            ),
            ["2023-12-15", "2024-01-01", "2024-01-02"]
        );
    }

    #[test]
    fn days_include_the_leap_day() {
        assert_eq!(
            check(
                range("2024-02-28", "2024-03-01"),
                Granularity::Day,
                WeekStart::Monday
            ),
            ["2024-02-28", "2024-02-29", "2024-03-01"]
        );
    }

    #[test]
    fn counts_hold_for_many_ranges_without_making_the_buckets() {
        let start = date("1999-12-01");
        for offset in 0..40 {
            for length in 1..80 {
                let from = start + TimeDelta::days(offset);
                let range = DateRange {
                    from,
                    to: from + TimeDelta::days(length),
                };
                for granularity in [Granularity::Day, Granularity::Week, Granularity::Month] {
                    for week_start in [WeekStart::Monday, WeekStart::Sunday] {
                        check(range, granularity, week_start);
                    }
                }
            }
        }
        let everything = DateRange {
            from: EARLIEST,
            to: LATEST,
        };
        // The last buckets a range can reach are made without overflow.
        let last_year = DateRange {
            from: LATEST - TimeDelta::days(365),
            to: LATEST,
        };
        for granularity in [Granularity::Day, Granularity::Week, Granularity::Month] {
            check(last_year, granularity, WeekStart::Sunday);
        }
        assert!(everything.bucket_count(Granularity::Month, WeekStart::Monday) > MAX_BUCKETS);
        assert!(everything.bucket_count(Granularity::Day, WeekStart::Sunday) > 90_000_000);
    }

    #[test]
    fn the_default_range_is_thirty_days_through_today() {
        let range = DateRange::last_30_days(date("2024-03-10"));
        assert_eq!(range, self::range("2024-02-10", "2024-03-11"));
        assert_eq!(range.bucket_count(Granularity::Day, WeekStart::Monday), 30);
    }

    #[test]
    fn dates_cross_as_days_since_1970() {
        assert_eq!(epoch_days(date("1970-01-01")), 0);
        assert_eq!(epoch_days(date("1969-12-31")), -1);
        assert_eq!(epoch_days(date("2000-03-01")), 11_017);
        assert_eq!(from_epoch_days(11_017), Some(date("2000-03-01")));
        epoch_days(EARLIEST);
        epoch_days(LATEST);
    }
}
