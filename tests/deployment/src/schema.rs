//! Every document under `deployment/` against the real schemas vendored in
//! `deployment/schemas/` (see its SOURCES.md): the Kubernetes 1.32 strict JSON
//! schemas (unknown fields fail), and for SpinKube's kinds their CRDs'
//! `openAPIV3Schema`. A CRD schema accepts keys it does not define, so those are
//! rejected by a walk of the document along the schema's `properties`. A
//! document of a kind without a schema fails: nothing is skipped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Registry, ValidationError, Validator};
use serde_json::{json, Value};

use crate::manifests::{self, pointer_segment, Document, Finding};

/// Where the per-kind schemas' `"$ref": "/api/_definitions.json#/$defs/..."`
/// lead: they resolve against the kinds' `$id`s (`https://kubernetes.io/api/...`).
const DEFINITIONS_URI: &str = "https://kubernetes.io/api/_definitions.json";

/// The SpinKube CRDs, in `spinkube/`, and what they come from: spin-operator
/// v0.6.1's SpinApp and SpinAppExecutor, runtime-class-manager v0.2.0's Shim.
const CRD_FILES: [(&str, &str); 3] = [
    (
        "core.spinkube.dev_spinapps.v0.6.1.yaml",
        "spin-operator v0.6.1",
    ),
    (
        "core.spinkube.dev_spinappexecutors.v0.6.1.yaml",
        "spin-operator v0.6.1",
    ),
    (
        "runtime.spinkube.dev_shims.v0.2.0.yaml",
        "runtime-class-manager v0.2.0",
    ),
];

/// A kind's identity: group ("" for the core group), version and kind.
type Gvk = (String, String, String);

struct CustomResource {
    /// The name the findings give the schema ("the SpinApp CRD (v0.6.1)").
    title: String,
    schema: Value,
    validator: Validator,
}

pub struct Schemas {
    registry: Registry<'static>,
    /// Compiled on first use: most kinds of k8s-1.32/ are not used.
    kubernetes: Mutex<HashMap<Gvk, Option<Arc<Validator>>>>,
    custom: HashMap<Gvk, CustomResource>,
    /// A custom resource's `metadata` is only `type: object` in its CRD; the
    /// API server checks it as an ObjectMeta, and so do we.
    object_meta: Validator,
}

fn schemas_dir() -> PathBuf {
    manifests::project_root().join(manifests::SCHEMAS_DIR)
}

fn kubernetes_dir() -> PathBuf {
    schemas_dir().join("k8s-1.32")
}

fn read_json(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()))
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

