//! The project stands alone: no file of it refers to the `shared` folder beside
//! the repository, which exists only beside this repository's CI. A clone on a laptop or in CodeBuild
//! has nothing beside it, so a test, tool or document that read from there would
//! break the build (as the schema checks once did).

use std::fs;
use std::path::Path;

use crate::dev::project_root;

/// What the project's files may not name; spelled in two pieces so that this
/// file does not name it either.
const OUTSIDE: &str = concat!("..", "/shared");

/// The one allowed reference: `.ci/run`'s last-resort install of the wasm
/// target, for CI machines where rustup cannot download it.
const ALLOWED: [(&str, &str); 1] = [(
    ".ci/run",
    concat!("bash ..", "/shared/toolchain/wasm32-wasip2.sh"),
)];

/// Folders that are not the project's sources: git's own, and what `.gitignore`
/// ignores at the root (build output, the local database, CodeBuild's cached
/// cargo registry: thousands of crates' files, which are not ours to check).
fn not_sources(root: &Path) -> Vec<String> {
    let ignored = fs::read_to_string(root.join(".gitignore")).unwrap_or_default();
    let top_level = ignored
        .lines()
        .filter_map(|line| line.trim().strip_prefix('/'))
        .map(|name| name.trim_end_matches('/').to_owned());
    std::iter::once(".git".to_owned())
        .chain(top_level)
        .collect()
}

/// Each `file:line` of the files under `root` (relative paths) that names
/// [`OUTSIDE`], except the allowed lines.
fn references(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, skip: &[String], found: &mut Vec<String>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let relative = path.strip_prefix(root).expect("under the root");
            let name = relative.to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                if !skip.contains(&name) {
                    walk(root, &path, skip, found);
                }
                continue;
            }
            // Binary files (none name it) are skipped with the unreadable ones.
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            for (number, line) in text.lines().enumerate() {
                let allowed = ALLOWED
                    .iter()
                    .any(|(file, allowed)| name == *file && line.trim() == *allowed);
                if line.contains(OUTSIDE) && !allowed {
                    found.push(format!("{name}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(root, root, &not_sources(root), &mut found);
    found.sort();
    found
}

#[test]
fn no_file_refers_to_the_folder_beside_the_repository() {
    let found = references(&project_root());
    assert!(
        found.is_empty(),
        "these lines refer to {OUTSIDE}, which a clone does not have; copy the data \
         into the project instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_a_reference_and_allows_only_the_ci_fallback() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    fs::create_dir_all(root.join(".ci")).unwrap();
    fs::create_dir_all(root.join("tests/x")).unwrap();
    fs::create_dir_all(root.join("target")).unwrap();
    fs::write(root.join(".ci/run"), format!("  {}\n", ALLOWED[0].1)).unwrap();
    fs::write(
        root.join("tests/x/lib.rs"),
        format!("fn schemas() {{}}\nconst DIR: &str = \"{OUTSIDE}/schemas\";\n"),
    )
    .unwrap();
    fs::create_dir_all(root.join(".cargo-registry/src")).unwrap();
    fs::write(root.join(".gitignore"), "/target\n/.cargo-registry/\n").unwrap();
    // What git ignores at the root is not the project's: build output, a crate.
    fs::write(root.join("target/out.txt"), format!("{OUTSIDE}/anything\n")).unwrap();
    fs::write(
        root.join(".cargo-registry/src/lib.rs"),
        format!("// {OUTSIDE}\n"),
    )
    .unwrap();
    let found = references(root);
    assert_eq!(
        found,
        [format!(
            "tests/x/lib.rs:2: const DIR: &str = \"{OUTSIDE}/schemas\";"
        )]
    );

    // The allowance is for that exact line of .ci/run, not for the file.
    fs::write(
        root.join(".ci/run"),
        format!("cat {OUTSIDE}/notes/spin-runtime.md\n"),
    )
    .unwrap();
    assert_eq!(references(root).len(), 2);
}
