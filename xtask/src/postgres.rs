//! A PostgreSQL 15 cluster of Debian's packages in a directory of its own:
//! password (SCRAM) authentication, listening on loopback only. `up` keeps one in
//! `.dev/postgres`; the benchmark makes a throwaway one.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

use crate::dev::{is_root, run};

pub const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A cluster: `dir/data` (the data directory), `dir/password`, `dir/postgres.log`.
pub struct Cluster {
    dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    pub fn new(dir: impl Into<PathBuf>, port: u16) -> Cluster {
        Cluster {
            dir: dir.into(),
            port,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn password_file(&self) -> PathBuf {
        self.dir.join("password")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Whether `init` already ran here.
    pub fn exists(&self) -> bool {
        self.data_dir().join("PG_VERSION").exists()
    }

    pub fn password(&self) -> Result<String> {
        fs::read_to_string(self.password_file()).context("read the database password")
    }

    /// `initdb` with the superuser `postgres` and this password.
    pub fn init(&self, password: &str) -> Result<()> {
        fs::create_dir_all(&self.dir)?;
        fs::write(self.password_file(), password)?;
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.dir))?;
        }
        run(server_command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["--username=postgres", "--auth=scram-sha-256", "--pwfile"])
            .arg(self.password_file())
            .stdout(Stdio::null()))
    }

    /// Start the server; `settings` are extra `name=value` server settings.
    pub fn start(&self, settings: &[&str]) -> Result<()> {
        ensure!(
            TcpListener::bind(("127.0.0.1", self.port)).is_ok(),
            "port {} is taken (another PostgreSQL?)",
            self.port
        );
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={}",
            self.port,
            self.dir.display()
        );
        for setting in settings {
            options += &format!(" -c {setting}");
        }
        run(self
            .pg_ctl()
            .args(["start", "-w", "-l"])
            .arg(self.log())
            .args(["-o", &options])
            .stdout(Stdio::null()))
    }

    /// Stop the server: `fast` ends the sessions, `immediate` does not wait for them.
    pub fn stop(&self, mode: &str) -> Result<()> {
        run(self
            .pg_ctl()
            .args(["stop", "-w", "-m", mode])
            .stdout(Stdio::null()))
    }

    /// A client program (`psql`, `pgbench`) connected to `database` as `postgres`.
    pub fn client(&self, program: &str, database: &str) -> Result<Command> {
        let mut command = Command::new(Path::new(POSTGRES_BIN).join(program));
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGPASSWORD", self.password()?)
            .env("PGDATABASE", database)
            // The migrations' "already exists, skipping" are not news.
            .env("PGOPTIONS", "-c client_min_messages=warning");
        Ok(command)
    }

    pub fn psql(&self, sql: &str, database: &str) -> Result<()> {
        run(self
            .client("psql", database)?
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdout(Stdio::null()))
    }

    /// The one value that `sql` selects, as psql prints it.
    pub fn psql_value(&self, sql: &str, database: &str) -> Result<String> {
        let output = self
            .client("psql", database)?
            .args(["-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()?;
        ensure!(output.status.success(), "psql: {sql}");
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub fn psql_file(&self, file: &Path, database: &str) -> Result<()> {
        self.run_psql_file(&mut self.client("psql", database)?, file)
    }

    /// Run a migration of `db/migrations/` as its README says: in a session
    /// whose zone (PGTZ) is the one the API writes in, `zone`.
    pub fn psql_migration(&self, file: &Path, database: &str, zone: &str) -> Result<()> {
        self.run_psql_file(self.client("psql", database)?.env("PGTZ", zone), file)
    }

    fn run_psql_file(&self, psql: &mut Command, file: &Path) -> Result<()> {
        run(psql
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(file)
            .stdout(Stdio::null()))
        .with_context(|| format!("run {}", file.display()))
    }

    /// The tables of `db/`, with the seed users and tokens.
    /// The schema, then `users` and `tokens` made by `db/bench/generate.sql`.
    pub fn load_generated(&self, root: &Path, users: u64, tokens: u64) -> Result<()> {
        self.psql_file(&root.join("db/1_create_tables.sql"), "postgres")?;
        run(self
            .client("psql", "postgres")?
            .args(["-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-v", &format!("users={users}")])
            .args(["-v", &format!("tokens={tokens}"), "-f"])
            .arg(root.join("db/bench/generate.sql"))
            .stdout(Stdio::null()))
    }

    pub fn load_seed(&self, root: &Path, database: &str) -> Result<()> {
        for file in [
            "1_create_tables.sql",
            "2_seed_users.sql",
            "3_seed_tokens.sql",
        ] {
            self.psql_file(&root.join("db").join(file), database)?;
        }
        Ok(())
    }

    fn pg_ctl(&self) -> Command {
        let mut command = server_command("pg_ctl");
        command.arg("-D").arg(self.data_dir());
        command
    }
}

/// A loopback port that nothing listens on now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server program, run as `postgres` when we are root: PostgreSQL refuses to
/// run as root.
fn server_command(program: &str) -> Command {
    let path = Path::new(POSTGRES_BIN).join(program);
    if is_root() {
        let mut command = Command::new("sudo");
        command.args(["-u", "postgres"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}
