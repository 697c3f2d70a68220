//! The member list's SQL, one statement per order, each over `tokens` and over
//! the rollups of `db/migrations/001_report_rollups.up.sql` (the per-member
//! counts of closed time, plus the tokens near the range's end and of open
//! time), and two more over the rollups for a page of the most visits first
//! (`LEADERS` over all time, `MONTH_LEADERS` over a month's). All take the
//! same parameters and give the same row.
//!
//! Parameters: `$1` and `$2` the range's first and end date as days since
//! 1970-01-01, `$3` the report's zone, `$4` the database's zone, `$5` whether
//! members without tokens in the range are listed, `$6` a member id to list
//! alone (or NULL), `$7` the limit and `$8` the offset.
//!
//! One row: the count of all rows, then the page as one array per column (NULL
//! when the page is empty), aligned, in no set order, with each row's position
//! in the whole list; `MembersPage::from_rows` puts them in order. With a row
//! per member (a list of variants each, across Spin's interface) the CSV of
//! 100,000 members needed more than the instance's 64 MiB; with these arrays,
//! taken apart without a second copy, it peaks at 43 MB (BENCHMARKS.md).
//!
//! Zones are less than two days apart, so a token created two days or more
//! inside the range, in the database's time, is in it in any zone: only those
//! near its ends are converted to the report's zone (at 10 M tokens, all time,
//! the activity's query in PostgreSQL took 4.0 s instead of 6.3 s, measured
//! side by side on a busy machine).

use crate::reports::ReportSql;
use crate::v2::members::Sort;
use crate::{convertible_sql, local_parts_sql, local_time_sql};

/// The activity per `tokens.user_id` in the range, read from `tokens` when
/// `$gate` (a condition on no row) holds. The range's bounds come from `span`,
/// whose values the planner knows: read through `reach` (a CTE) the month's
/// statement took 50 ms more.
macro_rules! scanned_activity_sql {
    ($gate:literal) => {
        concat!(
            "SELECT t.user_id,
         COUNT(*) FILTER (WHERE t.used_at IS NOT NULL) AS visits,
         COUNT(*) AS tokens_issued,
         MAX(t.created_at AT TIME ZONE $4::text) FILTER (WHERE t.used_at IS NOT NULL)
           AS last_visit,
         NULL::timestamp AS visit_before
  FROM span s JOIN tokens t
    ON ",
            $gate,
            "t.created_at >= (s.first_day - 2)::timestamp AND t.created_at < (s.end_day + 2)::timestamp
  WHERE ((t.created_at >= (s.first_day + 2)::timestamp AND t.created_at < (s.end_day - 2)::timestamp)
         OR (((t.created_at AT TIME ZONE $4::text) AT TIME ZONE $3::text)::date >= s.first_day
             AND ((t.created_at AT TIME ZONE $4::text) AT TIME ZONE $3::text)::date < s.end_day))
    AND ($6::int4 IS NULL OR t.user_id = $6::int4)
  GROUP BY t.user_id"
        )
    };
}

/// `activity` from `tokens`.
macro_rules! tokens_activity_sql {
    () => {
        concat!(
            "activity AS (
  ",
            scanned_activity_sql!(""),
            "
)"
        )
    };
}

