//! The usage logger of `deployment/usage-logger.yaml`: its script, taken from the
//! manifest's ConfigMap, run with this machine's `sh` and `curl` against a local
//! HTTP server that counts the report requests, at one call a second.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use coworking_analytics::routes::Endpoint;
use serde_json::Value;

use crate::manifests::object;
use crate::operator;

pub const SCRIPT_KEY: &str = "usage-logger.sh";

pub fn daily_usage_route() -> &'static str {
    Endpoint::ALL
        .iter()
        .find(|(_, endpoint)| *endpoint == Endpoint::DailyUsage)
        .map(|(path, _)| *path)
        .expect("the daily usage route")
}

/// The script, from the ConfigMap that the Deployment mounts.
pub fn script() -> String {
    object("ConfigMap", "usage-logger")
        .str_at(&format!("/data/{SCRIPT_KEY}"))
        .expect("the ConfigMap usage-logger holds usage-logger.sh")
        .to_string()
}

/// A scratch directory of this test, removed when dropped.
pub struct ScratchDir(tempfile::TempDir);

impl ScratchDir {
    pub fn new() -> ScratchDir {
        ScratchDir(tempfile::tempdir().expect("create a scratch directory"))
    }

    pub fn write(&self, name: &str, text: &str, executable: bool) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).expect("write a scratch file");
        if executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make it executable");
        }
        path
    }
}

/// Lines a process writes, with when they arrived.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// Reads `stream` to its end in a thread, line by line.
fn collect_lines(stream: impl Read + Send + 'static) -> (Lines, JoinHandle<()>) {
    let lines: Lines = Arc::default();
    let sink = Arc::clone(&lines);
    let reader = thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push((Instant::now(), line));
        }
    });
    (lines, reader)
}

/// The script running under `sh`, as the Deployment's command runs it.
pub struct Logger {
    child: Child,
    stdout: (Lines, JoinHandle<()>),
    stderr: (Lines, JoinHandle<()>),
}

impl Logger {
    pub fn start(script: &Path, env: &[(&str, &str)], path_prefix: Option<&Path>) -> Logger {
        let mut command = Command::new("sh");
        command
            .arg(script)
            .env_remove("REPORT_URL")
            .env_remove("POD_NAMESPACE")
            .env_remove("INTERVAL_SECONDS")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(prefix) = path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            command.env("PATH", format!("{}:{path}", prefix.display()));
        }
        let mut child = command.spawn().expect("run sh");
        let stdout = collect_lines(child.stdout.take().unwrap());
        let stderr = collect_lines(child.stderr.take().unwrap());
        Logger {
            child,
            stdout,
            stderr,
        }
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().expect("poll the logger").is_none()
    }

    /// SIGTERM, as the kubelet stops the container, and the exit status with
    /// how long it took.
    pub fn terminate(mut self) -> (ExitStatus, Duration, Vec<String>, Vec<String>) {
        let sent = Instant::now();
        // SAFETY: kill has no memory preconditions; the pid is our live child's.
        let sent_ok = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) } == 0;
        assert!(sent_ok, "SIGTERM to the logger failed");
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("poll the logger") {
                break exit;
            }
            if sent.elapsed() > Duration::from_secs(5) {
                self.child.kill().expect("kill the logger");
                panic!("the logger did not stop within 5 s of SIGTERM");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let took = sent.elapsed();
        // The pipes close once the script and its pacing `sleep` are gone.
        let lines = |(lines, reader): (Lines, JoinHandle<()>)| {
            reader.join().expect("the output reader");
            let lines = lines.lock().unwrap();
            lines.iter().map(|(_, line)| line.clone()).collect()
        };
        (exit, took, lines(self.stdout), lines(self.stderr))
    }
}

