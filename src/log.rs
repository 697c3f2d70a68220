//! Log lines in the Flask app's format, on stderr where gunicorn wrote them:
//! `[2026-12-01 10:42:18,123] INFO in app: {'2023-02-07': 40}`. Log scrapers
//! written against the Flask app keep working; under SpinKube they are the pod's
//! log, and CloudWatch Container Insights collects them.

use chrono::{DateTime, Utc};

/// A level of Python's `logging`, as Flask's default formatter prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

pub fn info(message: &str) {
    eprintln!("{}", line(Utc::now(), Level::Info, message));
}

pub fn error(message: &str) {
    eprintln!("{}", line(Utc::now(), Level::Error, message));
}

/// Flask's `[%(asctime)s] %(levelname)s in %(module)s: %(message)s`, with the
/// module the Flask app logged from (`app`). A message is kept on one line, so
/// that one event is one log record.
pub fn line(at: DateTime<Utc>, level: Level, message: &str) -> String {
    let level = match level {
        Level::Info => "INFO",
        Level::Error => "ERROR",
    };
    let message = message.replace(['\r', '\n'], " ");
    format!(
        "[{}] {level} in app: {message}",
        at.format("%Y-%m-%d %H:%M:%S,%3f")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_flasks_default_format() {
        let at = DateTime::parse_from_rfc3339("2023-02-15T08:09:10.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            line(at, Level::Info, "{'2023-02-07': 40}"),
            "[2023-02-15 08:09:10,123] INFO in app: {'2023-02-07': 40}"
        );
        assert_eq!(
            line(
                at,
                Level::Error,
                "database unavailable:\nconnection refused"
            ),
            "[2023-02-15 08:09:10,123] ERROR in app: database unavailable: connection refused"
        );
    }
}