impl Schemas {
    /// The schemas, loaded once for all the tests.
    pub fn get() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(Schemas::load)
    }

    fn load() -> Schemas {
        let definitions = read_json(&kubernetes_dir().join("_definitions.json"));
        let registry = Registry::new()
            .add(DEFINITIONS_URI, definitions)
            .and_then(|builder| builder.prepare())
            .expect("register _definitions.json");
        let object_meta = jsonschema::draft202012::options()
            .with_registry(&registry)
            .build(&json!({
                "$ref": format!("{DEFINITIONS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            }))
            .expect("compile the ObjectMeta schema");
        let custom = CRD_FILES
            .iter()
            .flat_map(|(file, source)| load_crd(file, source))
            .collect();
        Schemas {
            registry,
            kubernetes: Mutex::new(HashMap::new()),
            custom,
            object_meta,
        }
    }

    /// Every way `document` breaks its schema; "no schema" is one of them.
    pub fn validate(&self, document: &Document) -> Vec<Finding> {
        let (group, version) = split_api_version(document.api_version());
        let kind = document.kind();
        if kind.is_empty() || version.is_empty() {
            return vec![document.finding("", "no apiVersion or kind to validate it by")];
        }
        let gvk = (group.to_string(), version.to_string(), kind.to_string());
        if let Some(custom) = self.custom.get(&gvk) {
            return self.validate_custom(custom, document);
        }
        match self.kubernetes_validator(&gvk) {
            Some(validator) => findings(document, "", validator.iter_errors(&document.value)),
            None => vec![document.finding(
                "",
                format!(
                    "no schema for apiVersion {} kind {kind} in deployment/schemas/ \
                     (k8s-1.32/ or the SpinKube CRDs): it cannot be validated",
                    document.api_version()
                ),
            )],
        }
    }

    fn validate_custom(&self, custom: &CustomResource, document: &Document) -> Vec<Finding> {
        let mut found = findings(document, "", custom.validator.iter_errors(&document.value));
        let mut unknown = Vec::new();
        unknown_keys(&custom.schema, &document.value, "", &mut unknown);
        found.extend(unknown.into_iter().map(|path| {
            document.finding(
                path,
                format!("unknown field: {} does not define it", custom.title),
            )
        }));
        if let Some(metadata) = document.at("/metadata") {
            found.extend(findings(
                document,
                "/metadata",
                self.object_meta.iter_errors(metadata),
            ));
        }
        found
    }

    /// The schema of k8s-1.32/ for a kind: the file `<kind>-<group>-<version>.json`
    /// named after the group's first label (`networking.k8s.io` is `networking`),
    /// provided that it declares exactly that group, version and kind.
    fn kubernetes_validator(&self, gvk: &Gvk) -> Option<Arc<Validator>> {
        let mut cache = self.kubernetes.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(gvk.clone())
            .or_insert_with(|| {
                let (group, version, kind) = gvk;
                let file = match group.split('.').next() {
                    Some(label) if !group.is_empty() => {
                        format!("{}-{label}-{version}.json", kind.to_lowercase())
                    }
                    _ => format!("{}-{version}.json", kind.to_lowercase()),
                };
                let path = kubernetes_dir().join(file);
                if !path.is_file() {
                    return None;
                }
                let schema = read_json(&path);
                let declared = json!({"group": group, "version": version, "kind": kind});
                let declares_it = schema["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.contains(&declared));
                if !declares_it {
                    return None;
                }
                let validator = jsonschema::draft202012::options()
                    .with_registry(&self.registry)
                    .build(&schema)
                    .unwrap_or_else(|err| panic!("compile {}: {err}", path.display()));
                Some(Arc::new(validator))
            })
            .clone()
    }
}

fn load_crd(file: &str, source: &str) -> Vec<(Gvk, CustomResource)> {
    let path = schemas_dir().join("spinkube").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let crd: Value =
        yaml_serde::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()));
    let group = crd["spec"]["group"].as_str().expect("a CRD's spec.group");
    let kind = crd["spec"]["names"]["kind"]
        .as_str()
        .expect("a CRD's spec.names.kind");
    let versions = crd["spec"]["versions"]
        .as_array()
        .expect("a CRD's spec.versions");
    versions
        .iter()
        .map(|version| {
            let name = version["name"].as_str().expect("a CRD version's name");
            let schema = version["schema"]["openAPIV3Schema"].clone();
            let validator = jsonschema::draft202012::new(&schema)
                .unwrap_or_else(|err| panic!("compile {file} {name}: {err}"));
            let gvk = (group.to_string(), name.to_string(), kind.to_string());
            let custom = CustomResource {
                title: format!("the {kind} CRD ({source})"),
                schema,
                validator,
            };
            (gvk, custom)
        })
        .collect()
}

/// The findings of JSON-schema errors, at `prefix` + the error's instance path.
/// An unknown field is named in the path. A Secret's values never appear in a
/// message.
fn findings<'a>(
    document: &Document,
    prefix: &str,
    errors: impl Iterator<Item = ValidationError<'a>>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    for error in errors {
        let path = format!("{prefix}{}", error.instance_path());
        if let ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
            for key in unexpected {
                found.push(document.finding(
                    format!("{path}/{}", pointer_segment(key)),
                    "unknown field: the schema does not define it",
                ));
            }
        } else if document.is("Secret") {
            found.push(document.finding(path, error.masked().to_string()));
        } else {
            found.push(document.finding(path, error.to_string()));
        }
    }
    found
}

