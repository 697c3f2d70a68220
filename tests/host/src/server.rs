//! Serving: the engine (configured like Spin's), a store per request with the
//! WASI, HTTP, PostgreSQL and variables host state, and the HTTP/1.1 listener
//! with what Spin's HTTP trigger answers itself: `/.well-known/spin/`, requests
//! whose `Host` it refuses, and components that fail.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::http::uri::Authority;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::SpinImports;
use crate::capture::CapturedOutput;
use crate::key_value::KeyValueStores;
use crate::leak_scan::LeakScan;
use crate::outbound::OutboundPolicy;
use crate::postgres::Pools;
use crate::variables::ComponentVariables;

/// The prefix of the paths that Spin's HTTP trigger answers itself.
const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// What every request of one application shares.
pub struct App {
    /// `/.well-known/spin/info`: `[application]` `name` and `version`.
    pub name: String,
    pub version: String,
    pub variables: ComponentVariables,
    pub outbound: OutboundPolicy,
    pub pools: Pools,
    pub key_value: KeyValueStores,
    /// Captured guest stdout and stderr, when tests ask for it.
    pub logs: Option<CapturedOutput>,
    /// The watch for the secret variables' values in what the host sends,
    /// when asked for.
    pub leak_scan: Option<LeakScan>,
    pub peak_memory: AtomicUsize,
    /// The most linear memory one instance may have, in bytes.
    pub max_instance_memory: Option<usize>,
    pub route: String,
}

/// The store data of one request.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub table: ResourceTable,
    pub app: Arc<App>,
    limiter: MemoryLimiter,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// Spin's per-instance memory limit (`spin up --max-instance-memory`, the
