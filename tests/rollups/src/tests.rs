use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use test_support::{Data, TestDatabase};

use crate::database::{catalog, check_column_types, check_reports, DOWN, UP};
use crate::workload::{execute, statement, writer, Scope};

/// The random seed: `ROLLUP_SEED=n` replays or explores another sequence.
fn seed() -> u64 {
    let seed = std::env::var("ROLLUP_SEED")
        .ok()
        .map(|value| value.parse().expect("ROLLUP_SEED is a number"))
        .unwrap_or(20_240_601);
    println!("ROLLUP_SEED={seed}");
    seed
}

async fn check(client: &mut Client, after: &str) {
    if let Err(difference) = check_reports(client).await {
        panic!("after {after}: {difference}");
    }
}

/// `count` random statements, one at a time, with both reports compared after each.
async fn sequential(client: &mut Client, rng: &mut StdRng, scope: Scope, count: usize) {
    for _ in 0..count {
        let sql = statement(rng, scope);
        // An expected error (a foreign key in the way) changes nothing.
        let _ = execute(client, &sql).await;
        check(client, &sql).await;
    }
}

/// Writers on their own connections, while a reader compares the reports in
/// snapshot after snapshot.
async fn concurrent(
    database: &TestDatabase,
    seed: u64,
    scope: Scope,
    writers: u64,
    transactions: usize,
) {
    let mut handles = Vec::new();
    for number in 0..writers {
        let client = database.client().await;
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(number + 1));
            writer(&client, &mut rng, scope, transactions).await
        }));
    }
    let mut reader = database.client().await;
    let mut snapshots = 0;
    while !handles.iter().all(|handle| handle.is_finished()) {
        check(&mut reader, "a snapshot taken during concurrent writes").await;
        snapshots += 1;
    }
    let (mut committed, mut failed) = (0, 0);
    for handle in handles {
        let (ok, error) = handle.await.expect("a writer panicked");
        committed += ok;
        failed += error;
    }
    // Without commits the test would prove nothing.
    assert!(
        committed > transactions,
        "only {committed} transactions committed"
    );
    println!(
        "{writers} writers: {committed} transactions committed, {failed} ended in a \
         deadlock or key error, {snapshots} snapshots compared"
    );
    check(&mut reader, "the concurrent writers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollups_equal_the_original_reports_under_random_writes() {
    let started = Instant::now();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let database = TestDatabase::new(Data::Seed).await;
    let mut client = database.client().await;
    // The slots are counted in the zone of the migration's session, as if the
    // API wrote in New York: each timestamp is read there.
    execute(&client, &format!("SET TimeZone = 'America/New_York'; {UP}"))
        .await
        .expect("apply the migration");
    check_column_types(&client).await;
    check(&mut client, "the backfill of the seed data").await;
    // Half the seed data in open time, to begin with.
    execute(
        &client,
        "SELECT analytics.move_rollup_boundary('2023-02-09 12:00')",
    )
    .await
    .expect("move the boundary into the data");
    check(&mut client, "the boundary moved back into the data").await;

    let scope = Scope::of(&client, false).await;
    sequential(&mut client, &mut rng, scope, 400).await;
    concurrent(&database, seed, scope, 4, 300).await;

    // Tokens whose user row is missing, users deleted or renumbered under
    // their tokens: the LEFT JOIN's NULL joined_at.
    client
        .batch_execute("ALTER TABLE tokens DROP CONSTRAINT tokens_users_id_fk")
        .await
        .expect("drop the foreign key");
    let scope = Scope::of(&client, true).await;
    sequential(&mut client, &mut rng, scope, 300).await;
    concurrent(&database, seed ^ 0xff, scope, 4, 300).await;

    for (sql, after) in [
        ("BEGIN; TRUNCATE tokens; ROLLBACK", "a rolled back TRUNCATE"),
        ("TRUNCATE tokens", "TRUNCATE tokens"),
        (
            "INSERT INTO tokens (user_id, token, used_at) VALUES (1, '1', now()), (2, '2', NULL)",
            "inserts into an empty table",
        ),
        ("TRUNCATE users, tokens", "TRUNCATE of both tables"),
    ] {
        client.batch_execute(sql).await.expect(sql);
        check(&mut client, after).await;
    }
    println!("done in {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_is_idempotent_and_rolls_back_cleanly() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(7));
    let database = TestDatabase::new(Data::Seed).await;
    let mut client = database.client().await;
    let before = catalog(&client).await;

    for run in ["first", "second"] {
        execute(&client, UP)
            .await
            .unwrap_or_else(|code| panic!("{run} up: {code:?}"));
        check(&mut client, &format!("the {run} up")).await;
    }
    let scope = Scope::of(&client, false).await;
    sequential(&mut client, &mut rng, scope, 50).await;

    for run in ["first", "second"] {
        execute(&client, DOWN)
            .await
            .unwrap_or_else(|code| panic!("{run} down: {code:?}"));
        assert_eq!(
            catalog(&client).await,
            before,
            "the catalog after the {run} down"
        );
    }

    // Writes the triggers do not see, then up again: the backfill counts them.
    for _ in 0..100 {
        let _ = execute(&client, &statement(&mut rng, scope.without_rollups())).await;
    }
    execute(&client, UP).await.expect("up after down");
    check(&mut client, "up after down").await;
    sequential(&mut client, &mut rng, scope, 50).await;
}

/// How often each trigger function of the rollups ran in this transaction.
async fn trigger_calls(client: &Client) -> Vec<i64> {
    let row = client
        .query_one(
            "SELECT coalesce(pg_stat_get_xact_function_calls('analytics.count_inserted_token'::regproc), 0),
                    coalesce(pg_stat_get_xact_function_calls('analytics.count_updated_token'::regproc), 0),
                    coalesce(pg_stat_get_xact_function_calls('analytics.count_deleted_token'::regproc), 0)",
            &[],
        )
        .await
        .expect("read the function statistics");
    (0..3).map(|column| row.get(column)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_open_time_call_no_trigger_until_closing_counts_them() {
    let database = TestDatabase::new(Data::Seed).await;
    let mut client = database.client().await;
    execute(&client, UP).await.expect("apply the migration");
    client
        .batch_execute("BEGIN; SET LOCAL track_functions = 'pl'")
        .await
        .expect("begin");

    // The Coworking API's writes: a token created now, used, then gone.
    client
        .batch_execute(
            "INSERT INTO tokens (id, user_id, token) VALUES (100000, 1, '123456');
             UPDATE tokens SET used_at = now() WHERE id = 100000;
             UPDATE tokens SET token = '654321' WHERE id = 100000;
             DELETE FROM tokens WHERE id = 100000;
             INSERT INTO tokens (id, user_id, token, used_at) VALUES (100001, 2, '123456', now())",
        )
        .await
        .expect("write to open time");
    assert_eq!(trigger_calls(&client).await, [0, 0, 0], "open time");

    // A correction of closed time is counted at once.
    client
        .batch_execute(
            "INSERT INTO tokens (user_id, token, created_at) VALUES (3, '123456', '2023-02-08 10:00');
             UPDATE tokens SET used_at = created_at WHERE created_at = '2023-02-08 10:00';
             DELETE FROM tokens WHERE created_at = '2023-02-08 10:00'",
        )
        .await
        .expect("write to closed time");
    assert_eq!(trigger_calls(&client).await, [1, 1, 1], "closed time");
    client.batch_execute("COMMIT").await.expect("commit");
    check(&mut client, "writes to open and closed time").await;

    // Closing is idempotent within the hour, and moves only forward.
    let close = "SELECT analytics.close_rollups()::text";
    let boundary = |row: tokio_postgres::Row| row.get::<_, String>(0);
    let closed = boundary(client.query_one(close, &[]).await.expect("close"));
    assert_eq!(
        boundary(client.query_one(close, &[]).await.expect("close again")),
        closed
    );
    execute(
        &client,
        "SELECT analytics.move_rollup_boundary('-infinity')",
    )
    .await
    .expect("open all time");
    check(&mut client, "all time open").await;
    assert_eq!(
        boundary(client.query_one(close, &[]).await.expect("close all")),
        closed
    );
    check(&mut client, "closing up to the previous hour").await;

    // Only from a snapshot taken after its lock can a move count correctly.
    let refused = client
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ;
             SELECT analytics.move_rollup_boundary('2023-02-09')",
        )
        .await
        .expect_err("a move at repeatable read");
    assert_eq!(refused.code(), Some(&SqlState::INVALID_TRANSACTION_STATE));
}
