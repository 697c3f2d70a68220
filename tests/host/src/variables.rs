//! Spin variables: application variables resolved from providers (explicit
//! values, like `spin up --variable`, then `SPIN_VARIABLE_<NAME>`), and the
//! component's variables, templates over them.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};

use crate::manifest::{validate_name, Manifest};

/// The resolved application variables. Secret values never appear in Debug.
pub struct Resolved {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values.keys()).finish()
    }
}

impl Resolved {
    /// Resolve every application variable, failing like `spin up` when a
    /// required one has no value from any provider.
    pub fn resolve(
        manifest: &Manifest,
        explicit: &HashMap<String, String>,
        environment: &HashMap<String, String>,
    ) -> Result<Resolved> {
        let mut values = BTreeMap::new();
        let mut unresolved = Vec::new();
        for (name, variable) in &manifest.variables {
            let env_name = format!("SPIN_VARIABLE_{}", name.to_uppercase());
            let value = explicit
                .get(name)
                .or_else(|| environment.get(&env_name))
                .or(variable.default.as_ref());
            match value {
                Some(value) => {
                    values.insert(name.clone(), value.clone());
                }
                None => unresolved.push(format!("Key({name:?})")),
            }
        }
        if !unresolved.is_empty() {
            bail!(
                "provider error: no provider resolved required variable(s): [{}]",
                unresolved.join(", ")
            );
        }
        Ok(Resolved { values })
    }

    /// The value of one application variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Expand `{{ name }}` references to application variables.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unterminated `{{{{` in template {template:?}");
            };
            let name = after[..end].trim();
            match self.values.get(name) {
                Some(value) => out.push_str(value),
                None => bail!("template {template:?} names unknown variable {name:?}"),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The environment as containerd-shim-spin hands it to Spin's variable
/// providers: for each application variable, a plain environment variable of
/// its upper-case name (`DB_PORT` for `db_port`) is copied onto its
/// `SPIN_VARIABLE_` name, over what that held (v0.24.0, `engine.rs` `run_wasi`
/// and `utils.rs` `configure_application_variables_from_environment_variables`).
/// Kubernetes puts such names in every pod: a Service `db` gives
/// `DB_PORT=tcp://10.100.0.7:5432`.
pub fn shim_environment(
    manifest: &Manifest,
    environment: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut as_seen = environment.clone();
    for name in manifest.variables.keys() {
        let plain = name.to_ascii_uppercase();
        if let Some(value) = environment.get(&plain) {
            as_seen.insert(format!("SPIN_VARIABLE_{plain}"), value.clone());
        }
    }
    as_seen
}

/// What `fermyon:spin/variables.get` answers, per Spin's variables factor.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Value(String),
    InvalidName(String),
    Undefined(String),
}

/// The component's variables, expanded once at load time.
#[derive(Default)]
pub struct ComponentVariables {
    values: BTreeMap<String, String>,
}

impl ComponentVariables {
    pub fn new(manifest: &Manifest, resolved: &Resolved) -> Result<ComponentVariables> {
        let mut values = BTreeMap::new();
        for (name, template) in &manifest.component.variables {
            values.insert(name.clone(), resolved.expand(template)?);
        }
        Ok(ComponentVariables { values })
    }

    pub fn get(&self, name: &str) -> Lookup {
        if let Err(err) = validate_name(name) {
            return Lookup::InvalidName(err.to_string());
        }
        match self.values.get(name) {
            Some(value) => Lookup::Value(value.clone()),
            None => Lookup::Undefined(format!("no variable for {name:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[variables]
db_password = { required = true, secret = true }
db_user = { required = true }
db_host = { default = "127.0.0.1" }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
[component.c.variables]
host = "{{ db_host }}"
url = "postgres://{{db_host}}/x"
"#,
            Path::new("."),
        )
        .unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_required_variables_fail_like_spin() {
        let err = Resolved::resolve(&manifest(), &map(&[]), &map(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"provider error: no provider resolved required variable(s): [Key("db_password"), Key("db_user")]"#
        );
    }

    #[test]
    fn the_shim_copies_plain_names_over_the_prefixed_ones() {
        let environment = map(&[
            ("SPIN_VARIABLE_DB_HOST", "db.internal"),
            ("DB_HOST", "tcp://10.0.0.7:5432"),
            ("DB_USER", "plain"),
            ("db_password", "lower case is not copied"),
            ("OTHER", "not a variable"),
        ]);
        let seen = shim_environment(&manifest(), &environment);
        assert_eq!(seen["SPIN_VARIABLE_DB_HOST"], "tcp://10.0.0.7:5432");
        assert_eq!(seen["SPIN_VARIABLE_DB_USER"], "plain");
        assert!(!seen.contains_key("SPIN_VARIABLE_DB_PASSWORD"));
        assert!(!seen.contains_key("SPIN_VARIABLE_OTHER"));
    }

    #[test]
    fn explicit_values_win_over_the_environment_over_defaults() {
        let resolved = Resolved::resolve(
            &manifest(),
            &map(&[("db_user", "cli")]),
            &map(&[
                ("SPIN_VARIABLE_DB_USER", "env"),
                ("SPIN_VARIABLE_DB_PASSWORD", ""),
                ("SPIN_VARIABLE_DB_HOST", "db.internal"),
            ]),
        )
        .unwrap();
        assert_eq!(resolved.values["db_user"], "cli");
        assert_eq!(resolved.values["db_password"], "", "empty values resolve");
        let component = ComponentVariables::new(&manifest(), &resolved).unwrap();
        assert_eq!(component.get("host"), Lookup::Value("db.internal".into()));
        assert_eq!(
            component.get("url"),
            Lookup::Value("postgres://db.internal/x".into())
        );
        assert!(matches!(component.get("db_user"), Lookup::Undefined(_)));
        assert!(matches!(component.get("Bad-Name"), Lookup::InvalidName(_)));
        assert!(!format!("{resolved:?}").contains("db.internal"));
    }
}
