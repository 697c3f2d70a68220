//! The v2 handlers: short, explicit, Spin-only. Each reads its settings, lets
//! the request in by its key, reads its parameters, runs its query on one
//! connection, and renders what was negotiated.

use chrono::NaiveDate;
use spin_sdk::http::{Request, Response};

use crate::db;
use crate::errors::AppError;
use crate::handlers::REPORT_TIMEOUT;
use crate::log;
use crate::notice;
use crate::render::json_line;
use crate::v2::access::{self, Denied};
use crate::v2::members::{MemberReport, MembersPage, MembersQuery, MembersReport, MembersRequest};
use crate::v2::negotiate::{Format, REPORT_FORMATS};
use crate::v2::params::{PeriodRequest, TODAY_SQL};
use crate::v2::problem::Problem;
use crate::v2::representation::{Preferences, Representation};
use crate::v2::routes::{self, Dispatch, Report, Route, ALLOWED_METHODS};
use crate::v2::settings::ReportSettings;
use crate::v2::table;
use crate::v2::usage::{UsageReport, UsageRequest};
use crate::v2::usage_sql::usage_sql;

pub fn handle(req: &Request) -> Response {
    match routes::dispatch(&req.method().to_string(), req.path()) {
        Dispatch::Serve(route) => serve(&route, req).unwrap_or_else(Problem::into_response),
        Dispatch::Options => Response::builder()
            .status(204)
            .header("allow", ALLOWED_METHODS)
            .build(),
        Dispatch::Refuse(problem) => problem.into_response(),
    }
}

fn serve(route: &Route, req: &Request) -> Result<Response, Problem> {
    let (representation, max_age) = match route {
        // The document needs no settings: a misconfigured service still shows it.
        Route::OpenApi => (openapi(req)?, 0),
        Route::Report(report) => {
            let settings = report_settings()?;
            authorize(&settings, req)?;
            let representation = match report {
                Report::Usage => usage(&settings, req)?,
                Report::Members => members(&settings, req)?,
                Report::Member(id) => member(&settings, *id, req)?,
            };
            (representation, settings.cache_max_age)
        }
    };
    representation
        .respond(preferences(req), max_age)
        .map_err(failed)
}

/// What the request's `If-None-Match` and `Accept-Encoding` say.
pub(crate) fn preferences(req: &Request) -> Preferences<'_> {
    Preferences {
        if_none_match: req.header("if-none-match").map(|value| value.as_bytes()),
        accept_encoding: header(req, "accept-encoding"),
    }
}

fn usage(settings: &ReportSettings, req: &Request) -> Result<Representation, Problem> {
    let request = UsageRequest::parse(req.query(), settings.report_timezone)?;
    let format = Format::negotiate(request.format, header(req, "accept"), REPORT_FORMATS)?;
    let db = db::settings().map_err(failed)?;
    let session = db::Session::open(&db, REPORT_TIMEOUT).map_err(failed)?;
    let query = request.resolve(today(&session, &request.period)?)?;
    let parameters = query.sql_parameters(settings.db_timezone, None);
    let rows = session
        .query_report(&usage_sql(query.measures), &parameters)
        .map_err(failed)?;
    let report = UsageReport::from_rows(&query, &rows).map_err(failed)?;
    let (body, filename) = match format {
        Format::Json => (json_line(&report).map_err(failed)?, None),
        Format::Csv => (
            table::usage_csv(&report).map_err(failed)?,
            Some(query.filename("usage")),
        ),
    };
    Ok(Representation {
        content_type: format.content_type(),
        body,
        filename,
        link: None,
    })
}

fn members(settings: &ReportSettings, req: &Request) -> Result<Representation, Problem> {
    let request = MembersRequest::parse(req.query(), settings.report_timezone)?;
    let format = Format::negotiate(request.format, header(req, "accept"), REPORT_FORMATS)?;
    let db = db::settings().map_err(failed)?;
    let session = db::Session::open(&db, REPORT_TIMEOUT).map_err(failed)?;
    let query = request.resolve(today(&session, &request.period)?)?;
    let page_size = query.page_size(format);
    let parameters = query.sql_parameters(settings.db_timezone, None, page_size);
    let rows = session
        .query_report(&query.sql(None, page_size), &parameters)
        .map_err(failed)?;
    let page = MembersPage::from_rows(rows).map_err(failed)?;
    let link = query.page_links(req.path(), req.query(), page_size, page.total);
    let (body, filename) = match format {
        Format::Json => (
            json_line(&MembersReport::new(&query, &page)).map_err(failed)?,
            None,
        ),
        Format::Csv => (
            table::members_csv(page.members).map_err(failed)?,
            Some(query.filename()),
        ),
    };
    Ok(Representation {
        content_type: format.content_type(),
        body,
        filename,
        link,
    })
}

