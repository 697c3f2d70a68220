//! A wasmtime host that serves a Spin HTTP component the way Spin 3.4–4.0 does,
//! for the interfaces Coworking Analytics uses: `wasi:http` (through
//! `wasmtime-wasi-http`), `spin:postgres/postgres@4.0.0`, `wasi:sockets`, Spin
//! variables, key-value stores and `allowed_outbound_hosts`. It reads the real
//! `spin.toml` and Spin's runtime config. A test and benchmark tool, not a
//! production runtime.

mod capture;
mod error_text;
mod key_value;
mod leak_scan;
mod manifest;
mod outbound;
mod postgres;
mod runtime_config;
mod server;
mod trust;
mod variables;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::capture::CapturedOutput;
use crate::key_value::KeyValueStores;
pub use crate::leak_scan::{LeakReport, LeakScan};
use crate::manifest::Manifest;
use crate::outbound::OutboundPolicy;
use crate::postgres::Pools;
pub use crate::runtime_config::RuntimeConfig;
use crate::server::{App, Server, State};
use crate::trust::TrustStore;
use crate::variables::{shim_environment, ComponentVariables, Lookup, Resolved};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "spin-imports",
        imports: { default: async },
        with: {
            "spin:postgres/postgres.connection": crate::postgres::PgConnection,
            "fermyon:spin/key-value.store": crate::key_value::StoreHandle,
        },
    });
}

impl bindings::fermyon::spin::variables::Host for State {
    async fn get(
        &mut self,
        name: String,
    ) -> Result<String, bindings::fermyon::spin::variables::Error> {
        use bindings::fermyon::spin::variables::Error;
        match self.app.variables.get(&name) {
            Lookup::Value(value) => Ok(value),
            Lookup::InvalidName(reason) => Err(Error::InvalidName(reason)),
            Lookup::Undefined(reason) => Err(Error::Undefined(reason)),
        }
    }
}

/// Configures and starts a host for one manifest.
pub struct HostBuilder {
    manifest: PathBuf,
    wasm: Option<PathBuf>,
    variables: HashMap<String, String>,
    environment: HashMap<String, String>,
    listen: SocketAddr,
    capture_logs: bool,
    watch_secrets: bool,
    log_requests: bool,
    max_instance_memory: Option<usize>,
    runtime_config: Option<PathBuf>,
    shim_environment: bool,
}

