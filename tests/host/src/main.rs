//! `spin-test-host`: serve a Spin HTTP app like `spin up`, for tests, local runs and
//! benchmarks where no Spin CLI can be installed. Not a production runtime.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use spin_test_host::HostBuilder;

/// Serve a Spin HTTP app (spin.toml) the way `spin up` does, for the interfaces
/// Coworking Analytics uses. A test and benchmark tool, not a production runtime:
/// use Spin or SpinKube to run the service.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// An application variable, as `name=value` (repeatable). `SPIN_VARIABLE_<NAME>`
    /// environment variables are read too.
    #[arg(long = "variable", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// Print each request's method, path, status and duration to stderr (Spin
    /// does not; it costs the benchmarks).
    #[arg(long)]
    log_requests: bool,
    /// The most linear memory one instance may grow to, in bytes, as Spin's
    /// `--max-instance-memory` (default: SPIN_MAX_INSTANCE_MEMORY, which the
    /// shim reads; no limit without either).
    #[arg(long, value_name = "BYTES")]
    max_instance_memory: Option<usize>,
    /// Spin's runtime config (key-value stores), as `spin up --runtime-config-file`.
    #[arg(long, value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| "expected name=value".to_owned())
}

#[tokio::main]
async fn main() {
    if let Err(err) = run(Args::parse()).await {
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let mut builder = HostBuilder::new(&args.manifest).listen(args.listen);
    if args.log_requests {
        builder = builder.log_requests();
    }
    let max_instance_memory = match args.max_instance_memory {
        Some(bytes) => Some(bytes),
        None => std::env::var("SPIN_MAX_INSTANCE_MEMORY")
            .ok()
            .map(|bytes| {
                bytes
                    .parse()
                    .context("SPIN_MAX_INSTANCE_MEMORY is a number of bytes")
            })
            .transpose()?,
    };
    if let Some(bytes) = max_instance_memory {
        builder = builder.max_instance_memory(bytes);
    }
    if let Some(file) = &args.runtime_config_file {
        builder = builder.runtime_config(file);
    }
    for (name, value) in &args.variables {
        builder = builder.variable(name, value);
    }
    let host = builder.start().await?;
    println!("Serving {}", host.base_url());
    println!("Available Routes:\n  {}/... (wildcard)", host.base_url());

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listen for SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    // Benchmarks read this line.
    println!(
        "peak instance memory: {} bytes",
        host.peak_instance_memory()
    );
    host.shutdown().await;
    Ok(())
}