/// A local stand-in for the Service: answers 200 to any request and records
/// the request line and when it came.
struct ReportServer {
    address: SocketAddr,
    requests: Lines,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl ReportServer {
    fn start(address: SocketAddr) -> ReportServer {
        let listener = TcpListener::bind(address).expect("listen on the loopback");
        let address = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let requests: Lines = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(2)))
                            .unwrap();
                        let mut head = String::new();
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        while reader.read_line(&mut head).is_ok_and(|n| n > 0)
                            && !head.ends_with("\r\n\r\n")
                        {}
                        let request_line = head.lines().next().unwrap_or_default().to_string();
                        log.lock().unwrap().push((Instant::now(), request_line));
                        // A client gone already is no concern of the server's.
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 3\r\nconnection: close\r\n\r\n{}\n",
                        );
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(err) => panic!("accept: {err}"),
                }
            }
        });
        ReportServer {
            address,
            requests,
            stop,
            thread,
        }
    }

    /// Stops listening: connections are refused from then on.
    fn stop(self) -> Vec<(Instant, String)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the server thread");
        let requests = self.requests.lock().unwrap().clone();
        requests
    }
}

#[test]
fn the_deployment_runs_the_config_maps_script_every_30_seconds() {
    let deployment = object("Deployment", "usage-logger");
    let pod = deployment.at("/spec/template/spec").unwrap();
    assert_eq!(deployment.at("/spec/replicas"), Some(&Value::from(1)));
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|mounts| mounts.first())
        .expect("a volume mount");
    let volume = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert_eq!(volume["configMap"]["name"], "usage-logger");
    let script_path = format!("{}/{SCRIPT_KEY}", mount["mountPath"].as_str().unwrap());
    assert_eq!(
        container["command"],
        serde_json::json!(["/bin/sh", script_path])
    );
    let interval = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "INTERVAL_SECONDS")
        .expect("INTERVAL_SECONDS is set");
    assert_eq!(interval["value"], "30");
}

#[test]
fn the_logger_calls_the_report_every_second_survives_an_outage_and_resumes() {
    let scratch = ScratchDir::new();
    let script = scratch.write(SCRIPT_KEY, &script(), false);
    let server = ReportServer::start("127.0.0.1:0".parse().unwrap());
    let address = server.address;
    let url = format!("http://{address}{}", daily_usage_route());
    let mut logger = Logger::start(
        &script,
        &[("INTERVAL_SECONDS", "1"), ("REPORT_URL", &url)],
        None,
    );

    thread::sleep(Duration::from_millis(3500));
    let before_outage = server.stop();
    let outage = Instant::now();
    thread::sleep(Duration::from_millis(2500));
    assert!(
        logger.still_running(),
        "the logger exited while the service was down"
    );
    let server = ReportServer::start(address);
    let recovery = Instant::now();
    thread::sleep(Duration::from_millis(3000));
    let after_outage = server.stop();
    let (exit, took, stdout, stderr) = logger.terminate();

    // Every second: 4 calls in the first 3.5 s (at 0, 1, 2 and 3 s).
    assert!(
        (3..=5).contains(&before_outage.len()),
        "{} calls in 3.5 s: {before_outage:?}",
        before_outage.len()
    );
    for (_, request) in before_outage.iter().chain(&after_outage) {
        assert_eq!(request, &format!("GET {} HTTP/1.1", daily_usage_route()));
    }
    for pair in before_outage.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap > Duration::from_millis(700) && gap < Duration::from_millis(1500),
            "calls {gap:?} apart, not about 1 s"
        );
    }
    // One short line per failed call while the service was down.
    let failures: Vec<&String> = stderr
        .iter()
        .filter(|line| line.contains("failed"))
        .collect();
    assert!(
        (2..=3).contains(&failures.len()),
        "{} failure lines for a 2.5 s outage: {stderr:?}",
        failures.len()
    );
    for line in &failures {
        assert_eq!(
            line.as_str(),
            format!("usage-logger: GET {url} failed (curl exit 7)")
        );
    }
    // Back to one call a second once the service is back.
    assert!(
        (2..=4).contains(&after_outage.len()),
        "{} calls in the 3 s after the outage",
        after_outage.len()
    );
    assert!(after_outage[0].0 - recovery < Duration::from_millis(1500));
    assert!(before_outage.last().unwrap().0 < outage);
    // The start line, then one line per call that got the report.
    assert_eq!(stdout[0], format!("usage-logger: GET {url} every 1s"));
    assert_eq!(stdout.len() - 1, before_outage.len() + after_outage.len());
    for line in &stdout[1..] {
        assert_eq!(line, &format!("usage-logger: GET {url} 200"));
    }
    // SIGTERM stops it at once and cleanly: no crash loop, no 30 s grace wait.
    assert!(exit.success(), "exit status {exit}");
    assert!(took < Duration::from_secs(2), "took {took:?} to stop");
}

