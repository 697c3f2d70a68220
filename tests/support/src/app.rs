//! `spawn_app()`: a fresh PostgreSQL and the built component running in the
//! test host over it, for one test to talk HTTP to.

use spin_test_host::{HostBuilder, RunningHost};

use crate::database::{Data, TestDatabase, SUPERUSER_PASSWORD};
use crate::{component_path, project_root};

/// A running component with its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub host: RunningHost,
    pub http: reqwest::Client,
}

/// The v2 reports' key in every app of [`spawn_app`]: a marker that a leak scan
/// can look for.
pub const API_KEY: &str = "test-api-key.M4rk3r~v2";

/// The component over the seed data, configured as the SpinKube operator would.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Data::Seed).await
}

pub async fn spawn_app_with(data: Data) -> TestApp {
    let db = TestDatabase::new(data).await;
    let mut variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    variables.push(("SPIN_VARIABLE_API_KEYS".into(), API_KEY.into()));
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

/// The host for the shipped `spin.toml`, runtime config and built component,
/// as the image has them, reading the variables from `environment` only, with
/// the component's output captured.
pub fn host_builder(environment: &[(String, String)]) -> HostBuilder {
    HostBuilder::new(project_root().join("spin.toml"))
        .runtime_config(project_root().join("runtime-config.toml"))
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

    /// A GET with the v2 key.
    pub async fn get_v2(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("send request")
    }

    /// A v2 GET's status and JSON body.
    pub async fn get_v2_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get_v2(path).await;
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("read body");
        let json = serde_json::from_slice(&body).unwrap_or_else(|err| {
            panic!("{path}: {status} is not JSON ({err}): {}", String::from_utf8_lossy(&body))
        });
        (status, json)
    }

    /// Status and body text of a GET.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("read body"))
    }
}
