//! `spawn_app()`: a fresh PostgreSQL and a running component for one test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgtemp::{PgTempDB, PgTempDBBuilder};
use spin_test_host::{HostBuilder, RunningHost};
use tokio_postgres::{Client, NoTls};

const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser's password: full of characters that break naive connection URLs.
pub const SUPERUSER_PASSWORD: &str = "s3cret p@ss:w/rd#?&%'\"é";

pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn component_path() -> PathBuf {
    let wasm = project_root().join("target/wasm32-wasip2/release/coworking_analytics.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: run `cargo xtask test`, or build it with \
         `cargo build --target wasm32-wasip2 --release -p coworking-analytics`",
        wasm.display()
    );
    wasm
}

/// What a test database starts with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// The tables of `db/1_create_tables.sql`, empty.
    Schema,
    /// The tables and the seed users and tokens of `db/`.
    Seed,
}

/// A PostgreSQL 15 cluster in a temporary directory, with password (SCRAM)
/// authentication on a free loopback port. It can be stopped and started again.
pub struct TestDatabase {
    server: PgTempDB,
    /// True while a server started by `start()` (not by pgtemp) is running.
    restarted: bool,
}

impl TestDatabase {
    pub async fn new(data: Data) -> TestDatabase {
        let server = tokio::task::spawn_blocking(|| {
            PgTempDBBuilder::new()
                .with_bin_path(POSTGRES_BIN)
                .with_username("postgres")
                .with_password(SUPERUSER_PASSWORD)
                .with_initdb_arg("auth", "scram-sha-256")
                // Logs go to files: pgtemp pipes the server's stderr and reads it
                // only at shutdown, so a chatty server would block on a full pipe.
                .with_config_param("logging_collector", "on")
                .start()
        })
        .await
        .expect("start PostgreSQL");
        let db = TestDatabase {
            server,
            restarted: false,
        };
        let client = db.client().await;
        let mut files = vec!["1_create_tables.sql"];
        if data == Data::Seed {
            files.extend(["2_seed_users.sql", "3_seed_tokens.sql"]);
        }
        for file in files {
            let sql = std::fs::read_to_string(project_root().join("db").join(file))
                .unwrap_or_else(|err| panic!("read db/{file}: {err}"));
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|err| panic!("load db/{file}: {err}"));
        }
        db
    }

    pub fn port(&self) -> u16 {
        self.server.db_port()
    }

    /// A superuser connection, retried while the server is still starting.
    pub async fn client(&self) -> Client {
        let config = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres password='{}'",
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
        let up = project_root().join("db/migrations/001_report_rollups.up.sql");
        self.execute(&std::fs::read_to_string(up).expect("read the rollups migration"))
            .await;
    }

    pub async fn execute(&self, sql: &str) {
        self.client()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    /// Stop the server (fast shutdown: sessions are cut, as in a crash or failover).
    pub async fn stop(&mut self) {
        self.pg_ctl(&["stop", "-m", "fast"]).await;
        self.restarted = false;
    }

    /// Start the stopped server again, on the same port with the same data.
    pub async fn start(&mut self) {
        let data_dir = self.server.data_dir();
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
            .arg(self.server.data_dir())
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

/// PostgreSQL refuses to run as root; pgtemp runs it as `postgres` through sudo.
fn as_postgres_user(program: &Path) -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("sudo");
        command.args(["-u", "postgres"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A running component with its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub host: RunningHost,
    pub http: reqwest::Client,
}

/// The component over the seed data, configured as the SpinKube operator would.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Data::Seed).await
}

pub async fn spawn_app_with(data: Data) -> TestApp {
    let db = TestDatabase::new(data).await;
    let variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    spawn_app_on(db, &variables).await
}

/// The `SPIN_VARIABLE_*` environment that points the component at `db`.
pub fn db_variables(db: &TestDatabase, user: &str, password: &str) -> Vec<(String, String)> {
    vec![
        ("SPIN_VARIABLE_DB_USERNAME".into(), user.into()),
        ("SPIN_VARIABLE_DB_PASSWORD".into(), password.into()),
        ("SPIN_VARIABLE_DB_HOST".into(), "127.0.0.1".into()),
        ("SPIN_VARIABLE_DB_PORT".into(), db.port().to_string()),
        ("SPIN_VARIABLE_DB_NAME".into(), "postgres".into()),
    ]
}

/// The component with exactly this environment, over `db`.
pub async fn spawn_app_on(db: TestDatabase, environment: &[(String, String)]) -> TestApp {
    start_app(db, host_builder(environment)).await
}

/// The component in the host that `host` configures, over `db`.
pub async fn start_app(db: TestDatabase, host: HostBuilder) -> TestApp {
    let host = host
        .start()
        .await
        .expect("start the component in the test host");
    TestApp {
        address: host.base_url(),
        db,
        host,
        http: reqwest::Client::new(),
    }
}

/// The host for the shipped `spin.toml` and the built component, reading the
/// variables from `environment` only, with the component's output captured.
pub fn host_builder(environment: &[(String, String)]) -> HostBuilder {
    HostBuilder::new(project_root().join("spin.toml"))
        .wasm(component_path())
        .environment(environment.iter().cloned())
        .capture_logs()
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path).await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.address))
            .send()
            .await
            .expect("send request")
    }

    /// Status and body text of a GET.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("read body"))
    }
}