/// The figures of the members in `$closed` (rollup rows) and `$corrections`
/// (the window's), added up.
///
/// The latest visit: the rollup's when it is in the time that both the
/// rollup and the range hold (`reach.kept_from` to `kept_before`, between the
/// windows), unless the window after it has a later one in the range
/// (`late_visit`). Where the rollup's is after that time and the window after
/// it has none, the member's latest in that time is `looked_up` among its
/// tokens, or `left_for_the_page` (`visit_before` says before when, for
/// `latest_visit_sql!`); without one there, it is the window's.
macro_rules! rolled_sql {
    ($closed:literal, $corrections:literal, looked_up) => {
        rolled_sql!(
            @ $closed,
            $corrections,
            concat!(
                "COALESCE(",
                visit_lookup_sql!(
                    "c.user_id",
                    "t.created_at >= x.kept_from AND t.created_at < x.kept_before"
                ),
                ", w.last_visit)"
            ),
            "NULL::timestamp"
        )
    };
    ($closed:literal, $corrections:literal, left_for_the_page) => {
        rolled_sql!(
            @ $closed,
            $corrections,
            "w.last_visit",
            "CASE WHEN w.late_visit IS NULL AND c.last_used >= x.kept_before
             THEN x.kept_before
           END"
        )
    };
    (@ $closed:literal, $corrections:literal, $looked_up:expr, $visit_before:expr) => {
        concat!(
            "SELECT * FROM (
    SELECT COALESCE(c.user_id, w.user_id) AS user_id,
           COALESCE(c.visits, 0) + COALESCE(w.visits, 0) AS visits,
           COALESCE(c.tokens_issued, 0) + COALESCE(w.tokens_issued, 0) AS tokens_issued,
           CASE WHEN w.late_visit IS NOT NULL THEN w.late_visit
                WHEN c.last_used >= x.kept_from AND c.last_used < x.kept_before THEN c.last_used
                WHEN c.last_used >= x.kept_before THEN ",
            $looked_up,
            "
                ELSE w.last_visit
           END AT TIME ZONE $4::text AS last_visit,
           ",
            $visit_before,
            " AS visit_before
    FROM ",
            $closed,
            " c FULL JOIN ",
            $corrections,
            " w ON w.user_id = c.user_id CROSS JOIN reach x
  ) AS rolled
  WHERE tokens_issued <> 0"
        )
    };
}

/// The latest `created_at` of `$user`'s used tokens `t` where `$when`, by
/// `tokens_user_id_token_used_at_index`. The bounds are the aggregate's filter,
/// not an index condition: as one, the planner ANDed the BRIN index's bitmap
/// of nearly every token, 2.3 ms a lookup.
macro_rules! visit_lookup_sql {
    ($user:literal, $when:literal) => {
        concat!(
            "(SELECT max(t.created_at) FILTER (WHERE ",
            $when,
            ") FROM tokens t WHERE t.user_id = ",
            $user,
            " AND t.used_at IS NOT NULL)"
        )
    };
}

/// The CTEs of a list over all time's rollups (`user_tokens`), which the
/// orders' rollup statements and `LEADERS` share: `reach`, whether the
/// rollups serve the range (`from_rollup`) and the time that both hold
/// (`kept_from` to `kept_before`), and `corrections`, what the window changes
/// of each member's rollup figures.
///
/// The rollups count every token of closed time (before `closed_before`) per
/// member. They serve when every such token is in the range on its first
/// side: when the first slot with tokens is three days or more after the
/// range's first date (the slot is UTC, counted in the rollups' zone, which
/// can be the service's zone give or take a day). Then a member's figures are
/// the rollup's, less the tokens of closed time after the range's end, plus
/// those of open time in the range: both read from `tokens` in one window,
/// from two days before the range's end (before it, closed time is all in
/// the range) to `closed_before` or two days after the end, whichever is
/// later. They serve only where that window is shorter than the range's span
/// of tokens (which `tokens` would read instead); "all time" to a date near
/// or after today is the case they are for.
macro_rules! rollup_window_sql {
    () => {
        concat!(
            "reach AS NOT MATERIALIZED (
  SELECT s.first_day, s.end_day, b.closed_before, TIMESTAMP '-infinity' AS kept_from,
         LEAST(b.closed_before, (s.end_day - 2)::timestamp) AS kept_before,
         CASE WHEN NOT isfinite(b.closed_before) THEN false
              WHEN f.first_slot IS NULL THEN true
              WHEN f.first_slot < (s.first_day + 3)::timestamp THEN false
              ELSE b.closed_before::date - (s.end_day - 2) <= (s.end_day + 2) - f.first_slot::date
         END AS from_rollup
  FROM span s CROSS JOIN analytics.rollup_boundary b
  CROSS JOIN LATERAL (SELECT min(slot) AS first_slot FROM analytics.token_slots
                      WHERE tokens_issued <> 0) AS f
),
window_tokens AS (
  SELECT t.user_id, t.created_at, t.used_at IS NOT NULL AS used,
         t.created_at < x.closed_before AS counted,
         (t.created_at >= (x.first_day + 2)::timestamp AND t.created_at < (x.end_day - 2)::timestamp)
         OR (((t.created_at AT TIME ZONE $4::text) AT TIME ZONE $3::text)::date >= x.first_day
             AND ((t.created_at AT TIME ZONE $4::text) AT TIME ZONE $3::text)::date < x.end_day)
           AS in_range,
         true AS late
  FROM reach x JOIN tokens t
    ON x.from_rollup
   AND t.created_at >= x.kept_before
   AND t.created_at < GREATEST(x.closed_before, (x.end_day + 2)::timestamp)
  WHERE $6::int4 IS NULL OR t.user_id = $6::int4
),
",
            corrections_sql!()
        )
    };
}

