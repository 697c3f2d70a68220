//! Errors: what went wrong, the status and short JSON body the client gets, and the
//! log line (with the details, never a secret) the operator gets.

use std::fmt;

use crate::config::ConfigError;

/// A failure while serving an endpoint.
#[derive(Debug)]
pub enum AppError {
    /// The service is misconfigured (a missing or invalid variable).
    Config(ConfigError),
    /// PostgreSQL cannot be reached, refused the connection, or gave up on the query.
    DatabaseUnavailable(String),
    /// PostgreSQL answered the query with an error.
    DatabaseQuery(String),
    /// The data holds a value that the report cannot represent.
    Data(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::DatabaseUnavailable(_) => 503,
            AppError::Config(_) | AppError::DatabaseQuery(_) | AppError::Data(_) => 500,
        }
    }

    /// The message for the client: short, without database internals. Configuration
    /// errors are the operator's to fix and name no value, so they are shown whole.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Config(err) => format!("configuration error: {err}"),
            AppError::DatabaseUnavailable(_) => "database unavailable, try again later".into(),
            AppError::DatabaseQuery(_) => "database query failed".into(),
            AppError::Data(_) => "the report data holds a value it cannot represent".into(),
        }
    }

    /// The JSON error body: `{"error":"..."}` and a newline, like the reports.
    pub fn json_body(&self) -> Vec<u8> {
        let mut body = serde_json::to_vec(&serde_json::json!({ "error": self.public_message() }))
            .expect("a string map serializes");
        body.push(b'\n');
        body
    }
}

impl fmt::Display for AppError {
    /// The log form, with the details the client does not get.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Config(err) => write!(f, "configuration error: {err}"),
            AppError::DatabaseUnavailable(detail) => write!(f, "database unavailable: {detail}"),
            AppError::DatabaseQuery(detail) => write!(f, "database query failed: {detail}"),
            AppError::Data(detail) => write!(f, "report data error: {detail}"),
        }
    }
}

/// A PostgreSQL error for the log, from its fields: `ERROR 42P01: relation "tokens"
/// does not exist`. The host's own text of it varies between Spin versions.
pub fn db_error_detail(severity: &str, code: &str, message: &str) -> String {
    format!("{severity} {code}: {message}")
}

/// An error text from the host for the log: without the host's backtrace (Spin
/// appends one when `RUST_BACKTRACE` is set), on one line.
pub fn host_detail(text: &str) -> String {
    let text = text.split("Stack backtrace:").next().unwrap_or(text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl From<ConfigError> for AppError {
    fn from(err: ConfigError) -> Self {
        AppError::Config(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Setting;

    #[test]
    fn database_trouble_is_503_and_says_nothing_internal() {
        let err = AppError::DatabaseUnavailable("connection refused to 10.0.0.7".into());
        assert_eq!(err.status(), 503);
        assert_eq!(
            err.json_body(),
            b"{\"error\":\"database unavailable, try again later\"}\n"
        );
        assert!(err.to_string().contains("10.0.0.7"));
    }

    #[test]
    fn host_details_lose_the_backtrace_and_stay_on_one_line() {
        let text = "Error occurred while creating a new object\n\nCaused by:\n    0: db error\n\n\
                    Stack backtrace:\n   0: anyhow::error::backtrace\n   1: spin_core::x";
        assert_eq!(
            host_detail(text),
            "Error occurred while creating a new object Caused by: 0: db error"
        );
        assert_eq!(
            db_error_detail("ERROR", "42P01", "relation \"tokens\" does not exist"),
            "ERROR 42P01: relation \"tokens\" does not exist"
        );
    }

    #[test]
    fn configuration_errors_name_the_variable() {
        let err = AppError::from(ConfigError::Missing(Setting::Password));
        assert_eq!(err.status(), 500);
        let body = String::from_utf8(err.json_body()).unwrap();
        assert!(body.contains("db_password"), "{body}");
    }
}
