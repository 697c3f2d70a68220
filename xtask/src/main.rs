//! Project tasks, run as `cargo xtask <task>`: the commands the README starts with,
//! in one place that CI and people share.

mod dev;

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Up(args) => dev::up(args),
        Task::Test(args) => dev::test(args),
    }
}
