//! The usage report reads the rollups' slots exactly where they give the
//! report's figures, and `tokens` everywhere else. A slot that no token backs
//! (written into the rollups by hand) shows which source answered: its count
//! appears in a report only where the slots were read.

use serde_json::Value;

use test_support::TestApp;

use super::data::spawn_app_with_random_data_and_rollups;
use super::reference::{self, Ask};

/// Tokens issued that only the rollups hold, in the quarter hour from `slot` (UTC).
const PHANTOM: i64 = 1_000;

async fn add_phantom_slot(app: &TestApp, slot: &str) {
    app.db
        .execute(&format!(
            "INSERT INTO analytics.token_slots VALUES ('{slot}', {PHANTOM}, 0)"
        ))
        .await;
}

/// The report's tokens issued over the range, less the reference's: the
/// phantom count where the slots were read, else 0.
async fn tokens_beyond_the_reference(app: &TestApp, ask: &Ask, fields: &str) -> i64 {
    let path = format!(
        "/api/v2/usage?from={}&to={}&tz={}&granularity={}&fields={fields}",
        ask.from, ask.to, ask.tz, ask.granularity
    );
    let (status, report) = app.get_v2_json(&path).await;
    assert_eq!(status, 200, "{path}: {report}");
    let (_, totals) = reference::usage(app, ask, None).await;
    let buckets: i64 = report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket["tokens_issued"].as_i64().unwrap())
        .sum();
    assert_eq!(buckets, report["totals"]["tokens_issued"], "{path}");
    report["totals"]["tokens_issued"].as_i64().unwrap() - totals["tokens_issued"].as_i64().unwrap()
}

fn ask(from: &str, to: &str, tz: &str, db_tz: &str) -> Ask {
    Ask {
        from: from.into(),
        to: to.into(),
        tz: tz.into(),
        db_tz: db_tz.into(),
        granularity: "day",
        week_start: "monday",
    }
}

const WITHOUT_ACTIVE: &str = "visits,tokens_issued,new_members";
const ALL: &str = "visits,tokens_issued,active_members,new_members";

