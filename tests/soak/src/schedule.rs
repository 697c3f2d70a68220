//! The faults, one after another with passes between, each a window of time
//! that the verdict reads the answers against; and the count of the
//! service's PostgreSQL connections while they run.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use test_support::{as_postgres_user, Fault, FaultProxy, POSTGRES_BIN};
use tokio::sync::watch;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Proxy(Fault),
    /// `pg_ctl restart -m <mode>`.
    Restart(&'static str),
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Proxy(Fault::Latency(Duration::from_millis(200))),
        Kind::Proxy(Fault::BlackHole),
        Kind::Proxy(Fault::Reset),
        Kind::Proxy(Fault::Refuse),
        Kind::Restart("fast"),
        Kind::Restart("immediate"),
    ];

    pub fn label(self) -> String {
        match self {
            Kind::Proxy(Fault::Latency(delay)) => format!("latency {} ms", delay.as_millis()),
            Kind::Proxy(Fault::BlackHole) => "black hole".into(),
            Kind::Proxy(Fault::Reset) => "reset".into(),
            Kind::Proxy(Fault::Refuse) => "refuse".into(),
            Kind::Proxy(Fault::None) => "none".into(),
            Kind::Restart(mode) => format!("restart ({mode})"),
        }
    }
}

/// When one fault lasted.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub kind: Kind,
    pub start: Instant,
    pub end: Instant,
}

pub struct Schedule {
    pub fault: Duration,
    pub pass: Duration,
    pub rounds: usize,
    pub pg_data: PathBuf,
}

impl Schedule {
    /// A pass before the first fault, for the pools and caches; its end,
    /// after which answers are checked.
    pub async fn warm_up(&self) -> Instant {
        tokio::time::sleep(self.pass).await;
        Instant::now()
    }

    /// Every fault of every round, each followed by a pass; and `measure`'s
    /// value after the first round, the warm-up's end.
    pub async fn run<T>(
        &self,
        proxy: &FaultProxy,
        measure: impl Fn() -> T,
    ) -> Result<(Vec<Window>, Option<T>)> {
        let mut windows = Vec::new();
        let mut warm = None;
        for round in 1..=self.rounds {
            for kind in Kind::ALL {
                println!("soak: round {round}, {}", kind.label());
                let start = Instant::now();
                match kind {
                    Kind::Proxy(fault) => {
                        proxy.set(fault);
                        tokio::time::sleep(self.fault).await;
                        proxy.set(Fault::None);
                    }
                    Kind::Restart(mode) => restart(&self.pg_data, mode).await?,
                }
                windows.push(Window {
                    kind,
                    start,
                    end: Instant::now(),
                });
                tokio::time::sleep(self.pass).await;
            }
            if round == 1 {
                warm = Some(measure());
            }
        }
        Ok((windows, warm))
    }
}

async fn restart(data: &Path, mode: &'static str) -> Result<()> {
    let data = data.to_owned();
    let status = tokio::task::spawn_blocking(move || {
        as_postgres_user(&Path::new(POSTGRES_BIN).join("pg_ctl"))
            .args(["restart", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .status()
    })
    .await?
    .context("run pg_ctl restart")?;
    ensure!(
        status.success(),
        "pg_ctl restart -m {mode} failed ({status})"
    );
    Ok(())
}

/// The service's connections to PostgreSQL (its address's `application_name`), sampled every 200 ms until `stop`, then
/// once more 2 s later: the most seen, and that last count. A sample while
/// the server restarts is skipped.
pub async fn count_connections<F, C>(
    connect: F,
    mut stop: watch::Receiver<bool>,
) -> Result<(i64, i64)>
where
    F: Fn(&'static str) -> C,
    C: Future<
        Output = Result<
            (
                tokio_postgres::Client,
                tokio_postgres::Connection<
                    tokio_postgres::Socket,
                    tokio_postgres::tls::NoTlsStream,
                >,
            ),
            tokio_postgres::Error,
        >,
    >,
{
    let sample = || async {
        let (client, connection) = connect("soak-monitor").await.ok()?;
        tokio::spawn(connection);
        let row = client
            .query_one(
                // The pools' connections, which the service's address names;
                // not the readiness probe's backends, which never get past
                // the startup.
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = 'coworking-analytics'",
                &[],
            )
            .await
            .ok()?;
        Some(row.get::<_, i64>(0))
    };
    let mut most = 0;
    while !*stop.borrow() {
        if let Some(count) = sample().await {
            most = most.max(count);
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), stop.changed()).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = sample()
        .await
        .context("count the connections after the load")?;
    Ok((most, after))
}
