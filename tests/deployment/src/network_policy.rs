//! NetworkPolicy egress as EKS enforces it for calls through a Service. The
//! VPC CNI's policy agent sees a pod's packets before the Service's address is
//! translated to a pod's, so its controller (aws/amazon-network-policy-
//! controller-k8s, `pkg/resolvers/endpoints.go`, `getMatchingServiceClusterIPs`)
//! adds a Service's ClusterIP to a policy's allowed destinations only when the
//! egress peer's `podSelector` matches the Service's `spec.selector` taken as a
//! label set: every label the peer requires must be in the Service's selector.
//! A peer that selects the pods behind a Service by another label (the usage
//! logger's once selected `core.spinkube.dev/app-name`, where the operator's
//! Service `coworking` selects only `core.spinkube.dev/app.coworking.status`)
//! reaches the pods by their own addresses and drops every call through the
//! Service.
//!
//! So: for each Service that a workload calls (its name in a URL of the
//! workload's configuration: container env, command, args, mounted ConfigMaps),
//! the policies that select the workload must have an egress peer that the
//! Service's selector satisfies, on a port of the Service.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifests::{deployment, parse, Document, Finding};
use crate::operator;

type Labels = BTreeMap<String, String>;
use crate::manifests::string_map as labels;

/// A Service with a ClusterIP: its selector and the port numbers it is called
/// on or forwards to.
struct Service {
    name: String,
    selector: Labels,
    ports: Vec<u64>,
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

/// The text a workload is configured by: its pod template, and the data of the
/// ConfigMaps it mounts (where a script names the URL it calls).
fn configuration_text(workload: &Document, documents: &[Document]) -> String {
    let spec = workload
        .at("/spec/template/spec")
        .cloned()
        .unwrap_or_default();
    let mut text = spec.to_string();
    let mounted: Vec<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|volume| volume["configMap"]["name"].as_str())
        .collect();
    for config_map in documents.iter().filter(|d| d.is("ConfigMap")) {
        if mounted.contains(&config_map.name()) {
            text += &config_map
                .at("/data")
                .cloned()
                .unwrap_or_default()
                .to_string();
        }
    }
    text
}

/// Whether `text` holds a URL whose host is the Service `name`, short
/// (`http://coworking/`) or qualified (`http://coworking.ns.svc...`).
fn calls(text: &str, name: &str) -> bool {
    text.match_indices(&format!("://{name}"))
        .any(|(at, found)| {
            text[at + found.len()..]
                .chars()
                .next()
                .is_none_or(|next| matches!(next, '.' | ':' | '/' | '"' | '\\' | '$'))
        })
}

pub fn called_services_admit_their_callers(documents: &[Document]) -> Vec<Finding> {
    let services = services(documents);
    let mut found = Vec::new();
    let workloads = documents
        .iter()
        .filter(|d| d.at("/spec/template/metadata/labels").is_some());
    for workload in workloads {
        let pod = labels(workload.at("/spec/template/metadata/labels"));
        let text = configuration_text(workload, documents);
        let policies: Vec<&Document> = documents
            .iter()
            .filter(|d| d.is("NetworkPolicy"))
            .filter(|policy| {
                policy
                    .at("/spec/podSelector")
                    .is_some_and(|selector| operator::selects(selector, &pod) == Some(true))
            })
            .collect();
        for service in services
            .iter()
            .filter(|service| calls(&text, &service.name))
        {
            for policy in &policies {
                let rules = policy.at("/spec/egress").and_then(Value::as_array);
                let admitted = rules.into_iter().flatten().any(|rule| {
                    let on_its_port =
                        rule.get("ports")
                            .and_then(Value::as_array)
                            .is_none_or(|ports| {
                                ports
                                    .iter()
                                    .filter_map(|port| port.get("port")?.as_u64())
                                    .any(|port| service.ports.contains(&port))
                            });
                    let peers = rule.get("to").and_then(Value::as_array);
                    let peer_admits = peers.into_iter().flatten().any(|peer| {
                        peer.get("namespaceSelector").is_none()
                            && peer.get("podSelector").is_some_and(|selector| {
                                operator::selects(selector, &service.selector) == Some(true)
                            })
                    });
                    on_its_port && peer_admits
                });
                if !admitted {
                    found.push(policy.finding(
                        "/spec/egress",
                        format!(
                            "{} {} calls Service {}, but no egress peer admits its ClusterIP: \
                             EKS admits it for a peer whose podSelector the Service's selector \
                             {:?} satisfies, on a port of the Service",
                            workload.kind(),
                            workload.name(),
                            service.name,
                            service.selector
                        ),
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_called_service_admits_its_callers_clusterip() {
    crate::manifests::assert_no_findings(&called_services_admit_their_callers(deployment()));
    // The check has something to check: the usage logger calls the app.
    let logger = crate::manifests::object("Deployment", "usage-logger");
    assert!(calls(
        &configuration_text(logger, deployment()),
        "coworking"
    ));
}

#[test]
fn a_peer_the_services_selector_does_not_satisfy_is_found() {
    let manifests = |peer_labels: &str| {
        parse(
            "deployment/usage-logger.yaml",
            &format!(
                "kind: SpinApp\nmetadata: {{name: coworking}}\nspec: {{}}\n---\n\
                 kind: ConfigMap\nmetadata: {{name: script}}\n\
                 data: {{run.sh: \"curl http://coworking.$NS.svc.cluster.local/x\"}}\n---\n\
                 kind: Deployment\nmetadata: {{name: usage-logger}}\nspec:\n  template:\n\
                 \x20   metadata: {{labels: {{app.kubernetes.io/name: usage-logger}}}}\n\
                 \x20   spec: {{volumes: [{{name: s, configMap: {{name: script}}}}]}}\n---\n\
                 kind: NetworkPolicy\nmetadata: {{name: usage-logger}}\nspec:\n\
                 \x20 podSelector: {{matchLabels: {{app.kubernetes.io/name: usage-logger}}}}\n\
                 \x20 egress:\n\
                 \x20   - to: [{{podSelector: {{matchLabels: {{{peer_labels}}}}}}}]\n\
                 \x20     ports: [{{protocol: TCP, port: 80}}]\n"
            ),
        )
        .unwrap()
    };
    let check = |peer_labels| called_services_admit_their_callers(&manifests(peer_labels));
    // The rule that dropped every call, and one that requires a label more.
    for broken in [
        "core.spinkube.dev/app-name: coworking",
        "core.spinkube.dev/app-name: coworking, core.spinkube.dev/app.coworking.status: ready",
    ] {
        let found: Vec<String> = check(broken).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "deployment/usage-logger.yaml, document 4 (NetworkPolicy usage-logger): \
                 /spec/egress: Deployment usage-logger calls Service coworking, but no egress \
                 peer admits its ClusterIP: EKS admits it for a peer whose podSelector the \
                 Service's selector {\"core.spinkube.dev/app.coworking.status\": \"ready\"} \
                 satisfies, on a port of the Service"
            ],
            "{broken}"
        );
    }
    assert!(check("core.spinkube.dev/app.coworking.status: ready").is_empty());
    // The right peer on another port admits nothing.
    let mut other_port = manifests("core.spinkube.dev/app.coworking.status: ready");
    other_port[3].value["spec"]["egress"][0]["ports"][0]["port"] = 8080.into();
    assert_eq!(called_services_admit_their_callers(&other_port).len(), 1);
    assert!(calls("\"http://coworking\"", "coworking"));
    assert!(!calls("http://coworking-public/", "coworking"));
}
