//! `cargo xtask tags`: the image tags of one build, one per line — the crate's
//! version, the version with the CodeBuild build number, and the short commit.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use clap::Args;

use crate::dev::project_root;

#[derive(Args)]
pub struct TagsArgs {
    /// Build number (default: $CODEBUILD_BUILD_NUMBER).
    #[arg(long)]
    build_number: Option<String>,
    /// Commit the image is built from (default: $CODEBUILD_RESOLVED_SOURCE_VERSION,
    /// else `git rev-parse HEAD`).
    #[arg(long)]
    commit: Option<String>,
}

pub fn tags(args: TagsArgs) -> Result<()> {
    let root = project_root();
    let manifest = fs::read_to_string(root.join("Cargo.toml")).context("read Cargo.toml")?;
    let version = package_version(&manifest)?;
    let build_number = match args.build_number {
        Some(number) => number,
        None => std::env::var("CODEBUILD_BUILD_NUMBER")
            .context("no build number: pass --build-number N or set CODEBUILD_BUILD_NUMBER")?,
    };
    let commit = match args.commit {
        Some(commit) => commit,
        None => match std::env::var("CODEBUILD_RESOLVED_SOURCE_VERSION") {
            Ok(commit) => commit,
            Err(_) => git_head(&root)?,
        },
    };
    for tag in image_tags(&version, &build_number, &commit)? {
        println!("{tag}");
    }
    Ok(())
}

/// `[package].version` of a Cargo.toml, checked to be a plain `MAJOR.MINOR.PATCH`.
pub fn package_version(cargo_toml: &str) -> Result<String> {
    let manifest: toml::Table = cargo_toml.parse().context("Cargo.toml is not valid TOML")?;
    let version = manifest
        .get("package")
        .and_then(|package| package.get("version"))
        .context("Cargo.toml has no [package].version")?
        .as_str()
        .context("[package].version of Cargo.toml is not a string")?;
    ensure!(
        is_plain_semver(version),
        "[package].version {version:?} is not a plain MAJOR.MINOR.PATCH version \
         (no pre-release or build metadata, no leading zeros)"
    );
    Ok(version.to_owned())
}

/// The tags of one build: `X.Y.Z`, `X.Y.Z-build.N`, and the 7-character commit.
pub fn image_tags(version: &str, build_number: &str, commit: &str) -> Result<[String; 3]> {
    ensure!(
        is_plain_semver(version),
        "version {version:?} is not a plain MAJOR.MINOR.PATCH version"
    );
    let number = build_number_of(build_number)?;
    let short = short_commit(commit)?;
    Ok([
        version.to_owned(),
        format!("{version}-build.{number}"),
        short,
    ])
}

fn build_number_of(text: &str) -> Result<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    ensure!(
        digits,
        "build number {text:?} is not a positive integer (digits only)"
    );
    let number: u64 = text
        .parse()
        .with_context(|| format!("build number {text:?} is too large"))?;
    ensure!(
        number > 0,
        "build number {text:?} is not a positive integer"
    );
    Ok(number)
}

fn short_commit(commit: &str) -> Result<String> {
    let hex = commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex {
        bail!("commit {commit:?} is not a hexadecimal commit id of at least 7 characters");
    }
    Ok(commit[..7].to_ascii_lowercase())
}

fn is_plain_semver(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part.len() == 1 || !part.starts_with('0'))
        })
}

fn git_head(root: &Path) -> Result<String> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .context(
            "no commit: pass --commit SHA, set CODEBUILD_RESOLVED_SOURCE_VERSION, or install git",
        )?;
    ensure!(
        output.status.success(),
        "`git rev-parse HEAD` failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8(output.stdout)
        .context("`git rev-parse HEAD` printed non-UTF-8")?
        .trim()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn tags_of_a_build() {
        let tags = image_tags("1.4.2", "17", SHA).unwrap();
        assert_eq!(tags, ["1.4.2", "1.4.2-build.17", "0123456"]);
    }

    #[test]
    fn short_commit_is_lowercase() {
        let tags = image_tags("0.1.0", "1", "ABCDEF0123").unwrap();
        assert_eq!(tags[2], "abcdef0");
    }

    #[test]
    fn version_from_the_root_manifest() {
        let manifest = fs::read_to_string(project_root().join("Cargo.toml")).unwrap();
        let version = package_version(&manifest).unwrap();
        assert!(is_plain_semver(&version), "{version}");
    }

    /// Spin shows the application version (`spin.toml`); it is the crate's.
    #[test]
    fn spin_toml_carries_the_crate_version() {
        let cargo = fs::read_to_string(project_root().join("Cargo.toml")).unwrap();
        let spin: toml::Table = fs::read_to_string(project_root().join("spin.toml"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            spin["application"]["version"].as_str(),
            Some(package_version(&cargo).unwrap().as_str()),
            "bump [application].version in spin.toml with [package].version in Cargo.toml"
        );
    }

    #[test]
    fn version_missing_is_an_error() {
        let error = package_version("[package]\nname = \"x\"\n").unwrap_err();
        assert!(
            error.to_string().contains("no [package].version"),
            "{error}"
        );
        let error = package_version("[workspace]\n").unwrap_err();
        assert!(
            error.to_string().contains("no [package].version"),
            "{error}"
        );
    }

    #[test]
    fn version_not_plain_semver_is_an_error() {
        for version in [
            "1.2",
            "1.2.3-rc.1",
            "1.2.3+meta",
            "01.2.3",
            "v1.2.3",
            "1.2.x",
            "",
        ] {
            let manifest = format!("[package]\nversion = \"{version}\"\n");
            let error = package_version(&manifest).unwrap_err();
            assert!(
                error.to_string().contains("not a plain"),
                "{version}: {error}"
            );
        }
        let error = package_version("[package]\nversion = { workspace = true }\n").unwrap_err();
        assert!(error.to_string().contains("not a string"), "{error}");
    }

    #[test]
    fn build_number_not_a_positive_integer_is_an_error() {
        for number in ["12a", "-1", "", " 3", "3 ", "0", "+3", "1.5"] {
            let error = image_tags("1.0.0", number, SHA).unwrap_err();
            assert!(
                error.to_string().contains("not a positive integer"),
                "{number:?}: {error}"
            );
        }
        let error = image_tags("1.0.0", "99999999999999999999999", SHA).unwrap_err();
        assert!(error.to_string().contains("too large"), "{error}");
    }

    #[test]
    fn commit_not_hex_is_an_error() {
        for commit in ["", "abc", "g123456789", "0123456 ", "HEAD"] {
            let error = image_tags("1.0.0", "3", commit).unwrap_err();
            assert!(
                error.to_string().contains("not a hexadecimal commit"),
                "{commit:?}: {error}"
            );
        }
    }
}
