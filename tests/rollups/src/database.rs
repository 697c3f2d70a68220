//! A throwaway PostgreSQL 15 with the project's schema, and the comparison of
//! the reports over the rollups with the original reports.

use pgtemp::{PgTempDB, PgTempDBBuilder};
use tokio_postgres::{Client, IsolationLevel, NoTls};

use coworking_analytics::reports::{ReportSql, DAILY_USAGE, USER_VISITS};

const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";
const PASSWORD: &str = "rollup checks";

pub const SCHEMA: &str = include_str!("../../../db/1_create_tables.sql");
pub const SEED_USERS: &str = include_str!("../../../db/2_seed_users.sql");
pub const SEED_TOKENS: &str = include_str!("../../../db/3_seed_tokens.sql");
pub const UP: &str = include_str!("../../../db/migrations/001_report_rollups.up.sql");
pub const DOWN: &str = include_str!("../../../db/migrations/001_report_rollups.down.sql");
/// Each report's two queries, as the component runs them: over `tokens` (the
/// Flask app's query) and over the rollups; and how to list a result's entries
/// as text, one per row, in a set order (`{}`: the report's query). The user
/// visits report is one row of arrays in no set order: one entry per user.
const REPORTS: [(&str, ReportSql, &str); 2] = [
    (
        "daily usage",
        DAILY_USAGE,
        "SELECT result::text FROM ({}) AS result ORDER BY 1",
    ),
    (
        "user visits",
        USER_VISITS,
        "SELECT (entry.id, entry.visits, entry.days, entry.micros)::text FROM ({}) AS result, \
         unnest(result.user_ids, result.visits, result.joined_days, result.joined_times) \
         AS entry(id, visits, days, micros) ORDER BY entry.id",
    ),
];

pub struct Database {
    server: PgTempDB,
}

impl Database {
    /// A new cluster (SCRAM authentication, as in production) with the tables
    /// of `db/1_create_tables.sql` and, when `seed`, the seed users and tokens.
    pub async fn start(seed: bool) -> Database {
        let server = tokio::task::spawn_blocking(|| {
            PgTempDBBuilder::new()
                .with_bin_path(POSTGRES_BIN)
                .with_username("postgres")
                .with_password(PASSWORD)
                .with_initdb_arg("auth", "scram-sha-256")
                // pgtemp reads the server's stderr only at shutdown: a chatty
                // server (deadlock reports) would block on a full pipe.
                .with_config_param("logging_collector", "on")
                .start()
        })
        .await
        .expect("start PostgreSQL");
        let database = Database { server };
        let client = database.client().await;
        client
            .batch_execute(SCHEMA)
            .await
            .expect("create the tables");
        if seed {
            client.batch_execute(SEED_USERS).await.expect("seed users");
            client
                .batch_execute(SEED_TOKENS)
                .await
                .expect("seed tokens");
        }
        database
    }

    /// A new connection, retried while the server finishes starting.
    pub async fn client(&self) -> Client {
        let config = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres password='{PASSWORD}'",
            self.server.db_port()
        );
        let mut attempts = 0;
        loop {
            match tokio_postgres::connect(&config, NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return client;
                }
                Err(err) if attempts == 200 => panic!("connect to the test database: {err}"),
                Err(_) => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Compare both reports, computed both ways, within one snapshot: what any
/// reader sees at any moment. The error names the report and shows the rows
/// that differ.
pub async fn check_reports(client: &mut Client) -> Result<(), String> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|err| format!("start a snapshot: {err}"))?;
    for (name, report, entries) in REPORTS {
        let expected = rows(&transaction, &entries.replace("{}", report.tokens)).await?;
        let actual = rows(&transaction, &entries.replace("{}", report.rollups)).await?;
        if expected != actual {
            let missing: Vec<_> = expected
                .iter()
                .filter(|row| !actual.contains(row))
                .collect();
            let extra: Vec<_> = actual
                .iter()
                .filter(|row| !expected.contains(row))
                .collect();
            return Err(format!(
                "{name}: the rollups lack {missing:?} and have {extra:?} \
                 ({} rows expected, {} found)",
                expected.len(),
                actual.len()
            ));
        }
    }
    transaction
        .commit()
        .await
        .map_err(|err| format!("end the snapshot: {err}"))
}

/// The column types of each report's two queries are the same, so that the
/// component decodes both alike.
pub async fn check_column_types(client: &Client) {
    for (name, report, _) in REPORTS {
        let types = |sql: &'static str| async move {
            let statement = client.prepare(sql).await.expect("prepare a report");
            statement
                .columns()
                .iter()
                .map(|column| (column.name().to_owned(), column.type_().clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            types(report.tokens).await,
            types(report.rollups).await,
            "{name} columns"
        );
    }
}

/// The entries of a report, listed by a query of `REPORTS`.
async fn rows(
    client: &impl tokio_postgres::GenericClient,
    sql: &str,
) -> Result<Vec<String>, String> {
    let rows = client
        .query(sql, &[])
        .await
        .map_err(|err| match err.as_db_error() {
            Some(db) => format!("{sql}: {}", db.message()),
            None => format!("{sql}: {err}"),
        })?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The user-defined objects of the database: schemas, relations, functions
/// and triggers, by name, so that a rollback can be compared with the state
/// before the migration.
pub async fn catalog(client: &Client) -> Vec<String> {
    let sql = "\
        SELECT 'schema ' || nspname FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
        UNION ALL
        SELECT 'relation ' || n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
        UNION ALL
        SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
        UNION ALL
        SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
        ORDER BY 1";
    let rows = client.query(sql, &[]).await.expect("list the catalog");
    rows.iter().map(|row| row.get(0)).collect()
}
