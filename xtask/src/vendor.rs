//! The dashboard's chart library, vendored from npm by a reproducible step:
//! `cargo xtask vendor` downloads the tarball that `src/dashboard/vendor/
//! vendor.toml` pins, checks it against the registry's integrity digest
//! (Subresource Integrity form, as in a `package-lock.json`) and writes the
//! files listed there. `cargo xtask test` builds the same files in memory and
//! fails when a checked-in one differs, so the component embeds exactly the
//! published package.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use base64::Engine;
use sha2::{Digest, Sha512};

/// The pinned package, beside the files it gives.
pub const MANIFEST: &str = "src/dashboard/vendor/vendor.toml";

#[derive(clap::Args)]
pub struct VendorArgs {
    /// Only compare the checked-in files with the package's; write nothing.
    #[arg(long)]
    check: bool,
}

pub fn vendor(args: VendorArgs) -> Result<()> {
    let root = crate::dev::project_root();
    if args.check {
        return check(&root);
    }
    for (path, bytes) in build(&root)? {
        fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
        println!("xtask: wrote {}", path.display());
    }
    Ok(())
}

/// Fails unless every vendored file is byte for byte the package's.
pub fn check(root: &Path) -> Result<()> {
    let manifest = Manifest::read(root)?;
    println!(
        "xtask: checking the vendored {} {} against {}",
        manifest.name, manifest.version, manifest.tarball
    );
    for (path, bytes) in build(root)? {
        let checked_in = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        ensure!(
            checked_in == bytes,
            "{} is not the file of the package that {MANIFEST} pins: run `cargo xtask vendor`",
            path.display()
        );
    }
    Ok(())
}

/// The vendored files as the pinned package gives them, by their paths.
fn build(root: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let manifest = Manifest::read(root)?;
    let tarball = download(&manifest.tarball)?;
    verify_integrity(&tarball, &manifest.integrity)
        .with_context(|| format!("the tarball {}", manifest.tarball))?;
    let dir = root.join(MANIFEST).with_file_name("");
    extract(&tarball, &manifest.files).map(|files| {
        files
            .into_iter()
            .map(|(name, bytes)| (dir.join(name), bytes))
            .collect()
    })
}

struct Manifest {
    name: String,
    version: String,
    tarball: String,
    integrity: String,
    /// (file written, its path in the tarball)
    files: Vec<(String, String)>,
}

impl Manifest {
    fn read(root: &Path) -> Result<Manifest> {
        let text = fs::read_to_string(root.join(MANIFEST)).context(MANIFEST)?;
        Self::parse(&text).context(MANIFEST)
    }

    fn parse(text: &str) -> Result<Manifest> {
        let table: toml::Table = text.parse()?;
        let string = |key: &str| -> Result<String> {
            Ok(table
                .get(key)
                .and_then(toml::Value::as_str)
                .with_context(|| format!("`{key}` (a string) is missing"))?
                .to_owned())
        };
        let files = table
            .get("files")
            .and_then(toml::Value::as_table)
            .context("`[files]` is missing")?
            .iter()
            .map(|(name, source)| {
                let source = source
                    .as_str()
                    .with_context(|| format!("files.{name} is not a path"))?;
                ensure!(
                    Path::new(name).file_name() == Some(name.as_ref()),
                    "files.{name}: a vendored file is named, not a path"
                );
                Ok((name.clone(), source.to_owned()))
            })
            .collect::<Result<_>>()?;
        Ok(Manifest {
            name: string("name")?,
            version: string("version")?,
            tarball: string("tarball")?,
            integrity: string("integrity")?,
            files,
        })
    }
}

fn download(url: &str) -> Result<Vec<u8>> {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--location"])
        .args(["--retry", "3", "--max-time", "120", url])
        .output()
        .context("run curl")?;
    if !output.status.success() {
        bail!(
            "download {url}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

/// Checks `bytes` against an SRI digest (`sha512-<base64>`), npm's form.
fn verify_integrity(bytes: &[u8], integrity: &str) -> Result<()> {
    let expected = integrity
        .strip_prefix("sha512-")
        .context("the integrity is not a sha512 digest (sha512-<base64>)")?;
    let actual = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes));
    ensure!(
        actual == expected,
        "its sha512 is {actual}, not the pinned {expected}"
    );
    Ok(())
}

/// The listed files from a gzipped tarball, in the manifest's order.
fn extract(tarball: &[u8], files: &[(String, String)]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut found: Vec<Option<Vec<u8>>> = vec![None; files.len()];
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    for entry in archive.entries().context("read the tarball")? {
        let mut entry = entry.context("read the tarball")?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if let Some(at) = files.iter().position(|(_, source)| *source == path) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            found[at] = Some(bytes);
        }
    }
    files
        .iter()
        .zip(found)
        .map(|((name, source), bytes)| {
            Ok((
                name.clone(),
                bytes.with_context(|| format!("the tarball has no {source}"))?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(gzip);
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn listed(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, source)| (name.to_string(), source.to_string()))
            .collect()
    }

    #[test]
    fn the_checked_in_manifest_pins_every_embedded_file() {
        let manifest = Manifest::read(&crate::dev::project_root()).unwrap();
        assert_eq!(manifest.name, "uplot");
        assert!(manifest
            .tarball
            .ends_with(&format!("-{}.tgz", manifest.version)));
        let dir = crate::dev::project_root().join(MANIFEST).with_file_name("");
        for (name, _) in &manifest.files {
            assert!(dir.join(name).is_file(), "{name} is not checked in");
        }
    }

    #[test]
    fn only_the_pinned_digest_passes() {
        let bytes = b"the package";
        let integrity = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
        );
        verify_integrity(bytes, &integrity).unwrap();
        let err = verify_integrity(b"the package!", &integrity).unwrap_err();
        assert!(err.to_string().contains("not the pinned"), "{err}");
        assert!(verify_integrity(bytes, "sha1-abc").is_err());
    }

    #[test]
    fn the_listed_files_come_out_of_the_tarball_by_their_paths() {
        let bytes = tarball(&[
            ("package/README.md", b"readme"),
            ("package/dist/a.js", b"script"),
            ("package/LICENSE", b"licence"),
        ]);
        let files = listed(&[
            ("LICENSE", "package/LICENSE"),
            ("a.js", "package/dist/a.js"),
        ]);
        assert_eq!(
            extract(&bytes, &files).unwrap(),
            vec![
                ("LICENSE".to_owned(), b"licence".to_vec()),
                ("a.js".to_owned(), b"script".to_vec())
            ]
        );
        let missing = listed(&[("b.js", "package/dist/b.js")]);
        let err = extract(&bytes, &missing).unwrap_err();
        assert!(err.to_string().contains("package/dist/b.js"), "{err}");
    }

    #[test]
    fn a_vendored_file_may_not_leave_its_directory() {
        let text = "name = \"x\"\nversion = \"1\"\ntarball = \"t\"\nintegrity = \"i\"\n\
                    [files]\n\"../src/lib.rs\" = \"package/a.js\"\n";
        let err = Manifest::parse(text).err().unwrap();
        assert!(err.to_string().contains("not a path"), "{err}");
    }
}
