//! The developer commands: `up` (a local PostgreSQL with the seed, then the
//! component) and `test` (build the component, run every test).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Args;

use crate::postgres::{Cluster, POSTGRES_BIN};

const WASM_TARGET: &str = "wasm32-wasip2";
/// Spin's runtime config, which the image ships as `/runtime-config.toml`.
pub const RUNTIME_CONFIG: &str = "runtime-config.toml";
/// The Spin CLI releases that run spin-sdk 5.2 components (WASI 0.2, pg 4.0).
const SPIN_VERSIONS: &str = "3.4 to 4.0.x";

#[derive(Args)]
pub struct TestArgs {
    /// Extra arguments for `cargo test` (a test name filter, `--nocapture`, ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_test_args: Vec<String>,
}

#[derive(Args)]
pub struct UpArgs {
    /// Port of the local PostgreSQL (the Flask default is 5432).
    #[arg(long, default_value_t = 5432)]
    db_port: u16,
    /// Address the component listens on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: String,
    /// Use the project's test host even when a Spin CLI is on PATH.
    #[arg(long)]
    test_host: bool,
    /// Leave the report rollups out (and roll back ones applied before), to try
    /// the reports' fallback over the tokens table.
    #[arg(long)]
    without_rollups: bool,
}

pub fn test(args: TestArgs) -> Result<()> {
    let root = project_root();
    ensure_wasm_target()?;
    ensure_debian_packages(&[POSTGRESQL, SUDO, UMOCI, CURL, PYTHON_VENV, CHROMIUM])?;
    ensure_contract_tools(&root)?;
    crate::vendor::check(&root)?;
    build_component(&root)?;
    let leak_scans = root.join(crate::leak_scan::DIR);
    if leak_scans.exists() {
        fs::remove_dir_all(&leak_scans).context(crate::leak_scan::DIR)?;
    }
    run(cargo_command()
        .current_dir(&root)
        .args(["test", "--workspace", "--release", "--locked"])
        .args(&args.cargo_test_args))?;
    println!("xtask: {}", crate::leak_scan::summary(&leak_scans)?);
    Ok(())
}

pub fn up(args: UpArgs) -> Result<()> {
    let root = project_root();
    ensure_wasm_target()?;
    ensure_debian_packages(&[POSTGRESQL, SUDO])?;
    let db = start_local_postgres(&root, args.db_port)?;
    set_up_rollups(&root, &db, !args.without_rollups)?;
    // Keep Ctrl-C for the server: it stops, then we stop the database.
    ctrlc::set_handler(|| {}).context("install the Ctrl-C handler")?;
    let served = serve(&root, &db, &args);
    let stopped = db.stop("fast");
    served.and(stopped)
}

fn serve(root: &Path, db: &Cluster, args: &UpArgs) -> Result<()> {
    let api_key = development_key(root)?;
    println!(
        "xtask: the v2 reports' development key is {api_key} (kept in {DEV_KEY_FILE}):\n  \
         curl -H 'Authorization: Bearer {api_key}' 'http://{0}/api/v2/usage?tz=Europe/Berlin'\n\
         xtask: the dashboard is http://{0}/dashboard (sign in with that key)",
        args.listen
    );
    let variables = [
        ("SPIN_VARIABLE_API_KEYS", api_key),
        ("SPIN_VARIABLE_DB_USERNAME", "postgres".to_owned()),
        ("SPIN_VARIABLE_DB_PASSWORD", db.password()?),
        ("SPIN_VARIABLE_DB_HOST", "127.0.0.1".to_owned()),
        ("SPIN_VARIABLE_DB_PORT", db.port.to_string()),
        ("SPIN_VARIABLE_DB_NAME", "postgres".to_owned()),
    ];
    let mut command = match supported_spin().filter(|_| !args.test_host) {
        Some(version) => {
            println!("xtask: running `spin up --build` ({version})");
            // `--build` runs cargo: it gets the same clean environment.
            let mut spin = child_command("spin");
            spin.args(["up", "--build", "--listen", &args.listen])
                .args(["--runtime-config-file", RUNTIME_CONFIG]);
            spin
        }
        None => {
            println!(
                "xtask: no Spin CLI {SPIN_VERSIONS} on PATH (or --test-host given): running the \
                 component in the project's test host (tests/host), a stand-in for `spin up`"
            );
            println!(
                "xtask: building the component (wasm32-wasip2) and the test host (wasmtime, \
                 release): minutes on a fresh checkout, seconds after that"
            );
            build_component(root)?;
            let mut host = Command::new(build_host(root, false)?);
            host.args(["--from", "spin.toml", "--listen", &args.listen])
                .args(["--runtime-config-file", RUNTIME_CONFIG]);
            host
        }
    };
    // Variables go through the environment, as on SpinKube: a password on the
    // command line would show in `ps`.
    run(command.current_dir(root).envs(variables))
}

