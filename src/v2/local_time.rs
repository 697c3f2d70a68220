//! Timestamps shown in the report's zone, as ISO 8601 with their offset:
//! `2024-03-31T01:30:00.000000+01:00`. PostgreSQL formats them, so that every
//! timestamp it holds can be shown, in every zone (PostgreSQL reaches 294276 AD
//! and 4714 BC, chrono stops at 262143, and Spin decodes no timestamp with a
//! zone). Years past 9999 and before 1 AD take ISO 8601's sign (`+10000`,
//! `-0001` for 2 BC); offsets with seconds, as local mean time had, show them.

/// The `timestamp`s that every zone's conversion can take: PostgreSQL's whole
/// range but its first and last two days, where a shift of a zone's offset
/// would leave it ("timestamp out of range" would fail the whole statement).
#[macro_export]
macro_rules! convertible_sql {
    () => {
        "BETWEEN TIMESTAMP '4713-11-26 00:00:00 BC' AND TIMESTAMP '294276-12-30 00:00:00'"
    };
}

/// A `LEFT JOIN LATERAL` that reads a column's value in the report's zone, as
/// `$alias.wall` (the local date and time) and `$alias.utc_offset` (from UTC); both
/// NULL when the value is NULL, infinite, or in PostgreSQL's first or last two
/// days. `$db_tz` and `$tz` are the placeholders of the database's and the
/// report's zone in the statement that uses it. Each value is converted once
/// here, and written by [`local_time_sql`]: a subquery per value in the select
/// list cost the CSV of 100,000 members 4.7 µs a timestamp, this 1.4 µs
/// (BENCHMARKS.md).
#[macro_export]
macro_rules! local_parts_sql {
    ($column:literal, $db_tz:literal, $tz:literal, $alias:literal) => {
        concat!(
            "LEFT JOIN LATERAL (
  SELECT wall, wall - (instant AT TIME ZONE 'UTC') AS utc_offset
  FROM (SELECT ",
            $column,
            " AT TIME ZONE ",
            $db_tz,
            "::text AS instant) AS i,
       LATERAL (SELECT i.instant AT TIME ZONE ",
            $tz,
            "::text AS wall) AS w
  WHERE ",
            $column,
            " ",
            $crate::convertible_sql!(),
            "
  OFFSET 0
) AS ",
            $alias,
            " ON true"
        )
    };
}

/// The text of a value read by [`local_parts_sql`] as `$alias`. `to_char` writes
/// years 1 to 9999; the others take ISO 8601's sign here.
#[macro_export]
macro_rules! local_time_sql {
    ($alias:literal) => {
        concat!(
            "CASE WHEN ",
            $alias,
            ".wall IS NOT NULL THEN
  CASE WHEN ",
            $alias,
            ".wall >= TIMESTAMP '0001-01-01' AND ",
            $alias,
            ".wall < TIMESTAMP '10000-01-01'
       THEN to_char(",
            $alias,
            ".wall, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')
       WHEN extract(year FROM ",
            $alias,
            ".wall) < 0
       THEN '-' || lpad((-1 - extract(year FROM ",
            $alias,
            ".wall)::int4)::text, 4, '0')
            || to_char(",
            $alias,
            ".wall, '-MM-DD\"T\"HH24:MI:SS.US')
       ELSE '+' || to_char(",
            $alias,
            ".wall, 'FMYYYY-MM-DD\"T\"HH24:MI:SS.US')
  END
  || CASE WHEN ",
            $alias,
            ".utc_offset < INTERVAL '0' THEN '-' || to_char(-",
            $alias,
            ".utc_offset, 'HH24:MI')
          ELSE '+' || to_char(",
            $alias,
            ".utc_offset, 'HH24:MI') END
  || CASE WHEN date_part('second', ",
            $alias,
            ".utc_offset) <> 0
          THEN to_char(CASE WHEN ",
            $alias,
            ".utc_offset < INTERVAL '0' THEN -",
            $alias,
            ".utc_offset ELSE ",
            $alias,
            ".utc_offset END, ':SS')
          ELSE '' END
END"
        )
    };
}
