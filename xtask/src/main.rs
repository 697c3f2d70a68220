//! Project tasks, run as `cargo xtask <task>`: the commands the README starts with,
//! and the steps of the release pipeline, in one place that CI and people share.

mod bench;
#[cfg(test)]
mod buildspec;
mod dev;
mod image;
mod leak_scan;
mod postgres;
mod release;
#[cfg(test)]
mod self_contained;
mod soak;
mod vendor;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Coworking Analytics project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Start a local PostgreSQL loaded with the seed data, then serve the component
    /// (`spin up --build` when a Spin 3.4–4.0.x is on PATH, the project's test host otherwise).
    Up(dev::UpArgs),
    /// Build the wasm component and run every test.
    Test(dev::TestArgs),
    /// Build the arm64 runtime image: its Docker build context, and the same image
    /// as an OCI image layout, without Docker.
    Image(image::ImageArgs),
    /// Print the image tags of this build (version, version-build.N, short commit).
    Tags(release::TagsArgs),
    /// Benchmark the service next to PostgreSQL's own time for the same SQL,
    /// without and with the report rollups, and the rollups' cost on writes.
    Bench(bench::BenchArgs),
    /// Soak the release component under a mixed load at 64 connections while a
    /// proxy adds latency, black-holes, resets and refuses PostgreSQL's
    /// connections and PostgreSQL restarts; every answer checked (`--smoke`: a minute).
    Soak(soak::SoakArgs),
    /// Vendor the dashboard's chart library from npm, as `src/dashboard/vendor/vendor.toml`
    /// pins it (`--check`: compare the checked-in files with the package's).
    Vendor(vendor::VendorArgs),
}

fn main() {
    let result = match Cli::parse().task {
        Task::Up(args) => dev::up(args),
        Task::Test(args) => dev::test(args),
        Task::Image(args) => image::build(args),
        Task::Tags(args) => release::tags(args),
        Task::Bench(args) => bench::bench(args),
        Task::Soak(args) => soak::soak(args),
        Task::Vendor(args) => vendor::vendor(args),
    };
    // The message and its causes; a backtrace (RUST_BACKTRACE) helps no user here.
    if let Err(err) = result {
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}
