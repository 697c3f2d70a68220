//! The second generation of reports, under `/api/v2/`: any period in any time
//! zone, in day, week or month buckets, for analysts.
//!
//! A request flows from `routes` (which resource) through `access` (the API
//! key), `params` (the query, with `period` for its calendar) to the report's
//! own module (`usage` with `measures` and `usage_sql`, `members` with
//! `members_sql`: its SQL and its rows as a report;
//! `local_time` shows timestamps in the report's zone), and out through
//! `negotiate` (JSON or CSV, and the coding) and `representation` (ETag, 304,
//! caching, compression) as JSON or `table` (CSV), or as a `problem`.
//! `settings` reads the v2 variables; `zones` the zone names the database reads
//! as zones. The Spin glue is `handlers`.

pub mod access;
pub mod day_starts;
pub mod local_time;
pub mod measures;
pub mod members;
pub mod members_sql;
pub mod negotiate;
pub mod params;
pub mod period;
pub mod problem;
pub mod representation;
pub mod routes;
pub mod settings;
pub mod table;
pub mod usage;
pub mod usage_sql;
pub mod zones;

#[cfg(target_arch = "wasm32")]
pub(crate) mod handlers;
