//! End-to-end tests: the built component, in the project's Spin host, against a
//! throwaway PostgreSQL 15, talked to over HTTP. `test_support::spawn_app` gives each
//! test its own database and running component.

mod component;
mod configuration;
mod dashboard;
mod database_failures;
mod health;
mod limits;
mod reports;
mod rollups;
mod routing;
mod secrets;
mod tls;
mod trigger;
mod untrusted_input;
mod v2;
