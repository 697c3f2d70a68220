//! The floor as Spin pays it: each database request of the service is, in
//! Spin's outbound PostgreSQL, a connection from its deadpool-postgres pool,
//! reset on reuse (`RecyclingMethod::Clean`, one round trip), then the query
//! prepared (one round trip) and executed (one more). pgbench cannot split a
//! query into those round trips, so this floor runs them through the same pool
//! and client (tokio-postgres 0.7; Spin 3.6.3 locks 0.7.12). Against it, the
//! service's ratio is what the component and HTTP cost on their own, and, for
//! readiness, the probe (`src/probe.rs`), which no floor makes. Its sessions
//! have the service's settings (`session_options`: JIT off).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use coworking_analytics::config::session_options;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use spin_sdk::pg4::ParameterValue;
use tokio_postgres::types::ToSql;

use super::{not_interrupted, BenchDb, Floor, INTERRUPTED, PASSWORD};

/// Parameters bound as tokio-postgres binds them, shared by the connections.
type Bound = Arc<Vec<Box<dyn ToSql + Send + Sync>>>;

/// Run Spin's sequence for `sql` with `parameters` on a pool of `connections`
/// connections, one request at a time on each, for `duration` seconds, timed
/// from when every connection is open.
pub fn measure(
    runtime: &tokio::runtime::Runtime,
    db: &BenchDb,
    sql: &str,
    parameters: &[ParameterValue],
    connections: u32,
    duration: u64,
) -> Result<Floor> {
    not_interrupted()?;
    let bound: Bound = Arc::new(
        parameters
            .iter()
            .map(super::v2_statements::bind)
            .collect::<Result<_>>()?,
    );
    runtime.block_on(async {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(db.cluster.port)
            .user("postgres")
            .dbname("postgres")
            .password(PASSWORD)
            // The service's session settings (JIT off), without its statement
            // timeout: the floor of a query that the service abandons is
            // still measured.
            .options(session_options(Duration::ZERO));
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Clean,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(connections as usize)
            .build()
            .context("build the Spin floor's pool")?;
        // Open every connection first: the floor is of reused ones.
        let mut opened = Vec::new();
        for _ in 0..connections {
            opened.push(pool.get().await.context("connect for the Spin floor")?);
        }
        drop(opened);

        let started = Instant::now();
        let deadline = started + Duration::from_secs(duration);
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                tokio::spawn(requests_until(
                    pool.clone(),
                    sql.to_owned(),
                    bound.clone(),
                    deadline,
                ))
            })
            .collect();
        let (mut requests, mut busy) = (0, Duration::ZERO);
        for worker in workers {
            let run = worker.await.context("a Spin floor connection panicked")??;
            requests += run.requests;
            busy += run.busy;
        }
        let elapsed = started.elapsed().as_secs_f64();
        not_interrupted()?;
        anyhow::ensure!(requests > 0, "the Spin floor completed no request");
        Ok(Floor {
            tps: requests as f64 / elapsed,
            latency_ms: busy.as_secs_f64() * 1e3 / requests as f64,
        })
    })
}

struct ConnectionRun {
    requests: u64,
    busy: Duration,
}

/// One request after the other, as one connection of the service's pool
/// serves them, until `deadline` (or Ctrl-C).
async fn requests_until(
    pool: Pool,
    sql: String,
    parameters: Bound,
    deadline: Instant,
) -> Result<ConnectionRun> {
    let parameters: Vec<&(dyn ToSql + Sync)> = parameters
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let mut run = ConnectionRun {
        requests: 0,
        busy: Duration::ZERO,
    };
    while Instant::now() < deadline && !INTERRUPTED.load(Ordering::SeqCst) {
        let started = Instant::now();
        // The pool resets the connection it hands out; a query by its text is
        // prepared, then executed, as Spin's `query` does.
        let client = pool.get().await?;
        client.query(&sql, &parameters).await?;
        drop(client);
        run.busy += started.elapsed();
        run.requests += 1;
    }
    Ok(run)
}
