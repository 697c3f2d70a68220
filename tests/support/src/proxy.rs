//! A TCP proxy between the component and PostgreSQL that counts connections
//! and injects faults: it passes traffic through, delays it, black-holes it
//! (accepts new connections and holds them, stops forwarding on existing ones,
//! never answers), resets every connection, or refuses new ones. When a black
//! hole ends, the connections it held are closed, as a network path that
//! comes back finds its stalled connections reset.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// Forward everything, each read this much later.
    Latency(Duration),
    /// Accept and never answer: no byte goes through, either way.
    BlackHole,
    /// Reset every connection (RST), existing and new.
    Reset,
    /// Close the listening socket: new connections are refused; existing
    /// ones go on.
    Refuse,
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
        let task = tokio::spawn(accept(listener, upstream, watching, accepted.clone()));
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

async fn accept(
    mut listener: TcpListener,
    upstream: SocketAddr,
    mut fault: watch::Receiver<Fault>,
    accepted: Arc<AtomicUsize>,
) {
    let address = listener.local_addr().expect("the proxy's address");
    loop {
        if *fault.borrow_and_update() == Fault::Refuse {
            drop(listener);
            if fault
                .wait_for(|fault| *fault != Fault::Refuse)
                .await
                .is_err()
            {
                return;
            }
            listener = loop {
                // The port was ours a moment ago; the kernel may take a moment.
                match TcpListener::bind(address).await {
                    Ok(listener) => break listener,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            };
            continue;
        }
        tokio::select! {
            connection = listener.accept() => {
                if let Ok((client, _)) = connection {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(relay(client, upstream, fault.clone()));
                }
            }
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let now = *fault.borrow();
    match now {
        Fault::BlackHole => {
            hold_until_the_fault_ends(&mut fault).await;
            return;
        }
        Fault::Reset => {
            reset(&client);
            return;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_reads, mut client_writes) = client.into_split();
    let (mut server_reads, mut server_writes) = server.into_split();
    // Either direction ending (a close, or a black hole's end) ends both; a
    // reset resets both.
    let reset_now = tokio::select! {
        _ = forward(&mut client_reads, &mut server_writes, fault.clone()) => false,
        _ = forward(&mut server_reads, &mut client_writes, fault.clone()) => false,
        _ = fault.wait_for(|fault| *fault == Fault::Reset) => true,
    };
    if reset_now {
        reset(client_writes.as_ref());
        reset(server_writes.as_ref());
    }
}

/// Close with a RST rather than a FIN, once the stream is dropped.
// tokio deprecates SO_LINGER because a non-zero linger blocks the thread on
// drop; a zero one makes the close an immediate reset, which is the point.
#[allow(deprecated)]
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

async fn forward(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
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
        let delay = match *fault.borrow() {
            Fault::Latency(delay) => Some(delay),
            _ => None,
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

async fn hold_until_the_fault_ends(fault: &mut watch::Receiver<Fault>) {
    // The sender gone (the proxy dropped) ends the hold too.
    let _ = fault.wait_for(|fault| *fault != Fault::BlackHole).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::time::Instant;

    /// An upstream that echoes what it reads.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(count @ 1..) = stream.read(&mut buffer).await {
                        if stream.write_all(&buffer[..count]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    async fn round_trip(stream: &mut TcpStream) -> std::io::Result<()> {
        stream.write_all(b"ping").await?;
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).await?;
        assert_eq!(&answer, b"ping");
        Ok(())
    }

    fn proxied(proxy: &FaultProxy) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], proxy.port()))
    }

    #[tokio::test]
    async fn latency_delays_each_way() {
        let proxy = FaultProxy::start(echo().await).await;
        proxy.set(Fault::Latency(Duration::from_millis(100)));
        let mut stream = TcpStream::connect(proxied(&proxy)).await.unwrap();
        let started = Instant::now();
        round_trip(&mut stream).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn reset_ends_existing_and_new_connections_with_a_rst() {
        let proxy = FaultProxy::start(echo().await).await;
        let mut existing = TcpStream::connect(proxied(&proxy)).await.unwrap();
        round_trip(&mut existing).await.unwrap();
        proxy.set(Fault::Reset);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = round_trip(&mut existing).await.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{err}"
        );
        let mut new = TcpStream::connect(proxied(&proxy)).await.unwrap();
        assert!(round_trip(&mut new).await.is_err());
        proxy.set(Fault::None);
        let mut after = TcpStream::connect(proxied(&proxy)).await.unwrap();
        round_trip(&mut after).await.unwrap();
    }

    #[tokio::test]
    async fn refuse_closes_the_port_until_the_fault_ends() {
        let proxy = FaultProxy::start(echo().await).await;
        let mut existing = TcpStream::connect(proxied(&proxy)).await.unwrap();
        // Relayed before the port closes (a connection still in the backlog
        // would be reset with the listener).
        round_trip(&mut existing).await.unwrap();
        proxy.set(Fault::Refuse);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = TcpStream::connect(proxied(&proxy)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        round_trip(&mut existing).await.unwrap();
        proxy.set(Fault::None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut after = TcpStream::connect(proxied(&proxy)).await.unwrap();
        round_trip(&mut after).await.unwrap();
    }
}
