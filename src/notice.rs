//! Notices logged once, not on every request. Spin runs each request in a fresh
//! instance, so the component cannot remember in its own memory that it already
//! logged one: Spin's default key-value store, which lives as long as the app
//! (in memory under containerd-shim-spin, a file under `spin up`), remembers when.

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
