//! The PostgreSQL scripts of `deployment/postgres/`, run with `psql` against a
//! throwaway PostgreSQL 15 of `test_support`, as the API tests use: the seed job's
//! script, taken from the Job, and `readonly-role.sql`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};
use test_support::{TestDatabase, SUPERUSER_PASSWORD};

use crate::manifests::{object, project_root, Document};

/// Quotes, spaces and URL delimiters: the role's password goes through psql's
/// quoting, not ours.
const ROLE_PASSWORD: &str = "r0 p@ss:w/rd'\"#%&\\é";

/// An empty PostgreSQL 15 cluster of `test_support`, driven with `psql`.
struct Server {
    db: TestDatabase,
}

impl Server {
    fn start() -> Server {
        Server {
            db: TestDatabase::empty(),
        }
    }

    /// `psql` as `user` on `database`, with the connection in PG* variables as
    /// the seed job has it.
    fn psql(&self, user: &str, password: &str, database: &str) -> Command {
        let mut command = self.db.client_command("psql", user, password, database);
        command.args([
            "--no-psqlrc",
            "--tuples-only",
            "--no-align",
            "-v",
            "ON_ERROR_STOP=1",
        ]);
        command
    }

    /// One SQL text as `user`: its output, or psql's error.
    fn run(&self, user: &str, password: &str, database: &str, sql: &str) -> Result<String, String> {
        outcome(
            self.psql(user, password, database)
                .args(["--command", sql])
                .output()
                .expect("run psql"),
        )
    }

    fn superuser(&self, database: &str, sql: &str) -> String {
        self.run("postgres", SUPERUSER_PASSWORD, database, sql)
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }
}

fn outcome(output: Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{} {stderr}", output.status))
    }
}

fn readonly_role_sql() -> PathBuf {
    project_root().join("deployment/postgres/readonly-role.sql")
}

/// The role name that the service logs in with.
fn service_role() -> String {
    object("ConfigMap", "postgres-config")
        .str_at("/data/DB_USERNAME")
        .expect("postgres-config has DB_USERNAME")
        .to_string()
}

/// `readonly-role.sql` as the superuser, with the role's password in the
/// environment (`RO_PASSWORD`) and, given a name, the psql variable `ro_role`.
fn create_role(
    server: &Server,
    database: &str,
    role: Option<&str>,
    password: Option<&str>,
) -> Result<String, String> {
    let mut command = server.psql("postgres", SUPERUSER_PASSWORD, database);
    if let Some(role) = role {
        command.arg("-v").arg(format!("ro_role={role}"));
    }
    if let Some(password) = password {
        command.env("RO_PASSWORD", password);
    }
    outcome(
        command
            .arg("--file")
            .arg(readonly_role_sql())
            .output()
            .expect("run psql"),
    )
}

fn count_inserts(file: &str, table: &str) -> usize {
    let text = std::fs::read_to_string(project_root().join("db").join(file)).unwrap();
    text.lines()
        .filter(|line| line.starts_with(&format!("INSERT INTO {table} ")))
        .count()
}

/// The value of a variable in the environment of a pod spec's first container
/// (at `spec`, a JSON pointer into the object): a literal, or the ConfigMap or
/// Secret key it is taken from.
fn container_env(object: &Document, spec: &str, name: &str) -> Value {
    let env = object
        .at(&format!("{spec}/containers/0/env"))
        .and_then(Value::as_array);
    let variable = env
        .into_iter()
        .flatten()
        .find(|variable| variable["name"] == name)
        .unwrap_or_else(|| panic!("{} does not set {name}", object.file));
    variable
        .get("value")
        .cloned()
        .or_else(|| variable.get("valueFrom").cloned())
        .unwrap_or_default()
}

