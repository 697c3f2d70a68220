//! What the manifests say about each other and about the rest of the project:
//! `spin.toml`'s variables, the component's routes, `buildspec.yml`'s image
//! repository, and the objects that spin-operator generates (see [`operator`]).
//! Each check is a function over documents, so that the negative tests can hand
//! it broken manifests.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use coworking_analytics::routes::Endpoint;
use serde_json::Value;

use crate::manifests::{
    self, assert_no_findings, deployment, parse, pointer_segment, Document, Finding,
};
use crate::operator;

/// The Secrets that hold a value in git: placeholders, marked "SAMPLE ONLY" in
/// their files and replaced from the command line (deployment/README.md).
const SAMPLE_SECRETS: [(&str, &str); 2] = [
    ("deployment/configmap.yaml", "postgres-password"),
    ("deployment/postgres/secret.yaml", "postgres-admin"),
];

/// The fallback shim installer's manifests.
const FALLBACK_DIR: &str = "deployment/spinkube/fallback/";

/// ConfigMaps that `kubectl create configmap` makes from the repository, as
/// deployment/README.md says, because their files are too large to copy here.
const CONFIG_MAPS_FROM_FILES: [&str; 1] = ["coworking-seed"];

fn spin_apps(documents: &[Document]) -> impl Iterator<Item = &Document> {
    documents.iter().filter(|d| d.is("SpinApp"))
}

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

/// The ECR repository that the pipeline pushes to: `buildspec.yml`'s IMAGE_REPO_NAME.
fn pipeline_repository() -> String {
    let path = manifests::project_root().join("buildspec.yml");
    let text = std::fs::read_to_string(&path).expect("read buildspec.yml");
    let spec: Value = yaml_serde::from_str(&text).expect("parse buildspec.yml");
    spec.pointer("/env/variables/IMAGE_REPO_NAME")
        .and_then(Value::as_str)
        .expect("buildspec.yml sets env.variables.IMAGE_REPO_NAME")
        .to_string()
}

fn readme() -> String {
    std::fs::read_to_string(manifests::project_root().join("deployment/README.md"))
        .expect("read deployment/README.md")
}

