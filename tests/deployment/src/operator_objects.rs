//! What our manifests ask of the objects spin-operator generates for the SpinApp
//! (see [`operator`]): probes on the component's routes, selectors of its pod
//! labels, the load balancer, names it owns, autoscaling, the instance memory
//! limit, and the runtime class.

use std::collections::{BTreeMap, BTreeSet};

use coworking_analytics::routes::Endpoint;
use serde_json::Value;

use crate::manifests::{
    self, assert_no_findings, deployment, find, parse, pointer_segment, spin_apps, Document,
    Finding,
};
use crate::operator;

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
