//! A headless Chromium for one test: Debian's `chromium`, driven over the
//! DevTools protocol, with every console error, uncaught exception, failed
//! request and error status the page meets collected, so that a test can
//! insist there were none (or only the ones it provoked).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::browser::{
    SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::{
    EnableParams, EventLoadingFailed, EventRequestWillBeSent, EventResponseReceived,
    SetCacheDisabledParams,
};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Element, Page};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// How long a page may take to reach a state a test waits for.
const WAIT: Duration = Duration::from_secs(20);

/// How long Chromium may take to start. chromiumoxide's default, 20 s, ran
/// out once in CI, in the benchmark, most likely because the host was still
/// answering requests of a run that wrk had stopped (both cores busy).
const LAUNCH: Duration = Duration::from_secs(90);

/// The desktop and phone sizes the screenshots are taken at.
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);

/// Where the screenshots go: test artifacts, never committed.
pub fn screenshot_dir() -> PathBuf {
    test_support::project_root().join("target/dashboard-screenshots")
}

pub struct Chromium {
    browser: Browser,
    pub page: Page,
    /// What went wrong in the page, as one line each.
    problems: Arc<Mutex<Vec<String>>>,
    /// The URL of every request the page made.
    requests: Arc<Mutex<Vec<String>>>,
    downloads: PathBuf,
    _profile: tempfile::TempDir,
}

/// Debian's chromium, which `cargo xtask test` installs.
fn chromium_path() -> PathBuf {
    let path = Path::new("/usr/bin/chromium");
    assert!(
        path.exists(),
        "{} is missing: `cargo xtask test` installs it (apt-get install chromium)",
        path.display()
    );
    path.to_owned()
}

