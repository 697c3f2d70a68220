//! Notices logged once, not on every request. Spin runs each request in a fresh
//! instance, so the component cannot remember in its own memory that it already
//! logged one: Spin's default key-value store remembers when. The project's
//! `runtime-config.toml` keeps that store in memory, for the life of the app:
//! the image ships it for the shim (without it the shim would keep a SQLite file
//! at `/.spin/sqlite_key_value.db`, which a read-only root refuses), and `cargo
//! xtask up` gives it to `spin up` (whose default is `.spin/sqlite_key_value.db`).
//! So a notice is logged once per pod, then hourly.

use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::key_value::Store;

use crate::log;

/// Log `message` as a warning unless the notice `key` was logged within the last
/// [`log::NOTICE_REPEAT_SECS`]. Without the store, it is logged every time:
/// better too often than never.
pub fn warn_once(key: &str, message: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let store = Store::open_default().ok();
    let last = store
        .as_ref()
        .and_then(|store| store.get(key).ok().flatten())
        .and_then(|bytes| String::from_utf8(bytes).ok()?.parse().ok());
    if log::notice_due(last, now) {
        log::warning(message);
        if let Some(store) = store {
            // Failing to remember only means logging it again next time.
            let _ = store.set(key, now.to_string().as_bytes());
        }
    }
}
