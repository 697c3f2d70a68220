//! The soak's answers read against its fault windows: a row per window and
//! one for the time outside them, and the checks that fail the run.

use std::time::{Duration, Instant};

use spin_test_host::LeakReport;
use test_support::Fault;

use crate::load::Answer;
use crate::schedule::{Kind, Window};

/// After a fault ends, answers this soon still count as its own: the pool
/// has connections to replace.
const GRACE: Duration = Duration::from_secs(1);
/// A failure must come at least this fast, but for a black hole.
const QUICK: Duration = Duration::from_secs(5);
/// No request asked later than this after a fault's end fails.
const RECOVERY: Duration = Duration::from_secs(1);
/// Spin's pools: one per address string, of at most 64 connections. The
/// service opens two addresses, readiness's (a 2 s statement timeout in its
/// options) and the reports' (15 s).
const POOL_SIZE: i64 = 64;
const ADDRESSES: i64 = 2;

struct Row {
    label: String,
    seconds: Option<f64>,
    answers: usize,
    correct: usize,
    failed_as_expected: usize,
    other: usize,
    slowest: Duration,
    /// After the fault's end: when the last request that failed was asked
    /// (zero if none failed), and when the first success came.
    recovered: Option<Duration>,
    first_success: Option<Duration>,
}

pub struct Verdict {
    rows: Vec<Row>,
    summary: Vec<String>,
    pub failures: Vec<String>,
}

pub struct Resources {
    /// Host RSS after warm-up (the first round of faults: every path has
    /// run once) and at the end, KiB.
    pub rss: (u64, u64),
    /// Host RSS every 5 s from the warm-up's end, KiB.
    pub rss_series: Vec<u64>,
    /// The service's PostgreSQL connections: the most seen, and after the load.
    pub connections: (i64, i64),
    pub host_alive: bool,
}

impl Verdict {
    pub fn new(
        warm: Instant,
        windows: &[Window],
        answers: &[Answer],
        resources: Resources,
        leaks: LeakReport,
    ) -> Verdict {
        let mut failures = Vec::new();
        let mut rows = Vec::new();
        for answer in answers.iter().filter(|answer| answer.wrong.is_some()) {
            failures.push(format!(
                "a wrong {:?} body: {}",
                answer.endpoint,
                answer.wrong.as_deref().unwrap_or_default()
            ));
        }
        let outside = outside_the_faults(answers, warm, windows);
        let outside_row = row("outside the faults", None, &outside);
        if outside_row.correct != outside_row.answers {
            failures.push(format!(
                "{} of {} answers outside the faults were not the reference",
                outside_row.answers - outside_row.correct,
                outside_row.answers
            ));
        }
        rows.push(outside_row);
        for (index, window) in windows.iter().enumerate() {
            let next = windows.get(index + 1).map(|next| next.start);
            let mine: Vec<&Answer> = answers
                .iter()
                .filter(|answer| inside(answer, window))
                .collect();
            let label = window.kind.label();
            let black_hole = window.kind == Kind::Proxy(Fault::BlackHole);
            for answer in &mine {
                let expected =
                    answer.correct() || answer.status == Some(answer.endpoint.failure_status());
                if !expected {
                    failures.push(format!(
                        "{label}: {:?} answered {:?}",
                        answer.endpoint, answer.status
                    ));
                }
                // Spin bounds no wait on a database that never answers: those
                // requests must end once the fault does.
                let late = if black_hole {
                    answer.answered > window.end + QUICK
                } else {
                    answer.took() > QUICK
                };
                if late {
                    failures.push(format!(
                        "{label}: {:?} took {:.1?}",
                        answer.endpoint,
                        answer.took()
                    ));
                }
            }
            let recovered = recovered_after(window, next, answers);
            match recovered {
                Some(after) if after <= RECOVERY => {}
                Some(after) => failures.push(format!(
                    "{label}: a request asked {after:.1?} after the fault ended failed"
                )),
                None => failures.push(format!(
                    "{label}: no request succeeded after the fault ended"
                )),
            }
            let mut window_row = row(&label, Some(window.end - window.start), &mine);
            window_row.recovered = recovered;
            window_row.first_success = first_success_after(window, answers);
            rows.push(window_row);
        }
        let (rss_warm, rss_end) = resources.rss;
        if rss_end as f64 > rss_warm as f64 * 1.10 {
            failures.push(format!(
                "the host's RSS grew from {rss_warm} KiB to {rss_end} KiB"
            ));
        }
        let (most, after) = resources.connections;
        if most > POOL_SIZE * ADDRESSES {
            failures.push(format!(
                "{most} PostgreSQL connections from the service, over its {ADDRESSES} pools of {POOL_SIZE}"
            ));
        }
        if !resources.host_alive {
            failures.push("the host exited".into());
        }
        failures.extend(
            leaks
                .findings
                .iter()
                .map(|finding| format!("a leak: {finding}")),
        );
        let summary = vec![
            format!(
                "requests: {} ({} after warm-up)",
                answers.len(),
                answers.iter().filter(|a| a.asked >= warm).count()
            ),
            format!("answers outside the faults, ms: {}", percentiles(&outside)),
            format!(
                "host RSS: {:.1} MiB after warm-up (the first round), {:.1} MiB at the end ({:+.1} %)",
                rss_warm as f64 / 1024.0,
                rss_end as f64 / 1024.0,
                (rss_end as f64 / rss_warm as f64 - 1.0) * 100.0
            ),
            format!(
                "host RSS every 5 s from the load's start, MiB: {}",
                resources
                    .rss_series
                    .iter()
                    .map(|kib| format!("{:.0}", *kib as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "PostgreSQL connections from the service: at most {most} ({ADDRESSES} pools of {POOL_SIZE}); {after} idle 2 s after the load (Spin's pools close none)"
            ),
            format!(
                "secrets' watch: {} answers and the host's log, {:.1} MB, {} forms of the password and the key: {} found",
                answers.len(),
                leaks.bytes as f64 / 1e6,
                leaks.forms,
                leaks.findings.len()
            ),
        ];
        Verdict {
            rows,
            summary,
            failures,
        }
    }

    pub fn print(&self) {
        println!(
            "\n| phase | seconds | answers | 200, the reference | 503 (readiness 500) | other | slowest ms | failures end after, ms | first success after, ms |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for row in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} |",
                row.label,
                row.seconds
                    .map_or_else(|| "-".into(), |seconds| format!("{seconds:.1}")),
                row.answers,
                row.correct,
                row.failed_as_expected,
                row.other,
                row.slowest.as_secs_f64() * 1000.0,
                milliseconds(row.recovered),
                milliseconds(row.first_success),
            );
        }
        println!();
        for line in &self.summary {
            println!("- {line}");
        }
        if self.failures.is_empty() {
            println!("- every check passed");
        }
    }
}

fn row(label: &str, duration: Option<Duration>, answers: &[&Answer]) -> Row {
    let correct = answers.iter().filter(|answer| answer.correct()).count();
    let failed_as_expected = answers
        .iter()
        .filter(|answer| answer.status == Some(answer.endpoint.failure_status()))
        .count();
    Row {
        label: label.to_owned(),
        seconds: duration.map(|duration| duration.as_secs_f64()),
        answers: answers.len(),
        correct,
        failed_as_expected,
        other: answers.len() - correct - failed_as_expected,
        slowest: answers
            .iter()
            .map(|answer| answer.took())
            .max()
            .unwrap_or_default(),
        recovered: None,
        first_success: None,
    }
}

/// Whether an answer was in flight during the window, or its grace after it.
fn inside(answer: &Answer, window: &Window) -> bool {
    answer.asked < window.end + GRACE && answer.answered > window.start
}

/// The answers asked after the warm-up and in no window.
fn outside_the_faults<'a>(
    answers: &'a [Answer],
    warm: Instant,
    windows: &[Window],
) -> Vec<&'a Answer> {
    answers
        .iter()
        .filter(|answer| {
            answer.asked >= warm && !windows.iter().any(|window| inside(answer, window))
        })
        .collect()
}