/// A stand-in for curl that records the URL it is given and answers 200.
const FAKE_CURL: &str = "#!/bin/sh\nfor argument; do url=$argument; done\nprintf '%s\\n' \"$url\" >> \"$CALLS\"\nprintf 200\n";

/// The logger's script with `env`, and a fake `curl` first on its PATH that
/// answers 200 and appends each URL to the returned file.
fn start_with_fake_curl(env: &[(&str, &str)]) -> (ScratchDir, PathBuf, Logger) {
    let scratch = ScratchDir::new();
    let script = scratch.write(SCRIPT_KEY, &script(), false);
    scratch.write("curl", FAKE_CURL, true);
    let calls = scratch.0.path().join("calls");
    let calls_env = calls.display().to_string();
    let mut env = env.to_vec();
    env.push(("CALLS", &calls_env));
    let logger = Logger::start(&script, &env, Some(scratch.0.path()));
    (scratch, calls, logger)
}

fn wait_for_call(calls: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(calls) {
            if let Some(line) = text.lines().next() {
                return line.to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the logger made no call within 5 s"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn by_default_the_logger_calls_the_operators_service_in_its_own_namespace() {
    let (_scratch, calls, logger) =
        start_with_fake_curl(&[("INTERVAL_SECONDS", "1"), ("POD_NAMESPACE", "analytics")]);
    let url = wait_for_call(&calls);
    let (exit, _, _, stderr) = logger.terminate();

    // The Service that spin-operator generates for the SpinApp, on its port 80.
    let service = operator::generated_name(object("SpinApp", "coworking"));
    assert_eq!(operator::HTTP_PORT, 80, "http:// without a port is port 80");
    assert_eq!(
        url,
        format!(
            "http://{service}.analytics.svc.cluster.local{}",
            daily_usage_route()
        )
    );
    assert!(exit.success(), "exit status {exit}");
    assert!(stderr.is_empty(), "{stderr:?}");
}

#[test]
fn a_bad_interval_falls_back_to_30_seconds_and_sigterm_cuts_the_wait_short() {
    let (_scratch, calls, logger) = start_with_fake_curl(&[
        ("INTERVAL_SECONDS", "30s"),
        ("REPORT_URL", "http://coworking/api/reports/daily_usage"),
    ]);
    wait_for_call(&calls);
    let (exit, took, stdout, stderr) = logger.terminate();
    assert_eq!(
        stderr,
        ["usage-logger: INTERVAL_SECONDS='30s' is not a positive whole number of seconds, using 30"]
    );
    let url = "http://coworking/api/reports/daily_usage";
    assert_eq!(stdout[0], format!("usage-logger: GET {url} every 30s"));
    // The one call may have been logged before SIGTERM.
    assert!(stdout.len() <= 2, "{stdout:?}");
    assert!(stdout[1..]
        .iter()
        .all(|line| line == &format!("usage-logger: GET {url} 200")));
    assert!(exit.success(), "exit status {exit}");
    assert!(took < Duration::from_secs(2), "took {took:?} to stop");
}
