//! `cargo xtask image`: the arm64 runtime image of the component. It holds three
//! files at its root: `/spin.toml` (what containerd-shim-spin reads), the wasm
//! that manifest names, and `/runtime-config.toml` (Spin's runtime config, which
//! the shim reads when it is there: the key-value store in memory). The same files become the Docker build context of
//! `runtime-image/Dockerfile` and, without Docker, a reproducible OCI image layout.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::dev::{build_component, project_root, RUNTIME_CONFIG};
use crate::release::package_version;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The default output directory, under the project root: `context/` and `oci/`.
pub const OUT_DIR: &str = "target/runtime-image";
/// Where containerd-shim-spin looks for the application manifest.
pub const SPIN_MANIFEST: &str = "spin.toml";

#[derive(Args)]
pub struct ImageArgs {
    /// Write only the Docker build context (for `docker buildx build`), no OCI layout.
    #[arg(long)]
    context_only: bool,
    /// Output directory: the context goes to DIR/context, the OCI layout to DIR/oci.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn build(args: ImageArgs) -> Result<()> {
    let root = project_root();
    build_component(&root)?;
    let out = args.out.unwrap_or_else(|| root.join(OUT_DIR));
    let files = image_files(&root)?;
    let context = out.join("context");
    write_context(&files, &context)?;
    println!("xtask: Docker build context in {}", context.display());
    for file in &files {
        println!("  /{} ({} bytes)", file.name, file.bytes.len());
    }
    if args.context_only {
        return Ok(());
    }
    let version =
        package_version(&fs::read_to_string(root.join("Cargo.toml")).context("read Cargo.toml")?)?;
    let image = OciImage::new(&files)?;
    let layout = out.join("oci");
    image.write_layout(&layout, &version)?;
    println!(
        "xtask: OCI image layout (linux/arm64) in {}, reference {version}",
        layout.display()
    );
    println!("  digest        {}", image.manifest_digest());
    println!("  compressed    {} bytes (layer, gzip)", image.layer.len());
    println!(
        "  uncompressed  {} bytes (layer tar)",
        image.uncompressed_size
    );
    Ok(())
}