/// `corrections`: what the tokens of `window_tokens` change of each member's
/// rollup figures, which count them where `counted`, when the range has them
/// (`in_range`) or not; and the latest visit among them in the range, and
/// among those `late` (after `reach.kept_before`).
macro_rules! corrections_sql {
    () => {
        "corrections AS (
  SELECT user_id,
         COALESCE(SUM(CASE WHEN counted THEN -1 ELSE 1 END)
                    FILTER (WHERE counted <> in_range AND used), 0) AS visits,
         COALESCE(SUM(CASE WHEN counted THEN -1 ELSE 1 END)
                    FILTER (WHERE counted <> in_range), 0) AS tokens_issued,
         MAX(created_at) FILTER (WHERE in_range AND used) AS last_visit,
         MAX(created_at) FILTER (WHERE in_range AND used AND late) AS late_visit
  FROM window_tokens GROUP BY user_id
)"
    };
}

/// `activity` from the rollups where they serve (`reach.from_rollup`), else
/// from `tokens` (`rollup_window_sql!`).
///
/// The latest visit follows `rolled_sql!`, looked up where the rollup's is
/// after the range's end.
macro_rules! rollup_activity_sql {
    () => {
        concat!(
            rollup_window_sql!(),
            ",
closed AS (
  SELECT r.user_id, r.used AS visits, r.visits AS tokens_issued, r.last_used
  FROM reach x JOIN analytics.user_tokens r ON x.from_rollup
  WHERE r.visits <> 0 AND ($6::int4 IS NULL OR r.user_id = $6::int4)
),
activity AS (
  ",
            rolled_sql!("closed", "corrections", looked_up),
            "
  UNION ALL
  ",
            scanned_activity_sql!("NOT (SELECT from_rollup FROM reach) AND "),
            "
)"
        )
    };
}

/// The CTEs of a list over one month's rollups (`member_months`), as
/// `rollup_window_sql!` gives them over all time: `reach`, `corrections`.
///
/// Where the database writes in UTC and both edges of the range are exact
/// instants (`day_starts_sql!`: `low` and `high`), the range is the tokens
/// created in `[low, high)`, and the month of the rollups nearest to it (the
/// one of its middle) counts those created in `[month, counted_before)`,
/// which ends at the next month or at `closed_before`. Both hold the time
/// from `kept_from` to `kept_before`; they differ only in the windows before
/// and after it (up to the later start, and from the earlier end), whose
/// tokens are read from `tokens` (`window_tokens`); a token outside them is
/// in both or in neither. In Asia/Kolkata, a calendar month's windows are
/// the 5½ hours at each end. The rollups serve where the windows are short:
/// their closed time, in all, less than a quarter of the range's.
macro_rules! month_window_sql {
    () => {
        concat!(
            "edges AS (
  ",
            $crate::day_starts_sql!("ARRAY[$1::int4, $2::int4]", "$3"),
            "
),
reach AS MATERIALIZED (
  SELECT e.low, e.high, m.month, c.counted_before,
         GREATEST(m.month, e.low) AS kept_from, LEAST(c.counted_before, e.high) AS kept_before,
         e.exact AND $4::text = 'UTC' AND isfinite(b.closed_before)
           AND LEAST(c.counted_before, e.high) > GREATEST(m.month, e.low)
           AND 4 * ((GREATEST(m.month, e.low) - LEAST(m.month, e.low))
                    + (LEAST(GREATEST(c.counted_before, e.high), b.closed_before)
                       - LEAST(c.counted_before, e.high, b.closed_before)))
               < LEAST(e.high, b.closed_before) - LEAST(e.low, b.closed_before)
           AS from_rollup
  FROM analytics.rollup_boundary b
  CROSS JOIN (SELECT min(at) FILTER (WHERE n = 1) AS low, min(at) FILTER (WHERE n = 2) AS high,
                     bool_and(exact) AS exact
              FROM edges) AS e
  CROSS JOIN LATERAL (SELECT date_trunc('month', e.low + (e.high - e.low) / 2) AS month
                      OFFSET 0) AS m
  CROSS JOIN LATERAL (SELECT LEAST(m.month + INTERVAL '1 month', b.closed_before)
                               AS counted_before
                      OFFSET 0) AS c
),
window_tokens AS (
  SELECT t.user_id, t.created_at, t.used_at IS NOT NULL AS used,
         t.created_at >= x.month AND t.created_at < x.counted_before AS counted,
         t.created_at >= x.low AND t.created_at < x.high AS in_range,
         false AS late
  FROM reach x JOIN tokens t
    ON x.from_rollup AND x.month <> x.low
   AND t.created_at >= LEAST(x.month, x.low) AND t.created_at < x.kept_from
  UNION ALL
  SELECT t.user_id, t.created_at, t.used_at IS NOT NULL,
         t.created_at < x.counted_before, t.created_at < x.high, true
  FROM reach x JOIN tokens t
    ON x.from_rollup AND x.counted_before <> x.high
   AND t.created_at >= x.kept_before AND t.created_at < GREATEST(x.counted_before, x.high)
),
",
            corrections_sql!()
        )
    };
}

