//! `GET /api/v2/members`: one row per member with activity in the range (or
//! every member, with `include_inactive=true`), sorted, one page at a time, with
//! the total count; and `GET /api/v2/members/{id}`: one member's row.
//!
//! `visits` are used tokens, as in `usage`; `tokens_issued` counts every token,
//! which is what the legacy `user_visits` called visits. A token whose member row
//! is missing still makes a row, without name or `joined_at`.

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;
use spin_sdk::pg4::{DbValue, ParameterValue, RowSet};

use crate::errors::AppError;
use crate::reports::ReportSql;
use crate::v2::members_sql::{members_sql, Leaders};
use crate::v2::negotiate::Format;
use crate::v2::params::{Params, PeriodRequest, ReportPeriod};
use crate::v2::period::epoch_days;
use crate::v2::problem::Problem;
use crate::v2::usage::UsageReport;

/// The query parameters of the member list.
pub const PARAMETERS: &[&str] = &[
    "from",
    "to",
    "tz",
    "sort",
    "limit",
    "offset",
    "include_inactive",
    "format",
];

pub const DEFAULT_LIMIT: i64 = 50;
/// The longest range that a month's rollups may serve: a month, with its
/// edges in the report's zone, and a few days more (the statement reads
/// `tokens` where the difference is more than a quarter of the range).
pub const MONTH_LEADERS_DAYS: i64 = 35;
pub const MAX_LIMIT: i64 = 1_000;

/// The orders of the list. Ties break by `member_id`, so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    MostVisits,
    FewestVisits,
    FirstJoined,
    LastJoined,
    MemberId,
    LatestVisit,
}

impl Sort {
    pub const ALL: [Sort; 6] = [
        Sort::MostVisits,
        Sort::FewestVisits,
        Sort::FirstJoined,
        Sort::LastJoined,
        Sort::MemberId,
        Sort::LatestVisit,
    ];
    pub const NAMES: &'static str =
        "-visits, visits, joined_at, -joined_at, member_id or -last_visit";

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::MostVisits => "-visits",
            Sort::FewestVisits => "visits",
            Sort::FirstJoined => "joined_at",
            Sort::LastJoined => "-joined_at",
            Sort::MemberId => "member_id",
            Sort::LatestVisit => "-last_visit",
        }
    }

    pub fn parse(text: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|sort| sort.as_str() == text)
    }
}

/// A member list request's parameters, before its range is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersRequest {
    pub period: PeriodRequest,
    pub sort: Sort,
    pub limit: Option<i64>,
    pub offset: i64,
    pub include_inactive: bool,
    pub format: Option<Format>,
}

impl MembersRequest {
    pub fn parse(query: &str, default_tz: Tz) -> Result<MembersRequest, Problem> {
        let mut params = Params::parse(query, PARAMETERS);
        let period = params.period(default_tz);
        let sort = params.choice("sort", Sort::parse, Sort::NAMES);
        let limit = params.integer("limit", 1..=MAX_LIMIT);
        let offset = params.integer("offset", 0..=i64::from(i32::MAX));
        let include_inactive = params.choice("include_inactive", parse_bool, "true or false");
        let format = params.choice("format", Format::parse, Format::NAMES);
        let request = (|| {
            Some(MembersRequest {
                period: period?,
                sort: sort?.unwrap_or(Sort::MostVisits),
                limit: limit?,
                offset: offset?.unwrap_or(0),
                include_inactive: include_inactive?.unwrap_or(false),
                format: format?,
            })
        })();
        params.finish(request)
    }

    /// The query, once today's date in its zone is known (when it is needed).
    pub fn resolve(&self, today: Option<NaiveDate>) -> Result<MembersQuery, Problem> {
        Ok(MembersQuery {
            period: self.period.resolve(today)?,
            sort: self.sort,
            limit: self.limit,
            offset: self.offset,
            include_inactive: self.include_inactive,
        })
    }
}

/// A member list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersQuery {
    pub period: ReportPeriod,
    pub sort: Sort,
    /// `None` when not given: 50 rows in JSON, every row in CSV.
    pub limit: Option<i64>,
    pub offset: i64,
    pub include_inactive: bool,
}

