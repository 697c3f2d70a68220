//! How containerd-shim-spin reaches the nodes, as runtime-class-manager v0.2.0
//! does it (read in its source: `internal/controller/shim_controller.go`, the
//! node installer's `internal/shim` and `internal/containerd/configure.go`):
//!
//! - it installs the release of the Shim's `fetchStrategy` on every node of its
//!   `nodeSelector`, under the containerd runtime named after the binary,
//!   `containerd-shim-<name>`, so the Shim of `containerd-shim-spin-v2` is named
//!   `spin-v2` and so is the RuntimeClass's handler;
//! - it labels each node `<shim name>: provisioned` once its install Job ends;
//! - it creates the Shim's RuntimeClass only when none of that name exists, so
//!   ours (applied first) is the one that counts.
//!
//! The fallback, the shim project's own node installer, registers the runtime
//! as `spin` (its `installer.sh`), which the README's fallback commands put in
//! the RuntimeClass.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::manifests::{deployment_readme, object, parse, project_root, string_map as labels};

/// The containerd-shim-spin release the nodes run, and the Spin it embeds
/// (its CHANGELOG: "Bump to Spin 3.6.3 release for Wasmtime security updates").
const SHIM_VERSION: &str = "v0.24.0";
const EMBEDDED_SPIN: &str = "3.6.3";
/// The binary in every release's archive.
const SHIM_BINARY: &str = "containerd-shim-spin-v2";
/// The runtime name of the fallback installer.
const FALLBACK_RUNTIME: &str = "spin";

#[test]
fn the_runtime_class_is_the_one_the_shim_installs_on_provisioned_nodes() {
    let shim = object("Shim", "spin-v2");
    assert_eq!(
        format!("containerd-shim-{}", shim.name()),
        SHIM_BINARY,
        "the manager names the runtime after the binary"
    );
    let class_name = shim.str_at("/spec/runtimeClass/name").unwrap();
    let class = object("RuntimeClass", class_name);
    assert_eq!(class.file, "deployment/spinkube/runtime-class.yaml");
    assert_eq!(shim.str_at("/spec/runtimeClass/handler"), Some(shim.name()));
    assert_eq!(class.str_at("/handler"), Some(shim.name()));

    let mut expected = labels(shim.at("/spec/nodeSelector"));
    assert_eq!(
        expected.get("kubernetes.io/arch").map(String::as_str),
        Some("arm64"),
        "the image is linux/arm64"
    );
    expected.insert(shim.name().to_string(), "provisioned".to_string());
    assert_eq!(labels(class.at("/scheduling/nodeSelector")), expected);

    let executor = object("SpinAppExecutor", "containerd-shim-spin");
    assert_eq!(
        executor.str_at("/spec/deploymentConfig/runtimeClassName"),
        Some(class_name)
    );
}

#[test]
fn the_shim_and_the_fallback_are_the_same_pinned_arm64_release() {
    let shim = object("Shim", "spin-v2");
    let platforms = shim
        .at("/spec/fetchStrategy/platforms")
        .and_then(Value::as_array)
        .expect("platforms");
    let release = format!(
        "https://github.com/spinframework/containerd-shim-spin/releases/download/\
         {SHIM_VERSION}/{SHIM_BINARY}-linux-aarch64.tar.gz"
    );
    assert_eq!(
        platforms,
        &vec![serde_json::json!({"os": "linux", "arch": "aarch64", "location": release})]
    );
    let installer = object("DaemonSet", "spin-node-installer");
    assert_eq!(
        installer.str_at("/spec/template/spec/initContainers/0/image"),
        Some(
            format!("ghcr.io/spinframework/containerd-shim-spin/node-installer:{SHIM_VERSION}")
                .as_str()
        )
    );
    // The README's versions table says which shim and which Spin.
    let readme = deployment_readme();
    let row = readme
        .lines()
        .find(|line| line.starts_with("| containerd-shim-spin |"))
        .expect("a versions row for containerd-shim-spin");
    assert!(
        row.contains(SHIM_VERSION) && row.contains(&format!("Spin {EMBEDDED_SPIN}")),
        "{row}"
    );
}

/// The fallback's RuntimeClass comes from the README's command: handler `spin`,
/// and the arm64 nodes without the manager's label.
#[test]
fn the_readmes_fallback_command_gives_the_installers_runtime_class() {
    let readme = deployment_readme();
    let command = readme
        .lines()
        .find(|line| line.starts_with("sed ") && line.contains("runtime-class.yaml"))
        .expect("the README's sed of runtime-class.yaml");
    let command = command
        .split(" | kubectl")
        .next()
        .expect("the sed before the pipe");
    let output = Command::new("sh")
        .args(["-c", command])
        .current_dir(project_root())
        .output()
        .expect("run sh");
    assert!(output.status.success(), "{command}");
    let class = parse(
        "runtime-class.yaml (fallback)",
        &String::from_utf8(output.stdout).unwrap(),
    )
    .unwrap()
    .remove(0);
    assert_eq!(class.str_at("/handler"), Some(FALLBACK_RUNTIME));
    assert_eq!(
        labels(class.at("/scheduling/nodeSelector")),
        BTreeMap::from([("kubernetes.io/arch".to_string(), "arm64".to_string())])
    );
    assert_eq!(class.name(), "wasmtime-spin-v2");
}

/// The image's `/runtime-config.toml` keeps the key-value store in memory, so
/// the app runs on a read-only root file system. spin-operator mounts a runtime
/// config of its own over that path when the SpinApp has `runtimeConfig`: ours
/// has none, and the image carries the project's file (xtask's image checks).
#[test]
fn the_images_runtime_config_is_the_one_the_shim_reads() {
    let app = object("SpinApp", "coworking");
    assert!(
        app.at("/spec/runtimeConfig").is_none(),
        "a runtimeConfig would replace the image's /runtime-config.toml: define the \
         default key-value store in it (type spin, no path)"
    );
    let dockerfile =
        std::fs::read_to_string(project_root().join("runtime-image/Dockerfile")).unwrap();
    assert!(
        dockerfile
            .lines()
            .any(|line| line.trim() == "COPY runtime-config.toml /runtime-config.toml"),
        "{dockerfile}"
    );
}