impl HostBuilder {
    /// A host for the `spin.toml` at `manifest`, reading `SPIN_VARIABLE_*` from the
    /// process environment and listening on a free loopback port.
    pub fn new(manifest: impl AsRef<Path>) -> Self {
        HostBuilder {
            manifest: manifest.as_ref().to_owned(),
            wasm: None,
            variables: HashMap::new(),
            environment: std::env::vars().collect(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            capture_logs: false,
            watch_secrets: false,
            log_requests: false,
            max_instance_memory: None,
            runtime_config: None,
            shim_environment: false,
        }
    }

    /// Spin's runtime config file, like `spin up --runtime-config-file`.
    pub fn runtime_config(mut self, path: impl AsRef<Path>) -> Self {
        self.runtime_config = Some(path.as_ref().to_owned());
        self
    }

    /// Read the variables as containerd-shim-spin does: a plain environment
    /// variable named like an app variable in upper case (`DB_PORT`) wins over
    /// its `SPIN_VARIABLE_` name. `spin up` reads the prefixed names only.
    pub fn shim_environment(mut self) -> Self {
        self.shim_environment = true;
        self
    }

    /// Serve this file instead of the component's `source`.
    pub fn wasm(mut self, path: impl AsRef<Path>) -> Self {
        self.wasm = Some(path.as_ref().to_owned());
        self
    }

    /// An application variable, like `spin up --variable name=value`.
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The environment the host reads instead of the process's: the
    /// `SPIN_VARIABLE_*` provider, and `SSL_CERT_FILE` for TLS to PostgreSQL.
    pub fn environment<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.environment = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Keep the component's stdout and stderr in memory (see [`RunningHost::logs`])
    /// instead of passing them to the host's.
    pub fn capture_logs(mut self) -> Self {
        self.capture_logs = true;
        self
    }

    /// Scan every response, the host's error lines and the captured output for
    /// the secret variables' values (see [`RunningHost::leak_report`]). Off by
    /// default: it reads every byte sent, which a benchmark must not pay for.
    pub fn watch_secrets(mut self) -> Self {
        self.watch_secrets = true;
        self
    }

    /// Limit each instance's linear memory, like `spin up --max-instance-memory`.
    pub fn max_instance_memory(mut self, bytes: usize) -> Self {
        self.max_instance_memory = Some(bytes);
        self
    }

    /// Log each request's method, path, status and duration to stderr.
    pub fn log_requests(mut self) -> Self {
        self.log_requests = true;
        self
    }

    /// Load the manifest, resolve the variables (failing as `spin up` does when a
    /// required one has no value), compile the component and start serving.
    pub async fn start(self) -> Result<RunningHost> {
        let manifest = Manifest::load(&self.manifest)?;
        let runtime_config = match &self.runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        if let Some(label) = manifest
            .component
            .key_value_stores
            .iter()
            .find(|label| !runtime_config.defines_store(label))
        {
            bail!("key-value store {label:?} is not defined: define it in a runtime config");
        }
        let environment = if self.shim_environment {
            shim_environment(&manifest, &self.environment)
        } else {
            self.environment.clone()
        };
        let resolved = Resolved::resolve(&manifest, &self.variables, &environment)?;
        let allowed = manifest
            .component
            .allowed_outbound_hosts
            .iter()
            .map(|entry| resolved.expand(entry))
            .collect::<Result<Vec<_>>>()?;
        let logs = self.capture_logs.then(CapturedOutput::default);
        let outbound = OutboundPolicy::new(&allowed)?;
        let leak_scan = self.watch_secrets.then(|| {
            LeakScan::new(
                manifest
                    .variables
                    .iter()
                    .filter(|(_, variable)| variable.secret)
                    .filter_map(|(name, _)| Some((name.as_str(), resolved.get(name)?))),
            )
        });
        let app = App {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            variables: ComponentVariables::new(&manifest, &resolved)?,
            outbound: outbound.clone(),
            pools: Pools::new(outbound, TrustStore::from_environment(&self.environment)?),
            key_value: KeyValueStores::new(&manifest.component.key_value_stores),
            logs: logs.clone(),
            leak_scan,
            peak_memory: Default::default(),
            max_instance_memory: self.max_instance_memory,
            route: manifest.component.route.clone(),
        };
        let wasm = self.wasm.unwrap_or(manifest.component.source.clone());
        let server = Server::new(&wasm, app)?;
        let listener = TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("listen on {}", self.listen))?;
        let addr = listener.local_addr()?;
        let app = server.app().clone();
        let task = tokio::spawn(server.serve(listener, self.log_requests));
        Ok(RunningHost {
            addr,
            app,
            logs,
            task: Some(task),
        })
    }
}

/// A host serving a component. Dropping it stops serving.
pub struct RunningHost {
    addr: SocketAddr,
    app: Arc<App>,
    logs: Option<CapturedOutput>,
    task: Option<JoinHandle<()>>,
}

impl RunningHost {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The component's captured output so far (empty unless capturing).
    pub fn logs(&self) -> String {
        self.logs
            .as_ref()
            .map(|logs| String::from_utf8_lossy(&logs.contents()).into_owned())
            .unwrap_or_default()
    }

    /// The component's captured output write by write, as Spin's stdio passes
    /// each to the log.
    pub fn log_writes(&self) -> Vec<String> {
        self.logs
            .iter()
            .flat_map(|logs| logs.writes())
            .map(|write| String::from_utf8_lossy(&write).into_owned())
            .collect()
    }

    /// What the secrets' watch saw: every response so far, the host's error
    /// lines, and the component's captured output (when capturing); nothing
    /// without [`HostBuilder::watch_secrets`].
    pub fn leak_report(&self) -> LeakReport {
        let Some(scan) = &self.app.leak_scan else {
            return LeakReport::default();
        };
        let mut report = scan.report();
        if let Some(logs) = &self.logs {
            let output = logs.contents();
            report.bytes += output.len() as u64;
            report
                .findings
                .extend(scan.findings_in("the component's output", &output));
        }
        report
    }

    /// The largest linear memory that one instance has grown to, in bytes.
    pub fn peak_instance_memory(&self) -> usize {
        self.app.peak_memory.load(Ordering::Relaxed)
    }

    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The task ends as cancelled; there is nothing else to learn from it.
            let _ = task.await;
        }
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