impl MembersQuery {
    /// The rows of a page in `format`: the limit given, else 50 in JSON and
    /// every row in CSV (a spreadsheet export). `None` is every row.
    pub fn page_size(&self, format: Format) -> Option<i64> {
        match (self.limit, format) {
            (Some(limit), _) => Some(limit),
            (None, Format::Json) => Some(DEFAULT_LIMIT),
            (None, Format::Csv) => None,
        }
    }

    /// The CSV download's name: `coworking-members_2024-01-01_2024-02-01.csv`.
    pub fn filename(&self) -> String {
        format!(
            "coworking-members_{}_{}.csv",
            self.period.range.from, self.period.range.to
        )
    }

    /// One member's row over `period`, with or without tokens there.
    pub fn one_member(period: ReportPeriod) -> MembersQuery {
        MembersQuery {
            period,
            sort: Sort::MemberId,
            limit: Some(1),
            offset: 0,
            include_inactive: true,
        }
    }

    /// The statements of this query, as `sql_parameters`: `member` lists one
    /// member alone, in pages of `page_size` rows. The rollups' leaders serve
    /// a page of the active members (for all of them, 1.1 s instead of 0.9):
    /// a month's for a range of up to `MONTH_LEADERS_DAYS`, else all time's.
    pub fn sql(&self, member: Option<i32>, page_size: Option<i64>) -> ReportSql {
        let leaders_only = !self.include_inactive && member.is_none() && page_size.is_some();
        let days = (self.period.range.to - self.period.range.from).num_days();
        let leaders = leaders_only.then_some(if days <= MONTH_LEADERS_DAYS {
            Leaders::OfAMonth
        } else {
            Leaders::OfAllTime
        });
        members_sql(self.sort, leaders)
    }

    /// The statement's parameters, for pages of `page_size` rows (`None`: all);
    /// `member` lists one member alone.
    pub fn sql_parameters(
        &self,
        db_timezone: Tz,
        member: Option<i32>,
        page_size: Option<i64>,
    ) -> Vec<ParameterValue> {
        vec![
            ParameterValue::Int32(epoch_days(self.period.range.from)),
            ParameterValue::Int32(epoch_days(self.period.range.to)),
            ParameterValue::Str(self.period.tz.name().to_owned()),
            ParameterValue::Str(db_timezone.name().to_owned()),
            ParameterValue::Boolean(self.include_inactive),
            member.map_or(ParameterValue::DbNull, ParameterValue::Int32),
            // LIMIT NULL is no limit.
            page_size.map_or(ParameterValue::DbNull, ParameterValue::Int64),
            ParameterValue::Int64(self.offset),
        ]
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// One member's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRow {
    pub member_id: i32,
    /// `None` where the member row is missing.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// In the report's zone, with its offset; `None` where the member row is
    /// missing or `joined_at` is infinite.
    pub joined_at: Option<String>,
    pub visits: i64,
    pub tokens_issued: i64,
    /// When the latest used token in the range was created, in the report's zone.
    pub last_visit: Option<String>,
}

/// A page of the member list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersPage {
    pub total: i64,
    pub members: Vec<MemberRow>,
}

impl MembersPage {
    /// The page from the statement's row of arrays, whose texts it takes over
    /// (a CSV of every member holds each name once, not twice), in the order of
    /// the rows' positions.
    pub fn from_rows(rows: RowSet) -> Result<MembersPage, AppError> {
        let Some(mut row) = rows.rows.into_iter().next() else {
            return Err(AppError::Data("the member list has no row".to_owned()));
        };
        let total = match row.first() {
            Some(DbValue::Int64(total)) => *total,
            other => return Err(unexpected(0, other)),
        };
        let positions = int64s(&mut row, 1)?;
        let member_ids = int32s(&mut row, 2)?;
        let mut first_names = texts(&mut row, 3)?;
        let mut last_names = texts(&mut row, 4)?;
        let mut joined_ats = texts(&mut row, 5)?;
        let visits = int64s(&mut row, 6)?;
        let tokens_issued = int64s(&mut row, 7)?;
        let mut last_visits = texts(&mut row, 8)?;
        let count = positions.len();
        if [
            member_ids.len(),
            first_names.len(),
            last_names.len(),
            joined_ats.len(),
            visits.len(),
            tokens_issued.len(),
            last_visits.len(),
        ]
        .iter()
        .any(|&len| len != count)
        {
            return Err(AppError::Data(
                "the member list's columns differ in length".to_owned(),
            ));
        }
        // The rows in the order of their positions, each element taken out of
        // its column: no second copy of the page.
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_unstable_by_key(|&index| positions[index]);
        let mut members = Vec::with_capacity(count);
        for index in order {
            required(positions[index], 1)?;
            members.push(MemberRow {
                member_id: required(member_ids[index], 2)?,
                first_name: first_names[index].take(),
                last_name: last_names[index].take(),
                joined_at: joined_ats[index].take(),
                visits: required(visits[index], 6)?,
                tokens_issued: required(tokens_issued[index], 7)?,
                last_visit: last_visits[index].take(),
            });
        }
        Ok(MembersPage { total, members })
    }
}

