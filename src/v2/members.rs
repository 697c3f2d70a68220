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
use crate::v2::negotiate::Format;
use crate::v2::params::{Params, PeriodRequest, ReportPeriod};
use crate::v2::period::epoch_days;
use crate::v2::problem::Problem;
use crate::v2::usage::UsageReport;
use crate::{convertible_sql, local_time_sql};

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

    /// The statement that lists members in this order.
    pub fn sql(self) -> &'static str {
        match self {
            Sort::MostVisits => MEMBERS_BY_MOST_VISITS,
            Sort::FewestVisits => MEMBERS_BY_FEWEST_VISITS,
            Sort::FirstJoined => MEMBERS_BY_FIRST_JOINED,
            Sort::LastJoined => MEMBERS_BY_LAST_JOINED,
            Sort::MemberId => MEMBERS_BY_ID,
            Sort::LatestVisit => MEMBERS_BY_LATEST_VISIT,
        }
    }
}

/// The member list in one order. Parameters: `$1` and `$2` the range's first and
/// end date as days since 1970-01-01, `$3` the report's zone, `$4` the database's
/// zone, `$5` whether members without tokens in the range are listed, `$6` a
/// member id to list alone (or NULL), `$7` the limit and `$8` the offset. The
/// first column is the count of all rows, on a row of its own NULLs when the
/// page is empty; then the page, in order.
macro_rules! members_sql {
    ($order:literal) => {
        concat!(
            "WITH span AS (
  SELECT DATE '1970-01-01' + $1::int4 AS first_day, DATE '1970-01-01' + $2::int4 AS end_day
),
activity AS (
  SELECT t.user_id,
         COUNT(*) FILTER (WHERE t.used_at IS NOT NULL) AS visits,
         COUNT(*) AS tokens_issued,
         MAX(t.created_at AT TIME ZONE $4::text) FILTER (WHERE t.used_at IS NOT NULL)
           AS last_visit
  FROM span s JOIN tokens t
    ON t.created_at >= (s.first_day - 2)::timestamp AND t.created_at < (s.end_day + 2)::timestamp
  WHERE ((t.created_at AT TIME ZONE $4::text) AT TIME ZONE $3::text)::date >= s.first_day
    AND ((t.created_at AT TIME ZONE $4::text) AT TIME ZONE $3::text)::date < s.end_day
    AND ($6::int4 IS NULL OR t.user_id = $6::int4)
  GROUP BY t.user_id
),
listed AS (
  SELECT COALESCE(a.user_id, u.id) AS member_id, u.first_name, u.last_name, u.joined_at,
         CASE WHEN u.joined_at ",
            convertible_sql!(),
            " THEN u.joined_at AT TIME ZONE $4::text END
           AS joined_instant,
         COALESCE(a.visits, 0) AS visits, COALESCE(a.tokens_issued, 0) AS tokens_issued,
         a.last_visit
  FROM activity a FULL JOIN (SELECT * FROM users WHERE $6::int4 IS NULL OR id = $6::int4) u
    ON u.id = a.user_id
  WHERE a.user_id IS NOT NULL OR $5::bool
),
page AS (
  SELECT *, row_number() OVER (ORDER BY ",
            $order,
            ", member_id) AS position
  FROM listed
  ORDER BY ",
            $order,
            ", member_id
  LIMIT $7::int8 OFFSET $8::int8
)
SELECT total.count, p.member_id::int4, p.first_name::text, p.last_name::text, ",
            local_time_sql!("p.joined_at", "$4", "$3"),
            " AS joined_at, p.visits::int8, p.tokens_issued::int8, ",
            local_time_sql!("(p.last_visit AT TIME ZONE 'UTC')", "'UTC'", "$3"),
            " AS last_visit
FROM (SELECT COUNT(*)::int8 AS count FROM listed) AS total
LEFT JOIN page p ON true
ORDER BY p.position"
        )
    };
}

const MEMBERS_BY_MOST_VISITS: &str = members_sql!("visits DESC");
const MEMBERS_BY_FEWEST_VISITS: &str = members_sql!("visits");
const MEMBERS_BY_FIRST_JOINED: &str = members_sql!("joined_instant NULLS LAST");
const MEMBERS_BY_LAST_JOINED: &str = members_sql!("joined_instant DESC NULLS LAST");
const MEMBERS_BY_ID: &str = members_sql!("member_id");
const MEMBERS_BY_LATEST_VISIT: &str = members_sql!("last_visit DESC NULLS LAST");

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
    /// The page from the statement's rows, whose texts it takes over: a CSV of
    /// every member holds each name once, not twice.
    pub fn from_rows(rows: RowSet) -> Result<MembersPage, AppError> {
        let mut total = 0;
        let mut members = Vec::with_capacity(rows.rows.len());
        for mut row in rows.rows {
            total = int64(&row, 0)?;
            if matches!(row.get(1), Some(DbValue::DbNull)) {
                continue;
            }
            members.push(MemberRow {
                member_id: match row.get(1) {
                    Some(DbValue::Int32(id)) => *id,
                    other => return Err(unexpected(1, other)),
                },
                first_name: text(&mut row, 2)?,
                last_name: text(&mut row, 3)?,
                joined_at: text(&mut row, 4)?,
                visits: int64(&row, 5)?,
                tokens_issued: int64(&row, 6)?,
                last_visit: text(&mut row, 7)?,
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

fn int64(row: &[DbValue], index: usize) -> Result<i64, AppError> {
    match row.get(index) {
        Some(DbValue::Int64(value)) => Ok(*value),
        other => Err(unexpected(index, other)),
    }
}

fn text(row: &mut [DbValue], index: usize) -> Result<Option<String>, AppError> {
    match row.get_mut(index) {
        Some(DbValue::Str(value)) => Ok(Some(std::mem::take(value))),
        Some(DbValue::DbNull) => Ok(None),
        other => Err(unexpected(index, other.map(|value| &*value))),
    }
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
    fn every_sort_has_its_statement() {
        for sort in Sort::ALL {
            assert_eq!(Sort::parse(sort.as_str()), Some(sort));
            assert!(Sort::NAMES.contains(sort.as_str()));
        }
        let statements: std::collections::HashSet<&str> =
            Sort::ALL.iter().map(|sort| sort.sql()).collect();
        assert_eq!(statements.len(), Sort::ALL.len());
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

    #[test]
    fn an_empty_page_still_has_its_total() {
        let rows = RowSet {
            columns: Vec::new(),
            rows: vec![vec![
                DbValue::Int64(12),
                DbValue::DbNull,
                DbValue::DbNull,
                DbValue::DbNull,
                DbValue::DbNull,
                DbValue::DbNull,
                DbValue::DbNull,
                DbValue::DbNull,
            ]],
        };
        assert_eq!(
            MembersPage::from_rows(rows).unwrap(),
            MembersPage {
                total: 12,
                members: Vec::new()
            }
        );
    }
}
