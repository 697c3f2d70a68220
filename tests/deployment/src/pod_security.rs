//! The pods we ship (the usage logger, PostgreSQL and its seed job) meet the
//! "restricted" Pod Security Standard of Kubernetes 1.32, so they run in a
//! namespace that enforces it. The SpinApp's pods are the operator's: it gives
//! them no securityContext (spin-operator v0.6.1 `constructDeployment`, and the
//! SpinApp CRD has no field for one), so they meet "baseline" only
//! (deployment/README.md, "Pod security").

use serde_json::Value;

use crate::manifests::{assert_no_findings, deployment, parse, Document, Finding};

/// Volume types that "restricted" allows.
const ALLOWED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The pod template of a workload, with its pointer.
fn pod_spec(document: &Document) -> Option<(&'static str, &Value)> {
    let pointer = match document.kind() {
        "Pod" => "/spec",
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => return None,
    };
    document.at(pointer).map(|spec| (pointer, spec))
}

fn restricted_violations(document: &Document) -> Vec<Finding> {
    let Some((base, spec)) = pod_spec(document) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut violation = |path: String, message: &str| found.push(document.finding(path, message));
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[field] == Value::Bool(true) {
            violation(format!("{base}/{field}"), "host namespaces are not allowed");
        }
    }
    for (index, volume) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let allowed = volume
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| *key != "name")
            .all(|(key, _)| ALLOWED_VOLUMES.contains(&key.as_str()));
        if !allowed {
            violation(
                format!("{base}/volumes/{index}"),
                "only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes",
            );
        }
    }
    let pod = &spec["securityContext"];
    for group in ["initContainers", "containers"] {
        for (index, container) in spec[group].as_array().into_iter().flatten().enumerate() {
            let path = format!("{base}/{group}/{index}/securityContext");
            let context = &container["securityContext"];
            // A container's setting wins over the pod's.
            let effective = |field: &str| match &context[field] {
                Value::Null => &pod[field],
                value => value,
            };
            if context["privileged"] == Value::Bool(true) {
                violation(
                    format!("{path}/privileged"),
                    "privileged containers are not allowed",
                );
            }
            if context["allowPrivilegeEscalation"] != Value::Bool(false) {
                violation(format!("{path}/allowPrivilegeEscalation"), "must be false");
            }
            if effective("runAsNonRoot") != &Value::Bool(true) {
                violation(
                    format!("{path}/runAsNonRoot"),
                    "must be true, here or in the pod's",
                );
            }
            if effective("runAsUser").as_u64() == Some(0) {
                violation(format!("{path}/runAsUser"), "must not be 0 (root)");
            }
            let seccomp = effective("seccompProfile")["type"].as_str();
            if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
                violation(
                    format!("{path}/seccompProfile/type"),
                    "must be RuntimeDefault or Localhost, here or in the pod's",
                );
            }
            let capabilities = &context["capabilities"];
            let drops_all = capabilities["drop"]
                .as_array()
                .is_some_and(|drop| drop.contains(&Value::from("ALL")));
            if !drops_all {
                violation(format!("{path}/capabilities/drop"), "must drop ALL");
            }
            let adds_only_bind = capabilities["add"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|added| added == "NET_BIND_SERVICE");
            if !adds_only_bind {
                violation(
                    format!("{path}/capabilities/add"),
                    "may add NET_BIND_SERVICE only",
                );
            }
            for (port_index, port) in container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if port["hostPort"].as_u64().unwrap_or(0) != 0 {
                    violation(
                        format!("{base}/{group}/{index}/ports/{port_index}/hostPort"),
                        "host ports are not allowed",
                    );
                }
            }
        }
    }
    found
}

/// The namespaces under `deployment/` that enforce "privileged": the fallback
/// shim installer's, which changes the nodes by nature.
fn privileged_namespaces(documents: &[Document]) -> Vec<&str> {
    documents
        .iter()
        .filter(|d| d.is("Namespace"))
        .filter(|d| {
            d.str_at("/metadata/labels/pod-security.kubernetes.io~1enforce") == Some("privileged")
        })
        .map(Document::name)
        .collect()
}

#[test]
fn the_pods_we_ship_meet_the_restricted_pod_security_standard() {
    let privileged = privileged_namespaces(deployment());
    assert_eq!(
        privileged,
        ["spin-node-installer"],
        "namespaces exempted here"
    );
    let (workloads, exempted): (Vec<&Document>, Vec<&Document>) = deployment()
        .iter()
        .filter(|d| pod_spec(d).is_some())
        .partition(|d| {
            !d.str_at("/metadata/namespace")
                .is_some_and(|namespace| privileged.contains(&namespace))
        });
    assert_eq!(
        exempted
            .iter()
            .map(|d| format!("{} {}", d.kind(), d.name()))
            .collect::<Vec<_>>(),
        ["DaemonSet spin-node-installer"]
    );
    let names: Vec<String> = workloads
        .iter()
        .map(|d| format!("{} {}", d.kind(), d.name()))
        .collect();
    assert_eq!(
        names,
        [
            "StatefulSet postgres",
            "Job postgres-seed",
            "CronJob rollups-close",
            "Deployment usage-logger"
        ],
        "the workloads under deployment/ changed: check them here"
    );
    let found: Vec<Finding> = workloads
        .iter()
        .flat_map(|d| restricted_violations(d))
        .collect();
    assert_no_findings(&found);
}

#[test]
fn a_pod_that_is_only_baseline_is_reported() {
    // What spin-operator generates: no securityContext at all.
    let generated = parse(
        "generated.yaml",
        "kind: Deployment\nmetadata: {name: coworking}\nspec:\n  template:\n    spec:\n\
         \x20     containers: [{name: coworking, image: app, ports: [{containerPort: 80, hostPort: 8080}]}]\n\
         \x20     volumes: [{name: root, hostPath: {path: /}}]\n",
    )
    .unwrap();
    let found: Vec<String> = restricted_violations(&generated[0])
        .iter()
        .map(|f| f.path.clone())
        .collect();
    let container = "/spec/template/spec/containers/0";
    assert_eq!(
        found,
        [
            "/spec/template/spec/volumes/0".to_string(),
            format!("{container}/securityContext/allowPrivilegeEscalation"),
            format!("{container}/securityContext/runAsNonRoot"),
            format!("{container}/securityContext/seccompProfile/type"),
            format!("{container}/securityContext/capabilities/drop"),
            format!("{container}/ports/0/hostPort"),
        ]
    );
}