/// One file of the image, at `/<name>`.
#[derive(Debug)]
pub struct ImageFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The files of the image, sorted by name: the in-image `spin.toml`, every
/// wasm it names, read from where the project's `spin.toml` builds them, and
/// the runtime config.
pub fn image_files(root: &Path) -> Result<Vec<ImageFile>> {
    let manifest_path = root.join(SPIN_MANIFEST);
    let manifest = fs::read_to_string(&manifest_path)
        .with_context(|| format!("read {}", manifest_path.display()))?;
    let (in_image, sources) = in_image_manifest(&manifest)?;
    let runtime_config = root.join(RUNTIME_CONFIG);
    let mut files = vec![
        ImageFile {
            name: SPIN_MANIFEST.to_owned(),
            bytes: in_image.into_bytes(),
        },
        ImageFile {
            name: RUNTIME_CONFIG.to_owned(),
            bytes: fs::read(&runtime_config)
                .with_context(|| format!("read {}", runtime_config.display()))?,
        },
    ];
    for (name, source) in sources {
        let path = root.join(&source);
        let bytes = fs::read(&path).with_context(|| {
            format!(
                "read {} (build the component first: `cargo build --target wasm32-wasip2 --release -p coworking-analytics`)",
                path.display()
            )
        })?;
        files.push(ImageFile { name, bytes });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The in-image manifest of a project `spin.toml`: every `[component.*.build]`
/// table removed, and every component `source` rewritten to the file name of the
/// wasm at the image root. Also returns, per in-image file name, the source path
/// as the project manifest names it.
pub fn in_image_manifest(manifest: &str) -> Result<(String, BTreeMap<String, PathBuf>)> {
    let mut doc: toml_edit::DocumentMut =
        manifest.parse().context("spin.toml is not valid TOML")?;
    let components = doc
        .get_mut("component")
        .and_then(|item| item.as_table_like_mut())
        .context("spin.toml has no [component.*] table")?;
    let mut sources = BTreeMap::new();
    for (id, component) in components.iter_mut() {
        let component = component
            .as_table_like_mut()
            .with_context(|| format!("component.{id} of spin.toml is not a table"))?;
        component.remove("build");
        let source = component
            .get("source")
            .and_then(|source| source.as_str())
            .with_context(|| {
                format!("component.{id}.source of spin.toml is not a local file path")
            })?;
        let source = PathBuf::from(source);
        let name = source
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("component.{id}.source has no file name"))?
            .to_owned();
        ensure!(
            name != SPIN_MANIFEST && name != RUNTIME_CONFIG,
            "component.{id}.source would overwrite /{name} in the image"
        );
        if let Some(other) = sources.get(&name) {
            if other != &source {
                bail!("two component sources are both named {name} in the image");
            }
        }
        let decor = component
            .get("source")
            .and_then(|item| item.as_value())
            .map(|value| value.decor().clone());
        let mut value = toml_edit::Value::from(name.as_str());
        if let Some(decor) = decor {
            *value.decor_mut() = decor;
        }
        component.insert("source", toml_edit::Item::Value(value));
        sources.insert(name, source);
    }
    ensure!(!sources.is_empty(), "spin.toml declares no component");
    Ok((doc.to_string(), sources))
}

/// (Re)writes the Docker build context: exactly the image's files.
pub fn write_context(files: &[ImageFile], dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for file in files {
        let path = dir.join(&file.name);
        fs::write(&path, &file.bytes).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// A single-platform linux/arm64 image of one gzip layer, built byte for byte
/// the same from the same files.
pub struct OciImage {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub uncompressed_size: usize,
}

impl OciImage {
    pub fn new(files: &[ImageFile]) -> Result<Self> {
        let tar = layer_tar(files)?;
        let mut gzip = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::best());
        gzip.write_all(&tar).context("compress the layer")?;
        let layer = GzEncoder::finish(gzip).context("compress the layer")?;
        let config = serde_json::to_vec(&json!({
            "architecture": "arm64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [sha256(&tar)] },
        }))?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": descriptor(CONFIG_MEDIA_TYPE, &config),
            "layers": [descriptor(LAYER_MEDIA_TYPE, &layer)],
        }))?;
        Ok(Self {
            config,
            layer,
            manifest,
            uncompressed_size: tar.len(),
        })
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest)
    }

    /// Writes the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`),
    /// the manifest tagged `reference` (`skopeo copy oci:DIR:reference ...`).
    pub fn write_layout(&self, dir: &Path, reference: &str) -> Result<()> {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
        }
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).with_context(|| format!("create {}", blobs.display()))?;
        for blob in [&self.config, &self.layer, &self.manifest] {
            let digest = sha256(blob);
            let hex = digest.trim_start_matches("sha256:");
            fs::write(blobs.join(hex), blob).context("write a blob")?;
        }
        let mut manifest = descriptor(MANIFEST_MEDIA_TYPE, &self.manifest);
        manifest["platform"] = json!({ "architecture": "arm64", "os": "linux" });
        manifest["annotations"] = json!({ "org.opencontainers.image.ref.name": reference });
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [manifest],
        });
        fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)
            .context("write index.json")?;
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .context("write oci-layout")?;
        Ok(())
    }
}

/// The layer: the files at the root, sorted, regular 0644 files owned by 0:0, mtime 0.
fn layer_tar(files: &[ImageFile]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&ImageFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut builder = tar::Builder::new(Vec::new());
    for file in sorted {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, &file.name, file.bytes.as_slice())
            .with_context(|| format!("add {} to the layer", file.name))?;
    }
    builder.into_inner().context("finish the layer tar")
}