/// shim's `SPIN_MAX_INSTANCE_MEMORY`): a linear memory may not grow past it
/// (Spin's `memory_growing` compares each memory's desired size with it), so
/// `memory.grow` fails and the component's allocator then traps. Records the
/// largest total an instance's memories grew to. Spin's limiter is async; this
/// one is not, which changes nothing the component can see.
struct MemoryLimiter {
    app: Arc<App>,
    /// The linear memory of this store's instance, in bytes.
    consumed: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self
            .app
            .max_instance_memory
            .is_some_and(|max| desired > max)
        {
            return Ok(false);
        }
        let total = self.consumed - current.min(self.consumed) + desired;
        self.consumed = total;
        self.app.peak_memory.fetch_max(total, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

const MIB: usize = 1 << 20;

/// One engine per process, configured as Spin 3.6.3's (spin-core's
/// `Config::default`): epoch interruption, and the pooling instance allocator
/// with Spin's limits for its default 1,000 instances, so that a new instance
/// per request is cheap. Keeping the first pages
/// of memories and tables resident resets them without unmapping, which spares
/// every request its TLB shootdowns. Made under a lock: hosts that tests start
/// at once share one engine, and so one pool of instance slots.
fn engine() -> Result<Engine> {
    static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);
    let mut engine = ENGINE.lock().expect("engine lock");
    if let Some(engine) = &*engine {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.epoch_interruption(true);
    let mut pooling = PoolingAllocationConfig::default();
    const INSTANCES: u32 = 1_000;
    pooling
        .total_component_instances(INSTANCES)
        .total_memories(INSTANCES)
        .total_tables(2 * INSTANCES)
        .total_stacks(INSTANCES)
        .total_core_instances(4 * INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MIB)
        .max_core_instance_size(10 * MIB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MIB)
        .table_keep_resident(MIB / 2);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let made = Engine::new(&config)?;
    // Spin's epoch ticker: every 10 ms, for as long as the process runs.
    let ticking = made.weak();
    std::thread::spawn(move || {
        while let Some(engine) = ticking.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
    Ok(engine.insert(made).clone())
}

/// How often Spin advances the engine's epoch (`DEFAULT_EPOCH_TICK_INTERVAL`).
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Compile a component once per process: tests start many hosts on one file,
/// and the lock, held while compiling, makes the ones started at once wait for
/// that one compile instead of each doing it.
fn compile(path: &Path) -> Result<Component> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, (std::time::SystemTime, Component)>>> =
        OnceLock::new();
    let modified = std::fs::metadata(path)
        .with_context(|| format!("component {}", path.display()))?
        .modified()?;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("cache lock");
    if let Some((when, component)) = cache.get(path) {
        if *when == modified {
            return Ok(component.clone());
        }
    }
    let component = Component::from_file(&engine()?, path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compile component {}", path.display()))?;
    cache.insert(path.to_owned(), (modified, component.clone()));
    Ok(component)
}

/// A component ready to instantiate per request.
#[derive(Clone)]
pub struct Server {
    pre: ProxyPre<State>,
    app: Arc<App>,
}

impl Server {
    pub fn new(wasm: &Path, app: App) -> Result<Server> {
        let component = compile(wasm)?;
        let mut linker = Linker::<State>::new(&engine()?);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        SpinImports::add_to_linker::<State, HasSelf<State>>(&mut linker, |state| state)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Server {
            pre,
            app: Arc::new(app),
        })
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Accept connections until the task is dropped.
    pub async fn serve(self, listener: TcpListener, log_requests: bool) {
        loop {
            let Ok((stream, client)) = listener.accept().await else {
                continue;
            };
            let server = self.clone();
            tokio::spawn(async move {
                // A refused request ends the connection without an answer.
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { server.respond(req, client, log_requests).await }
                });
                // Connection errors (a client going away) concern only that client.
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// As Spin's HTTP trigger (`HttpServer::handle`): `/.well-known/spin/`
    /// first, then the `Host` check of a routed request, then the component,
    /// whose failure (a trap, no response) is a 500 with an empty body.
    async fn respond(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        log_requests: bool,
    ) -> Result<Response<HyperOutgoingBody>, Refused> {
        let started = Instant::now();
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        let response = match path.strip_prefix(WELL_KNOWN_PREFIX) {
            Some(name) => self.well_known(name),
            None => {
                check_authority(&req)?;
                match self.handle(req, client).await {
                    Ok(response) => response,
                    Err(err) => {
                        let line = format!("Error processing request: {err:?}");
                        if let Some(scan) = &self.app.leak_scan {
                            scan.scan("the host's error line", line.as_bytes());
                        }
                        eprintln!("{line}");
                        trigger_response(StatusCode::INTERNAL_SERVER_ERROR, None, Vec::new())
                    }
                }
            }
        };
        if log_requests {
            eprintln!(
                "{method} {path} {} {:.1?}",
                response.status().as_u16(),
                started.elapsed()
            );
        }
        Ok(match &self.app.leak_scan {
            Some(scan) => watched(scan, response, format!("{method} {path}")),
            None => response,
        })
    }

    /// `/.well-known/spin/health` (`OK`, no content type),
    /// `/.well-known/spin/info` (the app's name and version, pretty JSON), and
    /// a 404 with an empty body for any other name, whatever the method.
    fn well_known(&self, name: &str) -> Response<HyperOutgoingBody> {
        match name {
            "health" => trigger_response(StatusCode::OK, None, b"OK".to_vec()),
            "info" => {
                let mut info = serde_json::Map::new();
                info.insert("name".into(), self.app.name.clone().into());
                if !self.app.version.is_empty() {
                    info.insert("version".into(), self.app.version.clone().into());
                }
                let body = serde_json::to_vec_pretty(&info).expect("a map of strings");
                trigger_response(StatusCode::OK, Some("application/json"), body)
            }
            _ => trigger_response(StatusCode::NOT_FOUND, None, Vec::new()),
        }
    }

    async fn handle(
        &self,
        mut req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>> {
        self.add_spin_headers(&mut req, client)?;
        let mut wasi = WasiCtx::builder();
        match &self.app.logs {
            Some(logs) => {
                wasi.stdout(logs.clone()).stderr(logs.clone());
            }
            None => {
                wasi.inherit_stdout().inherit_stderr();
            }
        }
        // Spin's outbound networking: TCP and UDP to the allowed hosts' addresses
        // only, no listening, no name lookups (wasmtime's default, which Spin keeps).
        let outbound = self.app.outbound.clone();
        wasi.allow_tcp(true)
            .allow_udp(true)
            .socket_addr_check(move |address, used_for| {
                let outbound = outbound.clone();
                Box::pin(async move {
                    match used_for {
                        // Since wasmtime 48 (this host's), a connect first asks
                        // for its implicit bind, to the wildcard address; Spin's
                        // wasmtime 42 does not ask, and Spin refuses every
                        // explicit bind and listen.
                        SocketAddrUse::TcpBind => {
                            address.ip().is_unspecified() && address.port() == 0
                        }
                        SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
                        SocketAddrUse::TcpConnect => outbound.allows_socket("tcp", address),
                        SocketAddrUse::UdpBind
                        | SocketAddrUse::UdpSend
                        | SocketAddrUse::UdpReceive => outbound.allows_socket("udp", address),
                    }
                })
            });
        let mut store = Store::new(
            self.pre.engine(),
            State {
                wasi: wasi.build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                app: self.app.clone(),
                limiter: MemoryLimiter {
                    app: self.app.clone(),
                    consumed: 0,
                },
            },
        );
        store.limiter(|state| &mut state.limiter);
        // Spin's deadline, which its 10 ms ticks never reach.
        store.set_epoch_deadline(u64::MAX / 2);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(anyhow!("the component answered with an error: {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow!("the component never set a response")),
                Ok(Err(trap)) => Err(anyhow::Error::from(trap).context("the component trapped")),
                Err(join) => Err(join.into()),
            },
        }
    }

    /// The headers Spin adds for a request matched by a `/...` route.
    fn add_spin_headers(&self, req: &mut Request<Incoming>, client: SocketAddr) -> Result<()> {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned();
        let path = req.uri().path().to_owned();
        let route = self.app.route.clone();
        let base = route.trim_end_matches("/...").to_owned();
        let headers = req.headers_mut();
        for (name, value) in [
            ("spin-full-url", format!("http://{host}{path_and_query}")),
            (
                "spin-path-info",
                path.strip_prefix(&base).unwrap_or(&path).to_owned(),
            ),
            ("spin-matched-route", route.clone()),
            ("spin-raw-component-route", route.clone()),
            ("spin-component-route", base.clone()),
            ("spin-base-path", "/".to_owned()),
            ("spin-client-addr", client.to_string()),
        ] {
            headers.insert(name, value.parse()?);
        }
        Ok(())
    }
}

/// A request that Spin's trigger refuses to serve: its connection ends
/// without an answer (hyper closes it when the service fails).
#[derive(Debug)]
pub struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

/// Spin's `set_req_uri`: a routed request needs an authority, from `Host` or
/// the URI, and the two must agree when both are given.
fn check_authority<B>(req: &Request<B>) -> Result<(), Refused> {
    let header = match req.headers().get(hyper::header::HOST) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| Refused("'Host' header is not valid UTF-8"))?;
            Some(
                text.parse::<Authority>()
                    .map_err(|_| Refused("'Host' header contains an invalid authority"))?,
            )
        }
    };
    match (header, req.uri().authority()) {
        (None, None) => Err(Refused("no 'Host' header present in request")),
        (Some(header), Some(uri)) if &header != uri => Err(Refused(
            "authority in 'Host' header does not match authority in URI",
        )),
        _ => Ok(()),
    }
}

/// The response with its headers scanned for secrets now, and its body as
/// it is sent.
fn watched(
    scan: &LeakScan,
    response: Response<HyperOutgoingBody>,
    request: String,
) -> Response<HyperOutgoingBody> {
    let mut headers = Vec::new();
    for (name, value) in response.headers() {
        headers.extend_from_slice(name.as_str().as_bytes());
        headers.extend_from_slice(b": ");
        headers.extend_from_slice(value.as_bytes());
        headers.push(b'\n');
    }
    scan.scan(&format!("the response headers of {request}"), &headers);
    let mut body_scan = scan.body(format!("the response body of {request}"));
    response.map(|body| {
        body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                body_scan.feed(data);
            }
            frame
        })
        .boxed_unsync()
    })
}

/// An answer of the trigger's own, with no headers but its content type (hyper
/// adds `content-length` and `date`).
fn trigger_response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Vec<u8>,
) -> Response<HyperOutgoingBody> {
    let body = http_body_util::Full::new(bytes::Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
    }
    response
}
