//! The v2 handlers: short, explicit, Spin-only. Each reads its settings, lets
//! the request in by its key, reads its parameters, runs one query and renders.

use chrono::Utc;
use spin_sdk::http::{Request, Response};

use crate::db;
use crate::errors::AppError;
use crate::handlers::REPORT_TIMEOUT;
use crate::log;
use crate::notice;
use crate::v2::access::{self, Denied};
use crate::v2::members::{self, MemberReport, MembersPage, MembersQuery, MembersReport};
use crate::v2::params::Calendar;
use crate::v2::problem::Problem;
use crate::v2::routes::{self, Dispatch, Route, ALLOWED_METHODS};
use crate::v2::settings::ReportSettings;
use crate::v2::usage::{UsageQuery, UsageReport, USAGE_SQL};

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
    let settings = report_settings()?;
    authorize(&settings, req)?;
    match route {
        Route::Usage => usage(&settings, req.query()),
        Route::Members => members(&settings, req.path(), req.query()),
        Route::Member(id) => member(&settings, id, req.query()),
    }
}

fn usage(settings: &ReportSettings, query: &str) -> Result<Response, Problem> {
    let query = UsageQuery::parse(query, &calendar(settings))?;
    let db = db::settings().map_err(failed)?;
    let parameters = query.sql_parameters(settings.db_timezone, None);
    let rows = db::query(&db, REPORT_TIMEOUT, USAGE_SQL, &parameters).map_err(failed)?;
    let report = UsageReport::from_rows(&query, &rows).map_err(failed)?;
    json(&report)
}

fn members(settings: &ReportSettings, path: &str, query: &str) -> Result<Response, Problem> {
    let members = MembersQuery::parse(query, &calendar(settings))?;
    let db = db::settings().map_err(failed)?;
    let parameters = members.sql_parameters(settings.db_timezone, None);
    let rows = db::query(&db, REPORT_TIMEOUT, members.sort.sql(), &parameters).map_err(failed)?;
    let page = MembersPage::from_rows(&rows).map_err(failed)?;
    let mut response = json(&MembersReport::new(&members, &page))?;
    if let Some(links) = members.page_links(path, query, page.total) {
        response.set_header("link", links);
    }
    Ok(response)
}

/// One member's row and usage series: two queries on one connection.
fn member(settings: &ReportSettings, id: &str, query: &str) -> Result<Response, Problem> {
    let usage = UsageQuery::parse(query, &calendar(settings))?;
    let not_found = || Problem::not_found(format!("there is no member {id}"));
    let member_id = members::member_id(id).ok_or_else(not_found)?;
    let row_query = MembersQuery::one_member(usage.period);
    let db = db::settings().map_err(failed)?;
    let session = db::Session::open(&db, REPORT_TIMEOUT).map_err(failed)?;
    let rows = session
        .query(
            row_query.sort.sql(),
            &row_query.sql_parameters(settings.db_timezone, Some(member_id)),
        )
        .map_err(failed)?;
    let page = MembersPage::from_rows(&rows).map_err(failed)?;
    let Some(row) = page.members.into_iter().next() else {
        return Err(not_found());
    };
    let parameters = usage.sql_parameters(settings.db_timezone, Some(member_id));
    let rows = session.query(USAGE_SQL, &parameters).map_err(failed)?;
    let series = UsageReport::from_rows(&usage, &rows).map_err(failed)?;
    json(&MemberReport {
        member: row,
        usage: series,
    })
}

fn json(value: &impl serde::Serialize) -> Result<Response, Problem> {
    crate::render::json(value).map_err(failed)
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

fn calendar(settings: &ReportSettings) -> Calendar {
    Calendar {
        default_tz: settings.report_timezone,
        now: Utc::now(),
    }
}

/// A failure after the request was let in: logged with its details, answered
/// without them.
fn failed(err: AppError) -> Problem {
    log::error(&format!("v2: {err}"));
    Problem::from_error(&err)
}