/// How long after the window's end requests still failed: the latest ask,
/// after the end, of a request that failed before the `next` window (zero
/// if none did); `None` if no request asked after the end succeeded. Unlike
/// the first success, it does not count how long a request waits for the
/// busy cores.
fn recovered_after(window: &Window, next: Option<Instant>, answers: &[Answer]) -> Option<Duration> {
    first_success_after(window, answers)?;
    Some(
        answers
            .iter()
            .filter(|answer| {
                answer.endpoint.reads_the_database()
                    && answer.asked >= window.end
                    && next.is_none_or(|next| answer.answered < next)
                    && !answer.correct()
            })
            .map(|answer| answer.asked - window.end)
            .max()
            .unwrap_or_default(),
    )
}

/// When the first correct answer to a request asked after the window's end
/// came, after that end.
fn first_success_after(window: &Window, answers: &[Answer]) -> Option<Duration> {
    answers
        .iter()
        .filter(|answer| {
            answer.endpoint.reads_the_database() && answer.asked >= window.end && answer.correct()
        })
        .map(|answer| answer.answered - window.end)
        .min()
}

/// The median, 90th and 99th percentile and the slowest of the answers' times.
fn percentiles(answers: &[&Answer]) -> String {
    let mut took: Vec<Duration> = answers.iter().map(|answer| answer.took()).collect();
    took.sort_unstable();
    let Some(&slowest) = took.last() else {
        return "none".into();
    };
    let at = |fraction: f64| took[((took.len() - 1) as f64 * fraction) as usize];
    format!(
        "p50 {}, p90 {}, p99 {}, slowest {}",
        milliseconds(Some(at(0.5))),
        milliseconds(Some(at(0.9))),
        milliseconds(Some(at(0.99))),
        milliseconds(Some(slowest))
    )
}

fn milliseconds(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".into(),
        |duration| format!("{:.0}", duration.as_secs_f64() * 1000.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Endpoint;

    fn answer(asked: Instant, took_ms: u64, status: u16) -> Answer {
        Answer {
            endpoint: Endpoint::DailyUsage,
            asked,
            answered: asked + Duration::from_millis(took_ms),
            status: Some(status),
            wrong: None,
        }
    }

    #[test]
    fn failures_end_at_the_last_failed_ask_before_the_next_window() {
        let start = Instant::now();
        let window = Window {
            kind: Kind::Proxy(Fault::Reset),
            start,
            end: start + Duration::from_secs(4),
        };
        let next = Some(start + Duration::from_secs(7));
        let at = |ms: u64| start + Duration::from_millis(ms);
        // A slow first success does not delay the recovery; a failure asked
        // 300 ms after the end does.
        let answers = [
            answer(at(3_000), 100, 503),
            answer(at(4_000), 1_500, 200),
            answer(at(4_300), 50, 503),
            answer(at(4_400), 50, 200),
            // In flight when the next fault began: that fault's.
            answer(at(6_900), 200, 503),
        ];
        assert_eq!(
            recovered_after(&window, next, &answers),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            first_success_after(&window, &answers),
            Some(Duration::from_millis(450))
        );
        assert_eq!(
            recovered_after(&window, next, &answers[1..2]),
            Some(Duration::ZERO)
        );
        // Nothing succeeded after the end: no recovery at all.
        assert_eq!(recovered_after(&window, next, &answers[..1]), None);
        assert_eq!(recovered_after(&window, next, &answers[2..3]), None);
    }
}
