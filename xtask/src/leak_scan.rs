//! The sum of the test suite's secrets' watches: each `TestApp` of the tests
//! writes a line of what its host scanned (`test_support::LEAK_SCAN_DIR`), and
//! `cargo xtask test` prints the total after the tests.

use std::fs;
use std::path::Path;

use anyhow::{ensure, Context, Result};

/// Where each test app writes what its host's secrets' watch saw
/// (`test_support::LEAK_SCAN_DIR`).
pub const DIR: &str = "target/leak-scan";

/// The sum of the test apps' secrets' watches: a line per app, of
/// `responses=R bytes=B forms=F findings=N`.
pub fn summary(dir: &Path) -> Result<String> {
    let (mut apps, mut responses, mut bytes, mut findings) = (0u64, 0u64, 0u64, 0u64);
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        for line in fs::read_to_string(entry?.path())?.lines() {
            apps += 1;
            for field in line.split_whitespace() {
                let (name, value) = field.split_once('=').context("a name=value field")?;
                let value: u64 = value.parse().with_context(|| format!("{line}: {name}"))?;
                match name {
                    "responses" => responses += value,
                    "bytes" => bytes += value,
                    "findings" => findings += value,
                    _ => {}
                }
            }
        }
    }
    ensure!(
        findings == 0,
        "the secrets' watch found {findings} leaks (see the failed tests)"
    );
    Ok(format!(
        "the secrets' watch over {apps} test apps: {responses} responses and {:.1} MB of \
         responses and logs scanned for the secret variables' values, 0 found",
        bytes as f64 / 1e6
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_of_every_file_are_summed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("1.txt"),
            "responses=3 bytes=1500000 forms=8 findings=0\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("2.txt"),
            "responses=2 bytes=500000 forms=8 findings=0\nresponses=1 bytes=0 forms=4 findings=0\n",
        )
        .unwrap();
        assert_eq!(
            summary(dir.path()).unwrap(),
            "the secrets' watch over 3 test apps: 6 responses and 2.0 MB of responses and logs \
             scanned for the secret variables' values, 0 found"
        );
        fs::write(
            dir.path().join("3.txt"),
            "responses=1 bytes=9 forms=8 findings=2\n",
        )
        .unwrap();
        let err = summary(dir.path()).unwrap_err();
        assert!(err.to_string().contains("found 2 leaks"), "{err}");
    }
}
