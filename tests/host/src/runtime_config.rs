//! Spin's runtime configuration file (`spin up --runtime-config-file`, the
//! shim's `/runtime-config.toml`), for what this host serves: key-value stores
//! of `type = "spin"` without a `path`, which Spin keeps in memory. Spin refuses
//! keys it does not use; this host refuses what it does not serve, so that no
//! test runs under a configuration it would silently ignore.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawStore>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(rename = "type")]
    kind: String,
    path: Option<String>,
}

/// The runtime configuration of an app: the key-value stores it defines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeSet<String>,
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read runtime config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("runtime config {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<RuntimeConfig> {
        let raw: RawRuntimeConfig = toml::from_str(text)?;
        let mut key_value_stores = BTreeSet::new();
        for (label, store) in raw.key_value_store {
            if store.kind != "spin" {
                bail!(
                    "key_value_store.{label}: type {:?} is not served by this host (only \"spin\")",
                    store.kind
                );
            }
            if store.path.is_some() {
                bail!(
                    "key_value_store.{label}: a path (a SQLite file) is not served by this host, \
                     which keeps spin stores in memory as Spin does without a path"
                );
            }
            key_value_stores.insert(label);
        }
        Ok(RuntimeConfig { key_value_stores })
    }

    /// Whether a component may name this store: `default` always exists.
    pub fn defines_store(&self, label: &str) -> bool {
        label == "default" || self.key_value_stores.contains(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_stores_without_a_path_are_served() {
        let config =
            RuntimeConfig::parse("[key_value_store.default]\ntype = \"spin\"\n\n[key_value_store.cache]\ntype = \"spin\"\n")
                .unwrap();
        assert!(config.defines_store("default"));
        assert!(config.defines_store("cache"));
        assert!(!config.defines_store("other"));
        assert!(RuntimeConfig::default().defines_store("default"));
    }

    #[test]
    fn what_the_host_does_not_serve_is_refused() {
        for text in [
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://x\"\n",
            "[key_value_store.default]\ntype = \"spin\"\npath = \"kv.db\"\n",
            "[[variables_provider]]\ntype = \"vault\"\n",
        ] {
            assert!(RuntimeConfig::parse(text).is_err(), "{text}");
        }
    }

    /// The project's own runtime config, which the image ships.
    #[test]
    fn the_projects_runtime_config_keeps_the_default_store_in_memory() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime-config.toml");
        let config = RuntimeConfig::load(&path).unwrap();
        assert_eq!(
            config.key_value_stores,
            BTreeSet::from(["default".to_string()])
        );
    }
}
