//! The dashboard in a real browser: `cargo test --release -p dashboard-checks`.
//!
//! Each test gets its own PostgreSQL with known data and the component in the
//! test host ([`test_support::spawn_app_setting`]), and drives Debian's headless
//! `chromium` over the DevTools protocol ([`browser`]). Screenshots at
//! 1280×800 and 390×844 go to `target/dashboard-screenshots/`.
//!
//! The benchmark's `dashboard-render` (`src/bin/`) drives the same browser to
//! time the dashboard's first full render at size L.

pub mod browser;
#[cfg(test)]
mod dashboard;
