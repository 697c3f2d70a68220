//! `cargo xtask soak` runs this: the release component in the test host
//! (a child process) against a PostgreSQL that xtask started and loaded,
//! through a fault-injecting proxy, under the mix of `reference` at 64
//! connections. On a schedule it adds latency, black-holes, resets and
//! refuses connections, and restarts PostgreSQL with fast and immediate
//! shutdown. It prints a table of what every phase got, and fails unless:
//! every 200 is the reference; outside the faults nothing fails; inside
//! them only 503s (readiness's 500) come, each within 5 s but for the black
//! hole, which Spin cannot bound (its requests must end once it ends); the
//! failures end within 1 s of each fault's end; the host's memory at
//! the end is within 10 % of its memory after the first round; the service's
//! PostgreSQL connections stay within its two pools of 64 (readiness's address
//! and the reports'); the host never exits; and no answer or log line carries
//! the password or the key.

mod load;
mod reference;
mod schedule;
mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use spin_test_host::LeakScan;
use test_support::FaultProxy;
use tokio::sync::watch;

use crate::load::Load;
use crate::reference::Reference;
use crate::schedule::Schedule;
use crate::verdict::{Resources, Verdict};

#[derive(Parser)]
struct Args {
    /// The test host binary (target/release/spin-test-host).
    #[arg(long)]
    host: PathBuf,
    /// The project root: spin.toml and the built component.
    #[arg(long)]
    root: PathBuf,
    /// PostgreSQL, as xtask started it.
    #[arg(long)]
    pg_port: u16,
    #[arg(long)]
    pg_data: PathBuf,
    /// The database password: a marker the answers must never carry.
    #[arg(long, env = "SOAK_PG_PASSWORD", hide_env_values = true)]
    pg_password: String,
    /// The v2 key: a marker too.
    #[arg(long, env = "SOAK_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Seconds of each fault.
    #[arg(long, default_value_t = 10)]
    fault_seconds: u64,
    /// Seconds without a fault between two.
    #[arg(long, default_value_t = 20)]
    pass_seconds: u64,
    /// Rounds of every fault.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// At most this many requests in all.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    #[arg(long, default_value_t = 64)]
    connections: usize,
}

#[tokio::main]
async fn main() {
    if let Err(err) = run(Args::parse()).await {
        eprintln!("soak: {err:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let database = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres password='{}'",
        args.pg_port,
        args.pg_password.replace('\\', "\\\\").replace('\'', "\\'")
    );
    let connect = move |application: &'static str| {
        let config = format!("{database} application_name={application}");
        async move { tokio_postgres::connect(&config, tokio_postgres::NoTls).await }
    };
    let (client, connection) = connect("soak-reference")
        .await
        .context("connect to PostgreSQL")?;
    tokio::spawn(connection);
    let started = Instant::now();
    let reference = Arc::new(Reference::compute(&client).await?);
    drop(client);
    println!(
        "soak: the reference by plain SQL in {:.1?}",
        started.elapsed()
    );

    let proxy = FaultProxy::start(([127, 0, 0, 1], args.pg_port).into()).await;
    let port = free_port()?;
    let log = args.root.join("target/soak/host.log");
    let host = Host::start(&args, proxy.port(), port, &log)?;
    let base_url = format!("http://127.0.0.1:{port}");
    host.wait_until_serving(&base_url).await?;

    let scan = LeakScan::new([
        ("db_password", args.pg_password.as_str()),
        ("api_keys", args.api_key.as_str()),
    ]);
    let (stop, stopped) = watch::channel(false);
    let load = Load {
        base_url,
        key: args.api_key.clone(),
        connections: args.connections,
        budget: args.requests,
    };
    let answers = tokio::spawn(load.run(reference, scan.clone(), stopped));
    let monitor = tokio::spawn(schedule::count_connections(connect, stop.subscribe()));

    let schedule = Schedule {
        fault: Duration::from_secs(args.fault_seconds),
        pass: Duration::from_secs(args.pass_seconds),
        rounds: args.rounds,
        pg_data: args.pg_data.clone(),
    };
    let warm = schedule.warm_up().await;
    let rss_series = Arc::new(std::sync::Mutex::new(vec![host.rss_kib()?]));
    let sampler = {
        let (pid, series) = (host.child.id(), rss_series.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let Ok(kib) = rss_kib(pid) else { return };
                series.lock().expect("the RSS series").push(kib);
            }
        })
    };
    let (windows, rss_warm) = schedule.run(&proxy, || host.rss_kib()).await?;
    let rss_warm = rss_warm.context("no round ran")??;
    stop.send_replace(true);
    let answers = answers.await?;
    let rss_end = host.rss_kib()?;
    sampler.abort();
    let rss_series = rss_series.lock().expect("the RSS series").clone();
    let connections = monitor.await??;
    let log_text = std::fs::read(&log).unwrap_or_default();
    scan.scan("the host's log", &log_text);
    let host_alive = host.stop();

    let resources = Resources {
        rss: (rss_warm, rss_end),
        rss_series,
        connections,
        host_alive,
    };
    let verdict = Verdict::new(warm, &windows, &answers, resources, scan.report());
    verdict.print();
    if !verdict.failures.is_empty() {
        bail!(
            "{} checks failed:\n  {}",
            verdict.failures.len(),
            verdict.failures.join("\n  ")
        );
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A process's resident memory, from /proc.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/<pid>/status")
}

/// The test host binary, as `spin up` would run the component.
struct Host {
    child: std::process::Child,
}

impl Host {
    fn start(args: &Args, db_port: u16, port: u16, log: &std::path::Path) -> Result<Host> {
        std::fs::create_dir_all(log.parent().expect("a file in a directory"))?;
        let output = std::fs::File::create(log)?;
        let variables = [
            ("db_host", "127.0.0.1".to_owned()),
            ("db_port", db_port.to_string()),
            ("db_username", "postgres".to_owned()),
            ("db_name", "postgres".to_owned()),
        ];
        let mut command = std::process::Command::new(&args.host);
        command
            .current_dir(&args.root)
            .args(["-f", "spin.toml", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--max-instance-memory", &(64u64 << 20).to_string()])
            // The secrets through the environment, as the operator passes them.
            .env("SPIN_VARIABLE_DB_PASSWORD", &args.pg_password)
            .env("SPIN_VARIABLE_API_KEYS", &args.api_key)
            .stdout(output.try_clone()?)
            .stderr(output);
        for (name, value) in variables {
            command.args(["--variable", &format!("{name}={value}")]);
        }
        let child = command
            .spawn()
            .with_context(|| format!("run {}", args.host.display()))?;
        Ok(Host { child })
    }

    async fn wait_until_serving(&self, base_url: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::get(format!("{base_url}/readiness_check")).await {
                if response.status() == 200 {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("the host did not get ready within 60 s")
    }

    fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.child.id())
    }

    /// Stop it; whether it was still running.
    fn stop(mut self) -> bool {
        let alive = matches!(self.child.try_wait(), Ok(None));
        let _ = self.child.kill();
        let _ = self.child.wait();
        alive
    }
}
