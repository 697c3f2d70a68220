//! The dashboard's first full render at this size, timed by headless
//! Chromium's own clock: `tests/browser`'s `dashboard-render` opens the
//! dashboard as a signed-in analyst on a first visit (no cache), over the last
//! 30 days of the data by day, in UTC. Beside it, the slowest of the page's
//! report requests (Resource Timing), so that the page's own share shows.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};

use super::median;
use crate::postgres::Cluster;

/// Built by `dev::build_host` with every target of the workspace: alone, its
/// crates' features would be resolved anew and rebuilt, for minutes.
const BINARY: &str = "target/release/dashboard-render";

/// One Markdown line: the render's and the slowest report's median, in ms.
pub fn measure(root: &Path, port: u16, db: &Cluster, key: &str, runs: u32) -> Result<String> {
    let to = db.psql_value(
        "SELECT (max(created_at)::date + 1)::text FROM tokens",
        "postgres",
    )?;
    let from = db.psql_value(
        "SELECT (max(created_at)::date - 29)::text FROM tokens",
        "postgres",
    )?;
    let query = format!("from={from}&to={to}&granularity=day&tz=UTC");
    let binary = root.join(BINARY);
    ensure!(binary.exists(), "{} was not built", binary.display());
    let output = Command::new(binary)
        .args([
            &format!("http://127.0.0.1:{port}"),
            &query,
            &runs.to_string(),
        ])
        .env("DASHBOARD_KEY", key)
        .output()
        .context("run dashboard-render")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "dashboard-render failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (rendered, slowest): (Vec<f64>, Vec<f64>) = text.lines().filter_map(parse_run).unzip();
    ensure!(
        rendered.len() == runs as usize,
        "dashboard-render printed {text}"
    );
    let (rendered, slowest) = (median(rendered), median(slowest));
    Ok(format!(
        "- dashboard's first full render (headless Chromium, no cache; {from} to {to} by day, \
         UTC; median of {runs}): {rendered:.0} ms; its slowest report request {slowest:.0} ms, \
         so the page's own share is {:.0} ms (×{:.2})\n",
        rendered - slowest,
        rendered / slowest
    ))
}

/// `run 1: rendered 912.3 ms, slowest report 850.1 ms`.
fn parse_run(line: &str) -> Option<(f64, f64)> {
    let rest = line.split_once("rendered ")?.1;
    let (rendered, rest) = rest.split_once(" ms, slowest report ")?;
    let slowest = rest.strip_suffix(" ms")?;
    Some((rendered.parse().ok()?, slowest.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timer_s_lines() {
        assert_eq!(
            parse_run("run 2: rendered 912.3 ms, slowest report 850.1 ms"),
            Some((912.3, 850.1))
        );
        assert_eq!(parse_run("something else"), None);
    }
}
