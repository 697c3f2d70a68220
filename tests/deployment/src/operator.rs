//! What spin-operator v0.6.1 generates for a SpinApp, as read from its source
//! (github.com/spinframework/spin-operator): the checks compare our manifests
//! with it, since the generated objects are not in `deployment/`.
//!
//! - `internal/controller/spinapp_controller.go`, `constructDeployment`: a
//!   Deployment named like the SpinApp, whose pods carry `spec.podLabels` plus
//!   the "ready labels" (the name label and the status label), which also form
//!   its selector; `spec.replicas` is left unset when `enableAutoscaling` is on.
//!   The one container listens on port 80, named `http-app`.
//! - `constructService`: a ClusterIP Service named like the SpinApp, port 80 to
//!   `http-app`, selecting the status label.
//! - `pkg/spinapp/spinapp.go` and `internal/constants`: the label keys
//!   `core.spinkube.dev/app-name` and `core.spinkube.dev/app.<name>.status`
//!   (value `ready`), port 80 and its name `http-app`.
//! - `internal/webhook/spinapp_validating.go`, `validateReplicas`: `replicas`
//!   must be unset (0) with `enableAutoscaling`, and at least 1 without it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifests::{string_map, Document};

/// The port the shim serves the app on, in every pod and in the generated Service.
pub const HTTP_PORT: u64 = 80;
/// The name of that container port.
pub const HTTP_PORT_NAME: &str = "http-app";

/// The labels of the pods the operator generates for `spin_app`.
pub fn pod_labels(spin_app: &Document) -> BTreeMap<String, String> {
    let name = spin_app.name();
    let mut labels = string_map(spin_app.at("/spec/podLabels"));
    // The operator's own labels win over podLabels of the same key (maps.Copy).
    labels.insert("core.spinkube.dev/app-name".to_string(), name.to_string());
    labels.insert(
        format!("core.spinkube.dev/app.{name}.status"),
        "ready".to_string(),
    );
    labels
}

/// The name of the Deployment and of the Service that the operator generates.
pub fn generated_name(spin_app: &Document) -> &str {
    spin_app.name()
}

/// Whether a label selector (`matchLabels` and `matchExpressions` of the
/// `In`/`NotIn`/`Exists`/`DoesNotExist` kind, or a Service's plain map) selects
/// pods with `labels`. `None` for a selector this function cannot read.
pub fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> Option<bool> {
    let object = selector.as_object()?;
    let is_label_selector =
        object.contains_key("matchLabels") || object.contains_key("matchExpressions");
    let match_labels = if is_label_selector {
        object.get("matchLabels").and_then(Value::as_object)
    } else {
        Some(object)
    };
    let labels_match = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(key).map(String::as_str) == value.as_str());
    let mut expressions_match = true;
    for expression in object
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression.get("key")?.as_str()?;
        let values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let label = labels.get(key).map(String::as_str);
        expressions_match &= match expression.get("operator")?.as_str()? {
            "In" => label.is_some_and(|label| values.contains(&label)),
            "NotIn" => label.is_none_or(|label| !values.contains(&label)),
            "Exists" => label.is_some(),
            "DoesNotExist" => label.is_none(),
            _ => return None,
        };
    }
    Some(labels_match && expressions_match)
}

#[test]
fn pod_labels_are_the_ready_labels_over_the_pod_labels() {
    let app = crate::manifests::parse(
        "x.yaml",
        "kind: SpinApp\nmetadata: {name: web}\nspec:\n  podLabels: {team: a, core.spinkube.dev/app-name: other}\n",
    )
    .unwrap()
    .remove(0);
    let labels = pod_labels(&app);
    assert_eq!(labels["team"], "a");
    assert_eq!(labels["core.spinkube.dev/app-name"], "web");
    assert_eq!(labels["core.spinkube.dev/app.web.status"], "ready");
    assert_eq!(labels.len(), 3);
}

#[test]
fn selectors_match_labels_and_expressions() {
    let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
    let yes = serde_json::json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]});
    let no =
        serde_json::json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]}]});
    assert_eq!(selects(&yes, &labels), Some(true));
    assert_eq!(selects(&no, &labels), Some(false));
    assert_eq!(
        selects(&serde_json::json!({"a": "2"}), &labels),
        Some(false)
    );
    assert_eq!(selects(&serde_json::json!({"a": "1"}), &labels), Some(true));
}