/// The rollups' counts per member over all time, as the leaders read them.
macro_rules! all_time_counts_sql {
    () => {
        "rollup_counts AS NOT MATERIALIZED (
  SELECT user_id, used, visits, last_used FROM analytics.user_tokens
)"
    };
}

/// The rollups' counts per member in `reach.month`, read by
/// `member_months_by_used`.
macro_rules! month_counts_sql {
    () => {
        "rollup_counts AS NOT MATERIALIZED (
  SELECT user_id, used, visits, last_used FROM analytics.member_months
  WHERE month = (SELECT month::date FROM reach)
)"
    };
}

/// `activity` for the most visits first, without the members who have no
/// tokens in the range and not for one member alone, from the `$window` of
/// the rollups' `$counts` (over all time or of a month): where the rollups
/// serve, they are read only as far as the order needs, by
/// `user_tokens_by_used` or `member_months_by_used`.
/// That is the page's `limit + offset`, plus one for each member whom the
/// window takes tokens from (who may fall behind), plus every member whom it
/// changes (`shifted`, who may move ahead). Any other member keeps the rollup's
/// figures and follows at least `limit + offset` members who are ahead of it
/// in the order and lost nothing, so it is not on the page. The count of all
/// rows is then the rollups' active members, corrected for the shifted
/// (`leaders_total_sql!`). At 10 M tokens, all time, 11 to 16 ms in PostgreSQL
/// instead of 105 to 150.
///
/// The read of `tokens` where the rollups do not serve is gated twice: inside,
/// as in `rollup_activity_sql!`, and outside, so that PostgreSQL does not start
/// its parallel workers to check the gate (9.5 ms).
macro_rules! leaders_activity_sql {
    ($window:expr, $counts:expr) => {
        concat!(
            $window,
            ",
",
            $counts,
            ",
shifted AS (
  SELECT user_id FROM corrections WHERE visits <> 0 OR tokens_issued <> 0
),
leaders AS (
  SELECT r.user_id, r.used AS visits, r.visits AS tokens_issued, r.last_used
  FROM rollup_counts r
  WHERE (SELECT from_rollup FROM reach) AND r.visits <> 0
  ORDER BY r.used DESC, r.user_id
  LIMIT $7::int8 + $8::int8
        + (SELECT COUNT(*) FROM corrections WHERE visits < 0 OR tokens_issued < 0)
),
candidates AS (
  SELECT * FROM leaders
  UNION ALL
  SELECT r.* FROM shifted s CROSS JOIN LATERAL (
    SELECT r.user_id, r.used, r.visits, r.last_used FROM rollup_counts r
    WHERE r.user_id = s.user_id AND r.visits <> 0 OFFSET 0
  ) r
  WHERE NOT EXISTS (SELECT FROM leaders l WHERE l.user_id = s.user_id)
),
candidate_corrections AS (
  SELECT w.* FROM corrections w
  WHERE EXISTS (SELECT FROM shifted s WHERE s.user_id = w.user_id)
     OR EXISTS (SELECT FROM leaders l WHERE l.user_id = w.user_id)
),
activity AS (
  ",
            rolled_sql!("candidates", "candidate_corrections", left_for_the_page),
            "
  UNION ALL
  SELECT * FROM (
  ",
            scanned_activity_sql!("NOT (SELECT from_rollup FROM reach) AND "),
            "
  OFFSET 0) AS scanned
  WHERE NOT (SELECT from_rollup FROM reach)
)"
        )
    };
}

