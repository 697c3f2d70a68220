//! `spawn_app()`: a fresh PostgreSQL and the built component running in the
//! test host over it, for one test to talk HTTP to.

use spin_test_host::{HostBuilder, RunningHost};

use crate::database::{Data, TestDatabase, SUPERUSER_PASSWORD};
use crate::{component_path, project_root};

/// A running component with its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub host: WatchedHost,
    pub http: reqwest::Client,
}

/// The app's host, whose secrets' watch is checked when it is dropped.
pub struct WatchedHost(RunningHost);

impl std::ops::Deref for WatchedHost {
    type Target = RunningHost;

    fn deref(&self) -> &RunningHost {
        &self.0
    }
}

/// The v2 reports' key in every app of [`spawn_app`]: a marker that a leak scan
/// can look for.
pub const API_KEY: &str = "test-api-key.M4rk3r~v2";

/// The component over the seed data, configured as the SpinKube operator would.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Data::Seed).await
}

pub async fn spawn_app_with(data: Data) -> TestApp {
    spawn_app_setting(TestDatabase::new(data).await, &[]).await
}

/// The component over `db`, configured as [`spawn_app`] configures it, with
/// these `SPIN_VARIABLE_*` values set over (or besides) that configuration.
pub async fn spawn_app_setting(db: TestDatabase, variables: &[(&str, &str)]) -> TestApp {
    let mut environment = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    environment.push(("SPIN_VARIABLE_API_KEYS".into(), API_KEY.into()));
    environment.retain(|(name, _)| variables.iter().all(|(set, _)| set != name));
    environment.extend(
        variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    spawn_app_on(db, &environment).await
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
        host: WatchedHost(host),
        http: reqwest::Client::new(),
    }
}

/// The host for the shipped `spin.toml`, runtime config and built component,
/// as the image has them, reading the variables from `environment` only, with
/// the component's output captured and the secrets' watch on.
pub fn host_builder(environment: &[(String, String)]) -> HostBuilder {
    HostBuilder::new(project_root().join("spin.toml"))
        .runtime_config(project_root().join("runtime-config.toml"))
        .wasm(component_path())
        .environment(environment.iter().cloned())
        .capture_logs()
        .watch_secrets()
}

/// Where each test app's secrets' watch adds its line: `cargo xtask test`
/// sums them over the suite.
pub const LEAK_SCAN_DIR: &str = "target/leak-scan";

/// Every app's host scans what it sends and logs for the values of the secret
/// variables (`spin.toml`'s `db_password` and `api_keys`: the tests' markers):
/// a test whose service let one out fails here, naming the variable and the
/// place, never the value.
impl Drop for WatchedHost {
    fn drop(&mut self) {
        let report = self.0.leak_report();
        let dir = project_root().join(LEAK_SCAN_DIR);
        let line = format!(
            "responses={} bytes={} forms={} findings={}\n",
            report.responses,
            report.bytes,
            report.forms,
            report.findings.len()
        );
        let recorded = std::fs::create_dir_all(&dir).and_then(|()| {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{}.txt", std::process::id())))?
                .write_all(line.as_bytes())
        });
        if std::thread::panicking() {
            return;
        }
        recorded.expect("record the secrets' watch");
        assert!(
            report.findings.is_empty(),
            "a secret left the service: {:?}",
            report.findings
        );
    }
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

    /// A v2 request with the tests' key and these headers, checked against the
    /// OpenAPI document.
    pub async fn get_v2_with(&self, path: &str, headers: &[(&str, &str)]) -> V2Response {
        self.send_v2(reqwest::Method::GET, path, Some(API_KEY), headers)
            .await
    }

    pub async fn get_v2(&self, path: &str) -> V2Response {
        self.get_v2_with(path, &[]).await
    }

    /// A v2 GET's status and JSON body.
    pub async fn get_v2_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get_v2(path).await;
        (response.status, response.json())
    }

    /// Any v2 request, with `key` as its Bearer key; the response is checked
    /// against the OpenAPI document.
    pub async fn send_v2(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
    ) -> V2Response {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("send request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("read body").to_vec();
        let response = V2Response {
            status,
            headers,
            body,
        };
        crate::contract::check(
            method.as_str(),
            path,
            status,
            &response.headers,
            &response.body,
        );
        response
    }

    /// Status and body text of a GET.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("read body"))
    }
}

/// A v2 response, read whole.
pub struct V2Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl V2Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "{} is not JSON ({err}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}