/// One member's JSON: the row, and the usage series of that member alone.
#[derive(Debug, Serialize)]
pub struct MemberReport {
    pub member: MemberRow,
    pub usage: UsageReport,
}

/// The member list's JSON.
#[derive(Debug, Serialize)]
pub struct MembersReport<'a> {
    pub tz: &'static str,
    pub from: String,
    pub to: String,
    pub sort: &'static str,
    pub limit: i64,
    pub offset: i64,
    pub include_inactive: bool,
    /// Rows in the whole list, on every page.
    pub total: i64,
    pub members: &'a [MemberRow],
}

impl<'a> MembersReport<'a> {
    pub fn new(query: &MembersQuery, page: &'a MembersPage) -> MembersReport<'a> {
        MembersReport {
            tz: query.period.tz.name(),
            from: query.period.range.from.to_string(),
            to: query.period.range.to.to_string(),
            sort: query.sort.as_str(),
            limit: query.page_size(Format::Json).unwrap_or(DEFAULT_LIMIT),
            offset: query.offset,
            include_inactive: query.include_inactive,
            total: page.total,
            members: &page.members,
        }
    }
}

impl MembersQuery {
    /// RFC 8288 links to the next and previous pages, as references relative to
    /// the request (`</api/v2/members?...&offset=50>; rel="next"`), keeping
    /// every other parameter as it came.
    /// `page_size` is `None` for a page of every row, which has no neighbours.
    pub fn page_links(
        &self,
        path: &str,
        query: &str,
        page_size: Option<i64>,
        total: i64,
    ) -> Option<String> {
        let limit = page_size?;
        let link = |offset: i64, rel: &str| {
            let mut target = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
                if name != "offset" {
                    target.append_pair(&name, &value);
                }
            }
            target.append_pair("offset", &offset.to_string());
            format!("<{path}?{}>; rel=\"{rel}\"", target.finish())
        };
        let mut links = Vec::new();
        if self.offset + limit < total {
            links.push(link(self.offset + limit, "next"));
        }
        if self.offset > 0 {
            // Past the end, the previous page is the last one.
            let last_page = (total - 1).max(0) / limit * limit;
            links.push(link((self.offset - limit).max(0).min(last_page), "prev"));
        }
        (!links.is_empty()).then(|| links.join(", "))
    }
}

/// A member id from the path: a positive decimal number that fits `int4`.
pub fn member_id(segment: &str) -> Option<i32> {
    segment
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| segment.parse().ok())
        .flatten()
        .filter(|id| *id > 0)
}

/// Array column `index`, taken out of the row by `array` (which says whether
/// the value is an array of that kind); empty for the NULL of an empty page.
fn take_array<T>(
    row: &mut [DbValue],
    index: usize,
    array: fn(&mut DbValue) -> Option<&mut Vec<Option<T>>>,
) -> Result<Vec<Option<T>>, AppError> {
    match row.get_mut(index) {
        Some(DbValue::DbNull) => Ok(Vec::new()),
        Some(value) => match array(value) {
            Some(values) => Ok(std::mem::take(values)),
            None => Err(unexpected(index, Some(value))),
        },
        None => Err(unexpected(index, None)),
    }
}

fn int32s(row: &mut [DbValue], index: usize) -> Result<Vec<Option<i32>>, AppError> {
    take_array(row, index, |value| match value {
        DbValue::ArrayInt32(values) => Some(values),
        _ => None,
    })
}