/// One member's row and usage series: two queries on one connection. CSV is
/// the series.
fn member(
    settings: &ReportSettings,
    member_id: i32,
    req: &Request,
) -> Result<Representation, Problem> {
    let request = UsageRequest::parse(req.query(), settings.report_timezone)?;
    let format = Format::negotiate(request.format, header(req, "accept"), REPORT_FORMATS)?;
    let db = db::settings().map_err(failed)?;
    let session = db::Session::open(&db, REPORT_TIMEOUT).map_err(failed)?;
    let usage = request.resolve(today(&session, &request.period)?)?;
    let row_query = MembersQuery::one_member(usage.period);
    let row_parameters =
        row_query.sql_parameters(settings.db_timezone, Some(member_id), row_query.limit);
    let rows = session
        .query_report(
            &row_query.sql(Some(member_id), row_query.limit),
            &row_parameters,
        )
        .map_err(failed)?;
    let page = MembersPage::from_rows(rows).map_err(failed)?;
    let Some(row) = page.members.into_iter().next() else {
        return Err(Problem::not_found(format!(
            "there is no member {member_id}"
        )));
    };
    let parameters = usage.sql_parameters(settings.db_timezone, Some(member_id));
    let rows = session
        .query_report(&usage_sql(usage.measures), &parameters)
        .map_err(failed)?;
    let series = UsageReport::from_rows(&usage, &rows).map_err(failed)?;
    let (body, filename) = match format {
        Format::Json => (
            json_line(&MemberReport {
                member: row,
                usage: series,
            })
            .map_err(failed)?,
            None,
        ),
        Format::Csv => (
            table::usage_csv(&series).map_err(failed)?,
            Some(usage.filename(&format!("member-{member_id}"))),
        ),
    };
    Ok(Representation {
        content_type: format.content_type(),
        body,
        filename,
        link: None,
    })
}

fn openapi(req: &Request) -> Result<Representation, Problem> {
    // Its one representation is JSON: an Accept without it is a 406.
    Format::negotiate(None, header(req, "accept"), &[Format::Json])?;
    Ok(Representation {
        content_type: Format::Json.content_type(),
        body: routes::OPENAPI.as_bytes().to_vec(),
        filename: None,
        link: None,
    })
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).and_then(|value| value.as_str())
}

fn report_settings() -> Result<ReportSettings, Problem> {
    ReportSettings::load(db::variable).map_err(|err| {
        log::error(&format!("v2: configuration error: {err}"));
        Problem::configuration(&err)
    })
}

fn authorize(settings: &ReportSettings, req: &Request) -> Result<(), Problem> {
    let authorization = req.header("authorization").map(|value| value.as_bytes());
    access::check(&settings.api_keys, authorization.into_iter()).map_err(|denied| {
        if denied == Denied::NoKeysConfigured {
            notice::warn_once(
                "no-api-keys",
                "the v2 reports answer 401 to every request: no API keys are configured. Set \
                 the api_keys variable (README.md, \"API keys\")",
            );
        }
        Problem::unauthorized(denied)
    })
}

/// Today's date in the request's zone, from PostgreSQL, when its range needs it.
fn today(session: &db::Session, period: &PeriodRequest) -> Result<Option<NaiveDate>, Problem> {
    if !period.needs_today() {
        return Ok(None);
    }
    let rows = session
        .query(TODAY_SQL, &period.today_parameters())
        .map_err(failed)?;
    PeriodRequest::today_from_rows(&rows)
        .map(Some)
        .map_err(failed)
}

/// A failure after the request was let in: logged with its details, answered
/// without them.
fn failed(err: AppError) -> Problem {
    log::error(&format!("v2: {err}"));
    Problem::from_error(&err)
}
