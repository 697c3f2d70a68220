//! NetworkPolicy peers as the EKS network policy agent (the AWS VPC CNI's)
//! enforces them for Services: a call to a Service's ClusterIP is admitted only
//! when the egress peer's `podSelector` includes the Service's whole
//! `spec.selector`. A peer that selects the pods behind a Service by some other
//! label admits calls to the pods' own addresses, but every call through the
//! Service is dropped (the usage logger's once was: the operator's Service
//! `coworking` selects `core.spinkube.dev/app.coworking.status: ready`, the
//! peer selected `core.spinkube.dev/app-name: coworking`).
//!
//! So: each egress peer that admits the pods behind a Service, on a port of
//! that Service, must include that Service's selector in its `matchLabels`.
//! The Services are ours and the ones spin-operator generates for the SpinApps;
//! headless Services have no ClusterIP and are left out.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifests::{deployment, parse, Document, Finding};
use crate::operator;

type Labels = BTreeMap<String, String>;

/// A Service with a ClusterIP: its selector and the port numbers it is called
/// on or forwards to.
struct Service {
    name: String,
    selector: Labels,
    ports: Vec<u64>,
}

fn labels(value: Option<&Value>) -> Labels {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
        .collect()
}

/// The labels of every pod that the manifests run: the pod templates, and the
/// pods the operator makes for each SpinApp.
fn pods(documents: &[Document]) -> Vec<Labels> {
    documents
        .iter()
        .filter_map(|document| {
            if document.is("SpinApp") {
                Some(operator::pod_labels(document))
            } else {
                document
                    .at("/spec/template/metadata/labels")
                    .map(|value| labels(Some(value)))
            }
        })
        .collect()
}

fn services(documents: &[Document]) -> Vec<Service> {
    let mut services = Vec::new();
    for document in documents {
        if document.is("SpinApp") {
            // constructService: port 80 to the container port `http-app` (80).
            let name = operator::generated_name(document);
            services.push(Service {
                name: name.to_string(),
                selector: Labels::from([(
                    format!("core.spinkube.dev/app.{name}.status"),
                    "ready".to_string(),
                )]),
                ports: vec![operator::HTTP_PORT],
            });
        } else if document.is("Service") && document.str_at("/spec/clusterIP") != Some("None") {
            let ports = document
                .at("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|port| [port.get("port"), port.get("targetPort")])
                .flatten()
                .filter_map(Value::as_u64)
                .collect();
            services.push(Service {
                name: document.name().to_string(),
                selector: labels(document.at("/spec/selector")),
                ports,
            });
        }
    }
    services
}

/// The port numbers an egress rule admits; `None` for every port.
fn rule_ports(rule: &Value) -> Option<Vec<u64>> {
    let ports = rule.get("ports")?.as_array()?;
    Some(
        ports
            .iter()
            .filter_map(|port| port.get("port")?.as_u64())
            .collect(),
    )
}

pub fn peers_include_the_selectors_of_the_services_they_reach(
    documents: &[Document],
) -> Vec<Finding> {
    let pods = pods(documents);
    let services = services(documents);
    let mut found = Vec::new();
    for policy in documents.iter().filter(|d| d.is("NetworkPolicy")) {
        let rules = policy.at("/spec/egress").and_then(Value::as_array);
        for (rule_index, rule) in rules.into_iter().flatten().enumerate() {
            let ports = rule_ports(rule);
            let peers = rule.get("to").and_then(Value::as_array);
            for (peer_index, peer) in peers.into_iter().flatten().enumerate() {
                // Peers in other namespaces, or by address, reach none of our Services.
                let Some(selector) = peer.get("podSelector") else {
                    continue;
                };
                if peer.get("namespaceSelector").is_some() {
                    continue;
                }
                let included = labels(selector.get("matchLabels"));
                for service in &services {
                    let admits_its_pods = pods.iter().any(|pod| {
                        operator::selects(&serde_json::json!(service.selector), pod) == Some(true)
                            && operator::selects(selector, pod) == Some(true)
                    });
                    let on_its_port = ports
                        .as_ref()
                        .is_none_or(|ports| ports.iter().any(|p| service.ports.contains(p)));
                    let whole_selector = service
                        .selector
                        .iter()
                        .all(|(key, value)| included.get(key) == Some(value));
                    if admits_its_pods && on_its_port && !whole_selector {
                        found.push(policy.finding(
                            format!("/spec/egress/{rule_index}/to/{peer_index}/podSelector"),
                            format!(
                                "admits the pods behind Service {} but not calls to its \
                                 ClusterIP: the EKS network policy agent needs the peer's \
                                 matchLabels to include the Service's whole selector {:?}",
                                service.name, service.selector
                            ),
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn every_peer_that_reaches_a_service_includes_its_whole_selector() {
    crate::manifests::assert_no_findings(&peers_include_the_selectors_of_the_services_they_reach(
        deployment(),
    ));
    // The check has something to check: the usage logger reaches the app.
    let logger = crate::manifests::object("NetworkPolicy", "usage-logger");
    assert!(logger.at("/spec/egress/0/to/0/podSelector").is_some());
}

#[test]
fn a_peer_that_selects_the_apps_pods_by_another_label_is_found() {
    let manifests = |peer_labels: &str| {
        parse(
            "deployment/usage-logger.yaml",
            &format!(
                "kind: SpinApp\nmetadata: {{name: coworking}}\nspec: {{}}\n---\n\
                 kind: Deployment\nmetadata: {{name: usage-logger}}\nspec:\n  template:\n\
                 \x20   metadata: {{labels: {{app.kubernetes.io/name: usage-logger}}}}\n---\n\
                 kind: NetworkPolicy\nmetadata: {{name: usage-logger}}\nspec:\n\
                 \x20 podSelector: {{matchLabels: {{app.kubernetes.io/name: usage-logger}}}}\n\
                 \x20 egress:\n\
                 \x20   - to: [{{podSelector: {{matchLabels: {{{peer_labels}}}}}}}]\n\
                 \x20     ports: [{{protocol: TCP, port: 80}}]\n\
                 \x20   - to: [{{namespaceSelector: {{}}, podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}}}]\n"
            ),
        )
        .unwrap()
    };
    let found = peers_include_the_selectors_of_the_services_they_reach(&manifests(
        "core.spinkube.dev/app-name: coworking",
    ));
    assert_eq!(
        found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "deployment/usage-logger.yaml, document 3 (NetworkPolicy usage-logger): \
             /spec/egress/0/to/0/podSelector: admits the pods behind Service coworking but \
             not calls to its ClusterIP: the EKS network policy agent needs the peer's \
             matchLabels to include the Service's whole selector \
             {\"core.spinkube.dev/app.coworking.status\": \"ready\"}"
        ]
    );
    assert!(
        peers_include_the_selectors_of_the_services_they_reach(&manifests(
            "core.spinkube.dev/app.coworking.status: ready"
        ))
        .is_empty()
    );
    // Another port reaches no Service: nothing to find.
    let other_port = manifests("core.spinkube.dev/app-name: coworking");
    let mut other_port = other_port;
    other_port[2].value["spec"]["egress"][0]["ports"][0]["port"] = 8080.into();
    assert!(peers_include_the_selectors_of_the_services_they_reach(&other_port).is_empty());
}
