//! A TCP proxy between the component and PostgreSQL that counts connections
//! and injects faults: it passes traffic through, or black-holes it (accepts
//! new connections and holds them, stops forwarding on existing ones, never
//! answers). When a black hole ends, the connections it held are closed, as a
//! network path that comes back finds its stalled connections reset.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Accept and never answer: no byte goes through, either way.
    BlackHole,
}

pub struct FaultProxy {
    address: SocketAddr,
    fault: watch::Sender<Fault>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let (fault, watching) = watch::channel(Fault::None);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(relay(client, upstream, watching.clone()));
            }
        });
        FaultProxy {
            address,
            fault,
            accepted,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// The connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    if *fault.borrow() == Fault::BlackHole {
        hold_until_the_fault_ends(&mut fault).await;
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_reads, client_writes) = client.into_split();
    let (server_reads, server_writes) = server.into_split();
    // Either direction ending (a close, or a black hole's end) ends both.
    tokio::select! {
        _ = forward(client_reads, server_writes, fault.clone()) => {}
        _ = forward(server_reads, client_writes, fault.clone()) => {}
    }
}

async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut fault: watch::Receiver<Fault>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => Some(read),
            _ = fault.wait_for(|fault| *fault == Fault::BlackHole) => None,
        };
        let count = match read {
            None => {
                hold_until_the_fault_ends(&mut fault).await;
                return;
            }
            Some(Ok(0) | Err(_)) => return,
            Some(Ok(count)) => count,
        };
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

async fn hold_until_the_fault_ends(fault: &mut watch::Receiver<Fault>) {
    // The sender gone (the proxy dropped) ends the hold too.
    let _ = fault.wait_for(|fault| *fault != Fault::BlackHole).await;
}
