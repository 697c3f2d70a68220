//! Randomized data for the v2 reports, and apps that serve it with the
//! database's timestamps written in a given zone.
//!
//! Tokens are created at random instants, most of them within days of a
//! daylight-saving change somewhere (northern and southern, of an hour and of
//! half an hour) or of Samoa's skipped day, and written as the wall-clock time
//! of `db_timezone`, as `created_at DEFAULT now()` writes them. Some members
//! have no tokens; some tokens have no member row (the foreign key dropped, as
//! an old import left it); a few rows lie at the far dates PostgreSQL allows.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use test_support::{spawn_app_setting, Data, TestApp, TestDatabase};

/// Zones with :30 and :45 offsets, half-hour and one-hour daylight saving in
/// both hemispheres, a skipped day (Pacific/Apia, 2011-12-30) and midnight
/// changes (America/Havana, America/Santiago).
pub const ZONES: &[&str] = &[
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/New_York",
    "America/St_Johns",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Chatham",
    "Pacific/Apia",
    "America/Havana",
    "America/Santiago",
];

/// Days around which tokens cluster: daylight-saving changes of 2011-12 and 2024.
pub const HOT_DAYS: &[&str] = &[
    "2011-12-30",
    "2024-03-10",
    "2024-03-31",
    "2024-04-07",
    "2024-09-08",
    "2024-10-06",
    "2024-10-27",
    "2024-11-03",
];

pub const MEMBERS: i32 = 40;

/// An app whose database holds randomized data written in `db_timezone`.
pub async fn spawn_app_with_random_data(seed: u64, db_timezone: &str) -> TestApp {
    let db = TestDatabase::new(Data::Schema).await;
    load_random_data(&db, seed, db_timezone).await;
    spawn_app_setting(db, &[("SPIN_VARIABLE_DB_TIMEZONE", db_timezone)]).await
}

/// The same, with the rollups migration applied afterwards, its slots counted
/// in `counted_in` (the usage report reads them only where that is
/// `db_timezone`), and `variables` set over the app's configuration.
pub async fn spawn_app_with_random_data_and_rollups(
    seed: u64,
    db_timezone: &str,
    counted_in: &str,
    variables: &[(&str, &str)],
) -> TestApp {
    let db = TestDatabase::new(Data::Schema).await;
    load_random_data(&db, seed, db_timezone).await;
    db.apply_rollups_written_in(counted_in).await;
    let mut variables = variables.to_vec();
    variables.push(("SPIN_VARIABLE_DB_TIMEZONE", db_timezone));
    spawn_app_setting(db, &variables).await
}

async fn load_random_data(db: &TestDatabase, seed: u64, db_timezone: &str) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sql = String::from("ALTER TABLE tokens DROP CONSTRAINT tokens_users_id_fk;\n");
    // Instants as seconds from a hot day's midnight UTC, written in db_timezone.
    let instant = |rng: &mut StdRng| {
        let day = HOT_DAYS[rng.random_range(0..HOT_DAYS.len())];
        let seconds: i64 = rng.random_range(-3 * 86_400..3 * 86_400);
        let micros: u32 = rng.random_range(0..1_000_000);
        format!(
            "((TIMESTAMPTZ '{day} 00:00:00+00' + make_interval(secs => {seconds}.{micros:06})) \
             AT TIME ZONE '{db_timezone}')"
        )
    };
    for id in 1..=MEMBERS {
        let joined = instant(&mut rng);
        sql.push_str(&format!(
            "INSERT INTO users (id, first_name, last_name, joined_at) VALUES \
             ({id}, 'First{id}', 'O''Last,{id}', {joined});\n"
        ));
    }
    // Far dates: a member who joined in 200000 AD, one at -infinity.
    sql.push_str(
        "INSERT INTO users (id, first_name, last_name, joined_at) VALUES \
         (1001, 'Far', 'Future', '200000-01-01 00:00:00'), (1002, 'Minus', 'Infinity', '-infinity');\n",
    );
    for _ in 0..1_500 {
        // Members 1..=MEMBERS+5: the last five have no member row.
        let user = rng.random_range(1..=MEMBERS + 5);
        let created = instant(&mut rng);
        let used = if rng.random_bool(0.7) {
            format!("{created} + INTERVAL '5 minutes'")
        } else {
            "NULL".into()
        };
        sql.push_str(&format!(
            "INSERT INTO tokens (user_id, token, created_at, used_at) VALUES \
             ({user}, '123456', {created}, {used});\n"
        ));
    }
    sql.push_str(
        "INSERT INTO tokens (user_id, token, created_at, used_at) VALUES \
         (1, '000001', '262141-06-01 12:00:00', '262141-06-01 12:05:00'), \
         (2, '000002', '4712-06-01 12:00:00 BC', '4712-06-01 12:05:00 BC'), \
         (3, '000003', 'infinity', 'infinity'), \
         (3, '000004', '294276-12-31 23:59:59', NULL);\n",
    );
    db.execute(&sql).await;
}

/// A random report zone.
pub fn random_zone(rng: &mut StdRng) -> &'static str {
    ZONES[rng.random_range(0..ZONES.len())]
}
