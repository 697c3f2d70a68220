//! The OpenAPI document as a contract: every v2 response that the tests
//! produce through [`TestApp::send_v2`](crate::TestApp::send_v2) must be one
//! it documents, for its path, method and status, in one of the documented
//! media types, with a body that its JSON Schema (2020-12, as OpenAPI 3.1's)
//! accepts.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, OnceLock};

use jsonschema::{Registry, Resource, Validator};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::project_root;

/// The URI the document is registered under, for its schemas' `$ref`s.
const BASE: &str = "urn:coworking-analytics:openapi";

struct Contract {
    document: Value,
    registry: Registry<'static>,
    validators: Mutex<HashMap<String, &'static Validator>>,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let path = project_root().join("src/v2/openapi.json");
        let text = std::fs::read_to_string(&path).expect("read the OpenAPI document");
        let document: Value = serde_json::from_str(&text).expect("the OpenAPI document is JSON");
        let registry = Registry::new()
            .add(BASE, Resource::from_contents(document.clone()))
            .expect("register the OpenAPI document")
            .prepare()
            .expect("prepare the OpenAPI document's schemas");
        Contract {
            document,
            registry,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// Panic unless the document describes this response. `path` may carry a
/// query; a gzipped body is checked as it decodes.
pub fn check(method: &str, path: &str, status: u16, headers: &HeaderMap, body: &[u8]) {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let content_type = header("content-type");
    let decoded;
    let body = if header("content-encoding") == Some("gzip") {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut plain)
            .unwrap_or_else(|err| panic!("{method} {path}: the gzip body does not decode: {err}"));
        decoded = plain;
        decoded.as_slice()
    } else {
        body
    };
    let contract = contract();
    let path = path.split('?').next().unwrap_or(path);
    let found = contract.document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .find(|(template, _)| matches_template(template, path));
    // HEAD is GET without a body.
    let operation_name = if method == "HEAD" {
        "get"
    } else {
        &method.to_lowercase()
    };
    // What the document has no operation for is a problem: 404 for a path,
    // 405 for a method.
    let Some((template, operation)) = found
        .map(|(template, item)| (template, &item[operation_name]))
        .filter(|(_, operation)| operation.is_object())
    else {
        let expected = if found.is_some() { 405 } else { 404 };
        assert_eq!(
            status, expected,
            "{method} {path} is not in the OpenAPI document"
        );
        assert_eq!(
            content_type,
            Some("application/problem+json"),
            "{method} {path}"
        );
        let problem = serde_json::from_slice(body).expect("a problem is JSON");
        let errors: Vec<String> = validator(contract, "/components/schemas/Problem")
            .iter_errors(&problem)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{method} {path}: {errors:?}");
        return;
    };
    let key = status.to_string();
    let mut response = &operation["responses"][key.as_str()];
    assert!(
        response.is_object(),
        "{method} {path}: status {status} is not documented for {template}"
    );
    let mut pointer = format!(
        "/paths/{}/{operation_name}/responses/{key}",
        escape(template)
    );
    if let Some(reference) = response["$ref"].as_str() {
        pointer = reference.trim_start_matches('#').to_owned();
        response = contract
            .document
            .pointer(&pointer)
            .expect("a response $ref resolves");
    }
    let Some(content) = response["content"].as_object() else {
        assert!(
            body.is_empty(),
            "{method} {path}: {status} documents no body"
        );
        return;
    };
    if method == "HEAD" {
        return;
    }
    let essence = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    assert!(
        content.contains_key(essence),
        "{method} {path}: {status} in {essence:?} is not documented (only {:?})",
        content.keys().collect::<Vec<_>>()
    );
    let instance = if essence.ends_with("json") {
        serde_json::from_slice(body)
            .unwrap_or_else(|err| panic!("{method} {path}: {status} is not JSON: {err}"))
    } else {
        Value::String(String::from_utf8(body.to_vec()).expect("a text body is UTF-8"))
    };
    let schema = format!("{pointer}/content/{}/schema", escape(essence));
    let validator = validator(contract, &schema);
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path}: the {status} breaks the OpenAPI document ({schema}):\n{}\n{instance}",
        errors.join("\n")
    );
}

fn validator(contract: &'static Contract, pointer: &str) -> &'static Validator {
    // A test that failed while holding the lock left the map whole.
    let mut validators = contract
        .validators
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    validators.entry(pointer.to_owned()).or_insert_with(|| {
        // A URI fragment holds no braces: `{id}` is percent-encoded.
        let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
        let schema = serde_json::json!({ "$ref": format!("{BASE}#{fragment}") });
        let validator = jsonschema::options()
            .with_registry(&contract.registry)
            .build(&schema)
            .unwrap_or_else(|err| panic!("the schema at {pointer}: {err}"));
        Box::leak(Box::new(validator))
    })
}

/// `/api/v2/members/{id}` matches `/api/v2/members/42`.
fn matches_template(template: &str, path: &str) -> bool {
    let mut template = template.split('/');
    let mut path = path.split('/');
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(expected), Some(segment)) => {
                let parameter = expected.starts_with('{') && expected.ends_with('}');
                let matched = if parameter {
                    !segment.is_empty()
                } else {
                    expected == segment
                };
                if !matched {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// A JSON Pointer token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        headers
    }

    fn check_json(path: &str, status: u16, body: &str) {
        check(
            "GET",
            path,
            status,
            &json_headers("application/json"),
            body.as_bytes(),
        );
    }

    #[test]
    fn a_documented_answer_passes() {
        let report = r#"{"tz":"UTC","from":"2024-01-01","to":"2024-01-02","granularity":"day",
            "week_start":"monday","fields":["visits","tokens_issued","active_members","new_members"],
            "buckets":[{"start":"2024-01-01","end":"2024-01-02","visits":1,
            "tokens_issued":2,"active_members":1,"new_members":0}],
            "totals":{"visits":1,"tokens_issued":2,"active_members":1,"new_members":0}}"#;
        check_json("/api/v2/usage?tz=UTC", 200, report);
        check(
            "GET",
            "/api/v2/nope",
            404,
            &json_headers("application/problem+json"),
            br#"{"type":"about:blank","title":"Not Found","status":404,"detail":"x"}"#,
        );
    }

    #[test]
    #[should_panic(expected = "breaks the OpenAPI document")]
    fn a_body_the_schema_refuses_fails() {
        check_json("/api/v2/usage", 200, r#"{"tz":"UTC","buckets":[]}"#);
    }

    #[test]
    #[should_panic(expected = "status 418 is not documented")]
    fn an_undocumented_status_fails() {
        check_json("/api/v2/members/7", 418, "{}");
    }

    #[test]
    #[should_panic(expected = "is not documented")]
    fn an_undocumented_media_type_fails() {
        check(
            "GET",
            "/api/v2/usage",
            200,
            &json_headers("text/html"),
            b"<p>",
        );
    }

    #[test]
    fn templates_match_one_segment() {
        assert!(matches_template(
            "/api/v2/members/{id}",
            "/api/v2/members/42"
        ));
        assert!(!matches_template(
            "/api/v2/members/{id}",
            "/api/v2/members/"
        ));
        assert!(!matches_template(
            "/api/v2/members/{id}",
            "/api/v2/members/4/2"
        ));
    }
}
