//! The usage report's SQL: over `tokens` and `users`, and over the rollups of
//! `db/migrations/001_report_rollups.up.sql` (15-minute slots of UTC, plus the
//! tokens of open time). Both take the same parameters and give the same
//! columns: `bucket` (0 for the whole range, else 1 to n), `visits`,
//! `tokens_issued`, `active_members` and `new_members`.

use crate::reports::ReportSql;
use crate::v2::measures::{Measure, Measures};

/// The usage report's queries for `measures`. Active members are distinct
/// counts, which no rollup holds: with them, the rollups' statement reads them
/// from `tokens` beside the slots ([`USAGE_SLOTS_ACTIVE_SQL`]).
pub fn usage_sql(measures: Measures) -> ReportSql {
    ReportSql {
        rollups: if measures.contains(Measure::ActiveMembers) {
            USAGE_SLOTS_ACTIVE_SQL
        } else {
            USAGE_SLOTS_SQL
        },
        tokens: USAGE_SQL,
    }
}

/// The counts per bucket. Parameters: `$1` the bucket bounds as days since
/// 1970-01-01 (`int4[]`), `$2` the report's zone, `$3` the database's zone, `$4`
/// one member to count alone, or NULL for all.
/// Bucket 0 is the whole range. Rows are read in a window of the bounds'
/// wall-clock dates widened by two days, wider than any two zones' offsets
/// differ, so that an index on the timestamp can serve it.
pub const USAGE_SQL: &str = "WITH edges AS (
  SELECT array_agg(DATE '1970-01-01' + day ORDER BY n) AS day
  FROM unnest($1::int4[]) WITH ORDINALITY AS e(day, n)
),
span AS (
  SELECT day, cardinality(day) - 1 AS buckets,
         (day[1] - 2)::timestamp AS low, (day[cardinality(day)] + 2)::timestamp AS high
  FROM edges
),
issued AS (
  SELECT width_bucket(((t.created_at AT TIME ZONE $3::text) AT TIME ZONE $2::text)::date, s.day)
           AS bucket,
         s.buckets, t.user_id, t.used_at IS NOT NULL AS used
  FROM span s JOIN tokens t ON t.created_at >= s.low AND t.created_at < s.high
  WHERE $4::int4 IS NULL OR t.user_id = $4::int4
),
token_counts AS (
  SELECT COALESCE(bucket, 0) AS bucket,
         COUNT(*) FILTER (WHERE used) AS visits,
         COUNT(*) AS tokens_issued,
         COUNT(DISTINCT user_id) FILTER (WHERE used) AS active_members
  FROM issued WHERE bucket BETWEEN 1 AND buckets
  GROUP BY GROUPING SETS ((bucket), ())
),
joined AS (
  SELECT width_bucket(((u.joined_at AT TIME ZONE $3::text) AT TIME ZONE $2::text)::date, s.day)
           AS bucket,
         s.buckets
  FROM span s JOIN users u ON u.joined_at >= s.low AND u.joined_at < s.high
  WHERE $4::int4 IS NULL OR u.id = $4::int4
),
member_counts AS (
  SELECT COALESCE(bucket, 0) AS bucket, COUNT(*) AS new_members
  FROM joined WHERE bucket BETWEEN 1 AND buckets
  GROUP BY GROUPING SETS ((bucket), ())
)
SELECT COALESCE(t.bucket, m.bucket)::int4 AS bucket,
       COALESCE(t.visits, 0)::int8 AS visits,
       COALESCE(t.tokens_issued, 0)::int8 AS tokens_issued,
       COALESCE(t.active_members, 0)::int8 AS active_members,
       COALESCE(m.new_members, 0)::int8 AS new_members
FROM token_counts t FULL JOIN member_counts m ON t.bucket = m.bucket";

/// The counts per bucket from the rollups, with the same parameters and
/// columns as [`USAGE_SQL`]: `active_members` is NULL here, and counted in
/// [`USAGE_SLOTS_ACTIVE_SQL`].
///
/// A bucket of local dates in `$2` is a range of instants, from the first
/// instant of its first day (`edges.at`, `day_starts_sql!`) to that of the
/// next bucket. The slots hold the tokens of closed time and every member by
/// the UTC quarter hour of their timestamp read in the zone the API writes
/// in, so a bucket is the sum of the slots within its range (one index range
/// per bucket: a few dozen rows), exactly when:
/// - every edge is `exact`: a whole quarter hour of UTC where the local date
///   changes, and no local date comes back after it;
/// - the rollups were counted in `$3`, the zone of the service's db_timezone;
/// - no member was asked for (`$4`), and the range is a day inside the limits
///   of `analytics.utc_slot`.
///
/// Otherwise (`slotted` false) every count is read from `tokens` and `users`
/// as [`USAGE_SQL`] reads them. Open time (from `closed_before`) is always
/// read from `tokens`, in the same two-day window.
pub const USAGE_SLOTS_SQL: &str = usage_slots_sql!("", "NULL::int8", "");