#[tokio::test(flavor = "multi_thread")]
async fn usage_reads_the_slots_only_where_they_are_exact() {
    let app = spawn_app_with_random_data_and_rollups(21, "UTC", "UTC", &[]).await;
    // Tokens at the instants where a day starts off its midnight, read from
    // the slots, equal the reference: Havana's repeated midnight (its first
    // is 04:00 UTC), Santiago's skipped one (the day starts at 01:00, 04:00
    // UTC) and its repeated hour before midnight.
    app.db
        .execute(
            "INSERT INTO tokens (user_id, token, created_at, used_at)
             SELECT 1, '777777', t, t FROM unnest(ARRAY[
               TIMESTAMP '2024-11-03 03:59:59', '2024-11-03 04:00', '2024-11-03 04:30',
               '2024-11-03 04:59:59', '2024-11-03 05:00', '2024-09-08 03:59:59',
               '2024-09-08 04:00', '2024-04-07 02:59:59', '2024-04-07 03:00',
               '2024-04-07 03:59:59', '2024-04-07 04:00']) AS t",
        )
        .await;
    for (from, to, tz) in [
        ("2024-11-01", "2024-11-05", "America/Havana"),
        ("2024-09-06", "2024-09-10", "America/Santiago"),
        ("2024-04-05", "2024-04-09", "America/Santiago"),
    ] {
        let exact = ask(from, to, tz, "UTC");
        // Active members are counted from `tokens` between the same instants.
        for fields in [WITHOUT_ACTIVE, ALL] {
            let path = format!("/api/v2/usage?from={from}&to={to}&tz={tz}&fields={fields}");
            let (status, report) = app.get_v2_json(&path).await;
            assert_eq!(status, 200, "{path}: {report}");
            super::usage::assert_usage_matches(&app, &exact, &path, None, &report).await;
        }
    }

    for slot in ["2024-10-06 12:00", "2010-11-06 12:00", "1850-06-01 12:00"] {
        add_phantom_slot(&app, slot).await;
    }
    let october = ask("2024-10-01", "2024-10-10", "Asia/Kolkata", "UTC");
    // Read from the slots: the phantom shows, with active members too (they
    // alone are counted from `tokens`).
    for fields in [WITHOUT_ACTIVE, ALL] {
        assert_eq!(
            tokens_beyond_the_reference(&app, &october, fields).await,
            PHANTOM
        );
    }
    // Havana repeats its midnight of 2024-11-03: the day starts at the first.
    let havana = ask("2024-10-01", "2024-11-10", "America/Havana", "UTC");
    assert_eq!(
        tokens_beyond_the_reference(&app, &havana, WITHOUT_ACTIVE).await,
        PHANTOM
    );
    // St. John's jumped back from 00:01 to 23:01 on 2010-11-07: the day
    // before came back after its midnight, which no slot can tell.
    let st_johns = ask("2010-11-01", "2010-11-10", "America/St_Johns", "UTC");
    assert_eq!(
        tokens_beyond_the_reference(&app, &st_johns, WITHOUT_ACTIVE).await,
        0
    );
    let utc = ask("2010-11-01", "2010-11-10", "UTC", "UTC");
    assert_eq!(
        tokens_beyond_the_reference(&app, &utc, WITHOUT_ACTIVE).await,
        PHANTOM
    );
    // Kolkata's local mean time of 1850 is 5:53:28 from UTC: no quarter hour.
    let mean_time = ask("1850-05-01", "1850-07-01", "Asia/Kolkata", "UTC");
    assert_eq!(
        tokens_beyond_the_reference(&app, &mean_time, WITHOUT_ACTIVE).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slots_counted_in_another_zone_or_refused_by_report_source_are_not_read() {
    let october = |db_tz: &str| ask("2024-10-01", "2024-10-10", "Europe/Berlin", db_tz);
    let elsewhere =
        spawn_app_with_random_data_and_rollups(22, "America/New_York", "UTC", &[]).await;
    add_phantom_slot(&elsewhere, "2024-10-06 12:00").await;
    assert_eq!(
        tokens_beyond_the_reference(&elsewhere, &october("America/New_York"), WITHOUT_ACTIVE).await,
        0
    );
    let tokens = spawn_app_with_random_data_and_rollups(
        23,
        "UTC",
        "UTC",
        &[("SPIN_VARIABLE_REPORT_SOURCE", "tokens")],
    )
    .await;
    add_phantom_slot(&tokens, "2024-10-06 12:00").await;
    assert_eq!(
        tokens_beyond_the_reference(&tokens, &october("UTC"), WITHOUT_ACTIVE).await,
        0
    );
}

/// Writes after the migration reach the slots: those of closed time through
/// the triggers, members always; those of open time are read from `tokens`.
#[tokio::test(flavor = "multi_thread")]
async fn writes_after_the_migration_reach_the_report() {
    let app =
        spawn_app_with_random_data_and_rollups(24, "Asia/Kathmandu", "Asia/Kathmandu", &[]).await;
    app.db
        .execute(
            "UPDATE tokens SET used_at = NULL WHERE id % 7 = 0;
             UPDATE tokens SET used_at = created_at + interval '5 minutes' WHERE id % 11 = 0;
             UPDATE tokens SET created_at = created_at - interval '20 hours' WHERE id % 5 = 0;
             DELETE FROM tokens WHERE id % 13 = 0;
             UPDATE users SET joined_at = joined_at + interval '1 day' WHERE id % 3 = 0;
             DELETE FROM users WHERE id % 17 = 0;
             INSERT INTO users (id, first_name, last_name, joined_at)
               VALUES (500, 'New', 'Member', '2024-10-05 23:50');
             INSERT INTO tokens (user_id, token, created_at, used_at)
               VALUES (500, '515151', '2024-10-06 00:10', '2024-10-06 00:12');
             SET TimeZone = 'Asia/Kathmandu';
             INSERT INTO tokens (user_id, token, used_at) VALUES (4, '434343', now()), (5, '535353', NULL);",
        )
        .await;
    let path_of = |ask: &Ask| {
        format!(
            "/api/v2/usage?from={}&to={}&tz={}&granularity=week&fields={WITHOUT_ACTIVE}",
            ask.from, ask.to, ask.tz
        )
    };
    let today = chrono::Utc::now().date_naive();
    for ask in [
        ask(
            "2024-09-20",
            "2024-11-20",
            "Asia/Kathmandu",
            "Asia/Kathmandu",
        ),
        ask(
            "2024-09-20",
            "2024-11-20",
            "America/Santiago",
            "Asia/Kathmandu",
        ),
        ask(
            &(today - chrono::TimeDelta::days(3)).to_string(),
            &(today + chrono::TimeDelta::days(3)).to_string(),
            "UTC",
            "Asia/Kathmandu",
        ),
    ] {
        let ask = Ask {
            granularity: "week",
            ..ask
        };
        let path = path_of(&ask);
        let (status, report) = app.get_v2_json(&path).await;
        assert_eq!(status, 200, "{path}: {report}");
        super::usage::assert_usage_matches(&app, &ask, &path, None, &report).await;
        assert_ne!(report["totals"], Value::Null);
    }
}