/// Every value under a key named `member`, anywhere in `value`, with its pointer.
fn objects_under<'v>(
    value: &'v Value,
    member: &str,
    path: String,
    out: &mut Vec<(String, &'v Value)>,
) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let child_path = format!("{path}/{}", pointer_segment(key));
                if key == member {
                    out.push((child_path.clone(), child));
                }
                objects_under(child, member, child_path, out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                objects_under(item, member, format!("{path}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn find<'v>(document: &'v Document, member: &str) -> Vec<(String, &'v Value)> {
    let mut found = Vec::new();
    objects_under(&document.value, member, String::new(), &mut found);
    found
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

/// The probes go to the component's routes: liveness to the health check, which
/// never touches the database, readiness to the readiness check, with a timeout
/// no shorter than the 5 s within which the component answers it.
fn probes_are_routes(documents: &[Document]) -> Vec<Finding> {
    let route = |endpoint: Endpoint| {
        Endpoint::ALL
            .iter()
            .find(|(_, e)| *e == endpoint)
            .map(|(path, _)| *path)
            .expect("every endpoint has a route")
    };
    let mut found = Vec::new();
    for app in spin_apps(documents) {
        for (probe, endpoint) in [
            ("liveness", Endpoint::HealthCheck),
            ("readiness", Endpoint::ReadinessCheck),
        ] {
            let pointer = format!("/spec/checks/{probe}/httpGet/path");
            let expected = route(endpoint);
            match app.str_at(&pointer) {
                None => found
                    .push(app.finding(pointer, format!("no {probe} probe: it must be {expected}"))),
                Some(path) if !Endpoint::ALL.iter().any(|(route, _)| *route == path) => found
                    .push(app.finding(pointer, format!("{path} is not a route of the component"))),
                Some(path) if path != expected => found.push(app.finding(
                    pointer,
                    format!("the {probe} probe must be {expected}, not {path}"),
                )),
                Some(_) => {}
            }
        }
        let timeout = app
            .at("/spec/checks/readiness/timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        if timeout < 5 {
            found.push(app.finding(
                "/spec/checks/readiness/timeoutSeconds",
                format!("{timeout} s is shorter than the 5 s the readiness check may take"),
            ));
        }
    }
    found
}

/// Every selector that names a pod label of the operator's (`core.spinkube.dev/...`)
/// selects the pods the operator generates for the SpinApp of that name.
fn operator_label_selectors_match(documents: &[Document]) -> Vec<Finding> {
    let apps: BTreeMap<&str, &Document> = spin_apps(documents).map(|a| (a.name(), a)).collect();
    let mut found = Vec::new();
    for document in documents.iter().filter(|d| !d.is("SpinApp")) {
        let mut selectors = find(document, "selector");
        selectors.extend(find(document, "podSelector"));
        for (path, selector) in selectors {
            let text = selector.to_string();
            if !text.contains("core.spinkube.dev/") {
                continue;
            }
            // By the name label, or by the status label, whose key names the app.
            let app = apps.iter().find(|(name, _)| {
                text.contains(&format!("\"core.spinkube.dev/app-name\":\"{name}\""))
                    || text.contains(&format!("\"core.spinkube.dev/app.{name}.status\""))
            });
            let message = match app {
                None => "selects the labels of no SpinApp under deployment/".to_string(),
                Some((name, app)) => {
                    match operator::selects(selector, &operator::pod_labels(app)) {
                        Some(true) => continue,
                        Some(false) => format!(
                            "does not select the pods the operator makes for SpinApp {name} ({:?})",
                            operator::pod_labels(app)
                        ),
                        None => "is not a selector this check can read".to_string(),
                    }
                }
            };
            found.push(document.finding(path, message));
        }
    }
    found
}

/// The load balancer keeps the Flask URL's port 5153 and reaches the app's port
/// 80 in the operator's pods, under a name the operator does not own.
fn load_balancer_reaches_the_app(documents: &[Document]) -> Vec<Finding> {
    let apps: Vec<&Document> = spin_apps(documents).collect();
    let balancers: Vec<&Document> = documents
        .iter()
        .filter(|d| d.is("Service") && d.str_at("/spec/type") == Some("LoadBalancer"))
        .collect();
    let mut found = Vec::new();
    if balancers.is_empty() {
        if let Some(app) = apps.first() {
            found.push(app.finding("", "no Service of type LoadBalancer reaches it"));
        }
    }
    for service in balancers {
        let selector = service.at("/spec/selector").cloned().unwrap_or_default();
        let target = apps
            .iter()
            .find(|app| operator::selects(&selector, &operator::pod_labels(app)) == Some(true));
        if target.is_none() {
            found.push(service.finding(
                "/spec/selector",
                "selects the pods of no SpinApp (the operator labels them core.spinkube.dev/app-name: <name>)",
            ));
        }
        let ports = service.at("/spec/ports").and_then(Value::as_array);
        if !ports
            .into_iter()
            .flatten()
            .any(|p| p["port"].as_u64() == Some(5153))
        {
            found.push(service.finding("/spec/ports", "no port 5153, the Flask app's"));
        }
        for (index, port) in ports.into_iter().flatten().enumerate() {
            let reaches_app = port["targetPort"].as_u64() == Some(operator::HTTP_PORT)
                || port["targetPort"].as_str() == Some(operator::HTTP_PORT_NAME);
            if !reaches_app {
                found.push(service.finding(
                    format!("/spec/ports/{index}/targetPort"),
                    format!(
                        "{} is not the app's port {} ({})",
                        port["targetPort"],
                        operator::HTTP_PORT,
                        operator::HTTP_PORT_NAME
                    ),
                ));
            }
        }
    }
    found
}

/// The operator creates a Deployment and a Service named like each SpinApp and
/// forces its fields on them: none of ours may have those names.
fn generated_names_are_free(documents: &[Document]) -> Vec<Finding> {
    let generated: BTreeSet<&str> = spin_apps(documents).map(operator::generated_name).collect();
    documents
        .iter()
        .filter(|d| (d.is("Deployment") || d.is("Service")) && generated.contains(d.name()))
        .map(|d| {
            d.finding(
                "/metadata/name",
                format!(
                    "spin-operator generates the {} {} for the SpinApp of that name",
                    d.kind(),
                    d.name()
                ),
            )
        })
        .collect()
}

/// An autoscaled SpinApp leaves `replicas` unset (the operator's webhook rejects
/// it otherwise) and a HorizontalPodAutoscaler scales the operator's Deployment;
/// every autoscaler targets such a Deployment.
fn autoscaling_targets_the_generated_deployment(documents: &[Document]) -> Vec<Finding> {
    let autoscalers: Vec<&Document> = documents
        .iter()
        .filter(|d| d.is("HorizontalPodAutoscaler"))
        .collect();
    let mut found = Vec::new();
    for app in spin_apps(documents) {
        let autoscaled = app.at("/spec/enableAutoscaling").and_then(Value::as_bool) == Some(true);
        let replicas = app.at("/spec/replicas").and_then(Value::as_u64);
        match (autoscaled, replicas) {
            (true, Some(_)) => found.push(app.finding(
                "/spec/replicas",
                "replicas cannot be set when autoscaling is enabled (spin-operator's webhook)",
            )),
            (false, None | Some(0)) => found.push(app.finding(
                "/spec/replicas",
                "without enableAutoscaling, replicas must be at least 1 (spin-operator's webhook)",
            )),
            _ => {}
        }
        let scaled = autoscalers.iter().any(|hpa| {
            hpa.str_at("/spec/scaleTargetRef/name") == Some(operator::generated_name(app))
        });
        if autoscaled && !scaled {
            found.push(app.finding(
                "/spec/enableAutoscaling",
                "no HorizontalPodAutoscaler scales its Deployment",
            ));
        }
    }
    let generated: BTreeSet<&str> = spin_apps(documents).map(operator::generated_name).collect();
    for hpa in autoscalers {
        let api_version = hpa
            .str_at("/spec/scaleTargetRef/apiVersion")
            .unwrap_or_default();
        let kind = hpa.str_at("/spec/scaleTargetRef/kind").unwrap_or_default();
        let name = hpa.str_at("/spec/scaleTargetRef/name").unwrap_or_default();
        if (api_version, kind) != ("apps/v1", "Deployment") || !generated.contains(name) {
            found.push(hpa.finding(
                "/spec/scaleTargetRef",
                format!(
                    "targets {api_version} {kind} {name}, not the apps/v1 Deployment that \
                     spin-operator generates for a SpinApp (named like it: {})",
                    generated.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    found
}

/// A memory quantity in bytes: an integer with one of Kubernetes' binary or
/// decimal suffixes, the forms our manifests use. Anything else is `None`, which
/// the checks report rather than guess at.
fn memory_bytes(quantity: &str) -> Option<u128> {
    const SUFFIXES: [(&str, u128); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    let (digits, unit) = SUFFIXES
        .iter()
        .find_map(|(suffix, unit)| Some((quantity.strip_suffix(suffix)?, *unit)))
        .unwrap_or((quantity, 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u128>().ok()?.checked_mul(unit)
}

/// `invocationLimits` as spin-operator v0.6.1 reads it for the shim (its webhook,
/// `validateInvocationLimits`, and the `SPIN_MAX_INSTANCE_MEMORY` it sets): the
/// one key is `memory`, a quantity no larger than the pod's memory limit (or its
/// request, when it has no limit). Another key would be ignored without a word.
fn invocation_limits_fit_the_pod(documents: &[Document]) -> Vec<Finding> {
    let mut found = Vec::new();
    for app in spin_apps(documents) {
        let Some(limits) = app.at("/spec/invocationLimits").and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in limits {
            let path = format!("/spec/invocationLimits/{}", pointer_segment(key));
            if key != "memory" {
                found.push(app.finding(
                    path,
                    "spin-operator knows only the `memory` invocation limit; this one does nothing",
                ));
                continue;
            }
            let quantity = value.as_str().unwrap_or_default();
            let Some(bytes) = memory_bytes(quantity) else {
                found.push(app.finding(
                    path,
                    format!("{quantity:?} is not a memory quantity such as 64Mi"),
                ));
                continue;
            };
            let pod = ["limits", "requests"].into_iter().find_map(|bound| {
                let quantity = app.str_at(&format!("/spec/resources/{bound}/memory"))?;
                Some((bound, quantity, memory_bytes(quantity)))
            });
            match pod {
                Some((bound, pod_quantity, Some(pod_bytes))) if bytes > pod_bytes => {
                    found.push(app.finding(
                        path,
                        format!(
                            "{quantity} is more than the pod's memory {bound} ({pod_quantity}): \
                             spin-operator's webhook rejects it"
                        ),
                    ))
                }
                Some((bound, pod_quantity, None)) => found.push(app.finding(
                    format!("/spec/resources/{bound}/memory"),
                    format!("{pod_quantity:?} is not a memory quantity such as 64Mi"),
                )),
                _ => {}
            }
        }
    }
    found
}

/// The image is one the pipeline pushed: `<account>.dkr.ecr.<region>.amazonaws.com/`
/// + `repository` + a build tag `X.Y.Z-build.N` (never `latest`, never the
///   moving `X.Y.Z`), optionally pinned by digest as well.
fn images_are_pipeline_builds(documents: &[Document], repository: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    for app in spin_apps(documents) {
        let image = app.str_at("/spec/image").unwrap_or_default();
        if let Err(problem) = check_pipeline_image(image, repository) {
            found.push(app.finding("/spec/image", format!("{image}: {problem}")));
        }
    }
    found
}

fn check_pipeline_image(image: &str, repository: &str) -> Result<(), String> {
    let reference = image
        .split_once('@')
        .map_or(image, |(reference, _)| reference);
    let (registry, rest) = reference
        .split_once('/')
        .ok_or("no registry: the pipeline pushes to ECR")?;
    let labels: Vec<&str> = registry.split('.').collect();
    let is_ecr = matches!(
        labels.as_slice(),
        [account, "dkr", "ecr", region, "amazonaws", "com"]
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty()
                && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    );
    if !is_ecr {
        return Err(format!(
            "{registry} is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)"
        ));
    }
    let (name, tag) = rest.rsplit_once(':').ok_or("no tag")?;
    if name != repository {
        return Err(format!(
            "the repository {name} is not buildspec.yml's IMAGE_REPO_NAME {repository}"
        ));
    }
    let build_tag = tag.split_once("-build.").and_then(|(version, build)| {
        let version_ok = version.split('.').count() == 3
            && version
                .split('.')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let build_ok = !build.is_empty()
            && !build.starts_with('0')
            && build.bytes().all(|b| b.is_ascii_digit());
        (version_ok && build_ok).then_some(())
    });
    build_tag.ok_or_else(|| {
        format!("the tag {tag} is not a build tag X.Y.Z-build.N of the pipeline (never latest)")
    })
}

fn is_password_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "credential",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// No password in plain text: a Secret holds values only if it is one of the
/// samples; no ConfigMap key, environment variable or SpinApp variable of a
/// password-like name has a literal value.
fn no_plaintext_passwords(documents: &[Document], samples: &[(&str, &str)]) -> Vec<Finding> {
    let mut found = Vec::new();
    for document in documents {
        let sample = samples.contains(&(document.file.as_str(), document.name()));
        match document.kind() {
            "Secret" if !sample => {
                for section in ["/data", "/stringData"] {
                    let values = document.at(section).and_then(Value::as_object);
                    for key in values.into_iter().flatten().map(|(key, _)| key) {
                        found.push(document.finding(
                            format!("{section}/{}", pointer_segment(key)),
                            "a Secret value in a manifest: create the Secret from the command \
                             line or an external secret store (deployment/README.md)",
                        ));
                    }
                }
            }
            "ConfigMap" => {
                let data = document.at("/data").and_then(Value::as_object);
                for key in data.into_iter().flatten().map(|(key, _)| key) {
                    if is_password_like(key) {
                        found.push(document.finding(
                            format!("/data/{}", pointer_segment(key)),
                            "a password-like key in a ConfigMap: it belongs in a Secret",
                        ));
                    }
                }
            }
            _ => {}
        }
        // Environment variables and SpinApp variables alike: {name, value}.
        for (path, name) in find(document, "name") {
            let Some(name) = name.as_str() else { continue };
            let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
            let has_literal = document
                .at(&format!("{parent}/value"))
                .and_then(Value::as_str)
                .is_some_and(|value| !value.is_empty());
            if is_password_like(name) && has_literal {
                found.push(document.finding(
                    format!("{parent}/value"),
                    format!("{name} has a literal value: take it from a Secret (secretKeyRef)"),
                ));
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
fn the_probes_are_the_components_health_and_readiness_routes() {
    assert_no_findings(&probes_are_routes(deployment()));

    let wrong = parse(
        "deployment/coworking.yaml",
        "kind: SpinApp\nmetadata: {name: coworking}\nspec:\n  checks:\n\
         \x20   liveness: {httpGet: {path: /readiness_check}}\n\
         \x20   readiness: {httpGet: {path: /healthz}}\n",
    )
    .unwrap();
    let found: Vec<String> = probes_are_routes(&wrong)
        .iter()
        .map(Finding::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "deployment/coworking.yaml, document 1 (SpinApp coworking): /spec/checks/liveness/httpGet/path: \
             the liveness probe must be /health_check, not /readiness_check",
            "deployment/coworking.yaml, document 1 (SpinApp coworking): /spec/checks/readiness/httpGet/path: \
             /healthz is not a route of the component",
            "deployment/coworking.yaml, document 1 (SpinApp coworking): /spec/checks/readiness/timeoutSeconds: \
             1 s is shorter than the 5 s the readiness check may take",
        ]
    );
}

#[test]
fn the_load_balancer_reaches_port_80_of_the_operators_pods_on_port_5153() {
    assert_no_findings(&load_balancer_reaches_the_app(deployment()));
    assert_no_findings(&generated_names_are_free(deployment()));

    let wrong = parse(
        "deployment/coworking.yaml",
        "kind: SpinApp\nmetadata: {name: coworking}\nspec: {}\n---\n\
         kind: Service\nmetadata: {name: coworking}\n\
         spec: {type: LoadBalancer, selector: {app: coworking}, ports: [{port: 5153, targetPort: 8080}]}\n",
    )
    .unwrap();
    let mut found: Vec<String> = load_balancer_reaches_the_app(&wrong)
        .iter()
        .chain(&generated_names_are_free(&wrong))
        .map(Finding::to_string)
        .collect();
    found.sort();
    let service = "deployment/coworking.yaml, document 2 (Service coworking)";
    assert_eq!(
        found,
        [
            format!("{service}: /metadata/name: spin-operator generates the Service coworking for the SpinApp of that name"),
            format!("{service}: /spec/ports/0/targetPort: 8080 is not the app's port 80 (http-app)"),
            format!("{service}: /spec/selector: selects the pods of no SpinApp (the operator labels them core.spinkube.dev/app-name: <name>)"),
        ]
    );
}

#[test]
fn every_selector_of_the_operators_labels_selects_the_operators_pods() {
    let selectors = deployment()
        .iter()
        .filter(|d| !d.is("SpinApp"))
        .flat_map(|d| {
            find(d, "selector")
                .into_iter()
                .chain(find(d, "podSelector"))
        })
        .filter(|(_, selector)| selector.to_string().contains("core.spinkube.dev/"))
        .count();
    // The load balancer, the disruption budget and three network policies.
    assert!(
        selectors >= 5,
        "only {selectors} selectors of the operator's labels"
    );
    assert_no_findings(&operator_label_selectors_match(deployment()));

    let wrong = parse(
        "deployment/scaling.yaml",
        "kind: SpinApp\nmetadata: {name: coworking}\nspec: {}\n---\n\
         kind: PodDisruptionBudget\nmetadata: {name: coworking}\nspec:\n  selector:\n\
         \x20   matchLabels: {core.spinkube.dev/app-name: coworking, core.spinkube.dev/app.coworking.status: serving}\n",
    )
    .unwrap();
    let found = operator_label_selectors_match(&wrong);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].to_string().starts_with(
            "deployment/scaling.yaml, document 2 (PodDisruptionBudget coworking): /spec/selector: \
             does not select the pods the operator makes for SpinApp coworking"
        ),
        "{}",
        found[0]
    );
}

#[test]
fn the_autoscaler_scales_the_deployment_the_operator_generates() {
    assert_no_findings(&autoscaling_targets_the_generated_deployment(deployment()));
    let app = manifests::object("SpinApp", "coworking");
    assert_eq!(app.at("/spec/enableAutoscaling"), Some(&Value::Bool(true)));

    let wrong = parse(
        "deployment/scaling.yaml",
        "kind: SpinApp\nmetadata: {name: coworking}\nspec: {enableAutoscaling: true, replicas: 2}\n---\n\
         kind: HorizontalPodAutoscaler\nmetadata: {name: coworking}\n\
         spec: {scaleTargetRef: {apiVersion: core.spinkube.dev/v1alpha1, kind: SpinApp, name: coworking}}\n",
    )
    .unwrap();
    let found: Vec<String> = autoscaling_targets_the_generated_deployment(&wrong)
        .iter()
        .map(Finding::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "deployment/scaling.yaml, document 1 (SpinApp coworking): /spec/replicas: \
             replicas cannot be set when autoscaling is enabled (spin-operator's webhook)",
            "deployment/scaling.yaml, document 2 (HorizontalPodAutoscaler coworking): /spec/scaleTargetRef: \
             targets core.spinkube.dev/v1alpha1 SpinApp coworking, not the apps/v1 Deployment that \
             spin-operator generates for a SpinApp (named like it: coworking)",
        ]
    );
}

#[test]
fn memory_quantities_in_bytes() {
    assert_eq!(memory_bytes("64Mi"), Some(64 << 20));
    assert_eq!(memory_bytes("1Gi"), Some(1 << 30));
    assert_eq!(memory_bytes("500M"), Some(500_000_000));
    assert_eq!(memory_bytes("1024"), Some(1024));
    for unreadable in ["", "Mi", "64 Mi", "1.5Gi", "-1Mi", "64mi", "64MB"] {
        assert_eq!(memory_bytes(unreadable), None, "{unreadable:?}");
    }
}

#[test]
fn the_instance_memory_limit_is_one_the_operator_takes_and_fits_the_pod() {
    assert_no_findings(&invocation_limits_fit_the_pod(deployment()));
    let app = manifests::object("SpinApp", "coworking");
    assert_eq!(app.str_at("/spec/invocationLimits/memory"), Some("64Mi"));

    let wrong = parse(
        "deployment/coworking.yaml",
        "kind: SpinApp\nmetadata: {name: a}\n\
         spec: {invocationLimits: {memory: 1Gi}, resources: {requests: {memory: 2Gi}, limits: {memory: 768Mi}}}\n---\n\
         kind: SpinApp\nmetadata: {name: b}\n\
         spec: {invocationLimits: {maxMemory: 64Mi, memory: lots}, resources: {requests: {memory: 32Mi}}}\n",
    )
    .unwrap();
    let found: Vec<String> = invocation_limits_fit_the_pod(&wrong)
        .iter()
        .map(Finding::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "deployment/coworking.yaml, document 1 (SpinApp a): /spec/invocationLimits/memory: \
             1Gi is more than the pod's memory limits (768Mi): spin-operator's webhook rejects it",
            "deployment/coworking.yaml, document 2 (SpinApp b): /spec/invocationLimits/maxMemory: \
             spin-operator knows only the `memory` invocation limit; this one does nothing",
            "deployment/coworking.yaml, document 2 (SpinApp b): /spec/invocationLimits/memory: \
             \"lots\" is not a memory quantity such as 64Mi",
        ]
    );
}

#[test]
fn the_image_is_a_versioned_build_of_the_pipelines_repository() {
    let repository = pipeline_repository();
    assert_eq!(repository, "coworking-analytics");
    assert_no_findings(&images_are_pipeline_builds(deployment(), &repository));

    // The README's step that sets the account and region replaces this very text.
    let image = manifests::object("SpinApp", "coworking")
        .str_at("/spec/image")
        .unwrap();
    let registry = image.split('/').next().unwrap();
    assert!(
        readme().contains(registry),
        "deployment/README.md does not show how to replace {registry}"
    );

    for (image, problem) in [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking-analytics:latest",
            "the tag latest is not a build tag X.Y.Z-build.N of the pipeline (never latest)",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking-analytics:0.1.0",
            "the tag 0.1.0 is not a build tag",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking-analytics:0.1.0-build.0",
            "the tag 0.1.0-build.0 is not a build tag",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking:0.1.0-build.3",
            "the repository coworking is not buildspec.yml's IMAGE_REPO_NAME coworking-analytics",
        ),
        (
            "ghcr.io/acme/coworking-analytics:0.1.0-build.3",
            "ghcr.io is not an ECR registry",
        ),
        ("coworking-analytics:0.1.0-build.3", "no registry"),
    ] {
        let problem_found = check_pipeline_image(image, &repository).unwrap_err();
        assert!(
            problem_found.starts_with(problem),
            "{image}: {problem_found}"
        );
    }
    check_pipeline_image(
        "123456789012.dkr.ecr.eu-west-3.amazonaws.com/coworking-analytics:2.10.0-build.45@sha256:0123",
        &repository,
    )
    .unwrap();
}

#[test]
fn no_manifest_holds_a_password_but_the_sample_secrets() {
    assert_no_findings(&no_plaintext_passwords(deployment(), &SAMPLE_SECRETS));

    let wrong = parse(
        "deployment/app.yaml",
        "kind: Secret\nmetadata: {name: real}\nstringData: {DB_PASSWORD: hunter2}\n---\n\
         kind: ConfigMap\nmetadata: {name: settings}\ndata: {DB_PASSWORD: hunter2}\n---\n\
         kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n\
         \x20       - name: web\n          env: [{name: PGPASSWORD, value: hunter2}, {name: PGUSER, value: app}]\n",
    )
    .unwrap();
    let found: Vec<String> = no_plaintext_passwords(&wrong, &SAMPLE_SECRETS)
        .iter()
        .map(Finding::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "deployment/app.yaml, document 1 (Secret real): /stringData/DB_PASSWORD: a Secret value in a \
             manifest: create the Secret from the command line or an external secret store (deployment/README.md)",
            "deployment/app.yaml, document 2 (ConfigMap settings): /data/DB_PASSWORD: a password-like key \
             in a ConfigMap: it belongs in a Secret",
            "deployment/app.yaml, document 3 (Deployment web): /spec/template/spec/containers/0/env/0/value: \
             PGPASSWORD has a literal value: take it from a Secret (secretKeyRef)",
        ]
    );
}

#[test]
fn the_sample_secrets_are_marked_base64_without_a_newline_and_used_nowhere_else() {
    let root = manifests::project_root();
    for (file, name) in SAMPLE_SECRETS {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            text.contains("SAMPLE ONLY"),
            "{file} does not mark {name} as a sample"
        );
        let secret = manifests::object("Secret", name);
        assert_eq!(secret.file, file);
        let data = secret.at("/data").and_then(Value::as_object).expect("data");
        for (key, value) in data {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or_default())
                .unwrap_or_else(|err| panic!("{secret}: /data/{key} is not base64: {err}"));
            let password = String::from_utf8(decoded).expect("a UTF-8 password");
            assert!(
                !password.is_empty() && !password.ends_with('\n'),
                "{secret}: /data/{key}"
            );
            for other in deployment()
                .iter()
                .filter(|d| d.file != file || d.name() != name)
            {
                assert!(
                    !other.value.to_string().contains(&password),
                    "{other} repeats the sample password of {secret}"
                );
            }
        }
    }
}

#[test]
fn the_spin_app_runs_in_the_arm64_spin_runtime_class() {
    let app = manifests::object("SpinApp", "coworking");
    let executor = manifests::object("SpinAppExecutor", app.str_at("/spec/executor").unwrap());
    assert_eq!(executor.file, "deployment/spinkube/executor.yaml");
    assert_eq!(
        executor.at("/spec/createDeployment"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        executor.at("/spec/deploymentConfig/installDefaultCACerts"),
        Some(&Value::Bool(true))
    );
    let class_name = executor
        .str_at("/spec/deploymentConfig/runtimeClassName")
        .unwrap();
    let class = manifests::object("RuntimeClass", class_name);
    assert_eq!(class.file, "deployment/spinkube/runtime-class.yaml");
    assert_eq!(class_name, "wasmtime-spin-v2");
    // Its handler and nodes: the shim module's checks.
    assert_eq!(
        class.str_at("/scheduling/nodeSelector/kubernetes.io~1arch"),
        Some("arm64")
    );
}

#[test]
fn every_mounted_config_map_is_in_deployment_or_made_as_the_readme_says() {
    let names: BTreeSet<&str> = deployment()
        .iter()
        .filter(|d| d.is("ConfigMap"))
        .map(Document::name)
        .collect();
    let readme = readme();
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

/// The README applies the manifests with `-l app.kubernetes.io/part-of=coworking`,
/// which must take every object but the sample Secrets, so that a real Secret
/// made from the command line is never overwritten by a sample.
#[test]
fn the_readmes_label_selector_applies_everything_but_the_sample_secrets_and_the_fallback() {
    let label = "/metadata/labels/app.kubernetes.io~1part-of";
    let mut found = Vec::new();
    for document in deployment() {
        let sample = SAMPLE_SECRETS.contains(&(document.file.as_str(), document.name()));
        // The fallback installer is applied on its own, never beside the Shim.
        let fallback = document.file.starts_with(FALLBACK_DIR);
        match (sample, document.str_at(label)) {
            _ if fallback => {
                if document.str_at(label) == Some("coworking") {
                    found.push(document.finding(
                        "/metadata/labels",
                        "the fallback installer with part-of: coworking: `kubectl apply -l` \
                         of a folder would install it beside runtime-class-manager",
                    ));
                }
            }
            (false, Some("coworking")) | (true, None) => {}
            (false, _) => found.push(document.finding(
                "/metadata/labels",
                "no app.kubernetes.io/part-of: coworking: `kubectl apply -l` would skip it",
            )),
            (true, Some(_)) => found.push(document.finding(
                "/metadata/labels",
                "a sample Secret with app.kubernetes.io/part-of: `kubectl apply -l` would \
                 overwrite the real Secret with it",
            )),
        }
    }
    assert_no_findings(&found);
    assert!(readme().contains("-l app.kubernetes.io/part-of=coworking"));
}
