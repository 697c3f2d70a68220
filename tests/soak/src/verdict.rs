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
/// The first success after a fault comes within this.
const RECOVERY: Duration = Duration::from_secs(1);
/// Spin's pools: one per address string, of at most 64 connections. The
/// service opens two addresses, readiness's (a 2 s statement timeout in its
/// options) and the reports' (15 s).
const POOL_SIZE: i64 = 64;
const ADDRESSES: i64 = 2;

struct Row {
    label: String,
    seconds: f64,
    answers: usize,
    correct: usize,
    failed_as_expected: usize,
    other: usize,
    slowest: Duration,
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
        let inside = |answer: &Answer, window: &Window| {
            answer.asked < window.end + GRACE && answer.answered > window.start
        };
        for answer in answers.iter().filter(|answer| answer.wrong.is_some()) {
            failures.push(format!(
                "a wrong {:?} body: {}",
                answer.endpoint,
                answer.wrong.as_deref().unwrap_or_default()
            ));
        }
        let outside: Vec<&Answer> = answers
            .iter()
            .filter(|answer| {
                answer.asked >= warm && !windows.iter().any(|window| inside(answer, window))
            })
            .collect();
        let outside_row = row("outside the faults", None, &outside);
        if outside_row.correct != outside_row.answers {
            failures.push(format!(
                "{} of {} answers outside the faults were not the reference",
                outside_row.answers - outside_row.correct,
                outside_row.answers
            ));
        }
        rows.push(outside_row);
        for window in windows {
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
            let first_success = answers
                .iter()
                .filter(|answer| {
                    answer.endpoint.reads_the_database()
                        && answer.asked >= window.end
                        && answer.correct()
                })
                .map(|answer| answer.answered - window.end)
                .min();
            match first_success {
                Some(after) if after <= RECOVERY => {}
                other => failures.push(format!(
                    "{label}: the first success came {other:?} after the fault ended"
                )),
            }
            let mut window_row = row(&label, Some(window.end - window.start), &mine);
            window_row.first_success = first_success;
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
            format!("requests: {} ({} after warm-up)", answers.len(), answers.iter().filter(|a| a.asked >= warm).count()),
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
            "\n| phase | seconds | answers | 200, the reference | 503 (readiness 500) | other | slowest ms | first success after, ms |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for row in &self.rows {
            println!(
                "| {} | {:.1} | {} | {} | {} | {} | {:.0} | {} |",
                row.label,
                row.seconds,
                row.answers,
                row.correct,
                row.failed_as_expected,
                row.other,
                row.slowest.as_secs_f64() * 1000.0,
                row.first_success
                    .map(|after| format!("{:.0}", after.as_secs_f64() * 1000.0))
                    .unwrap_or_else(|| "-".into())
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
        seconds: duration.map_or(0.0, |duration| duration.as_secs_f64()),
        answers: answers.len(),
        correct,
        failed_as_expected,
        other: answers.len() - correct - failed_as_expected,
        slowest: answers
            .iter()
            .map(|answer| answer.took())
            .max()
            .unwrap_or_default(),
        first_success: None,
    }
}
