//! Random writes to `tokens` and `users`: every change the rollups must
//! follow, and some they must ignore.

use rand::rngs::StdRng;
use rand::Rng;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// What the random statements may touch.
#[derive(Clone, Copy)]
pub struct Scope {
    /// Token ids are drawn from 1 to this (some are gone: those writes do nothing).
    pub max_token_id: i32,
    /// User ids are drawn from 1 to this.
    pub max_user_id: i32,
    /// Whether the rollups' boundary may move (not while they are rolled back).
    pub move_boundary: bool,
}

impl Scope {
    /// The ids in use now, with a margin for the rows to come. With
    /// `dangling_users`, user ids beyond the users table too: once the foreign
    /// key of `tokens.user_id` is dropped, tokens whose user row is missing.
    pub async fn of(client: &Client, dangling_users: bool) -> Scope {
        let row = client
            .query_one(
                "SELECT coalesce((SELECT max(id) FROM tokens), 0),
                        coalesce((SELECT max(id) FROM users), 0)",
                &[],
            )
            .await
            .expect("read the largest ids");
        Scope {
            max_token_id: row.get::<_, i32>(0) + 50,
            max_user_id: row.get::<_, i32>(1).max(1) + if dangling_users { 20 } else { 0 },
            move_boundary: true,
        }
    }

    /// The same, for writes while the migration is rolled back.
    pub fn without_rollups(self) -> Scope {
        Scope {
            move_boundary: false,
            ..self
        }
    }
}

/// A random timestamp: mostly within the seed data's ten days (so that days
/// collect several tokens), sometimes PostgreSQL's infinities.
fn timestamp(rng: &mut StdRng) -> String {
    match rng.random_range(0..40) {
        0 => "TIMESTAMP 'infinity'".to_owned(),
        1 => "TIMESTAMP '-infinity'".to_owned(),
        _ => within_the_data(rng),
    }
}

/// A minute within the seed data's ten days, with a few days' margin.
fn within_the_data(rng: &mut StdRng) -> String {
    format!(
        "TIMESTAMP '2023-02-05' + {} * INTERVAL '1 minute'",
        rng.random_range(0..14 * 24 * 60)
    )
}

/// A boundary between closed and open time: among the random timestamps, or
/// before them all.
fn boundary(rng: &mut StdRng) -> String {
    if rng.random_bool(0.1) {
        "TIMESTAMP '-infinity'".to_owned()
    } else {
        within_the_data(rng)
    }
}

fn used_at(rng: &mut StdRng) -> String {
    if rng.random_bool(0.4) {
        "NULL".to_owned()
    } else {
        timestamp(rng)
    }
}

/// Which tokens a statement changes: one, a range, or all of one user's.
fn tokens(rng: &mut StdRng, scope: Scope) -> String {
    let id = rng.random_range(1..=scope.max_token_id);
    match rng.random_range(0..4) {
        0 | 1 => format!("id = {id}"),
        2 => format!("id BETWEEN {id} AND {}", id + rng.random_range(1..30)),
        _ => format!("user_id = {}", user(rng, scope)),
    }
}

fn user(rng: &mut StdRng, scope: Scope) -> i32 {
    rng.random_range(1..=scope.max_user_id)
}