/// The version line of a Spin CLI on PATH that can run this component.
fn supported_spin() -> Option<String> {
    let output = Command::new("spin").arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let number = version.split_whitespace().nth(1)?;
    let mut parts = number.split('.').map(|part| part.parse::<u32>().ok());
    let (major, minor) = (parts.next()??, parts.next()??);
    let supported = (major == 3 && minor >= 4) || (major == 4 && minor == 0);
    if !supported {
        println!("xtask: found {version}, but this component needs Spin {SPIN_VERSIONS}");
    }
    supported.then_some(version)
}

/// Build the release wasm component, where `spin.toml` names it.
pub fn build_component(root: &Path) -> Result<()> {
    run(cargo_command().current_dir(root).args([
        "build",
        "--target",
        WASM_TARGET,
        "--release",
        "--locked",
        "-p",
        "coworking-analytics",
    ]))
}

/// Build the test host (release) and return its binary. cargo resolves the
/// dependencies' features anew for each selection of targets, and wasmtime
/// built for one selection is rebuilt for another, for minutes: `beside_tests`
/// builds every target of the workspace, as `cargo xtask test` has (the
/// benchmark, after the tests in CI, then only links the host and the
/// dashboard's timer, `dashboard-render`); otherwise the
/// host alone is built, which a first `cargo xtask up` waits for.
pub fn build_host(root: &Path, beside_tests: bool) -> Result<PathBuf> {
    let targets: &[&str] = if beside_tests {
        &["--workspace", "--all-targets"]
    } else {
        &["--workspace", "--bin", "spin-test-host"]
    };
    run(cargo_command()
        .current_dir(root)
        .args(["build", "--release", "--locked"])
        .args(targets))?;
    let host = root.join("target/release/spin-test-host");
    ensure!(host.exists(), "{} was not built", host.display());
    Ok(host)
}

pub fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("run rustup (install Rust with rustup)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|target| target == WASM_TARGET)
    {
        return Ok(());
    }
    println!("xtask: installing the {WASM_TARGET} target");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET])).context(
        "rustup could not add the target: it downloads it from static.rust-lang.org, \
         which must be reachable (or set RUSTUP_DIST_SERVER to a mirror)",
    )
}

/// A Debian package a task needs, and how to tell that it is there.
pub struct DebianPackage {
    name: &'static str,
    present: fn() -> bool,
}

/// The PostgreSQL 15 server, for the tests' and `up`'s databases.
pub const POSTGRESQL: DebianPackage = DebianPackage {
    name: "postgresql-15",
    present: || Path::new(POSTGRES_BIN).join("postgres").exists(),
};
/// PostgreSQL refuses to run as root: as root, it runs as `postgres` through sudo.
pub const SUDO: DebianPackage = DebianPackage {
    name: "sudo",
    present: || !is_root() || on_path("sudo"),
};
/// The tests unpack the runtime image with umoci, a real OCI implementation.
const UMOCI: DebianPackage = DebianPackage {
    name: "umoci",
    present: || on_path("umoci"),
};
/// The usage logger's script calls curl, as in its container: the deployment
/// checks run it with this machine's.
const CURL: DebianPackage = DebianPackage {
    name: "curl",
    present: || on_path("curl"),
};
/// Python's venv with pip, for the contract tools from PyPI
/// (`ensure_contract_tools`). Debian's python3 has the `venv` module without
/// the pip wheel that a new venv installs, which `python3-venv` brings: asking
/// ensurepip for that wheel's version tells them apart.
const PYTHON_VENV: DebianPackage = DebianPackage {
    name: "python3-venv",
    present: || {
        Command::new("python3")
            .args(["-c", "import ensurepip, venv; ensurepip.version()"])
            .output()
            .is_ok_and(|output| output.status.success())
    },
};
/// The dashboard's browser tests drive Debian's headless Chromium.
pub const CHROMIUM: DebianPackage = DebianPackage {
    name: "chromium",
    present: || Path::new("/usr/bin/chromium").exists(),
};
/// The benchmark's HTTP load generator.
pub const WRK: DebianPackage = DebianPackage {
    name: "wrk",
    present: || on_path("wrk"),
};

