//! Under concurrent writers, each report is one snapshot: its buckets add up to
//! its totals in every answer, read from `tokens` or from the rollups, and
//! once the writers stop it equals plain SQL.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio_postgres::error::SqlState;

use super::data::spawn_app_with_random_data_and_rollups;
use super::reference::Ask;
use super::usage::assert_usage_matches;

const WRITING: Duration = Duration::from_secs(4);

/// Insert, use, un-use and delete tokens around the range's days until `until`.
/// The updates and deletes lock their rows in id order; a deadlock can still
/// come from the rollups' counts (two corrections of several days, in
/// different orders), and then PostgreSQL aborts one statement, which a client
/// retries: that is not a failure of the reports under test.
async fn write(app: &test_support::TestApp, seed: u64, until: Instant) -> usize {
    let client = app.db.client().await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut writes = 0;
    while Instant::now() < until {
        let minutes: i32 = rng.random_range(0..20 * 24 * 60);
        let user: i32 = rng.random_range(1..=45);
        let statement = match rng.random_range(0..4) {
            0 | 1 => format!(
                "INSERT INTO tokens (user_id, token, created_at, used_at) VALUES ({user}, '9', \
                 TIMESTAMP '2024-10-25' + make_interval(mins => {minutes}), \
                 CASE WHEN {minutes} % 2 = 0 THEN TIMESTAMP '2024-11-20' END)"
            ),
            2 => format!(
                "UPDATE tokens SET used_at = CASE WHEN used_at IS NULL THEN created_at END \
                 WHERE id IN (SELECT id FROM tokens WHERE user_id = {user} ORDER BY id LIMIT 3 \
                 FOR UPDATE)"
            ),
            _ => format!(
                "DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE user_id = {user} \
                 ORDER BY id LIMIT 1 FOR UPDATE)"
            ),
        };
        match client.batch_execute(&statement).await {
            Ok(()) => writes += 1,
            Err(err) if err.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) => {}
            Err(err) => panic!("{statement}: {err:?}"),
        }
    }
    writes
}

fn sum(report: &Value, field: &str) -> i64 {
    report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket[field].as_i64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_is_one_snapshot_under_concurrent_writers() {
    let app =
        spawn_app_with_random_data_and_rollups(9, "Europe/London", "Europe/London", &[]).await;
    let ask = Ask {
        from: "2024-10-20".into(),
        to: "2024-11-15".into(),
        tz: "America/New_York".into(),
        db_tz: "Europe/London".into(),
        granularity: "day",
        week_start: "monday",
    };
    let path = format!(
        "/api/v2/usage?from={}&to={}&tz={}&granularity=day",
        ask.from, ask.to, ask.tz
    );
    let until = Instant::now() + WRITING;
    let writers = futures_util::future::join_all((0..3).map(|seed| write(&app, seed, until)));
    // Every other answer without active_members, which is read from the rollups.
    let from_rollups = format!("{path}&fields=visits,tokens_issued,new_members");
    let readers = async {
        let mut answers = 0;
        while Instant::now() < until {
            let rollups = answers % 2 == 1;
            let (status, report) = app
                .get_v2_json(if rollups { &from_rollups } else { &path })
                .await;
            assert_eq!(status, 200, "{report}");
            let totals = &report["totals"];
            for field in ["visits", "tokens_issued", "new_members"] {
                assert_eq!(
                    sum(&report, field),
                    totals[field].as_i64().unwrap(),
                    "{field}: {report}"
                );
            }
            if !rollups {
                let active = totals["active_members"].as_i64().unwrap();
                assert!(active <= sum(&report, "active_members"), "{report}");
            }
            answers += 1;
        }
        answers
    };
    let (writes, answers) = tokio::join!(writers, readers);
    let writes: usize = writes.into_iter().sum();
    assert!(
        writes > 50 && answers > 5,
        "{writes} writes, {answers} answers"
    );
    for path in [&path, &from_rollups] {
        let (_, report) = app.get_v2_json(path).await;
        assert_usage_matches(&app, &ask, path, None, &report).await;
    }
}
