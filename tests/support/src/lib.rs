//! What the test crates share, so that each of them tests and none of them
//! sets up: a throwaway PostgreSQL 15 loaded with `db/` ([`TestDatabase`]), the
//! built component running in the test host over one ([`spawn_app`]), a TCP
//! proxy that injects faults between them ([`FaultProxy`]), and a test
//! certificate authority for TLS ([`TestCa`]); and the OpenAPI document, which
//! every v2 response the tests get must follow.

mod app;
mod contract;
mod database;
mod proxy;
mod tls;

use std::path::{Path, PathBuf};

pub use app::{
    db_variables, host_builder, spawn_app, spawn_app_on, spawn_app_setting, spawn_app_with,
    start_app,
};
pub use app::{TestApp, V2Response, WatchedHost, API_KEY, LEAK_SCAN_DIR};
pub use database::{as_postgres_user, Data, TestDatabase, POSTGRES_BIN, SUPERUSER_PASSWORD};
pub use proxy::{Fault, FaultProxy};
pub use tls::TestCa;

/// The repository: this crate is `tests/support/`.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release build of the component, which `cargo xtask test` makes first.
pub fn component_path() -> PathBuf {
    let wasm = project_root().join("target/wasm32-wasip2/release/coworking_analytics.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: run `cargo xtask test`, or build it with \
         `cargo build --target wasm32-wasip2 --release -p coworking-analytics`",
        wasm.display()
    );
    wasm
}

/// A file of `db/`, read for loading.
pub fn db_file(name: &str) -> String {
    let path = project_root().join("db").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}
