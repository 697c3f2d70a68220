//! Log lines in the Flask app's format, on stderr where gunicorn wrote them:
//! `[2026-12-01 10:42:18,123] INFO in app: {'2023-02-07': 40}`. Log scrapers
//! written against the Flask app keep working; under SpinKube they are the pod's
//! log, and CloudWatch Container Insights collects them.

use chrono::{DateTime, Utc};

/// How often a notice logged "once" is repeated while its cause lasts, so that
/// the log of a long-running pod still shows it.
pub const NOTICE_REPEAT_SECS: u64 = 3600;

/// A level of Python's `logging`, as Flask's default formatter prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

pub fn info(message: &str) {
    write_record(Level::Info, message);
}

pub fn warning(message: &str) {
    write_record(Level::Warning, message);
}

pub fn error(message: &str) {
    write_record(Level::Error, message);
}

/// One record, newline included, in one write to stderr: Spin passes each
/// write of a component's output to the pod's log as it comes, so a record in
/// pieces (as `eprintln!` writes it: the text, then the newline) can be cut by
/// another instance's and merge two records on one line. Only a record over the
/// stream's budget (64 KiB under Spin) takes more than one write.
fn write_record(level: Level, message: &str) {
    let mut record = line(Utc::now(), level, message);
    record.push('\n');
    write_stderr(record.as_bytes());
}

#[cfg(target_arch = "wasm32")]
fn write_stderr(mut bytes: &[u8]) {
    let stream = wasi::cli::stderr::get_stderr();
    while !bytes.is_empty() {
        // A log that cannot be written has nowhere to say so.
        let budget = match stream.check_write() {
            Ok(0) => {
                stream.subscribe().block();
                continue;
            }
            Ok(budget) => usize::try_from(budget).unwrap_or(usize::MAX),
            Err(_) => return,
        };
        let (now, later) = bytes.split_at(budget.min(bytes.len()));
        if stream.write(now).is_err() {
            return;
        }
        bytes = later;
    }
    let _ = stream.blocking_flush();
}

#[cfg(not(target_arch = "wasm32"))]
fn write_stderr(bytes: &[u8]) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// Whether a notice last logged at `last` (Unix seconds; `None`: never) is to be
/// logged again at `now`.
pub fn notice_due(last: Option<u64>, now: u64) -> bool {
    last.is_none_or(|last| now.saturating_sub(last) >= NOTICE_REPEAT_SECS)
}

/// Flask's `[%(asctime)s] %(levelname)s in %(module)s: %(message)s`, with the
/// module the Flask app logged from (`app`). A message is kept on one line, so
/// that one event is one log record.
pub fn line(at: DateTime<Utc>, level: Level, message: &str) -> String {
    let level = match level {
        Level::Info => "INFO",
        Level::Warning => "WARNING",
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
        assert_eq!(
            line(at, Level::Warning, "w"),
            "[2023-02-15 08:09:10,123] WARNING in app: w"
        );
    }

    #[test]
    fn notices_are_logged_once_then_hourly() {
        assert!(notice_due(None, 1_000));
        assert!(!notice_due(Some(1_000), 1_000));
        assert!(!notice_due(Some(1_000), 1_000 + NOTICE_REPEAT_SECS - 1));
        assert!(notice_due(Some(1_000), 1_000 + NOTICE_REPEAT_SECS));
        // A clock that went back does not repeat it.
        assert!(!notice_due(Some(5_000), 4_000));
    }
}
