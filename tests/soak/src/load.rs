//! The load: `connections` clients, each sending the mix's requests in turn
//! (shifted by its index, so that every endpoint is always in flight) until
//! the run ends or the request budget is spent, each answer recorded with
//! when it was asked and answered and whether its body was the reference.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spin_test_host::LeakScan;
use tokio::sync::watch;

use crate::reference::{Endpoint, Reference};

/// What one request got.
#[derive(Debug, Clone)]
pub struct Answer {
    pub endpoint: Endpoint,
    pub asked: Instant,
    pub answered: Instant,
    /// `None`: no HTTP answer (the connection failed, or the client's timeout).
    pub status: Option<u16>,
    /// For a 200: why its body is not the reference.
    pub wrong: Option<String>,
}

impl Answer {
    pub fn took(&self) -> Duration {
        self.answered - self.asked
    }

    pub fn correct(&self) -> bool {
        self.status == Some(200) && self.wrong.is_none()
    }
}

pub struct Load {
    pub base_url: String,
    pub key: String,
    pub connections: usize,
    pub budget: u64,
}

impl Load {
    /// Run until `stop` says so or the budget is spent; every answer.
    pub async fn run(
        self,
        reference: Arc<Reference>,
        scan: LeakScan,
        stop: watch::Receiver<bool>,
    ) -> Vec<Answer> {
        let sent = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for worker in 0..self.connections {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(1)
                .build()
                .expect("an HTTP client");
            let (base_url, key) = (self.base_url.clone(), self.key.clone());
            let (reference, scan, sent, stop) =
                (reference.clone(), scan.clone(), sent.clone(), stop.clone());
            let budget = self.budget;
            workers.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut turn = worker;
                while !*stop.borrow() && sent.fetch_add(1, Ordering::Relaxed) < budget {
                    let endpoint = Endpoint::ALL[turn % Endpoint::ALL.len()];
                    turn += 1;
                    answers.push(ask(&client, &base_url, &key, endpoint, &reference, &scan).await);
                }
                answers
            }));
        }
        let mut answers = Vec::new();
        for worker in workers {
            answers.extend(worker.await.expect("a load worker"));
        }
        answers.sort_by_key(|answer| answer.asked);
        answers
    }
}

async fn ask(
    client: &reqwest::Client,
    base_url: &str,
    key: &str,
    endpoint: Endpoint,
    reference: &Reference,
    scan: &LeakScan,
) -> Answer {
    let asked = Instant::now();
    let path = endpoint.path();
    let response = client
        .get(format!("{base_url}{path}"))
        .bearer_auth(key)
        .send()
        .await;
    let (status, wrong) = match response {
        Err(_) => (None, None),
        Ok(response) => {
            let status = response.status().as_u16();
            let headers: String = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes()))
                })
                .collect();
            scan.scan(&format!("the headers of GET {path}"), headers.as_bytes());
            match response.bytes().await {
                Err(_) => (None, None),
                Ok(body) => {
                    scan.scan(&format!("the body of GET {path}"), &body);
                    let wrong = (status == 200)
                        .then(|| reference.check(endpoint, &body).err())
                        .flatten()
                        .map(|err| format!("{err:#}"));
                    (Some(status), wrong)
                }
            }
        }
    };
    Answer {
        endpoint,
        asked,
        answered: Instant::now(),
        status,
        wrong,
    }
}
