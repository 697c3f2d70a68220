//! Coworking Analytics: reports on the Coworking Space database, served by Spin.
//!
//! A request flows from `handlers` (the Spin entry point) through `routes`
//! (which endpoint), `db` (settings from Spin variables, queries through Spin's
//! PostgreSQL interface; `config` builds the address), `reports` (the SQL and its
//! rows as reports) and `render` (the bytes the Flask app sent). `errors` says what
//! a failure answers, `log` writes the log lines, `notice` keeps a notice to once,
//! and `probe` asks PostgreSQL for a sign of life before readiness reads it.
//! The second generation of reports, under `/api/v2/`, has its own modules in `v2`;
//! `dashboard` serves the page that shows them in a browser.

pub mod config;
pub mod dashboard;
pub mod errors;
pub mod log;
pub mod probe;
pub mod render;
pub mod reports;
pub mod routes;
pub mod v2;

#[cfg(test)]
mod untrusted_input;

// The Spin glue only builds for the component: natively, the rest is a plain
// library that the unit tests exercise.
#[cfg(target_arch = "wasm32")]
mod db;
#[cfg(target_arch = "wasm32")]
mod handlers;
#[cfg(target_arch = "wasm32")]
mod notice;
