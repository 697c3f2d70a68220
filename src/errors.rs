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

/// tokio-postgres's messages for a connection lost or never made (its error
/// kinds `Closed`, `Io`, `Connect`, `Timeout` and `Tls`), which Spin passes as
/// a query's `text` error: a report's connection that dies under it (the
/// database restarted, the network reset) is the database's trouble, not the
/// query's.
const CONNECTION_LOST: [&str; 5] = [
    "connection closed",
    "error communicating with the server",
    "error connecting to server",
    "timeout waiting for server",
    "error performing TLS handshake",
];

/// Whether a query's `text` error says the connection, not the query, failed.
pub fn connection_lost(text: &str) -> bool {
    CONNECTION_LOST
        .iter()
        .any(|message| text.starts_with(message))
}

/// A PostgreSQL error for the log, from its fields: `ERROR 42P01: relation "tokens"
/// does not exist`. The host's own text of it varies between Spin versions.
pub fn db_error_detail(severity: &str, code: &str, message: &str) -> String {
    format!("{severity} {code}: {message}")
}

/// An error text from the host for the log, on one line and without the host's
/// backtrace (Spin appends one when `RUST_BACKTRACE` is set). Spin's texts are
/// anyhow's: a message, then `Caused by:` and the causes on lines of their own
/// (numbered when there are two or more). The line is the message and each
/// cause it does not already end with, joined by `: `, so that the CLI's form
/// (whose messages repeat their causes) and the shim's (whose do not) read alike:
/// `Error occurred while creating a new object: error connecting to server:
/// Connection refused (os error 111)`.
pub fn host_detail(text: &str) -> String {
    let text = text.split("Stack backtrace:").next().unwrap_or(text);
    let (message, causes) = match text.split_once("Caused by:") {
        Some((message, causes)) => (message, causes),
        None => (text, ""),
    };
    let mut line = one_line(message);
    for cause in causes_of(causes) {
        if !line.ends_with(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

/// The causes of anyhow's `Caused by:` block, each on one line.
fn causes_of(block: &str) -> Vec<String> {
    fn numbered(line: &str) -> Option<&str> {
        let (number, rest) = line.split_once(": ")?;
        (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
    }
    let lines: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let in_numbers = lines.first().is_some_and(|line| numbered(line).is_some());
    let mut causes: Vec<String> = Vec::new();
    for line in lines {
        match (in_numbers, numbered(line), causes.last_mut()) {
            (true, Some(rest), _) => causes.push(rest.to_string()),
            (_, _, Some(cause)) => {
                cause.push(' ');
                cause.push_str(line);
            }
            (_, _, None) => causes.push(line.to_string()),
        }
    }
    causes
}

fn one_line(text: &str) -> String {
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
    fn a_lost_connection_is_told_from_a_failed_query() {
        for text in [
            "connection closed",
            "error communicating with the server: Connection reset by peer (os error 104)",
            "error communicating with the server: early eof",
        ] {
            assert!(connection_lost(text), "{text}");
        }
        for text in [
            "db error: ERROR: syntax error",
            "invalid parameter: x",
            "closed connection",
        ] {
            assert!(!connection_lost(text), "{text}");
        }
    }

    #[test]
    fn host_details_lose_the_backtrace_and_stay_on_one_line() {
        let text = "Error occurred while creating a new object\n\nCaused by:\n    db error\n\n\
                    Stack backtrace:\n   0: anyhow::error::backtrace\n   1: spin_core::x";
        assert_eq!(
            host_detail(text),
            "Error occurred while creating a new object: db error"
        );
        // The shim's text (tokio-postgres 0.7.16) and the CLI's (0.7.12) read alike.
        let shim = "Error occurred while creating a new object: error connecting to server\n\n\
                    Caused by:\n    0: error connecting to server\n    1: Connection refused (os error 111)";
        let cli = "Error occurred while creating a new object: error connecting to server: \
                   Connection refused (os error 111)\n\nCaused by:\n    0: error connecting to \
                   server: Connection refused (os error 111)\n    1: Connection refused (os error 111)";
        let expected = "Error occurred while creating a new object: error connecting to server: \
                        Connection refused (os error 111)";
        assert_eq!(host_detail(shim), expected);
        assert_eq!(host_detail(cli), expected);
        // A cause over several lines stays one cause.
        assert_eq!(
            host_detail("db error\n\nCaused by:\n    FATAL: x\n    DETAIL: y"),
            "db error: FATAL: x DETAIL: y"
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
