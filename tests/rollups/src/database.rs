//! The comparison of the reports over the rollups with the original reports,
//! and of the v2 usage report's slots and the member list's per-member counts
//! (over all time and per month)
//! with `tokens` and `users`, on a
//! throwaway PostgreSQL 15 of `test_support`.

use tokio_postgres::{Client, IsolationLevel};

use coworking_analytics::reports::{ReportSql, DAILY_USAGE, USER_VISITS};

pub const UP: &str = include_str!("../../../db/migrations/001_report_rollups.up.sql");
pub const DOWN: &str = include_str!("../../../db/migrations/001_report_rollups.down.sql");
/// The v2 usage report's slots, as the rollups hold them and as `tokens` and
/// `users` give them (each report's range adds up slots: src/v2/usage_sql.rs).
const TOKEN_SLOTS: ReportSql = ReportSql {
    rollups: "SELECT slot, tokens_issued, visits FROM analytics.token_slots \
              WHERE tokens_issued <> 0 OR visits <> 0",
    tokens: "SELECT analytics.utc_slot(t.created_at, b.db_timezone) AS slot, \
             count(*)::int8 AS tokens_issued, count(t.used_at)::int8 AS visits \
             FROM tokens t, analytics.rollup_boundary b WHERE t.created_at < b.closed_before \
             GROUP BY 1",
};
const MEMBER_SLOTS: ReportSql = ReportSql {
    rollups: "SELECT slot, new_members FROM analytics.member_slots WHERE new_members <> 0",
    tokens: "SELECT analytics.utc_slot(u.joined_at, b.db_timezone) AS slot, \
             count(*)::int8 AS new_members \
             FROM users u, analytics.rollup_boundary b GROUP BY 1",
};
/// The per-member counts of the v2 member list (src/v2/members_sql.rs).
const MEMBER_TOKENS: ReportSql = ReportSql {
    rollups: "SELECT user_id, visits, used, last_used FROM analytics.user_tokens \
              WHERE visits <> 0 OR used <> 0 OR last_used IS NOT NULL",
    tokens: "SELECT t.user_id, count(*)::int8 AS visits, count(t.used_at)::int8 AS used, \
             max(t.created_at) FILTER (WHERE t.used_at IS NOT NULL) AS last_used \
             FROM tokens t, analytics.rollup_boundary b WHERE t.created_at < b.closed_before \
             GROUP BY 1",
};
/// The same per month of `created_at`, which the member list of a month reads.
const MEMBER_MONTHS: ReportSql = ReportSql {
    rollups: "SELECT month, user_id, visits, used, last_used FROM analytics.member_months \
              WHERE visits <> 0 OR used <> 0 OR last_used IS NOT NULL",
    tokens: "SELECT date_trunc('month', t.created_at)::date AS month, t.user_id, \
             count(*)::int8 AS visits, count(t.used_at)::int8 AS used, \
             max(t.created_at) FILTER (WHERE t.used_at IS NOT NULL) AS last_used \
             FROM tokens t, analytics.rollup_boundary b WHERE t.created_at < b.closed_before \
             GROUP BY 1, 2",
};
const SLOT_ENTRIES: &str = "SELECT result::text FROM ({}) AS result ORDER BY 1";

/// Each report's two queries, as the component runs them: over `tokens` (the
/// Flask app's query) and over the rollups; and how to list a result's entries
/// as text, one per row, in a set order (`{}`: the report's query). The user
/// visits report is one row of arrays in no set order: one entry per user.
/// The slots of the v2 usage report and the member list's counts, which they
/// read with parameters, are compared whole.
const REPORTS: [(&str, ReportSql, &str); 6] = [
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
    ("token slots", TOKEN_SLOTS, SLOT_ENTRIES),
    ("member slots", MEMBER_SLOTS, SLOT_ENTRIES),
    ("member tokens", MEMBER_TOKENS, SLOT_ENTRIES),
    ("member months", MEMBER_MONTHS, SLOT_ENTRIES),
];

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
