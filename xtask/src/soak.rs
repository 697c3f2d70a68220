//! `cargo xtask soak`: a PostgreSQL 15 loaded with `db/bench/generate.sql`'s
//! data and the rollups, then the soak (`tests/soak`, the `soak` binary):
//! the release component in the test host under a mixed load, through a
//! fault-injecting proxy and PostgreSQL restarts. The database password and
//! the key are markers the soak scans every answer and log line for.

use std::fs;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::dev::{
    build_component, build_host, ensure_debian_packages, ensure_wasm_target, project_root, run,
    POSTGRESQL, SUDO,
};
use crate::postgres::{free_port, Cluster};

const PASSWORD: &str = "soak-Pa55word.M4rk3r!";
const API_KEY: &str = "soak-key.M4rk3r~1";

#[derive(clap::Args)]
pub struct SoakArgs {
    /// About a minute, for CI: 20 k tokens, 2 rounds of 4 s faults and 3 s
    /// passes (the first round is the memory's warm-up). Without it: M (1 M tokens, 10 k members), 3 rounds of 10 s
    /// faults and 20 s passes, about 10 minutes and 10^5 requests or more.
    #[arg(long)]
    smoke: bool,
    /// Rounds of every fault.
    #[arg(long)]
    rounds: Option<usize>,
    /// At most this many requests in all.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
}

pub fn soak(args: SoakArgs) -> Result<()> {
    let root = project_root();
    ensure_wasm_target()?;
    ensure_debian_packages(&[POSTGRESQL, SUDO])?;
    build_component(&root)?;
    // Every workspace target, the soak's binary among them, as the tests build them.
    let host = build_host(&root, true)?;
    let soak = host.with_file_name("soak");

    let dir = root.join("target/soak");
    let cluster = Cluster::new(dir.join("postgres"), free_port()?);
    if cluster.dir().exists() {
        fs::remove_dir_all(cluster.dir()).context("remove the last soak's database")?;
    }
    cluster.init(PASSWORD)?;
    cluster.start(&["max_connections=100"])?;
    let result = (|| {
        let (users, tokens, rounds, fault, pass) = if args.smoke {
            (200, 20_000, 2, 4, 3)
        } else {
            (10_000, 1_000_000, 3, 10, 20)
        };
        let started = Instant::now();
        cluster.load_generated(&root, users, tokens)?;
        cluster.psql_migration(
            &root.join("db/migrations/001_report_rollups.up.sql"),
            "postgres",
            "UTC",
        )?;
        cluster.psql("VACUUM ANALYZE", "postgres")?;
        println!(
            "xtask: {users} members and {tokens} tokens with the rollups, in {:.0?}",
            started.elapsed()
        );
        run(Command::new(&soak)
            .current_dir(&root)
            .args(["--host".as_ref(), host.as_os_str()])
            .args(["--root".as_ref(), root.as_os_str()])
            .args(["--pg-port", &cluster.port.to_string()])
            .args(["--pg-data".as_ref(), cluster.data_dir().as_os_str()])
            .args(["--rounds", &args.rounds.unwrap_or(rounds).to_string()])
            .args(["--fault-seconds", &fault.to_string()])
            .args(["--pass-seconds", &pass.to_string()])
            .args(["--requests", &args.requests.to_string()])
            .env("SOAK_PG_PASSWORD", PASSWORD)
            .env("SOAK_API_KEY", API_KEY))
    })();
    let stopped = cluster.stop("fast");
    result.and(stopped)
}
