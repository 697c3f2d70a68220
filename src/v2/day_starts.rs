//! Where local days start, as instants: the SQL that both the usage report's
//! slots and the member list of a month read their ranges by.

/// The SELECT of one row per date of `unnest($days)` (days since 1970-01-01)
/// in the zone `$tz` (a placeholder of the statement): `n` its ordinal, `day`
/// the date, `at` the first instant of that date in `$tz` (as a UTC
/// `timestamp`), and `exact`, whether the tokens and members of the days from
/// there on are exactly those at or after `at`, to the quarter hour of UTC.
///
/// The first instant is midnight as PostgreSQL reads it, unless the offset
/// changed in the two hours before (`steady`): where midnight is repeated,
/// PostgreSQL reads the later one and the day starts at the earlier, which is
/// found among the shifts zones make (30 minutes, 1 or 2 hours). It is
/// `exact` when it is a whole quarter hour of UTC (not in a zone's local mean
/// time, before 1900), within the limits of `analytics.utc_slot`, and where
/// the local date changes: no local date comes back after its midnight (a
/// jump back across midnight, as St. John's made until 2011, repeats the day
/// before).
#[macro_export]
macro_rules! day_starts_sql {
    ($days:literal, $tz:literal) => {
        concat!(
            "SELECT d.n, d.day, e.at AT TIME ZONE 'UTC' AS at,
         mod(date_part('epoch', e.at)::int8, 900) = 0
           AND (e.steady
                OR (((e.at - INTERVAL '1 microsecond') AT TIME ZONE ",
            $tz,
            "::text)::date < d.day
                    AND (e.at = m.midnight
                         OR ((m.midnight - INTERVAL '1 microsecond') AT TIME ZONE ",
            $tz,
            "::text)::date
                            >= d.day)))
           AND e.at >= TIMESTAMPTZ '4713-01-03 00:00:00+00 BC'
           AND e.at < TIMESTAMPTZ '294276-12-30 00:00:00+00' AS exact
  FROM (SELECT n, DATE '1970-01-01' + days AS day
        FROM unnest(",
            $days,
            ") WITH ORDINALITY AS b(days, n)) AS d
  CROSS JOIN LATERAL (SELECT d.day::timestamp AT TIME ZONE ",
            $tz,
            "::text AS midnight OFFSET 0) AS m
  CROSS JOIN LATERAL (
    SELECT (m.midnight - INTERVAL '2 hours') AT TIME ZONE ",
            $tz,
            "::text = d.day - INTERVAL '2 hours'
             AS steady
    OFFSET 0
  ) AS s
  CROSS JOIN LATERAL (
    SELECT s.steady,
           CASE WHEN s.steady THEN m.midnight
                ELSE (SELECT min(c.at)
                      FROM unnest(ARRAY[m.midnight, m.midnight - INTERVAL '30 minutes',
                                        m.midnight - INTERVAL '1 hour',
                                        m.midnight - INTERVAL '2 hours']) AS c(at)
                      WHERE (c.at AT TIME ZONE ",
            $tz,
            "::text)::date >= d.day)
           END AS at
    OFFSET 0
  ) AS e"
        )
    };
}
