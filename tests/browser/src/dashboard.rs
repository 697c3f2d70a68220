//! The dashboard as an analyst uses it, in headless Chromium: sign in, choose
//! a period, a zone and a granularity, and read what the page shows against
//! what the v2 API answers for the same query; download both CSVs; and the
//! states of an empty period, a stopped database and a wrong key.

use serde_json::Value;
use test_support::{spawn_app_setting, Data, TestApp, TestDatabase, API_KEY};

use crate::browser::{Chromium, DESKTOP, PHONE};

/// 45 members who joined from December 2023, every few days a token at a
/// member's own hour and quarter, two in three used; member 3's name starts
/// like a formula and member 5's needs quoting in CSV.
const KNOWN_DATA: &str = "
INSERT INTO users (first_name, last_name, joined_at)
SELECT CASE WHEN i = 3 THEN '=HYPERLINK(\"x\")' ELSE 'Ada' || i END,
       CASE WHEN i = 5 THEN 'O''Brien, \"Jr\"' ELSE 'Member' END,
       TIMESTAMP '2023-12-01' + i * INTERVAL '37 hours'
FROM generate_series(1, 45) AS i;
INSERT INTO tokens (user_id, token, created_at, used_at)
SELECT u, lpad(((u * 31 + d) % 1000000)::text, 6, '0'),
       TIMESTAMP '2023-12-01' + d * INTERVAL '1 day' + ((u * 7) % 24) * INTERVAL '1 hour'
         + (u % 4) * INTERVAL '15 minutes',
       CASE WHEN (u + d) % 3 <> 0
            THEN TIMESTAMP '2023-12-01' + d * INTERVAL '1 day' + INTERVAL '23 hours 59 minutes' END
FROM generate_series(1, 45) AS u, generate_series(0, 90) AS d
WHERE (d + u) % (1 + u % 6) = 0;
";

/// The selection the analyst makes: eight weeks in India, by week.
const FROM: &str = "2024-01-01";
const TO: &str = "2024-02-26";
const ZONE: &str = "Asia/Kolkata";
/// The browser's own zone, which the dashboard starts in.
const BROWSER_ZONE: &str = "America/Sao_Paulo";

async fn app_with_known_data() -> TestApp {
    let db = TestDatabase::new(Data::Schema).await;
    db.apply_rollups().await;
    db.execute(KNOWN_DATA).await;
    spawn_app_setting(db, &[]).await
}

/// A browser on the dashboard, signed in with `key`, after its first load.
async fn signed_in(app: &TestApp, key: &str) -> Chromium {
    let chromium = Chromium::launch(BROWSER_ZONE).await;
    // `/` is where a person starts: it redirects to the dashboard.
    chromium.goto(&format!("{}/", app.address)).await;
    chromium
        .wait_until("!document.getElementById('sign-in').hidden")
        .await;
    chromium.type_into("#api-key", key).await;
    chromium.press("#api-key", "Enter").await;
    chromium.wait_until("document.getElementById('report').dataset.loads === '1' || document.getElementById('report').dataset.state === 'signed-out'").await;
    chromium
}

/// The chart's points as the tooltip tells them, `[start, visits, active
/// members]`: the chart focused, then Home, then ArrowRight from bucket to
/// bucket. One more ArrowRight stays on the last: the chart has `count`.
async fn chart_points(chromium: &Chromium, count: usize) -> Vec<[String; 3]> {
    const TOLD: &str = "(({ start, visits, activeMembers }) => [start, visits, activeMembers])\
                        (document.getElementById('tooltip').dataset)";
    chromium
        .run("document.getElementById('chart').focus()")
        .await;
    chromium.press("#chart", "Home").await;
    let mut points: Vec<[String; 3]> = vec![chromium.eval(TOLD).await];
    for _ in 1..=count {
        chromium.press("#chart", "ArrowRight").await;
        points.push(chromium.eval(TOLD).await);
    }
    let beyond = points.pop().unwrap();
    assert_eq!(
        Some(&beyond),
        points.last(),
        "the chart has more than {count} points"
    );
    points
}

/// Wait for the load after the one numbered `loads` to end.
async fn next_load(chromium: &Chromium, loads: u32) {
    chromium
        .wait_until(&format!(
            "Number(document.getElementById('report').dataset.loads) > {loads}"
        ))
        .await;
}