/// The pointers of the keys in `instance` that `schema` does not define: where
/// a schema lists `properties`, any other key, unless the schema also allows
/// them (`additionalProperties`, `x-kubernetes-preserve-unknown-fields`).
fn unknown_keys(schema: &Value, instance: &Value, path: &str, unknown: &mut Vec<String>) {
    match instance {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema
                .get("additionalProperties")
                .filter(|value| value.is_object());
            let preserves_unknown = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            for (key, value) in fields {
                let child = format!("{path}/{}", pointer_segment(key));
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(property), _) | (None, Some(property)) => {
                        unknown_keys(property, value, &child, unknown);
                    }
                    (None, None) if properties.is_some() && !preserves_unknown => {
                        unknown.push(child);
                    }
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    unknown_keys(item_schema, item, &format!("{path}/{index}"), unknown);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{assert_no_findings, parse};

    fn check(file: &str, yaml: &str) -> Vec<String> {
        parse(file, yaml)
            .expect("valid YAML")
            .iter()
            .flat_map(|document| Schemas::get().validate(document))
            .map(|finding| finding.to_string())
            .collect()
    }

    #[test]
    fn every_manifest_matches_its_schema() {
        // Loading fails the test on a file that does not parse; then each document is validated.
        let documents = manifests::deployment();
        assert!(
            documents.len() >= 10,
            "only {} documents under deployment/",
            documents.len()
        );
        let findings: Vec<Finding> = documents
            .iter()
            .flat_map(|document| Schemas::get().validate(document))
            .collect();
        assert_no_findings(&findings);
    }

    #[test]
    fn an_unknown_field_in_a_deployment_is_rejected_with_its_place() {
        let found = check(
            "deployment/web.yaml",
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          imagePullPolice: Always
"#,
        );
        assert_eq!(
            found,
            ["deployment/web.yaml, document 2 (Deployment web): \
              /spec/template/spec/containers/0/imagePullPolice: \
              unknown field: the schema does not define it"]
        );
    }

    #[test]
    fn an_unknown_key_in_a_spin_app_is_rejected_though_the_crd_allows_it() {
        let yaml = r#"
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: coworking, labelz: {a: b}}
spec:
  image: registry.example/app:1.0.0
  executor: containerd-shim-spin
  replicaz: 2
  checks:
    liveness:
      httpGet: {path: /health_check, port: 80}
"#;
        // The CRD's schema alone lets the unknown keys through ...
        let document = parse("deployment/app.yaml", yaml).unwrap().remove(0);
        let crd = &Schemas::get().custom[&(
            "core.spinkube.dev".to_string(),
            "v1alpha1".to_string(),
            "SpinApp".to_string(),
        )];
        assert!(crd.validator.is_valid(&document.value));
        // ... which the check does not.
        let mut found = check("deployment/app.yaml", yaml);
        found.sort();
        let unknown = "unknown field: the SpinApp CRD (spin-operator v0.6.1) does not define it";
        assert_eq!(
            found,
            [
                "deployment/app.yaml, document 1 (SpinApp coworking): \
                 /metadata/labelz: unknown field: the schema does not define it"
                    .to_string(),
                format!(
                    "deployment/app.yaml, document 1 (SpinApp coworking): \
                     /spec/checks/liveness/httpGet/port: {unknown}"
                ),
                format!(
                    "deployment/app.yaml, document 1 (SpinApp coworking): /spec/replicaz: {unknown}"
                ),
            ]
        );
    }

    #[test]
    fn a_wrong_type_is_rejected_with_its_place() {
        let found = check(
            "deployment/coworking.yaml",
            r#"
apiVersion: v1
kind: Service
metadata: {name: coworking-public}
spec:
  type: LoadBalancer
  ports:
    - {port: "5153", targetPort: 80}
"#,
        );
        assert_eq!(
            found,
            [
                "deployment/coworking.yaml, document 1 (Service coworking-public): \
              /spec/ports/0/port: \"5153\" is not of type \"integer\""
            ]
        );
    }

    #[test]
    fn a_wrong_type_in_a_spin_app_is_rejected() {
        let found = check(
            "deployment/app.yaml",
            "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata: {name: a}\n\
             spec: {image: i, executor: e, enableAutoscaling: \"yes\"}\n",
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with(
                "deployment/app.yaml, document 1 (SpinApp a): /spec/enableAutoscaling: "
            ),
            "{}",
            found[0]
        );
    }

    #[test]
    fn a_kind_without_a_schema_fails() {
        for (api_version, kind) in [
            ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
            // A version that k8s-1.32/ has no file for.
            ("apps/v1beta2", "Deployment"),
            // A file exists for deployment-apps-v1, but for the group "apps".
            ("apps.example.com/v1", "Deployment"),
            // Not a version of the SpinApp CRD.
            ("core.spinkube.dev/v1", "SpinApp"),
        ] {
            let found = check(
                "deployment/x.yaml",
                &format!("apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\n"),
            );
            assert_eq!(
                found,
                [format!(
                    "deployment/x.yaml, document 1 ({kind} x): no schema for apiVersion \
                     {api_version} kind {kind} in deployment/schemas/ (k8s-1.32/ or the SpinKube \
                     CRDs): it cannot be validated"
                )]
            );
        }
        assert_eq!(
            check("deployment/x.yaml", "metadata: {name: x}\n"),
            ["deployment/x.yaml, document 1 ( x): no apiVersion or kind to validate it by"]
        );
    }

    #[test]
    fn a_secret_value_never_appears_in_a_message() {
        let found = check(
            "deployment/configmap.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {DB_PASSWORD: 8675309}\n",
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("/data/DB_PASSWORD"), "{}", found[0]);
        assert!(!found[0].contains("8675309"), "{}", found[0]);
    }
}
