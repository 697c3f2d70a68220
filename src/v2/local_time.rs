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

/// SQL of a column's value in the report's zone, as text, or NULL when the value
/// is NULL, infinite, or in PostgreSQL's first or last two days. `$db_tz` and
/// `$tz` are the placeholders of the database's and the report's zone in the
/// statement that uses it.
#[macro_export]
macro_rules! local_time_sql {
    ($column:literal, $db_tz:literal, $tz:literal) => {
        concat!(
            "(SELECT CASE WHEN y < 0 THEN '-' || lpad((-y)::text, 4, '0')
             WHEN y > 9999 THEN '+' || y::text
             ELSE lpad(y::text, 4, '0') END
        || to_char(l, '-MM-DD\"T\"HH24:MI:SS.US')
        || CASE WHEN o < 0 THEN '-' ELSE '+' END
        || lpad((abs(o) / 3600)::text, 2, '0') || ':' || lpad((abs(o) / 60 % 60)::text, 2, '0')
        || CASE WHEN abs(o) % 60 <> 0 THEN ':' || lpad((abs(o) % 60)::text, 2, '0') ELSE '' END
  FROM (SELECT l,
               extract(year FROM l)::int4 + CASE WHEN extract(year FROM l) < 0 THEN 1 ELSE 0 END
                 AS y,
               extract(epoch FROM l - (i AT TIME ZONE 'UTC'))::int4 AS o
        FROM (SELECT CASE WHEN ",
            $column,
            " ",
            $crate::convertible_sql!(),
            " THEN ",
            $column,
            " END AT TIME ZONE ",
            $db_tz,
            "::text AS i) AS instant,
             LATERAL (SELECT i AT TIME ZONE ",
            $tz,
            "::text AS l) AS wall
        WHERE isfinite(i)) AS parts)"
        )
    };
}
