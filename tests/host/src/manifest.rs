//! The parts of a Spin manifest (`spin.toml`, version 2) that serving an HTTP
//! component needs. Other sections (`build`, other triggers) are ignored, as
//! `spin up` ignores what it does not run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    #[serde(default)]
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Default, Deserialize)]
struct RawApplication {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    required: bool,
    default: Option<String>,
    #[serde(default)]
    secret: bool,
    #[allow(dead_code)] // read so that a manifest with descriptions parses
    description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: String,
    component: String,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: String,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

/// An application variable: required, or with a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub default: Option<String>,
    pub secret: bool,
}

/// The HTTP component to serve.
#[derive(Debug, Clone)]
pub struct Component {
    pub route: String,
    pub source: PathBuf,
    pub allowed_outbound_hosts: Vec<String>,
    /// The key-value stores the component may open.
    pub key_value_stores: Vec<String>,
    /// Component variable name → template over application variables.
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    /// `[application]` `name` and `version`, which `/.well-known/spin/info` shows.
    pub name: String,
    pub version: String,
    pub variables: BTreeMap<String, Variable>,
    pub component: Component,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read manifest {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir).with_context(|| format!("manifest {}", path.display()))
    }

    /// Parse a manifest; `dir` is the directory that `source` paths are relative to.
    pub fn parse(text: &str, dir: &Path) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(text)?;
        ensure!(
            raw.spin_manifest_version == 2,
            "only spin_manifest_version 2 is supported"
        );
        let mut variables = BTreeMap::new();
        for (name, variable) in raw.variables {
            validate_name(&name)?;
            match (variable.required, variable.default) {
                (true, Some(_)) => {
                    bail!("variable {name:?}: `required` and `default` are exclusive")
                }
                (false, None) => bail!("variable {name:?}: needs `required = true` or a `default`"),
                (_, default) => variables.insert(
                    name,
                    Variable {
                        default,
                        secret: variable.secret,
                    },
                ),
            };
        }
        let [trigger] = raw.trigger.http.as_slice() else {
            bail!("exactly one [[trigger.http]] is supported");
        };
        let component = raw
            .component
            .get(&trigger.component)
            .with_context(|| format!("trigger names unknown component {:?}", trigger.component))?;
        for name in component.variables.keys() {
            validate_name(name)?;
        }
        Ok(Manifest {
            name: raw.application.name,
            version: raw.application.version,
            variables,
            component: Component {
                route: trigger.route.clone(),
                source: dir.join(&component.source),
                allowed_outbound_hosts: component.allowed_outbound_hosts.clone(),
                key_value_stores: component.key_value_stores.clone(),
                variables: component.variables.clone(),
            },
        })
    }
}

/// Spin's variable name rules: lowercase ASCII letters, digits and `_`, starting
/// with a letter, ending with a letter or digit, without `__`.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__");
    ensure!(valid, "invalid variable name {name:?}: must be lowercase letters, digits and single underscores, starting with a letter");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
user = { required = true }
password = { required = true, secret = true }
host = { default = "127.0.0.1", description = "where" }
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "target/app.wasm"
allowed_outbound_hosts = ["postgres://{{ host }}:5432"]
key_value_stores = ["default"]
[component.web.variables]
host = "{{ host }}"
[component.web.build]
command = "cargo build"
"#;

    #[test]
    fn parses_variables_trigger_and_component() {
        let manifest = Manifest::parse(MANIFEST, Path::new("/app")).unwrap();
        assert_eq!(manifest.variables["user"].default, None);
        assert!(manifest.variables["password"].secret);
        assert_eq!(
            manifest.variables["host"].default.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(manifest.component.route, "/...");
        assert_eq!(
            (manifest.name.as_str(), manifest.version.as_str()),
            ("app", "")
        );
        assert_eq!(manifest.component.source, Path::new("/app/target/app.wasm"));
        assert_eq!(manifest.component.variables["host"], "{{ host }}");
        assert_eq!(manifest.component.key_value_stores, ["default"]);
    }

    #[test]
    fn a_variable_needs_exactly_one_of_required_and_default() {
        let both = MANIFEST.replace(
            "{ required = true }",
            "{ required = true, default = \"x\" }",
        );
        assert!(Manifest::parse(&both, Path::new(".")).is_err());
        let neither = MANIFEST.replace("{ required = true }", "{ secret = true }");
        assert!(Manifest::parse(&neither, Path::new(".")).is_err());
    }

    #[test]
    fn variable_names_follow_spins_rules() {
        for good in ["a", "db_host", "a1", "a_b_c"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1a", "_a", "a_", "a__b", "A", "db-host", "dB"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
