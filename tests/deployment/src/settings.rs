//! Where the SpinApp's settings come from: each variable is one of `spin.toml`'s,
//! and every ConfigMap and Secret key it (or any pod) refers to exists, in
//! `deployment/` or made as deployment/README.md says.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::manifests::{
    self, assert_no_findings, deployment, find, parse, spin_apps, Document, Finding,
};

/// ConfigMaps that `kubectl create configmap` makes from the repository, as
/// deployment/README.md says, because their files are too large to copy here.
const CONFIG_MAPS_FROM_FILES: [&str; 1] = ["coworking-seed"];

/// `spin.toml`'s `[variables]`: each name, and whether it is required.
pub fn spin_toml_variables() -> BTreeMap<String, bool> {
    let path = manifests::project_root().join("spin.toml");
    let text = std::fs::read_to_string(&path).expect("read spin.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("parse spin.toml");
    manifest["variables"]
        .as_table()
        .expect("spin.toml has [variables]")
        .iter()
        .map(|(name, spec)| {
            let required = spec.get("required").and_then(toml::Value::as_bool);
            (name.clone(), required.unwrap_or(false))
        })
        .collect()
}

/// Each SpinApp variable is one of `spin.toml`'s, and every required one is set:
/// Spin refuses to start without it.
fn variables_are_spin_toml_variables(
    documents: &[Document],
    declared: &BTreeMap<String, bool>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    for app in spin_apps(documents) {
        let variables = app.at("/spec/variables").and_then(Value::as_array);
        let mut set = BTreeSet::new();
        for (index, variable) in variables.into_iter().flatten().enumerate() {
            let name = variable["name"].as_str().unwrap_or_default();
            set.insert(name);
            if !declared.contains_key(name) {
                found.push(app.finding(
                    format!("/spec/variables/{index}/name"),
                    format!(
                        "{name} is not a variable of spin.toml (it has {})",
                        declared.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        for (name, _) in declared.iter().filter(|(_, required)| **required) {
            if !set.contains(name.as_str()) {
                found.push(app.finding(
                    "/spec/variables",
                    format!("spin.toml requires the variable {name}, which is not set"),
                ));
            }
        }
    }
    found
}

/// The keys that a ConfigMap or Secret in `providers` defines, by kind and name.
fn defined_keys(providers: &[Document]) -> BTreeMap<(&str, &str), BTreeSet<&str>> {
    let mut keys: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for document in providers {
        let sections: &[&str] = match document.kind() {
            "ConfigMap" => &["/data", "/binaryData"],
            "Secret" => &["/data", "/stringData"],
            _ => continue,
        };
        let entry = keys.entry((document.kind(), document.name())).or_default();
        for section in sections {
            if let Some(map) = document.at(section).and_then(Value::as_object) {
                entry.extend(map.keys().map(String::as_str));
            }
        }
    }
    keys
}

/// Each `configMapKeyRef` and `secretKeyRef` of `referrers` names a ConfigMap or
/// Secret of `providers` (said to come from `source`) and one of its keys.
fn key_refs_resolve(referrers: &[Document], providers: &[Document], source: &str) -> Vec<Finding> {
    let keys = defined_keys(providers);
    let mut found = Vec::new();
    for document in referrers {
        for (member, kind) in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")] {
            for (path, reference) in find(document, member) {
                let name = reference["name"].as_str().unwrap_or_default();
                let key = reference["key"].as_str().unwrap_or_default();
                // An optional reference may name what does not exist: the
                // variable then takes its default.
                if reference["optional"] == true {
                    continue;
                }
                let message = match keys.get(&(kind, name)) {
                    None => format!("{source} defines no {kind} {name}"),
                    Some(defined) if !defined.contains(key) => format!(
                        "{kind} {name} of {source} has no key {key} (it has {})",
                        defined.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                    Some(_) => continue,
                };
                found.push(document.finding(path, message));
            }
        }
    }
    found
}

#[test]
fn every_spin_app_variable_is_a_spin_toml_variable() {
    let declared = spin_toml_variables();
    assert!(declared.contains_key("db_password"), "{declared:?}");
    assert_no_findings(&variables_are_spin_toml_variables(deployment(), &declared));

    let wrong = parse(
        "deployment/coworking.yaml",
        "kind: SpinApp\nmetadata: {name: coworking}\nspec:\n  variables:\n    - {name: db_pasword, value: x}\n",
    )
    .unwrap();
    let found = variables_are_spin_toml_variables(&wrong, &declared);
    let messages: Vec<String> = found.iter().map(Finding::to_string).collect();
    assert!(
        messages[0].starts_with(
            "deployment/coworking.yaml, document 1 (SpinApp coworking): /spec/variables/0/name: \
             db_pasword is not a variable of spin.toml"
        ),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.ends_with(
            "/spec/variables: spin.toml requires the variable db_password, which is not set"
        )),
        "{messages:#?}"
    );
}

#[test]
fn the_spin_app_takes_its_settings_from_configmap_yaml_and_every_other_ref_resolves() {
    let settings = manifests::file("deployment/configmap.yaml");
    let apps: Vec<Document> = spin_apps(deployment()).cloned().collect();
    assert!(!apps.is_empty(), "no SpinApp under deployment/");
    // Every variable is a reference (which must then resolve), none a literal.
    for app in &apps {
        let variables = app.at("/spec/variables").and_then(Value::as_array);
        let variables = variables
            .filter(|v| !v.is_empty())
            .expect("SpinApp variables");
        for variable in variables {
            assert!(
                variable.get("valueFrom").is_some(),
                "{app}: {variable} is not taken from a ConfigMap or Secret"
            );
        }
    }
    assert_no_findings(&key_refs_resolve(
        &apps,
        &settings,
        "deployment/configmap.yaml",
    ));
    assert_no_findings(&key_refs_resolve(deployment(), deployment(), "deployment/"));

    let wrong = parse(
        "deployment/coworking.yaml",
        "kind: SpinApp\nmetadata: {name: coworking}\nspec:\n  variables:\n\
         \x20   - {name: db_name, valueFrom: {configMapKeyRef: {name: postgres-config, key: DB_NAMEX}}}\n\
         \x20   - {name: db_password, valueFrom: {secretKeyRef: {name: db-secret, key: DB_PASSWORD}}}\n",
    )
    .unwrap();
    let found: Vec<String> = key_refs_resolve(&wrong, &settings, "deployment/configmap.yaml")
        .iter()
        .map(Finding::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "deployment/coworking.yaml, document 1 (SpinApp coworking): \
             /spec/variables/0/valueFrom/configMapKeyRef: ConfigMap postgres-config of \
             deployment/configmap.yaml has no key DB_NAMEX (it has DB_HOST, DB_NAME, DB_PORT, DB_USERNAME)",
            "deployment/coworking.yaml, document 1 (SpinApp coworking): \
             /spec/variables/1/valueFrom/secretKeyRef: deployment/configmap.yaml defines no Secret db-secret",
        ]
    );
}

/// `db_sslmode` came after the Flask deployment, whose ConfigMap has no
/// `DB_SSLMODE`: the reference is optional, so that ConfigMap keeps working and
/// spin.toml's default applies; a required reference to a missing key would
/// keep the pods from starting.
#[test]
fn the_sslmode_comes_from_an_optional_key_of_the_flask_configmap() {
    let app = manifests::object("SpinApp", "coworking");
    let variables = app.at("/spec/variables").and_then(Value::as_array).unwrap();
    let sslmode = variables
        .iter()
        .find(|variable| variable["name"] == "db_sslmode")
        .expect("the SpinApp sets db_sslmode");
    assert_eq!(
        sslmode["valueFrom"],
        serde_json::json!({"configMapKeyRef": {"name": "postgres-config", "key": "DB_SSLMODE", "optional": true}})
    );
    assert_eq!(
        spin_toml_variables().get("db_sslmode"),
        Some(&false),
        "it has a default"
    );

    // Optional references may name a missing key; the others may not.
    let settings = manifests::file("deployment/configmap.yaml");
    let referrer = |optional: bool| {
        parse(
            "deployment/coworking.yaml",
            &format!(
                "kind: SpinApp\nmetadata: {{name: coworking}}\nspec:\n  variables:\n\
                 \x20   - {{name: db_sslmode, valueFrom: {{configMapKeyRef: \
                 {{name: postgres-config, key: DB_SSLMODE, optional: {optional}}}}}}}\n"
            ),
        )
        .unwrap()
    };
    assert!(key_refs_resolve(&referrer(true), &settings, "deployment/configmap.yaml").is_empty());
    assert_eq!(
        key_refs_resolve(&referrer(false), &settings, "deployment/configmap.yaml").len(),
        1
    );
}

#[test]
fn configmap_yaml_has_the_flask_deployments_names_and_keys() {
    let keys = defined_keys(deployment());
    let expect = |kind, name, expected: &[&str]| {
        let found = keys
            .get(&(kind, name))
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        assert_eq!(
            found.iter().copied().collect::<Vec<_>>(),
            expected,
            "{kind} {name}"
        );
    };
    expect(
        "ConfigMap",
        "postgres-config",
        &["DB_HOST", "DB_NAME", "DB_PORT", "DB_USERNAME"],
    );
    expect("Secret", "postgres-password", &["DB_PASSWORD"]);
    assert_eq!(
        manifests::object("ConfigMap", "postgres-config").file,
        "deployment/configmap.yaml"
    );
    assert_eq!(
        manifests::object("Secret", "postgres-password").file,
        "deployment/configmap.yaml"
    );
}

#[test]
fn every_mounted_config_map_is_in_deployment_or_made_as_the_readme_says() {
    let names: BTreeSet<&str> = deployment()
        .iter()
        .filter(|d| d.is("ConfigMap"))
        .map(Document::name)
        .collect();
    let readme = manifests::deployment_readme();
    let mut found = Vec::new();
    for document in deployment() {
        for (path, volume) in find(document, "configMap") {
            let name = volume["name"].as_str().unwrap_or_default();
            let documented = CONFIG_MAPS_FROM_FILES.contains(&name)
                && readme.contains(&format!("kubectl create configmap {name}"));
            if !names.contains(name) && !documented {
                found.push(document.finding(
                    path,
                    format!(
                        "no ConfigMap {name} under deployment/, nor a README step that makes it"
                    ),
                ));
            }
        }
    }
    assert_no_findings(&found);
}