/// The count of all rows of `leaders_activity_sql!`: where the rollups serve,
/// the members whose figures the window leaves as the rollup's are counted in
/// `rollup_counts`, and the others (`shifted`, all among the candidates) as
/// listed.
macro_rules! leaders_total_sql {
    () => {
        "CASE WHEN (SELECT from_rollup FROM reach) THEN
         (SELECT COUNT(*) FROM rollup_counts WHERE visits <> 0)
         - (SELECT COUNT(*) FROM shifted s JOIN rollup_counts r ON r.user_id = s.user_id
            WHERE r.visits <> 0)
         + (SELECT COUNT(*) FROM listed l
            WHERE EXISTS (SELECT FROM shifted s WHERE s.user_id = l.member_id))
       ELSE (SELECT COUNT(*) FROM listed) END"
    };
}

/// A page's member's latest visit in the range: `last_visit`, or where
/// `visit_before` is set, looked up for the page's rows only (for all 93,000
/// members of a range that ends a week before the last token, the lookups
/// took 5 s of 6.5).
macro_rules! latest_visit_sql {
    () => {
        concat!(
            "CASE WHEN visit_before IS NULL THEN last_visit
         ELSE COALESCE(",
            visit_lookup_sql!(
                "member_id",
                "t.created_at >= (SELECT kept_from FROM reach) AND t.created_at < visit_before"
            ),
            " AT TIME ZONE $4::text, last_visit)
       END"
        )
    };
}

/// `listed` for the orders that need no member row: the active members, and
/// (with `$5`) the others. Names are joined to the page's rows only: joining
/// them to all 95,000 members of all time took 60 ms of 150.
macro_rules! listed_by_activity_sql {
    () => {
        "listed AS (
  SELECT user_id AS member_id, visits, tokens_issued, last_visit, visit_before FROM activity
  UNION ALL
  SELECT u.id, 0, 0, NULL, NULL FROM users u
  WHERE $5::bool AND ($6::int4 IS NULL OR u.id = $6::int4)
    AND NOT EXISTS (SELECT FROM activity a WHERE a.user_id = u.id)
)"
    };
}

/// `listed` for the orders by `joined_at`, as an instant.
macro_rules! listed_with_joined_sql {
    () => {
        concat!(
            "listed AS (
  SELECT COALESCE(a.user_id, u.id) AS member_id,
         CASE WHEN u.joined_at ",
            convertible_sql!(),
            " THEN u.joined_at AT TIME ZONE $4::text END AS joined_instant,
         COALESCE(a.visits, 0) AS visits, COALESCE(a.tokens_issued, 0) AS tokens_issued,
         a.last_visit, a.visit_before
  FROM activity a FULL JOIN (SELECT * FROM users WHERE $6::int4 IS NULL OR id = $6::int4) u
    ON u.id = a.user_id
  WHERE a.user_id IS NOT NULL OR $5::bool
)"
        )
    };
}