/// One random write.
pub fn statement(rng: &mut StdRng, scope: Scope) -> String {
    match rng.random_range(0..100) {
        0..=24 => {
            let rows: Vec<String> = (0..rng.random_range(1..=5))
                .map(|_| {
                    format!(
                        "({}, '{:06}', {}, {})",
                        user(rng, scope),
                        rng.random_range(0..1_000_000),
                        timestamp(rng),
                        used_at(rng)
                    )
                })
                .collect();
            format!(
                "INSERT INTO tokens (user_id, token, created_at, used_at) VALUES {}",
                rows.join(", ")
            )
        }
        25..=39 => format!(
            "UPDATE tokens SET used_at = {} WHERE {}",
            timestamp(rng),
            tokens(rng, scope)
        ),
        40..=49 => format!(
            "UPDATE tokens SET used_at = NULL WHERE {}",
            tokens(rng, scope)
        ),
        50..=59 => format!("DELETE FROM tokens WHERE {}", tokens(rng, scope)),
        60..=66 => format!(
            "UPDATE tokens SET user_id = {} WHERE {}",
            user(rng, scope),
            tokens(rng, scope)
        ),
        67..=73 => format!(
            "UPDATE tokens SET created_at = {} WHERE {}",
            timestamp(rng),
            tokens(rng, scope)
        ),
        // Several counted columns at once, differently per row.
        74..=78 => format!(
            "UPDATE tokens SET user_id = {}, created_at = created_at + INTERVAL '1 day', \
             used_at = CASE WHEN used_at IS NULL THEN created_at END WHERE {}",
            user(rng, scope),
            tokens(rng, scope)
        ),
        // Closed time grows or shrinks: from then on, the triggers count
        // fewer or more of these writes, and the reports read more or fewer
        // tokens directly.
        79..=80 if scope.move_boundary => {
            format!("SELECT analytics.move_rollup_boundary({})", boundary(rng))
        }
        // A change the rollups must not count.
        79..=82 => format!(
            "UPDATE tokens SET token = 'zzzzzz' WHERE {}",
            tokens(rng, scope)
        ),
        83..=86 => format!(
            "INSERT INTO users (id, first_name, last_name, joined_at) \
             VALUES ({}, 'Random', 'User', {}) ON CONFLICT (id) DO NOTHING",
            user(rng, scope),
            timestamp(rng)
        ),
        87..=92 => format!(
            "UPDATE users SET joined_at = {} WHERE id = {}",
            timestamp(rng),
            user(rng, scope)
        ),
        93..=96 => format!("DELETE FROM users WHERE id = {}", user(rng, scope)),
        _ => format!(
            "UPDATE users SET id = {} WHERE id = {}",
            user(rng, scope),
            user(rng, scope)
        ),
    }
}

/// Run one statement; the errors that random writes can meet (a foreign key
/// or unique key in the way, a deadlock or serialization failure between
/// writers, a boundary move refused at repeatable read) are `Err`, any other error fails the test.
pub async fn execute(client: &Client, sql: &str) -> Result<(), SqlState> {
    match client.batch_execute(sql).await {
        Ok(()) => Ok(()),
        Err(err) => match err.code() {
            Some(code)
                if [
                    SqlState::FOREIGN_KEY_VIOLATION,
                    SqlState::UNIQUE_VIOLATION,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    // A boundary move in a repeatable read transaction.
                    SqlState::INVALID_TRANSACTION_STATE,
                ]
                .contains(code) =>
            {
                Err(code.clone())
            }
            _ => panic!(
                "{sql}: {:?}",
                err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"))
            ),
        },
    }
}

/// One writer's transactions: a few random statements each, committed or
/// rolled back at random, at read committed or repeatable read. Returns how
/// many transactions committed and how many ended in an expected error.
pub async fn writer(
    client: &Client,
    rng: &mut StdRng,
    scope: Scope,
    transactions: usize,
) -> (usize, usize) {
    let (mut committed, mut failed) = (0, 0);
    for _ in 0..transactions {
        let begin = if rng.random_bool(0.25) {
            "BEGIN ISOLATION LEVEL REPEATABLE READ"
        } else {
            "BEGIN"
        };
        client.batch_execute(begin).await.expect("begin");
        let mut outcome = Ok(());
        for _ in 0..rng.random_range(1..=4) {
            // Rarely, and usually undone: emptying the table under the others.
            let sql = if rng.random_bool(0.004) {
                "TRUNCATE tokens".to_owned()
            } else {
                statement(rng, scope)
            };
            outcome = execute(client, &sql).await;
            if outcome.is_err() {
                break;
            }
        }
        let end = if outcome.is_ok() && rng.random_bool(0.8) {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        client
            .batch_execute(end)
            .await
            .expect("end the transaction");
        match (outcome, end) {
            (Err(_), _) => failed += 1,
            (Ok(()), "COMMIT") => committed += 1,
            (Ok(()), _) => {}
        }
    }
    (committed, failed)
}
