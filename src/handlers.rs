//! The HTTP entry point and the handlers: short, explicit, Spin-only.

use std::time::Duration;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

use crate::dashboard;
use crate::db;
use crate::errors::AppError;
use crate::log;
use crate::notice;
use crate::probe::{self, Target};
use crate::render;
use crate::reports::{self, DailyUsage, UserVisits};
use crate::routes::{self, Dispatch, Endpoint};
use crate::v2;

/// The readiness query's statement timeout, after the probe's 2 s at most.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A report that takes longer is a database in trouble, answered with 503.
pub(crate) const REPORT_TIMEOUT: Duration = Duration::from_secs(15);

#[http_component]
fn handle(req: Request) -> Response {
    if v2::routes::is_v2(req.path()) {
        return v2::handlers::handle(&req);
    }
    if let Some(page) = dashboard::dispatch(&req.method().to_string(), req.path()) {
        return dashboard::respond(page, v2::handlers::preferences(&req));
    }
    match routes::dispatch(&req.method().to_string(), req.path()) {
        Dispatch::Serve(endpoint) => serve(endpoint),
        Dispatch::Options => render::options(),
        Dispatch::MethodNotAllowed => render::method_not_allowed(),
        Dispatch::NotFound => render::not_found(),
        Dispatch::Redirect(path) => {
            let host = routes::request_host(req.uri());
            let location = routes::redirect_location(host.as_deref(), &path, req.query());
            render::redirect(&location)
        }
    }
}

fn serve(endpoint: Endpoint) -> Response {
    let result = match endpoint {
        Endpoint::HealthCheck => Ok(render::text(200, "ok")),
        Endpoint::ReadinessCheck => Ok(readiness_check()),
        Endpoint::DailyUsage => daily_usage(),
        Endpoint::UserVisits => user_visits(),
    };
    result.unwrap_or_else(|err| {
        log::error(&format!("{endpoint:?}: {err}"));
        render::error(&err)
    })
}

/// `ok` when the tokens table can be read, `failed` (500) otherwise, as Flask did.
/// The database must first answer the probe, so that one that accepts and never
/// answers fails it within the kubelet's 5 s instead of holding it.
fn readiness_check() -> Response {
    let checked = db::settings().and_then(|settings| {
        match Target::of(&settings.host) {
            Target::Address(address) => probe::probe(address, settings.port)
                .map_err(|err| AppError::DatabaseUnavailable(format!("probe: {err}")))?,
            Target::Name => notice::warn_once(
                "probe-skipped",
                "readiness does not probe the database first: db_host is a host name, and \
                 Spin resolves none for a component and admits its sockets by IP address. A \
                 database that accepts connections and never answers then holds readiness \
                 until the kubelet's timeout fails it (README.md, \"When the database \
                 stalls\")",
            ),
        }
        db::query(&settings, PROBE_TIMEOUT, reports::READINESS_SQL)
    });
    match checked {
        Ok(_) => render::text(200, "ok"),
        Err(err) => {
            log::error(&format!("readiness check failed: {err}"));
            render::text(500, "failed")
        }
    }
}

fn daily_usage() -> Result<Response, AppError> {
    let settings = db::settings()?;
    let rows = db::query_report(&settings, REPORT_TIMEOUT, &reports::DAILY_USAGE)?;
    let report = DailyUsage::from_rows(&rows)?;
    // The Flask app logged every daily report it computed, as a Python dict.
    log::info(&render::python_dict_repr(report.days()));
    render::json(&report)
}

fn user_visits() -> Result<Response, AppError> {
    let settings = db::settings()?;
    let rows = db::query_report(&settings, REPORT_TIMEOUT, &reports::USER_VISITS)?;
    render::json(&UserVisits::from_rows(&rows)?)
}