/// The statement over `$activity` and `$listed` in `$order`, whose count of
/// all rows is `$total` and the page's latest visits `$latest_visit`.
macro_rules! members_sql {
    ($activity:expr, $listed:expr, $order:literal, $total:expr, $latest_visit:expr) => {
        concat!(
            "WITH span AS NOT MATERIALIZED (
  SELECT DATE '1970-01-01' + $1::int4 AS first_day, DATE '1970-01-01' + $2::int4 AS end_day
),
",
            $activity,
            ",
",
            $listed,
            ",
page AS (
  SELECT * FROM listed ORDER BY ",
            $order,
            ", member_id LIMIT $7::int8 OFFSET $8::int8
),
numbered AS (
  SELECT *, ",
            $latest_visit,
            " AS latest_visit,
         $8::int8 + row_number() OVER (ORDER BY ",
            $order,
            ", member_id) AS position
  FROM page
)
SELECT ",
            $total,
            "::int8 AS total,
       array_agg(p.position::int8) AS positions,
       array_agg(p.member_id::int4) AS member_ids,
       array_agg(u.first_name::text) AS first_names,
       array_agg(u.last_name::text) AS last_names,
       array_agg(",
            local_time_sql!("joined"),
            ") AS joined_ats,
       array_agg(p.visits::int8) AS visits,
       array_agg(p.tokens_issued::int8) AS tokens_issued,
       array_agg(",
            local_time_sql!("latest"),
            ") AS last_visits
FROM numbered p LEFT JOIN users u ON u.id = p.member_id
",
            local_parts_sql!("u.joined_at", "$4", "$3", "joined"),
            "
",
            local_parts_sql!(
                "(p.latest_visit AT TIME ZONE 'UTC')",
                "'UTC'",
                "$3",
                "latest"
            )
        )
    };
}

/// The count of all rows, where it is the count of `listed`.
macro_rules! count_listed_sql {
    () => {
        "(SELECT COUNT(*) FROM listed)"
    };
}

/// Both statements of an order.
macro_rules! members_report_sql {
    ($listed:expr, $order:literal) => {
        ReportSql {
            rollups: members_sql!(
                rollup_activity_sql!(),
                $listed,
                $order,
                count_listed_sql!(),
                "last_visit"
            ),
            tokens: members_sql!(
                tokens_activity_sql!(),
                $listed,
                $order,
                count_listed_sql!(),
                "last_visit"
            ),
        }
    };
}

const BY_MOST_VISITS: ReportSql = members_report_sql!(listed_by_activity_sql!(), "visits DESC");
const BY_FEWEST_VISITS: ReportSql = members_report_sql!(listed_by_activity_sql!(), "visits");
const BY_FIRST_JOINED: ReportSql =
    members_report_sql!(listed_with_joined_sql!(), "joined_instant NULLS LAST");
const BY_LAST_JOINED: ReportSql =
    members_report_sql!(listed_with_joined_sql!(), "joined_instant DESC NULLS LAST");
const BY_ID: ReportSql = members_report_sql!(listed_by_activity_sql!(), "member_id");
const BY_LATEST_VISIT: ReportSql =
    members_report_sql!(listed_by_activity_sql!(), "last_visit DESC NULLS LAST");

/// The most visits first, of the members with tokens in the range only, from
/// the leaders of the rollups' `$counts` in `$window` (`leaders_activity_sql!`).
macro_rules! leaders_sql {
    ($window:expr, $counts:expr) => {
        ReportSql {
            rollups: members_sql!(
                leaders_activity_sql!($window, $counts),
                listed_by_activity_sql!(),
                "visits DESC",
                leaders_total_sql!(),
                latest_visit_sql!()
            ),
            tokens: BY_MOST_VISITS.tokens,
        }
    };
}

/// Over all time.
const LEADERS: ReportSql = leaders_sql!(rollup_window_sql!(), all_time_counts_sql!());
/// Over a range of a month or so: the leaders of the month's rollups.
const MONTH_LEADERS: ReportSql = leaders_sql!(month_window_sql!(), month_counts_sql!());

/// Which rollups' leaders a list of the most visits first reads: for a list
/// that has no members without tokens in the range, and is not one member's
/// row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaders {
    /// Any range: the leaders over all time serve one that starts before
    /// every token.
    OfAllTime,
    /// A range of a month or so: those of the month nearest to it.
    OfAMonth,
}

/// The statements that list members in `sort`'s order, from the rollups'
/// `leaders` where given.
pub fn members_sql(sort: Sort, leaders: Option<Leaders>) -> ReportSql {
    match sort {
        Sort::MostVisits if leaders == Some(Leaders::OfAllTime) => LEADERS,
        Sort::MostVisits if leaders == Some(Leaders::OfAMonth) => MONTH_LEADERS,
        Sort::MostVisits => BY_MOST_VISITS,
        Sort::FewestVisits => BY_FEWEST_VISITS,
        Sort::FirstJoined => BY_FIRST_JOINED,
        Sort::LastJoined => BY_LAST_JOINED,
        Sort::MemberId => BY_ID,
        Sort::LatestVisit => BY_LATEST_VISIT,
    }
}
