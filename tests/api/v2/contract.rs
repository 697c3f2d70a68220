//! The contract, checked by the real tools: openapi-spec-validator says the
//! document is valid OpenAPI 3.1, and schemathesis, reading it from the running
//! service, generates requests for every operation and finds no 5xx and no
//! response that breaks the document. Both come from PyPI, pinned, into
//! `target/contract-venv` (`cargo xtask test` installs them).

use std::path::PathBuf;
use std::process::Command;

use test_support::{project_root, spawn_app, API_KEY};

/// The examples schemathesis tries per operation: a small budget for CI;
/// README.md ("The contract") gives the larger run.
const EXAMPLES: &str = "100";

fn tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("CONTRACT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/contract-venv"));
    let tool = venv.join("bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: `cargo xtask test` installs the contract tools (tests/contract-tools.txt)",
        tool.display()
    );
    tool
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let output = Command::new(tool("openapi-spec-validator"))
        .arg(project_root().join("src/v2/openapi.json"))
        .output()
        .expect("run openapi-spec-validator");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success() && text.contains("OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_broken_response() {
    let app = spawn_app().await;
    let schema = format!("{}/api/v2/openapi.json", app.address);
    let output = tokio::process::Command::new(tool("schemathesis"))
        .args(["run", &schema])
        .args(["--header", &format!("Authorization: Bearer {API_KEY}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,\
             negative_data_rejection,unsupported_method,ignored_auth",
        ])
        .args(["--max-examples", EXAMPLES, "--workers", "2", "--seed", "14"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "schemathesis failed:\n{text}");
    println!("{text}");
}
