//! End-to-end tests: the built component, in the project's Spin host, against a
//! throwaway PostgreSQL 15, talked to over HTTP. `helpers::spawn_app` gives each
//! test its own database and running component.

mod component;
mod configuration;
mod database_failures;
mod health;
mod helpers;
mod limits;
mod reports;
mod rollups;
mod routing;
