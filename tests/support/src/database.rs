//! A PostgreSQL 15 cluster in a temporary directory (the `pgtemp` crate), with
//! password (SCRAM) authentication on a free loopback port, loaded with the
//! project's schema and seed. It can be stopped and started again, and serve TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgtemp::{PgTempDB, PgTempDBBuilder};
use tokio_postgres::{Client, NoTls};

use crate::{db_file, project_root};

/// Debian's PostgreSQL 15 (the package `postgresql-15`, which `cargo xtask test`
/// installs).
pub const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser's password: full of characters that break naive connection URLs.
pub const SUPERUSER_PASSWORD: &str = "s3cret p@ss:w/rd#?&%'\"é";

/// What a test database starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// Nothing: an empty cluster (for scripts that create the tables).
    Empty,
    /// The tables of `db/1_create_tables.sql`, empty.
    Schema,
    /// The tables and the seed users and tokens of `db/`.
    Seed,
}

impl Data {
    /// The files of `db/` that make this data, in order.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Data::Empty => &[],
            Data::Schema => &["1_create_tables.sql"],
            Data::Seed => &[
                "1_create_tables.sql",
                "2_seed_users.sql",
                "3_seed_tokens.sql",
            ],
        }
    }
}

/// A throwaway PostgreSQL 15 server. Dropping it stops the server and removes
/// its directory.
pub struct TestDatabase {
    server: PgTempDB,
    /// True while a server started by `start()` (not by pgtemp) is running.
    restarted: bool,
}

impl TestDatabase {
    /// A new cluster holding `data`.
    pub async fn new(data: Data) -> TestDatabase {
        let db = tokio::task::spawn_blocking(TestDatabase::empty)
            .await
            .expect("start PostgreSQL");
        if data != Data::Empty {
            let client = db.client().await;
            for file in data.files() {
                client
                    .batch_execute(&db_file(file))
                    .await
                    .unwrap_or_else(|err| panic!("load db/{file}: {err}"));
            }
        }
        db
    }

    /// A new, empty cluster, for tests without an async runtime.
    pub fn empty() -> TestDatabase {
        let server = PgTempDBBuilder::new()
            .with_bin_path(POSTGRES_BIN)
            .with_username("postgres")
            .with_password(SUPERUSER_PASSWORD)
            .with_initdb_arg("auth", "scram-sha-256")
            // Logs go to files: pgtemp pipes the server's stderr and reads it
            // only at shutdown, so a chatty server would block on a full pipe.
            .with_config_param("logging_collector", "on")
            .start();
        TestDatabase {
            server,
            restarted: false,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.db_port()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.server.data_dir()
    }

    /// A superuser connection, retried while the server is still starting.
    pub async fn client(&self) -> Client {
        self.client_to("postgres").await
    }

    /// A superuser connection to `database`.
    pub async fn client_to(&self, database: &str) -> Client {
        let config = format!(
            "host=127.0.0.1 port={} user=postgres dbname={database} password='{}'",
            self.port(),
            SUPERUSER_PASSWORD
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match tokio_postgres::connect(&config, NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return client;
                }
                Err(err) if Instant::now() > deadline => panic!("connect to test database: {err}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Apply the report rollups migration of `db/migrations/`.
    pub async fn apply_rollups(&self) {
        self.execute(&rollups_migration()).await;
    }

    /// Apply the report rollups migration as its README says, with the
    /// session's zone (PGTZ) the one in which the API writes: `zone`.
    pub async fn apply_rollups_written_in(&self, zone: &str) {
        self.execute(&format!(
            "SET TimeZone = '{zone}';\n{}",
            rollups_migration()
        ))
        .await;
    }

    pub async fn execute(&self, sql: &str) {
        self.client()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    /// A client program of PostgreSQL's (`psql`, `pgbench`) that connects to
    /// `database` as `user`, with the connection in PG* variables.
    pub fn client_command(
        &self,
        program: &str,
        user: &str,
        password: &str,
        database: &str,
    ) -> Command {
        let mut command = Command::new(Path::new(POSTGRES_BIN).join(program));
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port().to_string())
            .env("PGUSER", user)
            .env("PGPASSWORD", password)
            .env("PGDATABASE", database);
        command
    }

    /// Serve TLS with this certificate and key (PEM), from now on: the settings
    /// are reloaded, as `ALTER SYSTEM` and `pg_reload_conf()` do in production.
    pub async fn enable_tls(&self, certificate: &str, key: &str) {
        let dir = self.data_dir();
        let (cert_file, key_file) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&cert_file, certificate).expect("write the server certificate");
        std::fs::write(&key_file, key).expect("write the server key");
        // PostgreSQL reads its key only when the server's user owns it, mode 0600.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .arg("postgres")
                .args([&cert_file, &key_file])
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the TLS files to postgres");
        }
        // One statement at a time: ALTER SYSTEM refuses to run in the implicit
        // transaction of a multi-statement query.
        for statement in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert_file.display()),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", key_file.display()),
            "ALTER SYSTEM SET ssl = on".to_string(),
            "SELECT pg_reload_conf()".to_string(),
        ] {
            self.execute(&statement).await;
        }
        // The reload is asynchronous: wait until new sessions see it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.setting("ssl").await != "on" {
            assert!(Instant::now() < deadline, "the server did not turn TLS on");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn setting(&self, name: &str) -> String {
        let row = self
            .client()
            .await
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .expect("read a setting");
        row.get(0)
    }

    /// Stop the server (fast shutdown: sessions are cut, as in a crash or failover).
    pub async fn stop(&mut self) {
        self.pg_ctl(&["stop", "-m", "fast"]).await;
        self.restarted = false;
    }

    /// Start the stopped server again, on the same port with the same data.
    pub async fn start(&mut self) {
        let data_dir = self.data_dir();
        let options = format!(
            "-c port={} -c unix_socket_directories={} -c fsync=off",
            self.port(),
            data_dir.display()
        );
        // With a log file, pg_ctl hands the server no pipe of ours to hold open.
        let log = data_dir.join("restarted.log");
        self.pg_ctl(&["start", "-l", &log.display().to_string(), "-o", &options])
            .await;
        self.restarted = true;
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let mut command = tokio::process::Command::from(self.pg_ctl_command(args));
        let status = command.status().await.expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed ({status})");
    }

    fn pg_ctl_command(&self, args: &[&str]) -> Command {
        let mut command = as_postgres_user(&Path::new(POSTGRES_BIN).join("pg_ctl"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-w")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // pgtemp stops the server it started; one started by `start()` is ours.
        if self.restarted {
            // Nothing to report from a failed stop while the test ends anyway.
            let _ = self
                .pg_ctl_command(&["stop", "-m", "immediate"])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// PostgreSQL refuses to run as root; as root, its programs run as `postgres`
/// through sudo (as pgtemp runs them).
pub fn as_postgres_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("sudo");
        command.args(["-u", "postgres"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn rollups_migration() -> String {
    let up = project_root().join("db/migrations/001_report_rollups.up.sql");
    std::fs::read_to_string(up).expect("read the rollups migration")
}
