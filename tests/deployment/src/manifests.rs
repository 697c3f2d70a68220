//! The manifests of `deployment/`, one [`Document`] per YAML document, and the
//! [`Finding`]s that the checks report about them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// The repository: this crate is `tests/deployment/`.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A mapping of strings (labels, a selector's `matchLabels`), without its
/// other values; empty when there is none.
pub fn string_map(value: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
        .collect()
}

/// One YAML document of a manifest file, as JSON.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file, relative to the repository (`deployment/coworking.yaml`).
    pub file: String,
    /// 1-based position in the file.
    pub index: usize,
    pub value: Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.str_at("/kind").unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.str_at("/apiVersion").unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.str_at("/metadata/name").unwrap_or("")
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kind() == kind
    }

    pub fn at(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }

    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        self.at(pointer).and_then(Value::as_str)
    }

    pub fn finding(&self, path: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            document: self.to_string(),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, document {} ({} {})",
            self.file,
            self.index,
            self.kind(),
            self.name()
        )
    }
}

/// Something wrong with a document, at a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file, the document and its kind and name.
    pub document: String,
    /// A JSON pointer into the document; empty for the document as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.document, self.message)
        } else {
            write!(f, "{}: {}: {}", self.document, self.path, self.message)
        }
    }
}

/// Fails the test with every finding, one a line.
pub fn assert_no_findings(findings: &[Finding]) {
    assert!(
        findings.is_empty(),
        "{} problem(s):\n{}",
        findings.len(),
        findings
            .iter()
            .map(Finding::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A key as one segment of a JSON pointer (RFC 6901).
pub fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every document of one file's text. An empty document (a stray `---`) or one
/// that is not a mapping is a finding, as is text that is not YAML.
pub fn parse(file: &str, text: &str) -> Result<Vec<Document>, Finding> {
    let mut documents = Vec::new();
    for (position, deserializer) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let index = position + 1;
        let whole = |message: String| Finding {
            document: format!("{file}, document {index}"),
            path: String::new(),
            message,
        };
        let value = Value::deserialize(deserializer)
            .map_err(|err| whole(format!("not valid YAML: {err}")))?;
        match value {
            Value::Object(_) => documents.push(Document {
                file: file.to_string(),
                index,
                value,
            }),
            Value::Null => return Err(whole("an empty document".to_string())),
            _ => return Err(whole("not a mapping".to_string())),
        }
    }
    Ok(documents)
}

/// The folder of the vendored schemas: data the checks read, not manifests.
pub const SCHEMAS_DIR: &str = "deployment/schemas";
/// The folder of the CloudWatch templates: CloudFormation, not Kubernetes
/// (checked by `monitoring`).
pub const MONITORING_DIR: &str = "deployment/monitoring";

/// The `.yaml` and `.yml` files under `deployment/` but its schemas and its
/// CloudWatch templates, sorted,
/// relative to the repository.
pub fn manifest_files() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|err| panic!("read {}: {err}", dir.display()));
        for entry in entries {
            let path = entry.expect("read a directory entry").path();
            if path.is_dir() {
                if path != root.join(SCHEMAS_DIR) && path != root.join(MONITORING_DIR) {
                    walk(root, &path, files);
                }
            } else if matches!(
                path.extension().and_then(|ext| ext.to_str()),
                Some("yaml" | "yml")
            ) {
                let relative = path.strip_prefix(root).expect("a path under the root");
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = project_root();
    let mut files = Vec::new();
    walk(&root, &root.join("deployment"), &mut files);
    files.sort();
    files
}

/// Every document under `deployment/`, or the findings of the files that do not parse.
fn load_deployment() -> Result<Vec<Document>, Vec<Finding>> {
    let root = project_root();
    let mut documents = Vec::new();
    let mut findings = Vec::new();
    for file in manifest_files() {
        let text = std::fs::read_to_string(root.join(&file))
            .unwrap_or_else(|err| panic!("read {file}: {err}"));
        match parse(&file, &text) {
            Ok(parsed) => documents.extend(parsed),
            Err(finding) => findings.push(finding),
        }
    }
    if findings.is_empty() {
        Ok(documents)
    } else {
        Err(findings)
    }
}

/// Every document under `deployment/`, parsed once for all the tests.
pub fn deployment() -> &'static [Document] {
    static DOCUMENTS: OnceLock<Vec<Document>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        load_deployment().unwrap_or_else(|findings| {
            assert_no_findings(&findings);
            unreachable!("findings were reported")
        })
    })
}

/// The documents of one file under `deployment/`.
pub fn file(name: &str) -> Vec<Document> {
    let documents: Vec<_> = deployment()
        .iter()
        .filter(|d| d.file == name)
        .cloned()
        .collect();
    assert!(!documents.is_empty(), "{name} has no document");
    documents
}

/// The one document of `kind` named `name` under `deployment/`.
pub fn object(kind: &str, name: &str) -> &'static Document {
    let mut found = deployment()
        .iter()
        .filter(|d| d.is(kind) && d.name() == name);
    let document = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} {name} under deployment/"));
    assert!(
        found.next().is_none(),
        "more than one {kind} {name} under deployment/"
    );
    document
}

/// The SpinApps among `documents`.
pub fn spin_apps(documents: &[Document]) -> impl Iterator<Item = &Document> {
    documents.iter().filter(|d| d.is("SpinApp"))
}

/// Every value under a key named `member`, anywhere in `value`, with its pointer.
fn objects_under<'v>(
    value: &'v Value,
    member: &str,
    path: String,
    out: &mut Vec<(String, &'v Value)>,
) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let child_path = format!("{path}/{}", pointer_segment(key));
                if key == member {
                    out.push((child_path.clone(), child));
                }
                objects_under(child, member, child_path, out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                objects_under(item, member, format!("{path}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// Every value under a key named `member` in `document`, with its pointer.
pub fn find<'v>(document: &'v Document, member: &str) -> Vec<(String, &'v Value)> {
    let mut found = Vec::new();
    objects_under(&document.value, member, String::new(), &mut found);
    found
}

/// deployment/README.md, which the checks hold to its commands.
pub fn deployment_readme() -> String {
    std::fs::read_to_string(project_root().join("deployment/README.md"))
        .expect("read deployment/README.md")
}

#[test]
fn a_document_that_is_not_yaml_names_its_file_and_index() {
    let err = parse(
        "deployment/broken.yaml",
        "kind: ConfigMap\n---\nkind: [unclosed\n",
    )
    .unwrap_err();
    assert_eq!(err.document, "deployment/broken.yaml, document 2");
    assert!(err.message.starts_with("not valid YAML"), "{err}");
}

#[test]
fn a_stray_separator_is_an_empty_document() {
    let err = parse(
        "deployment/x.yaml",
        "kind: ConfigMap\n---\n---\nkind: Secret\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "deployment/x.yaml, document 2: an empty document"
    );
}