impl Chromium {
    /// A browser at the desktop size, in the time zone `tz`, on a blank page.
    pub async fn launch(tz: &str) -> Chromium {
        let profile = tempfile::tempdir().expect("a profile directory");
        let config = BrowserConfig::builder()
            .chrome_executable(chromium_path())
            .launch_timeout(LAUNCH)
            .user_data_dir(profile.path())
            .no_sandbox()
            .window_size(DESKTOP.0, DESKTOP.1)
            .viewport(Viewport {
                width: DESKTOP.0,
                height: DESKTOP.1,
                ..Viewport::default()
            })
            .env("TZ", tz)
            .build()
            .expect("a browser configuration");
        let (browser, mut handler) = Browser::launch(config).await.expect("launch chromium");
        tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.expect("open a page");
        let problems = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        watch(&page, &problems, &requests).await;
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        browser
            .execute(
                SetDownloadBehaviorParams::builder()
                    .behavior(SetDownloadBehaviorBehavior::Allow)
                    .download_path(downloads.to_string_lossy())
                    .build()
                    .unwrap(),
            )
            .await
            .expect("allow downloads");
        Chromium {
            browser,
            page,
            problems,
            requests,
            downloads,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.page.goto(url).await.expect("navigate");
        self.page.wait_for_navigation().await.expect("load");
    }

    /// The value of a JavaScript expression (awaited when it is a promise).
    pub async fn eval<T: DeserializeOwned>(&self, expression: &str) -> T {
        self.page
            .evaluate(expression)
            .await
            .unwrap_or_else(|err| panic!("evaluate {expression}: {err}"))
            .into_value()
            .unwrap_or_else(|err| panic!("the value of {expression}: {err}"))
    }

    /// Run a statement in the page.
    pub async fn run(&self, statement: &str) {
        self.page
            .evaluate(format!("(() => {{ {statement}; }})()"))
            .await
            .unwrap_or_else(|err| panic!("run {statement}: {err}"));
    }

    /// Wait until `condition` (a JavaScript expression) is true.
    pub async fn wait_until(&self, condition: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let met = self
                .page
                .evaluate(format!("Boolean({condition})"))
                .await
                .ok()
                .and_then(|result| result.into_value::<bool>().ok());
            if met == Some(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page never got to {condition}; its problems: {:?}",
                self.problems()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn element(&self, selector: &str) -> Element {
        self.page
            .find_element(selector)
            .await
            .unwrap_or_else(|err| panic!("{selector}: {err}"))
    }

    /// Type into the element `selector` as a person would.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.element(selector)
            .await
            .click()
            .await
            .unwrap()
            .type_str(text)
            .await
            .unwrap();
    }

    pub async fn click(&self, selector: &str) {
        self.element(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {selector}: {err}"));
    }

    pub async fn press(&self, selector: &str, key: &str) {
        self.element(selector)
            .await
            .press_key(key)
            .await
            .unwrap_or_else(|err| panic!("press {key} on {selector}: {err}"));
    }

    /// Move the mouse to `(x, y)` in the viewport, as a person hovering there.
    pub async fn move_mouse(&self, x: f64, y: f64) {
        self.page
            .move_mouse(chromiumoxide::layout::Point { x, y })
            .await
            .unwrap_or_else(|err| panic!("move the mouse to ({x}, {y}): {err}"));
    }

    /// Load everything from the network, as a first visit does.
    pub async fn disable_cache(&self) {
        self.page
            .execute(SetCacheDisabledParams::new(true))
            .await
            .expect("disable the cache");
    }

    /// The page at this size, as a phone or a desktop shows it.
    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(
                i64::from(width),
                i64::from(height),
                1.0,
                width < 600,
            ))
            .await
            .expect("resize the page");
    }

    /// A screenshot of the whole page, kept under `target/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        self.page
            .save_screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .full_page(true)
                    .build(),
                &path,
            )
            .await
            .expect("take a screenshot");
        path
    }

    /// The file that a click on `selector` downloads: its name and bytes.
    pub async fn download(&self, selector: &str) -> (String, Vec<u8>) {
        let before = self.downloaded();
        self.click(selector).await;
        let deadline = Instant::now() + WAIT;
        loop {
            let new: Vec<PathBuf> = self
                .downloaded()
                .into_iter()
                .filter(|path| !before.contains(path))
                // Chromium writes `.crdownload` first, then renames it.
                .filter(|path| path.extension().is_none_or(|ext| ext != "crdownload"))
                .collect();
            if let [path] = &new[..] {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                return (name, std::fs::read(path).unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "{selector} downloaded nothing; the page's problems: {:?}",
                self.problems()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn downloaded(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.downloads)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    }

    /// What went wrong in the page so far, emptied.
    pub fn take_problems(&self) -> Vec<String> {
        std::mem::take(&mut self.problems.lock().unwrap())
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    /// The URLs the page requested so far, emptied.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
    }
}

/// Record each console error, uncaught exception, failed request and HTTP
/// error status of `page` in `problems`, and each URL it requests in `requests`.
async fn watch(
    page: &Page,
    problems: &Arc<Mutex<Vec<String>>>,
    requests: &Arc<Mutex<Vec<String>>>,
) {
    page.execute(EnableParams::default())
        .await
        .expect("watch the network");
    page.enable_log().await.expect("watch the log");
    page.enable_runtime().await.expect("watch the console");

    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .unwrap();
    let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
    let mut failed = page.event_listener::<EventLoadingFailed>().await.unwrap();
    let mut responses = page
        .event_listener::<EventResponseReceived>()
        .await
        .unwrap();
    let mut sent = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .unwrap();
    let sink = problems.clone();
    let urls = requests.clone();
    tokio::spawn(async move {
        loop {
            let problem = tokio::select! {
                Some(event) = console.next() => (event.r#type == ConsoleApiCalledType::Error)
                    .then(|| format!("console error: {:?}", event.args.iter().map(|arg| arg.value.clone()).collect::<Vec<_>>())),
                Some(event) = exceptions.next() => Some(format!(
                    "uncaught exception: {}",
                    event.exception_details.exception.as_ref()
                        .and_then(|exception| exception.description.clone())
                        .unwrap_or_else(|| event.exception_details.text.clone())
                )),
                Some(event) = log.next() => (event.entry.level == LogEntryLevel::Error)
                    .then(|| format!("log error: {}", event.entry.text)),
                Some(event) = failed.next() => Some(format!("failed request: {}", event.error_text)),
                Some(event) = responses.next() => (event.response.status >= 400)
                    .then(|| format!("HTTP {} from {}", event.response.status, event.response.url)),
                Some(event) = sent.next() => {
                    urls.lock().unwrap().push(event.request.url.clone());
                    None
                }
                else => break,
            };
            if let Some(problem) = problem {
                sink.lock().unwrap().push(problem);
            }
        }
    });
}