fn int64s(row: &mut [DbValue], index: usize) -> Result<Vec<Option<i64>>, AppError> {
    take_array(row, index, |value| match value {
        DbValue::ArrayInt64(values) => Some(values),
        _ => None,
    })
}

fn texts(row: &mut [DbValue], index: usize) -> Result<Vec<Option<String>>, AppError> {
    take_array(row, index, |value| match value {
        DbValue::ArrayStr(values) => Some(values),
        _ => None,
    })
}

/// An element that the statement never makes NULL.
fn required<T>(value: Option<T>, column: usize) -> Result<T, AppError> {
    value.ok_or_else(|| AppError::Data(format!("members column {column} holds NULL")))
}

fn unexpected(index: usize, value: Option<&DbValue>) -> AppError {
    AppError::Data(format!("members column {index} holds {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<MembersQuery, Problem> {
        MembersRequest::parse(query, Tz::UTC)?.resolve("2024-03-10".parse().ok())
    }

    #[test]
    fn the_defaults_are_the_top_50_by_visits() {
        let query = parse("").unwrap();
        assert_eq!(query.sort, Sort::MostVisits);
        assert_eq!((query.page_size(Format::Json), query.offset), (Some(50), 0));
        assert_eq!(query.page_size(Format::Csv), None);
        assert!(!query.include_inactive);
    }

    #[test]
    fn only_a_page_of_the_active_members_by_most_visits_reads_the_leaders() {
        let leaders_read = |query: &str, member: Option<i32>, format: Format| {
            let query = parse(query).unwrap();
            let sql = query.sql(member, query.page_size(format)).rollups;
            [Leaders::OfAllTime, Leaders::OfAMonth]
                .into_iter()
                .find(|&leaders| members_sql(Sort::MostVisits, Some(leaders)).rollups == sql)
        };
        let all_time = Some(Leaders::OfAllTime);
        let month = Some(Leaders::OfAMonth);
        // The default range: the 30 days up to today.
        assert_eq!(leaders_read("", None, Format::Json), month);
        assert_eq!(
            leaders_read("from=2000-01-01", None, Format::Json),
            all_time
        );
        let march = "from=2024-03-01&to=2024-04-01&tz=Asia/Kolkata";
        assert_eq!(leaders_read(march, None, Format::Json), month);
        let five_weeks = "from=2024-03-01&to=2024-04-05";
        assert_eq!(leaders_read(five_weeks, None, Format::Json), month);
        let longer = "from=2024-03-01&to=2024-04-06";
        assert_eq!(leaders_read(longer, None, Format::Json), all_time);
        assert_eq!(leaders_read("limit=7&offset=30", None, Format::Csv), month);
        assert_eq!(leaders_read("", None, Format::Csv), None, "every row");
        assert_eq!(
            leaders_read("include_inactive=true", None, Format::Json),
            None
        );
        assert_eq!(leaders_read("", Some(3), Format::Json), None, "one member");
        assert_eq!(leaders_read("sort=visits", None, Format::Json), None);
    }

    #[test]
    fn every_sort_has_its_statement() {
        for sort in Sort::ALL {
            assert_eq!(Sort::parse(sort.as_str()), Some(sort));
            assert!(Sort::NAMES.contains(sort.as_str()));
        }
        let statements: std::collections::HashSet<&str> = Sort::ALL
            .iter()
            .flat_map(|&sort| {
                [None, Some(Leaders::OfAllTime), Some(Leaders::OfAMonth)]
                    .map(|leaders| members_sql(sort, leaders))
            })
            .flat_map(|sql| [sql.rollups, sql.tokens])
            .collect();
        // The leaders' two statements over the rollups are the two more.
        assert_eq!(statements.len(), 2 * Sort::ALL.len() + 2);
    }

    #[test]
    fn bad_paging_and_sorts_are_named() {
        let problem = parse("sort=name&limit=1001&offset=-1&include_inactive=yes").unwrap_err();
        let names: Vec<&str> = problem
            .errors
            .iter()
            .map(|e| e.parameter.as_str())
            .collect();
        assert_eq!(names, ["sort", "limit", "offset", "include_inactive"]);
        assert!(parse("limit=0").is_err());
        assert!(parse("limit=1000&offset=7").is_ok());
    }

    #[test]
    fn pages_link_to_their_neighbours() {
        let query = parse("limit=10&offset=10&tz=Asia/Kolkata").unwrap();
        assert_eq!(
            query
                .page_links(
                    "/api/v2/members",
                    "limit=10&offset=10&tz=Asia/Kolkata",
                    Some(10),
                    25
                )
                .unwrap(),
            "</api/v2/members?limit=10&tz=Asia%2FKolkata&offset=20>; rel=\"next\", \
             </api/v2/members?limit=10&tz=Asia%2FKolkata&offset=0>; rel=\"prev\""
        );
        let first = parse("limit=10").unwrap();
        assert_eq!(first.page_links("/m", "limit=10", Some(10), 10), None);
        let past_the_end = parse("limit=10&offset=95").unwrap();
        assert_eq!(
            past_the_end
                .page_links("/m", "limit=10&offset=95", Some(10), 10)
                .unwrap(),
            "</m?limit=10&offset=0>; rel=\"prev\""
        );
    }

    #[test]
    fn member_ids_are_positive_numbers() {
        assert_eq!(member_id("42"), Some(42));
        for bad in ["0", "-1", "+1", "1.0", "x", "", "2147483648", " 1"] {
            assert_eq!(member_id(bad), None, "{bad}");
        }
    }

    fn page_row(total: i64, arrays: Vec<DbValue>) -> RowSet {
        RowSet {
            columns: Vec::new(),
            rows: vec![std::iter::once(DbValue::Int64(total))
                .chain(arrays)
                .collect()],
        }
    }

    #[test]
    fn an_empty_page_still_has_its_total() {
        let rows = page_row(12, vec![DbValue::DbNull; 8]);
        assert_eq!(
            MembersPage::from_rows(rows).unwrap(),
            MembersPage {
                total: 12,
                members: Vec::new()
            }
        );
    }

    /// The arrays come in whatever order the aggregate met the rows; the page
    /// is in the order of the positions.
    #[test]
    fn the_page_is_in_the_order_of_its_positions() {
        let texts = |values: [Option<&str>; 2]| {
            DbValue::ArrayStr(values.map(|value| value.map(str::to_owned)).to_vec())
        };
        let rows = page_row(
            40,
            vec![
                DbValue::ArrayInt64(vec![Some(12), Some(11)]),
                DbValue::ArrayInt32(vec![Some(7), Some(3)]),
                texts([Some("Grace"), None]),
                texts([Some("Hopper"), None]),
                texts([Some("2023-01-02T09:00:00+01:00"), None]),
                DbValue::ArrayInt64(vec![Some(1), Some(5)]),
                DbValue::ArrayInt64(vec![Some(2), Some(9)]),
                texts([None, Some("2024-03-01T10:00:00+01:00")]),
            ],
        );
        let page = MembersPage::from_rows(rows).unwrap();
        assert_eq!(page.total, 40);
        assert_eq!(
            page.members,
            [
                MemberRow {
                    member_id: 3,
                    first_name: None,
                    last_name: None,
                    joined_at: None,
                    visits: 5,
                    tokens_issued: 9,
                    last_visit: Some("2024-03-01T10:00:00+01:00".to_owned()),
                },
                MemberRow {
                    member_id: 7,
                    first_name: Some("Grace".to_owned()),
                    last_name: Some("Hopper".to_owned()),
                    joined_at: Some("2023-01-02T09:00:00+01:00".to_owned()),
                    visits: 1,
                    tokens_issued: 2,
                    last_visit: None,
                },
            ]
        );
    }

    #[test]
    fn columns_of_different_lengths_are_an_error_not_a_panic() {
        let mut arrays = vec![DbValue::ArrayInt64(vec![Some(1)]); 8];
        arrays[1] = DbValue::ArrayInt32(vec![Some(1), Some(2)]);
        arrays[2..5].fill(DbValue::ArrayStr(vec![None]));
        arrays[7] = DbValue::ArrayStr(vec![None]);
        assert!(MembersPage::from_rows(page_row(1, arrays)).is_err());
        // And a column of the wrong kind.
        let wrong = vec![DbValue::ArrayStr(vec![None]); 8];
        assert!(MembersPage::from_rows(page_row(1, wrong)).is_err());
    }
}
