//! The dashboard's first full render, timed by the browser itself:
//! `dashboard-render <service URL> <query> <runs>`, with the API key in
//! `DASHBOARD_KEY`. `cargo xtask bench` runs it against the service it starts.
//!
//! Each run is a first visit (the cache disabled) of `/dashboard?<query>` by a
//! signed-in analyst. It prints one line per run: the page's
//! `dashboard-rendered` mark (navigation start to figures, chart and members
//! drawn) and the longest of its report requests (Resource Timing), in
//! milliseconds, so that the page's own share shows.

use dashboard_checks::browser::Chromium;

const RENDERED: &str = "performance.getEntriesByName('dashboard-rendered')[0]?.startTime ?? -1";
const SLOWEST_REPORT: &str = "Math.max(...performance.getEntriesByType('resource')
    .filter((entry) => entry.name.includes('/api/v2/'))
    .map((entry) => entry.responseEnd - entry.startTime))";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: dashboard-render <service URL> <query> <runs> (key in DASHBOARD_KEY)";
    let (Some(service), Some(query), Some(runs)) = (args.next(), args.next(), args.next()) else {
        panic!("{usage}");
    };
    let runs: u32 = runs.parse().expect(usage);
    let key = std::env::var("DASHBOARD_KEY").expect(usage);

    let chromium = Chromium::launch("UTC").await;
    chromium.disable_cache().await;
    chromium.goto(&format!("{service}/dashboard")).await;
    chromium
        .run(&format!(
            "sessionStorage.setItem('coworking-analytics.api-key', {})",
            serde_json::to_string(&key).unwrap()
        ))
        .await;
    for run in 1..=runs {
        chromium.goto(&format!("{service}/dashboard?{query}")).await;
        chromium
            .wait_until("document.getElementById('report').dataset.loads === '1'")
            .await;
        let state: String = chromium
            .eval("document.getElementById('report').dataset.state")
            .await;
        assert!(
            state == "ready" || state == "empty",
            "run {run}: the dashboard ended {state}: {:?}",
            chromium.problems()
        );
        let rendered: f64 = chromium.eval(RENDERED).await;
        let slowest: f64 = chromium.eval(SLOWEST_REPORT).await;
        println!("run {run}: rendered {rendered:.1} ms, slowest report {slowest:.1} ms");
    }
    let problems = chromium.take_problems();
    assert!(problems.is_empty(), "{problems:?}");
    chromium.close().await;
}
