//! The floor as Spin pays it: each database request of the service is, in
//! Spin's outbound PostgreSQL, the pool's reset of a reused connection
//! (deadpool-postgres `RecyclingMethod::Clean`, one round trip), then the query
//! prepared (one round trip) and executed (one more). pgbench cannot split a
//! query into those round trips, so this floor runs them through tokio-postgres,
//! the client Spin uses, on connections that stay open as the pool's do. Against
//! it, the service's ratio is what the component and HTTP cost on their own.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{clock_ticks_per_second, not_interrupted, BenchDb, Floor, PASSWORD, POOL_RESET_SQL};

/// Run Spin's sequence for `sql` on `connections` connections for `duration`
/// seconds, timed from when every connection is open.
pub fn measure(db: &BenchDb, sql: &str, connections: u32, duration: u64) -> Result<Floor> {
    not_interrupted()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the Spin floor's runtime")?;
    runtime.block_on(async {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(db.cluster.port)
            .user("postgres")
            .dbname("postgres")
            .password(PASSWORD);
        let mut pool = Vec::new();
        for _ in 0..connections {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .context("connect for the Spin floor")?;
            pool.push((client, tokio::spawn(connection)));
        }
        let cpu_before = db.server_cpu_ticks()?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(duration);
        let workers: Vec<_> = pool
            .into_iter()
            .map(|(client, driver)| {
                let sql = sql.to_owned();
                tokio::spawn(async move {
                    let run = requests_until(&client, &sql, deadline).await;
                    drop(client);
                    driver.await??;
                    run
                })
            })
            .collect();
        let (mut requests, mut busy) = (0, Duration::ZERO);
        for worker in workers {
            let run = worker.await.context("a Spin floor connection panicked")??;
            requests += run.requests;
            busy += run.busy;
        }
        let elapsed = started.elapsed().as_secs_f64();
        // As for pgbench: the backends' time is the postmaster's once it reaped them.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cpu_ticks = db.server_cpu_ticks()? - cpu_before;
        anyhow::ensure!(requests > 0, "the Spin floor completed no request");
        Ok(Floor {
            tps: requests as f64 / elapsed,
            latency_ms: busy.as_secs_f64() * 1e3 / requests as f64,
            server_cpu_us: cpu_ticks as f64 * 1e6 / clock_ticks_per_second() / requests as f64,
        })
    })
}

struct ConnectionRun {
    requests: u64,
    busy: Duration,
}

/// One pooled connection: reset, prepare, execute, until `deadline`.
async fn requests_until(
    client: &tokio_postgres::Client,
    sql: &str,
    deadline: Instant,
) -> Result<ConnectionRun> {
    let mut run = ConnectionRun {
        requests: 0,
        busy: Duration::ZERO,
    };
    while Instant::now() < deadline {
        let started = Instant::now();
        client.batch_execute(POOL_RESET_SQL).await?;
        // A query by its text: tokio-postgres prepares it, then executes it,
        // as Spin's `query` does.
        client.query(sql, &[]).await?;
        run.busy += started.elapsed();
        run.requests += 1;
    }
    Ok(run)
}
