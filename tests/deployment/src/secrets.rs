//! No password in git but the marked samples, and the README's `kubectl apply -l`
//! never overwrites a real Secret with a sample.

use base64::Engine;
use serde_json::Value;

use crate::manifests::{
    self, assert_no_findings, deployment, find, parse, pointer_segment, Document, Finding,
};

/// The Secrets that hold a value in git: placeholders, marked "SAMPLE ONLY" in
/// their files and replaced from the command line (deployment/README.md).
const SAMPLE_SECRETS: [(&str, &str); 2] = [
    ("deployment/configmap.yaml", "postgres-password"),
    ("deployment/postgres/secret.yaml", "postgres-admin"),
];

/// The fallback shim installer's manifests.
const FALLBACK_DIR: &str = "deployment/spinkube/fallback/";

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
    assert!(manifests::deployment_readme().contains("-l app.kubernetes.io/part-of=coworking"));
}