fn descriptor(media_type: &str, blob: &[u8]) -> serde_json::Value {
    json!({ "mediaType": media_type, "digest": sha256(blob), "size": blob.len() })
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Read;
    use std::process::Command;

    const WASM: &str = "target/wasm32-wasip2/release/coworking_analytics.wasm";

    /// The image files from the real build: `cargo xtask test` builds the wasm first.
    fn real_files() -> Vec<ImageFile> {
        let wasm = project_root().join(WASM);
        assert!(
            wasm.is_file(),
            "{} is missing: run the tests with `cargo xtask test`, which builds the \
             component first (or `cargo build --target wasm32-wasip2 --release -p coworking-analytics`)",
            wasm.display()
        );
        image_files(&project_root()).expect("the image files")
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut tar)
            .expect("the layer is gzip");
        tar
    }

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    fn blob(layout: &Path, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        let bytes = fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob exists");
        assert_eq!(sha256(&bytes), digest, "blob content matches its digest");
        bytes
    }

    /// The entries of a layer tar: name → (bytes, header facts).
    fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>, u32, u64, u64, u64)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                assert_eq!(header.entry_type(), tar::EntryType::Regular);
                let name = entry.path().unwrap().to_str().unwrap().to_owned();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                (
                    name,
                    bytes,
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn oci_layout_of_the_built_component() {
        let files = real_files();
        let layout_dir = tempfile::tempdir().unwrap();
        let layout = layout_dir.path().join("oci");
        OciImage::new(&files)
            .unwrap()
            .write_layout(&layout, "1.2.3")
            .unwrap();

        let oci_layout = json_of(&fs::read(layout.join("oci-layout")).unwrap());
        assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
        let index = json_of(&fs::read(layout.join("index.json")).unwrap());
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], INDEX_MEDIA_TYPE);
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 1, "a single-platform image");
        let entry = &manifests[0];
        assert_eq!(entry["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(entry["platform"]["os"], "linux");
        assert_eq!(entry["platform"]["architecture"], "arm64");
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "1.2.3"
        );

        let manifest_bytes = blob(&layout, entry["digest"].as_str().unwrap());
        assert_eq!(entry["size"], manifest_bytes.len());
        let manifest = json_of(&manifest_bytes);
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        let config_bytes = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(manifest["config"]["size"], config_bytes.len());
        let config = json_of(&config_bytes);
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["rootfs"]["type"], "layers");

        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "one layer");
        assert_eq!(layers[0]["mediaType"], LAYER_MEDIA_TYPE);
        let layer = blob(&layout, layers[0]["digest"].as_str().unwrap());
        assert_eq!(layers[0]["size"], layer.len());
        let tar = gunzip(&layer);
        assert_eq!(config["rootfs"]["diff_ids"], json!([sha256(&tar)]));

        let blob_count = fs::read_dir(layout.join("blobs/sha256")).unwrap().count();
        assert_eq!(blob_count, 3, "config, layer and manifest, nothing else");

        let entries = entries(&tar);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "coworking_analytics.wasm",
                "runtime-config.toml",
                "spin.toml"
            ]
        );
        for (name, _, mode, uid, gid, mtime) in &entries {
            assert_eq!((*mode, *uid, *gid, *mtime), (0o644, 0, 0, 0), "{name}");
        }

        let built = fs::read(project_root().join(WASM)).unwrap();
        assert!(
            entries[0].1 == built,
            "the wasm is the built one, byte for byte"
        );

        assert_eq!(
            entries[1].1,
            fs::read(project_root().join(RUNTIME_CONFIG)).unwrap(),
            "the runtime config as it is"
        );
        let in_image = std::str::from_utf8(&entries[2].1).unwrap();
        let spin: toml::Table = in_image.parse().unwrap();
        let root: toml::Table = fs::read_to_string(project_root().join(SPIN_MANIFEST))
            .unwrap()
            .parse()
            .unwrap();
        let component = &spin["component"]["coworking-analytics"];
        let source = component["source"].as_str().unwrap();
        assert!(names.contains(&source), "source {source} is in the layer");
        assert!(component.get("build").is_none(), "no build table");
        assert_eq!(spin["variables"], root["variables"]);
        assert_eq!(
            component["allowed_outbound_hosts"],
            root["component"]["coworking-analytics"]["allowed_outbound_hosts"]
        );
        assert_eq!(
            component["variables"],
            root["component"]["coworking-analytics"]["variables"]
        );
        assert_eq!(spin["trigger"], root["trigger"]);
    }

    /// umoci, a real OCI implementation, checks every digest and size while it
    /// unpacks the layout; the root filesystem it gives is exactly the image's files.
    #[test]
    fn umoci_unpacks_the_layout_to_the_images_files() {
        let files = real_files();
        let layout_dir = tempfile::tempdir().unwrap();
        let layout = layout_dir.path().join("umoci-layout");
        OciImage::new(&files)
            .unwrap()
            .write_layout(&layout, "0.1.0")
            .unwrap();
        let bundle_dir = tempfile::tempdir().unwrap();
        let bundle = bundle_dir.path().join("umoci-bundle");

        let mut umoci = Command::new("umoci");
        umoci.arg("unpack");
        if !crate::dev::is_root() {
            umoci.arg("--rootless");
        }
        let output = umoci
            .arg("--image")
            .arg(format!("{}:0.1.0", layout.display()))
            .arg(&bundle)
            .output()
            .expect("run umoci (`cargo xtask test` installs it: apt-get install umoci)");
        assert!(
            output.status.success(),
            "umoci unpack failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );

        let rootfs = bundle.join("rootfs");
        let mut unpacked: Vec<(String, Vec<u8>)> = fs::read_dir(&rootfs)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                assert!(entry.file_type().unwrap().is_file(), "{entry:?}");
                let name = entry.file_name().into_string().unwrap();
                (name, fs::read(entry.path()).unwrap())
            })
            .collect();
        unpacked.sort();
        let expected: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|file| (file.name.clone(), file.bytes.clone()))
            .collect();
        assert!(
            unpacked == expected,
            "the rootfs holds exactly the image files"
        );
    }

    #[test]
    fn building_twice_gives_the_same_image() {
        let files = real_files();
        let first_dir = tempfile::tempdir().unwrap();
        let first = first_dir.path().join("twice-a");
        let second_dir = tempfile::tempdir().unwrap();
        let second = second_dir.path().join("twice-b");
        let a = OciImage::new(&files).unwrap();
        a.write_layout(&first, "0.1.0").unwrap();
        let b = OciImage::new(&image_files(&project_root()).unwrap()).unwrap();
        b.write_layout(&second, "0.1.0").unwrap();
        assert_eq!(a.manifest_digest(), b.manifest_digest());
        for file in ["index.json", "oci-layout"] {
            assert_eq!(
                fs::read(first.join(file)).unwrap(),
                fs::read(second.join(file)).unwrap(),
                "{file}"
            );
        }
    }

    #[test]
    fn dockerfile_ships_the_files_of_the_oci_image() {
        let files = real_files();
        let context_dir = tempfile::tempdir().unwrap();
        let context = context_dir.path().join("context");
        write_context(&files, &context).unwrap();
        let dockerfile =
            fs::read_to_string(project_root().join("runtime-image/Dockerfile")).unwrap();
        let instructions: Vec<&str> = dockerfile
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        assert_eq!(instructions.first(), Some(&"FROM scratch"));
        let mut shipped = BTreeMap::new();
        for line in &instructions[1..] {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], "COPY", "only COPY after FROM scratch: {line}");
            assert_eq!(words.len(), 3, "one source, one destination: {line}");
            let destination = words[2]
                .strip_prefix('/')
                .unwrap_or_else(|| panic!("absolute destination: {line}"));
            let source = fs::read(context.join(words[1]))
                .unwrap_or_else(|e| panic!("{} is not in the build context: {e}", words[1]));
            assert!(
                shipped.insert(destination.to_owned(), source).is_none(),
                "{destination} copied twice"
            );
        }
        let image: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|file| (file.name.clone(), file.bytes.clone()))
            .collect();
        assert_eq!(
            shipped.keys().collect::<Vec<_>>(),
            image.keys().collect::<Vec<_>>()
        );
        assert!(shipped == image, "the Dockerfile ships the same bytes");
        let context_files = fs::read_dir(&context).unwrap().count();
        assert_eq!(context_files, files.len(), "the context holds nothing else");
    }

    #[test]
    fn in_image_manifest_rewrites_sources_and_drops_builds() {
        let manifest = r#"
spin_manifest_version = 2
[variables]
a = { default = "1" }
[component.one]
source = "target/x/one.wasm" # built
allowed_outbound_hosts = ["https://example.com"]
[component.one.build]
command = "make"
[component.two]
source = "two.wasm"
"#;
        let (in_image, sources) = in_image_manifest(manifest).unwrap();
        let doc: toml::Table = in_image.parse().unwrap();
        assert_eq!(doc["component"]["one"]["source"].as_str(), Some("one.wasm"));
        assert_eq!(doc["component"]["two"]["source"].as_str(), Some("two.wasm"));
        assert!(doc["component"]["one"].get("build").is_none());
        assert!(in_image.contains("# built"), "comments survive: {in_image}");
        assert_eq!(
            doc["component"]["one"]["allowed_outbound_hosts"][0].as_str(),
            Some("https://example.com")
        );
        assert_eq!(doc["variables"]["a"]["default"].as_str(), Some("1"));
        let expected = BTreeMap::from([
            ("one.wasm".to_owned(), PathBuf::from("target/x/one.wasm")),
            ("two.wasm".to_owned(), PathBuf::from("two.wasm")),
        ]);
        assert_eq!(sources, expected);
    }

    #[test]
    fn in_image_manifest_rejects_what_it_cannot_ship() {
        let url = "[component.a]\nsource = { url = \"https://x/a.wasm\", digest = \"sha256:0\" }\n";
        let error = in_image_manifest(url).unwrap_err().to_string();
        assert!(error.contains("not a local file path"), "{error}");
        let clash = "[component.a]\nsource = \"a/x.wasm\"\n[component.b]\nsource = \"b/x.wasm\"\n";
        let error = in_image_manifest(clash).unwrap_err().to_string();
        assert!(error.contains("both named x.wasm"), "{error}");
        let error = in_image_manifest("spin_manifest_version = 2\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no [component.*]"), "{error}");
    }
}
