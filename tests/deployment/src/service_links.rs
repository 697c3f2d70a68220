//! Kubernetes service links against containerd-shim-spin's variables: every
//! pod gets `<SERVICE>_PORT=tcp://<cluster IP>:<port>` and its kin for each
//! Service of its namespace that has a cluster IP (a SpinApp cannot turn them
//! off: it has no `enableServiceLinks`), and the shim reads a plain variable
//! named like an app variable in upper case as that variable, over the
//! operator's `SPIN_VARIABLE_` one. So a Service `db` sets `db_port`.
//!
//! The component runs here in the test host's shim mode, with the environment
//! the operator and the kubelet give the pod.

use std::collections::BTreeMap;

use serde_json::Value;
use test_support::{host_builder, start_app, Data, TestDatabase, SUPERUSER_PASSWORD};

use crate::manifests::{deployment, object, parse, Document};
use crate::operator;

/// The variables the kubelet sets for one Service, as `kubelet`'s
/// `getServiceEnvVarMap` makes them (cluster IP `10.100.0.<n>`).
fn service_link_variables(
    name: &str,
    ports: &[(Option<&str>, u64)],
    n: usize,
) -> Vec<(String, String)> {
    let prefix = name.to_ascii_uppercase().replace('-', "_");
    let ip = format!("10.100.0.{n}");
    let mut variables = vec![(format!("{prefix}_SERVICE_HOST"), ip.clone())];
    for (index, (port_name, port)) in ports.iter().enumerate() {
        let url = format!("tcp://{ip}:{port}");
        let base = format!("{prefix}_PORT_{port}_TCP");
        if index == 0 {
            variables.push((format!("{prefix}_SERVICE_PORT"), port.to_string()));
            variables.push((format!("{prefix}_PORT"), url.clone()));
        }
        if let Some(port_name) = port_name {
            let port_name = port_name.to_ascii_uppercase().replace('-', "_");
            variables.push((
                format!("{prefix}_SERVICE_PORT_{port_name}"),
                port.to_string(),
            ));
        }
        variables.extend([
            (base.clone(), url),
            (format!("{base}_PROTO"), "tcp".into()),
            (format!("{base}_PORT"), port.to_string()),
            (format!("{base}_ADDR"), ip.clone()),
        ]);
    }
    variables
}

/// Every service link of the namespace: our Services with a cluster IP, and the
/// one the operator makes for each SpinApp (port 80).
fn namespace_service_links(documents: &[Document]) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for (n, document) in documents.iter().enumerate() {
        if document.is("SpinApp") {
            let name = operator::generated_name(document);
            links.extend(service_link_variables(
                name,
                &[(Some("http-app"), operator::HTTP_PORT)],
                n,
            ));
        } else if document.is("Service") && document.str_at("/spec/clusterIP") != Some("None") {
            let ports: Vec<(Option<&str>, u64)> = document
                .at("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|port| Some((port["name"].as_str(), port["port"].as_u64()?)))
                .collect();
            links.extend(service_link_variables(document.name(), &ports, n));
        }
    }
    links
}

/// The pod's environment: the operator's `SPIN_VARIABLE_*` from the SpinApp,
/// with the ConfigMap's and Secret's values replaced by the test database's,
/// then the service links.
fn pod_environment(db: &TestDatabase, links: &[(String, String)]) -> Vec<(String, String)> {
    let app = object("SpinApp", "coworking");
    let values = BTreeMap::from([
        ("DB_HOST", "127.0.0.1".to_string()),
        ("DB_PORT", db.port().to_string()),
        ("DB_NAME", "postgres".to_string()),
        ("DB_USERNAME", "postgres".to_string()),
        ("DB_PASSWORD", SUPERUSER_PASSWORD.to_string()),
    ]);
    let mut environment = Vec::new();
    for variable in app.at("/spec/variables").and_then(Value::as_array).unwrap() {
        let name = variable["name"].as_str().unwrap();
        let reference = variable["valueFrom"]
            .as_object()
            .and_then(|from| from.values().next())
            .unwrap();
        // An optional key that the test ConfigMap lacks is left unset.
        if let Some(value) = values.get(reference["key"].as_str().unwrap()) {
            environment.push((
                format!("SPIN_VARIABLE_{}", name.to_uppercase()),
                value.clone(),
            ));
        }
    }
    environment.extend(links.iter().cloned());
    environment
}

#[tokio::test(flavor = "multi_thread")]
async fn the_namespaces_service_links_leave_the_variables_alone() {
    let links = namespace_service_links(deployment());
    assert!(
        links.iter().any(|(name, _)| name == "COWORKING_PORT"),
        "{links:?}"
    );
    let db = TestDatabase::new(Data::Schema).await;
    let environment = pod_environment(&db, &links);
    let app = start_app(db, host_builder(&environment).shim_environment()).await;
    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_named_db_sets_db_port_under_the_shim() {
    let mut documents = deployment().to_vec();
    documents.extend(
        parse(
            "a namespace neighbour",
            "kind: Service\nmetadata: {name: db}\nspec: {ports: [{port: 5432}]}\n",
        )
        .unwrap(),
    );
    let links = namespace_service_links(&documents);
    let db = TestDatabase::new(Data::Schema).await;
    let environment = pod_environment(&db, &links);

    // spin up reads only the SPIN_VARIABLE_ names: no collision there.
    let spin_up = start_app(db, host_builder(&environment)).await;
    assert_eq!(
        spin_up.get_text("/readiness_check").await,
        (200, "ok".into())
    );

    let db = spin_up.db;
    let shim = start_app(db, host_builder(&environment).shim_environment()).await;
    assert_eq!(
        shim.get_text("/readiness_check").await,
        (500, "failed".into())
    );
    let (status, body) = shim.get_text("/api/reports/daily_usage").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("variable db_port must be a TCP port number"),
        "{body}"
    );
    assert!(body.contains("a Service named db"), "{body}");
}

/// Which Service names would collide: those whose links are named like a
/// variable of spin.toml in upper case. None of ours does.
#[test]
fn no_service_of_ours_is_named_like_a_variable() {
    let variables: Vec<String> = crate::settings::spin_toml_variables()
        .keys()
        .map(|name| name.to_ascii_uppercase())
        .collect();
    let links = namespace_service_links(deployment());
    for (name, _) in &links {
        assert!(
            !variables.contains(name),
            "the service link {name} sets a variable"
        );
    }
    // The one name to avoid, for the variables we have.
    let db_links = service_link_variables("db", &[(None, 5432)], 1);
    let colliding: Vec<&String> = db_links
        .iter()
        .map(|(name, _)| name)
        .filter(|name| variables.contains(name))
        .collect();
    assert_eq!(colliding, ["DB_PORT"]);
}
