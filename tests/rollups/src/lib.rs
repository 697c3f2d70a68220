//! Proof that the report rollups of `db/migrations/001_report_rollups` always
//! give what the original report SQL gives: on a populated database when the
//! migration is applied, after every kind of write to `tokens` and `users`,
//! under concurrent writers (in every snapshot a reader can take), and through
//! the migration's up, down and up again.
//!
//! Everything here is test code: the crate exists for `cargo test`.

#[cfg(test)]
mod database;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod workload;