/// Where the Jobs find PostgreSQL: the service's ConfigMap.
const CONNECTION_ENV: [(&str, &str, &str, &str); 3] = [
    ("PGHOST", "configMapKeyRef", "postgres-config", "DB_HOST"),
    ("PGPORT", "configMapKeyRef", "postgres-config", "DB_PORT"),
    (
        "PGDATABASE",
        "configMapKeyRef",
        "postgres-config",
        "DB_NAME",
    ),
];

/// Each `(variable, kind, name, key)`: the variable is taken from that key of
/// that ConfigMap (`configMapKeyRef`) or Secret (`secretKeyRef`).
fn assert_env_from(object: &Document, spec: &str, sources: &[(&str, &str, &str, &str)]) {
    for &(variable, kind, name, key) in sources {
        assert_eq!(
            container_env(object, spec, variable),
            json!({kind: {"name": name, "key": key}}),
            "{}: {variable}",
            object.file
        );
    }
}

fn job_env(name: &str) -> Value {
    container_env(object("Job", "postgres-seed"), "/spec/template/spec", name)
}

#[test]
fn the_seed_job_gives_the_service_role_the_services_credentials() {
    let seed = object("Job", "postgres-seed");
    let spec = "/spec/template/spec";
    assert_env_from(seed, spec, &CONNECTION_ENV);
    assert_env_from(
        seed,
        spec,
        &[
            (
                "RO_ROLE",
                "configMapKeyRef",
                "postgres-config",
                "DB_USERNAME",
            ),
            (
                "RO_PASSWORD",
                "secretKeyRef",
                "postgres-password",
                "DB_PASSWORD",
            ),
            // The superuser of the in-cluster PostgreSQL, which the StatefulSet sets up.
            (
                "PGPASSWORD",
                "secretKeyRef",
                "postgres-admin",
                "POSTGRES_PASSWORD",
            ),
        ],
    );
    assert_eq!(job_env("PGUSER"), "postgres");
    let postgres = object("StatefulSet", "postgres");
    let server_password = postgres
        .at("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .and_then(|env| env.iter().find(|v| v["name"] == "POSTGRES_PASSWORD"))
        .map(|v| v["valueFrom"].clone());
    assert_eq!(server_password, Some(job_env("PGPASSWORD")));
    // SEED_DIR is where the ConfigMap coworking-seed is mounted.
    let job = object("Job", "postgres-seed");
    let spec = job.at("/spec/template/spec").unwrap();
    let seed_volume = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["configMap"]["name"] == "coworking-seed")
        .expect("the coworking-seed volume");
    let mount = spec["containers"][0]["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == seed_volume["name"])
        .expect("its mount");
    assert_eq!(job_env("SEED_DIR"), mount["mountPath"]);
}

#[test]
fn the_seed_job_loads_db_once_and_creates_the_read_only_role() {
    let server = Server::start();
    // The ConfigMap coworking-seed: db/'s files and readonly-role.sql side by side.
    let seed = tempfile::tempdir().unwrap();
    let seed_dir = seed.path();
    for entry in std::fs::read_dir(project_root().join("db")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, seed_dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(readonly_role_sql(), seed_dir.join("readonly-role.sql")).unwrap();
    let job = object("Job", "postgres-seed");
    let script = job
        .str_at("/spec/template/spec/containers/0/args/0")
        .expect("the seed job's script");
    assert_eq!(
        job.at("/spec/template/spec/containers/0/command"),
        Some(&json!(["/bin/sh", "-c"]))
    );
    // Passwords stay in the environment: no command line of the script has one.
    assert!(!script.to_lowercase().contains("password="), "{script}");
    let role = service_role();
    let seed = || {
        outcome(
            Command::new("sh")
                .args(["-c", script])
                .env("PGHOST", "127.0.0.1")
                .env("PGPORT", server.db.port().to_string())
                .env("PGDATABASE", "coworking")
                .env("PGUSER", "postgres")
                .env("PGPASSWORD", SUPERUSER_PASSWORD)
                .env("RO_ROLE", &role)
                .env("RO_PASSWORD", ROLE_PASSWORD)
                .env("SEED_DIR", seed_dir)
                .output()
                .expect("run sh"),
        )
    };

    let first = seed().expect("the first run");
    assert!(first.contains("loaded db/ into coworking"), "{first}");
    let counts = "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM tokens)";
    let expected = format!(
        "{} {}",
        count_inserts("2_seed_users.sql", "users"),
        count_inserts("3_seed_tokens.sql", "tokens")
    );
    assert_eq!(server.superuser("coworking", counts), expected);

    let second = seed().expect("the second run");
    assert!(
        second.contains("the tables exist: db/ is not loaded again"),
        "{second}"
    );
    assert_eq!(server.superuser("coworking", counts), expected);

    // The service logs in with its credentials and reads.
    let read = server.run(
        &role,
        ROLE_PASSWORD,
        "coworking",
        "SELECT count(*) FROM tokens",
    );
    assert_eq!(
        read,
        Ok(count_inserts("3_seed_tokens.sql", "tokens").to_string())
    );
}

#[test]
fn the_read_only_role_reads_users_tokens_and_analytics_and_nothing_else() {
    let server = Server::start();
    let db = "postgres";
    let schema = std::fs::read_to_string(project_root().join("db/1_create_tables.sql")).unwrap();
    server.superuser(db, &schema);
    server.superuser(
        db,
        "INSERT INTO users (first_name, last_name, joined_at) VALUES ('Ada', 'L', now());
         INSERT INTO tokens (user_id, token) VALUES (1, '123456');
         CREATE TABLE audit_log (entry text); INSERT INTO audit_log VALUES ('private');",
    );

    let empty = create_role(&server, db, None, Some("")).unwrap_err();
    assert!(empty.contains("RO_PASSWORD is empty"), "{empty}");
    let missing = create_role(&server, db, None, None).unwrap_err();
    assert!(
        missing.contains(
            "readonly-role.sql needs the role's password in the environment variable RO_PASSWORD"
        ),
        "{missing}"
    );

    // The default name is the ConfigMap's DB_USERNAME.
    create_role(&server, db, None, Some(ROLE_PASSWORD)).expect("create the role");
    let role = service_role();
    let as_role = |sql: &str| server.run(&role, ROLE_PASSWORD, db, sql);
    assert_eq!(as_role("SELECT count(*) FROM users"), Ok("1".to_string()));
    assert_eq!(as_role("SELECT count(*) FROM tokens"), Ok("1".to_string()));
    let write = as_role("INSERT INTO tokens (user_id, token) VALUES (1, '000000')").unwrap_err();
    assert!(write.contains("read-only transaction"), "{write}");
    // Past the read-only default, the grants stop it too.
    let forced = as_role(
        "BEGIN READ WRITE; INSERT INTO tokens (user_id, token) VALUES (1, '000000'); COMMIT",
    )
    .unwrap_err();
    assert!(
        forced.contains("permission denied for table tokens"),
        "{forced}"
    );
    let other = as_role("SELECT * FROM audit_log").unwrap_err();
    assert!(
        other.contains("permission denied for table audit_log"),
        "{other}"
    );
    let create = as_role("BEGIN READ WRITE; CREATE TABLE mine (x int); COMMIT").unwrap_err();
    assert!(
        create.contains("permission denied for schema public"),
        "{create}"
    );

    // A migration adds the schema analytics, someone grants a table by hand; the
    // script run again grants the first and takes back the second.
    server.superuser(
        db,
        &format!(
            "CREATE SCHEMA analytics; CREATE TABLE analytics.daily_used_tokens (day date, visits bigint);
             INSERT INTO analytics.daily_used_tokens VALUES ('2023-02-07', 40);
             GRANT SELECT ON audit_log TO {role};"
        ),
    );
    create_role(&server, db, Some(&role), Some(ROLE_PASSWORD)).expect("run the script again");
    assert_eq!(
        as_role("SELECT visits FROM analytics.daily_used_tokens"),
        Ok("40".to_string())
    );
    let taken_back = as_role("SELECT * FROM audit_log").unwrap_err();
    assert!(
        taken_back.contains("permission denied for table audit_log"),
        "{taken_back}"
    );
    let wrong_password = server.run(&role, "not it", db, "SELECT 1").unwrap_err();
    assert!(
        wrong_password.contains("password authentication failed"),
        "{wrong_password}"
    );
}

#[test]
fn the_rollups_cron_job_closes_time_as_the_service_role_and_can_do_nothing_more() {
    let server = Server::start();
    let db = "postgres";
    let schema = std::fs::read_to_string(project_root().join("db/1_create_tables.sql")).unwrap();
    let up =
        std::fs::read_to_string(project_root().join("db/migrations/001_report_rollups.up.sql"))
            .unwrap();
    server.superuser(db, &schema);
    server.superuser(
        db,
        "INSERT INTO users (first_name, last_name, joined_at) VALUES ('Ada', 'L', now());
         INSERT INTO tokens (user_id, token, created_at) VALUES (1, '123456', '2023-02-07 10:00');",
    );
    server.superuser(db, &up);
    server.superuser(db, "SELECT analytics.move_rollup_boundary('-infinity')");
    create_role(&server, db, None, Some(ROLE_PASSWORD)).expect("create the role");

    // The CronJob logs in as the SpinApp does.
    let cron = object("CronJob", "rollups-close");
    let pod = "/spec/jobTemplate/spec/template/spec";
    assert_env_from(cron, pod, &CONNECTION_ENV);
    assert_env_from(
        cron,
        pod,
        &[
            (
                "PGUSER",
                "configMapKeyRef",
                "postgres-config",
                "DB_USERNAME",
            ),
            (
                "PGPASSWORD",
                "secretKeyRef",
                "postgres-password",
                "DB_PASSWORD",
            ),
        ],
    );
    let script = cron
        .str_at(&format!("{pod}/containers/0/args/0"))
        .expect("the CronJob's script");
    let role = service_role();
    let previous_hour = || {
        server.superuser(
            db,
            "SELECT (date_trunc('hour', now() AT TIME ZONE 'Asia/Kolkata') - interval '1 hour')::text",
        )
    };
    let before = previous_hour();
    let closed = outcome(
        Command::new("sh")
            .args(["-c", script])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", server.db.port().to_string())
            .env("PGDATABASE", db)
            .env("PGUSER", &role)
            .env("PGPASSWORD", ROLE_PASSWORD)
            .env("PGTZ", "Asia/Kolkata")
            .output()
            .expect("run sh"),
    )
    .expect("the CronJob's script");
    let after = previous_hour();
    assert!(
        [before, after].iter().any(|hour| closed
            == format!("rollups-close: the rollups count the tokens created before {hour}")),
        "{closed}"
    );
    assert_eq!(
        server.superuser(
            db,
            "SELECT visits FROM analytics.user_tokens WHERE user_id = 1"
        ),
        "1"
    );

    // Nothing else that writes: not the boundary at will, not the counts.
    let as_role = |sql: &str| server.run(&role, ROLE_PASSWORD, db, sql);
    for (sql, function) in [
        (
            "SELECT analytics.move_rollup_boundary('-infinity')",
            "move_rollup_boundary",
        ),
        (
            "SELECT analytics.add_user_tokens(1, 100, 100, NULL)",
            "add_user_tokens",
        ),
        (
            "SELECT analytics.add_used_tokens('2023-02-07', 100)",
            "add_used_tokens",
        ),
        ("SELECT analytics.find_last_used(1, NULL)", "find_last_used"),
    ] {
        let denied = as_role(&format!("BEGIN READ WRITE; {sql}; COMMIT")).unwrap_err();
        assert!(
            denied.contains(&format!("permission denied for function {function}")),
            "{denied}"
        );
    }
}