/// Install the missing Debian packages when we may (root with apt-get); say
/// what to install otherwise.
pub fn ensure_debian_packages(packages: &[DebianPackage]) -> Result<()> {
    let root = is_root();
    let missing: Vec<&str> = packages
        .iter()
        .filter(|package| !(package.present)())
        .map(|package| package.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    ensure!(
        root && on_path("apt-get"),
        "missing packages: {} (install them: sudo apt-get install {})",
        missing.join(", "),
        missing.join(" ")
    );
    println!("xtask: installing {}", missing.join(" "));
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    install().or_else(|_| {
        run(Command::new("apt-get").args(["update", "-q"]))?;
        install()
    })
}

/// The pinned contract tools, and the virtualenv they go into.
const CONTRACT_TOOLS: &str = "tests/contract-tools.txt";
const CONTRACT_VENV: &str = "target/contract-venv";

/// schemathesis, openapi-spec-validator and cfn-lint from PyPI, in a virtualenv under
/// `target/`; reinstalled only when `tests/contract-tools.txt` changes.
fn ensure_contract_tools(root: &Path) -> Result<()> {
    let wanted = fs::read_to_string(root.join(CONTRACT_TOOLS))
        .with_context(|| format!("read {CONTRACT_TOOLS}"))?;
    let venv = root.join(CONTRACT_VENV);
    let stamp = venv.join("installed-from.txt");
    if fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(());
    }
    println!("xtask: installing the contract tools of {CONTRACT_TOOLS} into {CONTRACT_VENV}");
    run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(root.join(CONTRACT_TOOLS)))?;
    fs::write(&stamp, wanted)?;
    Ok(())
}

/// Where `cargo xtask up` keeps its v2 key, beside its database.
const DEV_KEY_FILE: &str = ".dev/api-key";

/// The v2 key of `cargo xtask up`: random on first use, then the same, so that
/// a developer's saved requests keep working.
fn development_key(root: &Path) -> Result<String> {
    let path = root.join(DEV_KEY_FILE);
    if let Ok(key) = fs::read_to_string(&path) {
        return Ok(key.trim().to_owned());
    }
    let key = format!("dev-{}", random_hex(24)?);
    fs::create_dir_all(path.parent().expect("a file in .dev"))?;
    fs::write(&path, &key).with_context(|| format!("write {}", path.display()))?;
    Ok(key)
}

/// The developer's PostgreSQL in `.dev/postgres`, created with a random password
/// on first use, and seeded from `db/` until a seed has gone through (a first
/// start that failed, on a taken port for instance, leaves it unseeded).
fn start_local_postgres(root: &Path, port: u16) -> Result<Cluster> {
    let db = Cluster::new(root.join(".dev/postgres"), port);
    if !db.exists() {
        db.init(&random_hex(16).context("make a password")?)?;
    }
    db.start(&[])
        .context("pass --db-port to use another port")?;
    println!(
        "xtask: PostgreSQL 15 is up on 127.0.0.1:{port} (log: {})",
        db.log().display()
    );
    let seeded = db.dir().join("seeded");
    if !seeded.exists() {
        db.load_seed(root, "postgres")?;
        fs::write(&seeded, "")?;
        println!("xtask: loaded the seed data from db/");
    }
    Ok(db)
}

/// The migrations of `db/migrations/`: all applied (each is idempotent), so
/// that the reports take their fast path as in production; or, `without`,
/// rolled back in reverse order, so that the fallback over `tokens` can be tried.
fn set_up_rollups(root: &Path, db: &Cluster, apply: bool) -> Result<()> {
    let suffix = if apply { ".up.sql" } else { ".down.sql" };
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("db/migrations"))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|path| path.to_string_lossy().ends_with(suffix));
    files.sort();
    if !apply {
        files.reverse();
    }
    for file in &files {
        // In the zone the service reads the data in: its db_timezone, UTC here.
        db.psql_migration(file, "postgres", "UTC")?;
    }
    let names: Vec<String> = files
        .iter()
        .filter_map(|file| Some(file.file_name()?.to_string_lossy().into_owned()))
        .collect();
    if apply {
        println!(
            "xtask: applied the report rollups ({}); --without-rollups rolls them back",
            names.join(", ")
        );
    } else {
        println!(
            "xtask: rolled the report rollups back ({}): the reports read the tokens table",
            names.join(", ")
        );
    }
    Ok(())
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buffer = vec![0u8; bytes];
    fs::File::open("/dev/urandom")?.read_exact(&mut buffer)?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false)
}