async fn loads(chromium: &Chromium) -> u32 {
    chromium
        .eval::<String>("document.getElementById('report').dataset.loads || '0'")
        .await
        .parse()
        .unwrap()
}

/// Pick the period, zone and granularity in the form, and show them.
async fn choose(chromium: &Chromium, from: &str, to: &str, granularity: &str, zone: &str) {
    let before = loads(chromium).await;
    chromium
        .run(&format!(
            "const select = document.getElementById('period');
             select.value = 'custom';
             select.dispatchEvent(new Event('change'));
             document.getElementById('from').value = '{from}';
             document.getElementById('to').value = '{to}';
             document.getElementById('granularity').value = '{granularity}';
             document.getElementById('tz').value = ''"
        ))
        .await;
    chromium.type_into("#tz", zone).await;
    chromium.click("#selection button[type=submit]").await;
    next_load(chromium, before).await;
}

fn digits(text: &str) -> i64 {
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number in {text:?}"))
}

/// A share as `Intl.NumberFormat("en", {style: "percent", maximumFractionDigits: 1})` writes it.
fn percent(share: f64) -> String {
    let tenths = (share * 1000.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}%")
    } else {
        format!("{tenths:.1}%")
    }
}

fn text_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_what_the_api_answers() {
    let app = app_with_known_data().await;
    let chromium = signed_in(&app, API_KEY).await;
    // The redirect, the page, its style and script, and the three reports;
    // from the service alone.
    let requests = chromium.take_requests();
    assert!(requests.len() <= 7, "{requests:#?}");
    for url in &requests {
        assert!(url.starts_with(&format!("{}/", app.address)), "{url}");
    }
    // It starts in the browser's zone, over the last 30 days.
    assert_eq!(
        chromium
            .eval::<String>("document.getElementById('tz').value")
            .await,
        BROWSER_ZONE
    );
    assert_eq!(
        chromium
            .eval::<String>("document.getElementById('period').value")
            .await,
        "last-30-days"
    );

    choose(&chromium, FROM, TO, "week", ZONE).await;
    let query = format!("from={FROM}&to={TO}&tz={ZONE}&granularity=week&week_start=monday");
    let url: String = chromium.eval("location.href").await;
    for part in [
        format!("from={FROM}"),
        format!("to={TO}"),
        "granularity=week".to_owned(),
        "tz=Asia%2FKolkata".to_owned(),
    ] {
        assert!(url.contains(&part), "{url} lacks {part}");
    }
    assert!(!url.contains(API_KEY), "the key is in the URL");

    // The four figures and their changes against the 56 days before.
    let (status, usage) = app.get_v2_json(&format!("/api/v2/usage?{query}")).await;
    assert_eq!(status, 200);
    let (status, previous) = app
        .get_v2_json(&format!(
            "/api/v2/usage?from=2023-11-06&to={FROM}&tz={ZONE}&granularity=month"
        ))
        .await;
    assert_eq!(status, 200);
    let totals = &usage["totals"];
    let figure = |name: &str| format!("document.getElementById('figure-{name}').textContent");
    let change = |name: &str| format!("document.getElementById('change-{name}').textContent");
    for (name, field) in [
        ("visits", "visits"),
        ("active", "active_members"),
        ("new", "new_members"),
    ] {
        let shown: String = chromium.eval(&figure(name)).await;
        assert_eq!(digits(&shown), totals[field].as_i64().unwrap(), "{name}");
    }
    let visits = totals["visits"].as_f64().unwrap();
    assert!(visits > 0.0);
    let used = visits / totals["tokens_issued"].as_f64().unwrap();
    assert_eq!(
        chromium.eval::<String>(&figure("used")).await,
        percent(used)
    );
    let before = previous["totals"]["visits"].as_f64().unwrap();
    let ratio = (visits - before) / before;
    assert_eq!(
        chromium.eval::<String>(&change("visits")).await,
        format!(
            "{}{} on the 56 days before",
            if ratio > 0.0 { "+" } else { "−" },
            percent(ratio.abs())
        )
    );

    // The chart's points and its table, bucket by bucket.
    let buckets = usage["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 8);
    // Read as a keyboard user reads them: the chart focused once, then the
    // arrow keys along it.
    let points = chart_points(&chromium, buckets.len()).await;
    let table: Vec<Vec<String>> = chromium
        .eval(
            "[...document.querySelectorAll('#series-table tbody tr')].map((r) => \
             [...r.cells].map((c) => c.textContent))",
        )
        .await;
    assert_eq!(table.len(), buckets.len());
    for ((bucket, point), row) in buckets.iter().zip(&points).zip(&table) {
        let expected = [
            text_of(&bucket["start"]).to_owned(),
            bucket["visits"].to_string(),
            bucket["active_members"].to_string(),
        ];
        assert_eq!(point[..], expected[..]);
        assert_eq!(row[0], expected[0]);
        let figures: Vec<i64> = row[1..].iter().map(|cell| digits(cell)).collect();
        let fields = ["visits", "active_members", "new_members", "tokens_issued"];
        let wanted: Vec<i64> = fields
            .iter()
            .map(|field| bucket[*field].as_i64().unwrap())
            .collect();
        assert_eq!(figures, wanted, "{}", expected[0]);
    }

    // Hovering a point tells its figures too.
    let (x, y): (f64, f64) = chromium
        .eval(
            "(() => { const r = document.querySelector('#chart .u-over').getBoundingClientRect(); \
             return [r.left + r.width * 2.5 / 8, r.top + r.height / 2]; })()",
        )
        .await;
    chromium.move_mouse(x, y).await;
    let tooltip: String = chromium
        .eval("document.getElementById('tooltip').textContent")
        .await;
    assert!(
        tooltip.starts_with(&format!("Week of {}:", text_of(&buckets[2]["start"]))),
        "{tooltip}"
    );
    assert!(tooltip.contains(&format!("{} visits", buckets[2]["visits"])));
    chromium.move_mouse(0.0, 0.0).await;
    chromium.run("document.activeElement.blur()").await;
    assert!(
        chromium
            .eval::<bool>("document.getElementById('tooltip').hidden")
            .await
    );

    // As an analyst sees it, on a desktop and on a phone.
    chromium.screenshot("dashboard-1280x800").await;
    chromium.resize(PHONE).await;
    let overflow: i64 = chromium
        .eval("document.documentElement.scrollWidth - window.innerWidth")
        .await;
    assert!(
        overflow <= 0,
        "the page is {overflow} px wider than a phone"
    );
    chromium.screenshot("dashboard-390x844").await;
    chromium.resize(DESKTOP).await;

    // The members, page by page and as sorted.
    assert_members(&app, &chromium, &query_members("-visits", 0)).await;
    let loaded = loads(&chromium).await;
    chromium.click("th[data-sort=visits] button").await;

    next_load(&chromium, loaded).await;
    assert_members(&app, &chromium, &query_members("visits", 0)).await;
    let loaded = loads(&chromium).await;
    chromium.click("#next-page").await;
    next_load(&chromium, loaded).await;
    assert_members(&app, &chromium, &query_members("visits", 20)).await;

    // The downloads are the API's CSV for what is on screen.
    let (name, series) = chromium.download("#download-series").await;
    assert_eq!(
        name,
        "coworking-usage_2024-01-01_2024-02-26_week_Asia-Kolkata.csv"
    );
    let api = app
        .get_v2(&format!("/api/v2/usage?{query}&format=csv"))
        .await;
    assert_eq!(series, api.body);
    let (name, members) = chromium.download("#download-members").await;
    assert_eq!(
        name,
        "coworking-members_2024-01-01_2024-02-26_week_Asia-Kolkata_visits_rows-21-40.csv"
    );
    let api = app
        .get_v2(&format!(
            "/api/v2/members?{}&format=csv",
            query_members("visits", 20)
        ))
        .await;
    assert_eq!(members, api.body);

    // Signing out forgets the key.
    chromium.click("#sign-out").await;
    chromium
        .wait_until("!document.getElementById('sign-in').hidden")
        .await;
    assert_eq!(
        chromium.eval::<Value>("sessionStorage.length").await,
        Value::from(0)
    );
    assert_eq!(chromium.take_problems(), Vec::<String>::new());
    chromium.close().await;
}

fn query_members(sort: &str, offset: u32) -> String {
    format!("from={FROM}&to={TO}&tz={ZONE}&sort={sort}&limit=20&offset={offset}")
}

/// The members table shows the API's page for `query`.
async fn assert_members(app: &TestApp, chromium: &Chromium, query: &str) {
    let (status, page) = app.get_v2_json(&format!("/api/v2/members?{query}")).await;
    assert_eq!(status, 200);
    let expected: Vec<Vec<String>> = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| {
            vec![
                member["member_id"].to_string(),
                member["visits"].to_string(),
                text_of(&member["last_visit"]).to_owned(),
                text_of(&member["joined_at"]).to_owned(),
            ]
        })
        .collect();
    let shown: Vec<Vec<String>> = chromium
        .eval(
            "[...document.querySelectorAll('#members-table tbody tr')].map((r) => [
               r.dataset.memberId,
               r.cells[1].textContent.replaceAll(',', ''),
               r.cells[2].querySelector('time')?.getAttribute('datetime') ?? '',
               r.cells[3].querySelector('time')?.getAttribute('datetime') ?? '',
             ])",
        )
        .await;
    assert!(!expected.is_empty());
    assert_eq!(shown, expected, "{query}");
    let position: String = chromium
        .eval("document.getElementById('page-position').textContent")
        .await;
    assert!(
        position.ends_with(&format!("of {}", page["total"])),
        "{position}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_period_says_so_with_zeros() {
    let app = app_with_known_data().await;
    let chromium = signed_in(&app, API_KEY).await;
    choose(&chromium, "2030-01-01", "2030-01-08", "day", "UTC").await;
    assert_eq!(
        chromium
            .eval::<String>("document.getElementById('report').dataset.state")
            .await,
        "empty"
    );
    assert!(
        !chromium
            .eval::<bool>("document.getElementById('empty').hidden")
            .await
    );
    let visits: Vec<String> = chart_points(&chromium, 7)
        .await
        .into_iter()
        .map(|[_, visits, _]| visits)
        .collect();
    assert_eq!(visits, vec!["0"; 7]);
    assert_eq!(
        chromium
            .eval::<String>("document.getElementById('figure-visits').textContent")
            .await,
        "0"
    );
    assert_eq!(chromium.take_problems(), Vec::<String>::new());
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_is_sent_back_to_sign_in() {
    let app = app_with_known_data().await;
    let chromium = signed_in(&app, "not-the-key").await;
    assert!(
        !chromium
            .eval::<bool>("document.getElementById('sign-in-error').hidden")
            .await
    );
    let message: String = chromium
        .eval("document.getElementById('sign-in-error').textContent")
        .await;
    assert!(message.starts_with("The key was not accepted"), "{message}");
    assert_eq!(
        chromium.eval::<Value>("sessionStorage.length").await,
        Value::from(0)
    );
    // The 401s are the only trouble, and they are the ones we caused.
    let problems = chromium.take_problems();
    assert!(!problems.is_empty());
    assert!(
        problems.iter().all(|problem| problem.contains("401")),
        "{problems:?}"
    );
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_database_is_a_message_and_a_retry() {
    let mut app = app_with_known_data().await;
    let chromium = signed_in(&app, API_KEY).await;
    app.db.stop().await;
    choose(&chromium, FROM, TO, "week", ZONE).await;
    assert_eq!(
        chromium
            .eval::<String>("document.getElementById('report').dataset.state")
            .await,
        "failed"
    );
    let message: String = chromium
        .eval("document.getElementById('problem-text').textContent")
        .await;
    assert!(
        message.starts_with("The database is not answering right now."),
        "{message}"
    );
    let problems = chromium.take_problems();
    assert!(
        problems.iter().all(|problem| problem.contains("503")),
        "{problems:?}"
    );

    app.db.start().await;
    let loaded = loads(&chromium).await;
    chromium.click("#retry").await;
    next_load(&chromium, loaded).await;
    assert_eq!(
        chromium
            .eval::<String>("document.getElementById('report').dataset.state")
            .await,
        "ready"
    );
    assert_eq!(chromium.take_problems(), Vec::<String>::new());
    chromium.close().await;
}
