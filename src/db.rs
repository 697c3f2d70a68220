//! The Spin glue: settings from Spin variables, queries through Spin's outbound
//! PostgreSQL interface. Spin pools connections per address, so opening one per
//! request is cheap.

use std::time::Duration;

use spin_sdk::pg4::{Connection, ParameterValue, PgError, QueryError, RowSet};
use spin_sdk::variables;

use crate::config::{DbSettings, ReportSource};
use crate::errors::{connection_lost, db_error_detail, host_detail, AppError};
use crate::notice;
use crate::reports::{rollups_unavailable, rollups_unavailable_notice, ReportSql};

/// Read the database settings from the component's Spin variables.
pub fn settings() -> Result<DbSettings, AppError> {
    Ok(DbSettings::load(variable)?)
}

/// A Spin variable's value, `None` when it is undefined, or the host's error.
pub fn variable(name: &str) -> Result<Option<String>, String> {
    match variables::get(name) {
        Ok(value) => Ok(Some(value)),
        Err(variables::Error::Undefined(_)) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}

/// Run one query on a connection whose statements end after `timeout`.
pub fn query(settings: &DbSettings, timeout: Duration, sql: &str) -> Result<RowSet, AppError> {
    Session::open(settings, timeout)?.query(sql, &[])
}

/// Run a parameterless report (the legacy ones) on a connection of its own.
pub fn query_report(
    settings: &DbSettings,
    timeout: Duration,
    report: &ReportSql,
) -> Result<RowSet, AppError> {
    Session::open(settings, timeout)?.query_report(report, &[])
}

/// A connection whose statements end after a timeout, for a request that runs
/// more than one query: Spin resets a pooled connection on every open.
pub struct Session<'a> {
    connection: Connection,
    settings: &'a DbSettings,
}

impl<'a> Session<'a> {
    pub fn open(settings: &'a DbSettings, timeout: Duration) -> Result<Session<'a>, AppError> {
        let connection = Connection::open(&settings.address(timeout))
            .map_err(|err| classify(err, |detail| settings.redact(detail)))?;
        Ok(Session {
            connection,
            settings,
        })
    }

    pub fn query(&self, sql: &str, parameters: &[ParameterValue]) -> Result<RowSet, AppError> {
        self.connection
            .query(sql, parameters)
            .map_err(|err| self.describe(err))
    }

    /// Run a report from where `report_source` says: the rollups, `tokens`,
    /// or (`auto`) the rollups and `tokens` where they cannot be read, which
    /// the log then says (once).
    pub fn query_report(
        &self,
        report: &ReportSql,
        parameters: &[ParameterValue],
    ) -> Result<RowSet, AppError> {
        let sql = match self.settings.report_source {
            ReportSource::Tokens => report.tokens,
            ReportSource::Rollups => report.rollups,
            ReportSource::Auto => match self.connection.query(report.rollups, parameters) {
                Err(PgError::QueryFailed(QueryError::DbError(db)))
                    if rollups_unavailable(&db.code) =>
                {
                    let cause = db_error_detail(&db.severity, &db.code, &db.message);
                    notice::warn_once("rollups-unavailable", &rollups_unavailable_notice(&cause));
                    report.tokens
                }
                result => return result.map_err(|err| self.describe(err)),
            },
        };
        self.query(sql, parameters)
    }

    fn describe(&self, err: PgError) -> AppError {
        classify(err, |detail| self.settings.redact(detail))
    }
}

/// SQLSTATE classes that mean the database, not the query, is in trouble:
/// 08 connection exception, 53 insufficient resources, 57 operator intervention
/// (shutdown, statement timeout).
const UNAVAILABLE_CLASSES: [&str; 3] = ["08", "53", "57"];

/// SQLSTATEs that mean the data, not the query, is at fault: text that the
/// connection's encoding (UTF-8, which Spin's client sets) cannot carry, such
/// as a Latin-1 name in a `SQL_ASCII` database. PostgreSQL refuses to send it
/// (22021 invalid byte sequence, 22P05 untranslatable character).
const UNREPRESENTABLE_CODES: [&str; 2] = ["22021", "22P05"];

fn classify(err: PgError, redact: impl Fn(&str) -> String) -> AppError {
    match err {
        PgError::ConnectionFailed(detail) => {
            AppError::DatabaseUnavailable(redact(&host_detail(&detail)))
        }
        PgError::QueryFailed(QueryError::DbError(db)) => {
            let detail = redact(&db_error_detail(&db.severity, &db.code, &db.message));
            if UNAVAILABLE_CLASSES
                .iter()
                .any(|class| db.code.starts_with(class))
            {
                AppError::DatabaseUnavailable(detail)
            } else if UNREPRESENTABLE_CODES.contains(&db.code.as_str()) {
                AppError::Data(detail)
            } else {
                AppError::DatabaseQuery(detail)
            }
        }
        PgError::QueryFailed(QueryError::Text(detail)) if connection_lost(&detail) => {
            AppError::DatabaseUnavailable(redact(&host_detail(&detail)))
        }
        PgError::QueryFailed(QueryError::Text(detail))
        | PgError::BadParameter(detail)
        | PgError::ValueConversionFailed(detail)
        | PgError::Other(detail) => AppError::DatabaseQuery(redact(&host_detail(&detail))),
    }
}