pub fn run(command: &mut Command) -> Result<()> {
    let started = Instant::now();
    let status: ExitStatus = command
        .status()
        .with_context(|| format!("start {:?}", command.get_program()))?;
    if !status.success() {
        bail!(
            "{:?} {:?} failed ({status}) after {:.1?}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            started.elapsed()
        );
    }
    Ok(())
}

/// A cargo command for the build, without the variables that `cargo run` set
/// for xtask itself. A cargo started with them passes them on to build
/// scripts: `ring`'s sees `CARGO_MANIFEST_DIR` and the `CARGO_PKG_*` of xtask
/// instead of none, and every switch between a plain `cargo build` and
/// `cargo xtask` rebuilds ring, rustls, wasmtime-wasi-http and the host.
pub fn cargo_command() -> Command {
    child_command(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// A program that runs cargo (cargo itself, `spin up --build`), without the
/// variables of [`is_set_by_cargo_run`].
fn child_command(program: &str) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_by_cargo_run) {
            command.env_remove(name);
        }
    }
    command
}

/// The variables cargo sets for the program that `cargo run` starts, about that
/// program's package. `CARGO` (the cargo binary) and the user's own `CARGO_*`
/// settings (`CARGO_HOME`, `CARGO_TARGET_DIR`, ...) are kept.
fn is_set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
}

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the project root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The development key is a usable Bearer key, made once and then kept.
    #[test]
    fn the_development_key_is_made_once() {
        let root = tempfile::tempdir().unwrap();
        let key = development_key(root.path()).unwrap();
        assert!(key.starts_with("dev-") && key.len() == 52, "{key}");
        assert!(coworking_analytics::v2::access::ApiKeys::parse(&key)
            .is_some_and(|keys| !keys.is_empty()));
        assert_eq!(development_key(root.path()).unwrap(), key);
    }

    /// `cargo xtask` shows cargo's progress: a first build takes minutes.
    #[test]
    fn the_alias_does_not_hide_cargos_progress() {
        let config = fs::read_to_string(project_root().join(".cargo/config.toml")).unwrap();
        let config: toml::Table = config.parse().unwrap();
        let alias = config["alias"]["xtask"].as_str().unwrap();
        assert!(
            !alias.contains("--quiet") && !alias.contains(" -q"),
            "{alias}"
        );
    }

    /// `up` applies the migrations by default, and rolls them back with
    /// `--without-rollups`; both run again without harm.
    #[test]
    fn up_applies_the_rollups_or_rolls_them_back() {
        let root = project_root();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("cluster");
        let db = Cluster::new(&dir, crate::postgres::free_port().unwrap());
        db.init("up-rollups-test").unwrap();
        db.start(&[]).unwrap();
        let has_rollups = || {
            let output = db
                .client("psql", "postgres")
                .unwrap()
                .args([
                    "-tAc",
                    "SELECT to_regclass('analytics.daily_used_tokens') IS NOT NULL",
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&output.stdout).trim() == "t"
        };
        let outcome = (|| -> Result<Vec<bool>> {
            db.load_seed(&root, "postgres")?;
            let mut seen = vec![has_rollups()];
            for apply in [true, true, false, false, true] {
                set_up_rollups(&root, &db, apply)?;
                seen.push(has_rollups());
            }
            Ok(seen)
        })();
        let _ = db.stop("immediate");
        assert_eq!(outcome.unwrap(), [false, true, true, false, false, true]);
    }

    /// `cargo test` sets these for the test binary, as `cargo run` does for xtask.
    #[test]
    fn child_cargo_commands_drop_what_cargo_run_set_for_xtask() {
        let command = cargo_command();
        let removed: Vec<String> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        for name in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PKG_VERSION"] {
            assert!(
                std::env::var_os(name).is_some(),
                "cargo sets {name} for tests"
            );
            assert!(
                removed.iter().any(|r| r == name),
                "{name} is passed on: {removed:?}"
            );
        }
        assert!(
            !removed.iter().any(|r| r == "CARGO"),
            "CARGO names cargo itself"
        );
        assert!(is_set_by_cargo_run("CARGO_PKG_VERSION_MAJOR"));
        for kept in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_TERM_COLOR",
        ] {
            assert!(!is_set_by_cargo_run(kept), "{kept}");
        }
    }
}