/// [`USAGE_SLOTS_SQL`] with the active members, distinct counts read from
/// `tokens`. Where the database writes in UTC and every edge is exact (as
/// above, without the member and db_timezone conditions), a bucket is a range
/// of `created_at` itself: one index range per bucket, counted apart, and one
/// for the whole range, with no zone conversion per token (a third of the
/// time of [`USAGE_SQL`]'s single pass, which converts each token's timestamp
/// twice and sorts them all). Otherwise they are counted as [`USAGE_SQL`]
/// counts them.
pub const USAGE_SLOTS_ACTIVE_SQL: &str = usage_slots_sql!(
    ",
active_reach AS (
  SELECT bool_and(exact) AND $3::text = 'UTC' AS instants, min(at) AS low, max(at) AS high
  FROM edges
),
active_counts AS (
  SELECT b.bucket, a.active_members
  FROM active_reach r JOIN slot_buckets b ON r.instants AND b.high IS NOT NULL
  CROSS JOIN LATERAL (
    SELECT count(DISTINCT t.user_id) AS active_members
    FROM tokens t
    WHERE t.created_at >= b.low AND t.created_at < b.high AND t.used_at IS NOT NULL
      AND ($4::int4 IS NULL OR t.user_id = $4::int4)
  ) AS a
  UNION ALL
  SELECT 0, (SELECT count(*) FROM (SELECT DISTINCT t.user_id
                                   FROM tokens t
                                   WHERE t.created_at >= r.low AND t.created_at < r.high
                                     AND t.used_at IS NOT NULL
                                     AND ($4::int4 IS NULL OR t.user_id = $4::int4)) AS d)
  FROM active_reach r WHERE r.instants
  UNION ALL
  SELECT COALESCE(bucket, 0), COUNT(DISTINCT user_id)
  FROM (SELECT width_bucket(((t.created_at AT TIME ZONE $3::text) AT TIME ZONE $2::text)::date,
                            r.day) AS bucket, r.buckets, t.user_id
        FROM active_reach a JOIN reach r ON NOT a.instants
        JOIN tokens t ON t.created_at >= r.low AND t.created_at < r.high
        WHERE t.used_at IS NOT NULL AND ($4::int4 IS NULL OR t.user_id = $4::int4)) AS used
  WHERE bucket BETWEEN 1 AND buckets
  GROUP BY GROUPING SETS ((bucket), ())
  -- The empty grouping set has a row even without tokens: not beside the other total.
  HAVING count(*) > 0
)",
    "COALESCE(a.active_members, 0)::int8",
    " LEFT JOIN active_counts a ON a.bucket = COALESCE(t.bucket, m.bucket)"
);

/// The rollups' statement, with `$active_ctes` after its own, `active_members`
/// as `$active_members`, and `$active_join` after its last join.
macro_rules! usage_slots_sql {
    ($active_ctes:literal, $active_members:literal, $active_join:literal) => {
        concat!(
            "WITH edges AS (
  ",
            $crate::day_starts_sql!("$1::int4[]", "$2"),
            "
),
reach AS (
  SELECT day, buckets, slotted,
         (day[1] - 2)::timestamp AS low, (day[buckets + 1] + 2)::timestamp AS high,
         CASE WHEN slotted THEN (SELECT closed_before FROM analytics.rollup_boundary)
              ELSE TIMESTAMP '-infinity' END AS open_from
  FROM (SELECT array_agg(day ORDER BY n) AS day, count(*)::int4 - 1 AS buckets,
               $4::int4 IS NULL AND bool_and(exact)
                 AND (SELECT db_timezone = $3::text FROM analytics.rollup_boundary) AS slotted
        FROM edges) AS span
),
slot_buckets AS (
  SELECT n AS bucket, at AS low, lead(at) OVER (ORDER BY n) AS high FROM edges
),
slotted AS (
  SELECT b.bucket, t.tokens_issued, t.visits, m.new_members
  FROM reach r JOIN slot_buckets b ON r.slotted AND b.high IS NOT NULL
  CROSS JOIN LATERAL (SELECT SUM(s.tokens_issued) AS tokens_issued, SUM(s.visits) AS visits
                      FROM analytics.token_slots s WHERE s.slot >= b.low AND s.slot < b.high) AS t
  CROSS JOIN LATERAL (SELECT SUM(s.new_members) AS new_members
                      FROM analytics.member_slots s WHERE s.slot >= b.low AND s.slot < b.high) AS m
),
token_rows AS (
  SELECT bucket, tokens_issued, visits FROM slotted
  UNION ALL
  SELECT width_bucket(((t.created_at AT TIME ZONE $3::text) AT TIME ZONE $2::text)::date, r.day),
         1, (t.used_at IS NOT NULL)::int4
  FROM reach r JOIN tokens t
    ON t.created_at >= greatest(r.low, r.open_from) AND t.created_at < r.high
  WHERE $4::int4 IS NULL OR t.user_id = $4::int4
),
token_counts AS (
  SELECT COALESCE(bucket, 0) AS bucket, SUM(visits) AS visits, SUM(tokens_issued) AS tokens_issued
  FROM token_rows, reach WHERE bucket BETWEEN 1 AND buckets
  GROUP BY GROUPING SETS ((bucket), ())
),
member_rows AS (
  SELECT bucket, new_members FROM slotted
  UNION ALL
  SELECT width_bucket(((u.joined_at AT TIME ZONE $3::text) AT TIME ZONE $2::text)::date, r.day), 1
  FROM reach r JOIN users u
    ON NOT r.slotted AND u.joined_at >= r.low AND u.joined_at < r.high
  WHERE $4::int4 IS NULL OR u.id = $4::int4
),
member_counts AS (
  SELECT COALESCE(bucket, 0) AS bucket, SUM(new_members) AS new_members
  FROM member_rows, reach WHERE bucket BETWEEN 1 AND buckets
  GROUP BY GROUPING SETS ((bucket), ())
)",
            $active_ctes,
            "
SELECT COALESCE(t.bucket, m.bucket)::int4 AS bucket,
       COALESCE(t.visits, 0)::int8 AS visits,
       COALESCE(t.tokens_issued, 0)::int8 AS tokens_issued,
       ",
            $active_members,
            " AS active_members,
       COALESCE(m.new_members, 0)::int8 AS new_members
FROM token_counts t FULL JOIN member_counts m ON t.bucket = m.bucket",
            $active_join
        )
    };
}
use usage_slots_sql;
