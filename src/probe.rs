//! The readiness probe's first step: does PostgreSQL answer at all, within a
//! deadline? Spin bounds nothing of a connection's setup but the TCP connect,
//! so a server that accepts and never answers (frozen, overloaded, a
//! black-holed path) would hold `Connection::open` for as long as it lasts. A
//! TCP socket of `wasi:sockets`, which the component drives itself, can give
//! up: it sends PostgreSQL's GSSENCRequest, which a live server answers with
//! one byte (`G` or `N`) before any authentication, and waits for that byte.
//! Not the SSLRequest: a server with TLS on answers it `S`, then logs `could not
//! accept SSL connection: EOF detected` when the probe hangs up, every probe;
//! after a GSSENCRequest it logs nothing (checked against PostgreSQL 15, TLS on
//! and off).
//!
//! It runs for readiness only: each probe costs PostgreSQL a backend fork.
//! Spin checks a socket against `allowed_outbound_hosts` by its IP address
//! (`tcp://{{ db_host }}:{{ db_port }}`) and lets components resolve no names,
//! so the probe runs when `db_host` is an address; for a name it is skipped.

use std::net::IpAddr;
use std::time::Duration;

/// PostgreSQL's GSSENCRequest: the message length (8) and the code 80877104.
pub const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// How long the probe waits for the server's byte, all steps together.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// Whether the probe can run, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Address(IpAddr),
    /// A host name: Spin resolves none for a component, and admits sockets by address.
    Name,
}

impl Target {
    pub fn of(host: &str) -> Target {
        match host.trim_matches(['[', ']']).parse() {
            Ok(address) => Target::Address(address),
            Err(_) => Target::Name,
        }
    }
}

/// Why the database did not answer the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// No answer within [`PROBE_DEADLINE`], at this step.
    NoAnswer(&'static str),
    /// The socket failed (refused, unreachable, denied), at this step.
    Socket(&'static str, String),
    /// A byte that no PostgreSQL sends.
    NotPostgres(u8),
    /// The server closed the connection without a byte.
    Closed,
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::NoAnswer(step) => write!(
                f,
                "no answer within {} s ({step}): the database accepts connections and does not answer",
                PROBE_DEADLINE.as_secs()
            ),
            ProbeError::Socket(step, code) => write!(f, "{step} failed: {code}"),
            ProbeError::NotPostgres(byte) => {
                write!(f, "the server answered the GSSENCRequest with {byte:#04x}, not G or N")
            }
            ProbeError::Closed => write!(f, "the server closed the connection without answering"),
        }
    }
}

/// What the server's byte means.
pub fn check_reply(byte: u8) -> Result<(), ProbeError> {
    match byte {
        b'G' | b'N' => Ok(()),
        other => Err(ProbeError::NotPostgres(other)),
    }
}

#[cfg(target_arch = "wasm32")]
pub use socket::probe;

/// The probe over `wasi:sockets`, with every step bounded by one deadline.
#[cfg(target_arch = "wasm32")]
mod socket {
    use std::net::IpAddr;

    use wasi::clocks::monotonic_clock;
    use wasi::io::poll::{poll, Pollable};
    use wasi::sockets::instance_network::instance_network;
    use wasi::sockets::network::{
        ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
    };
    use wasi::sockets::tcp_create_socket::create_tcp_socket;

    use super::{check_reply, ProbeError, GSSENC_REQUEST, PROBE_DEADLINE};

    /// Whether `address:port` answers the GSSENCRequest within the deadline.
    pub fn probe(address: IpAddr, port: u16) -> Result<(), ProbeError> {
        let deadline = monotonic_clock::subscribe_instant(
            monotonic_clock::now() + PROBE_DEADLINE.as_nanos() as u64,
        );
        let failed = |step: &'static str| {
            move |code: ErrorCode| ProbeError::Socket(step, code.name().to_string())
        };
        let (family, remote) = match address {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                let remote = Ipv4SocketAddress {
                    port,
                    address: (a, b, c, d),
                };
                (IpAddressFamily::Ipv4, IpSocketAddress::Ipv4(remote))
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let remote = Ipv6SocketAddress {
                    port,
                    flow_info: 0,
                    address: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                    scope_id: 0,
                };
                (IpAddressFamily::Ipv6, IpSocketAddress::Ipv6(remote))
            }
        };
        let network = instance_network();
        let socket = create_tcp_socket(family).map_err(failed("create a socket"))?;
        socket
            .start_connect(&network, remote)
            .map_err(failed("connect"))?;
        let (input, output) = loop {
            wait(&socket.subscribe(), &deadline, "connect")?;
            match socket.finish_connect() {
                Err(ErrorCode::WouldBlock) => continue,
                other => break other.map_err(failed("connect"))?,
            }
        };
        output
            .blocking_write_and_flush(&GSSENC_REQUEST)
            .map_err(|err| ProbeError::Socket("send the GSSENCRequest", format!("{err:?}")))?;
        loop {
            wait(&input.subscribe(), &deadline, "the GSSENCRequest's answer")?;
            match input.read(1) {
                Ok(bytes) => match bytes.first() {
                    Some(byte) => return check_reply(*byte),
                    None => continue,
                },
                Err(_) => return Err(ProbeError::Closed),
            }
        }
    }

    /// Wait until `ready` is, or fail when the deadline comes first.
    fn wait(ready: &Pollable, deadline: &Pollable, step: &'static str) -> Result<(), ProbeError> {
        let woken = poll(&[ready, deadline]);
        if woken.contains(&0) {
            Ok(())
        } else {
            Err(ProbeError::NoAnswer(step))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gssenc_request_is_postgres_wire_format() {
        let length = u32::from_be_bytes(GSSENC_REQUEST[..4].try_into().unwrap());
        let code = u32::from_be_bytes(GSSENC_REQUEST[4..].try_into().unwrap());
        assert_eq!((length, code), (8, 80_877_104));
    }

    #[test]
    fn addresses_are_probed_and_names_are_not() {
        assert_eq!(
            Target::of("127.0.0.1"),
            Target::Address([127, 0, 0, 1].into())
        );
        assert_eq!(Target::of("[::1]"), Target::Address("::1".parse().unwrap()));
        assert_eq!(Target::of("postgres"), Target::Name);
        assert_eq!(
            Target::of("db.abc.us-east-1.rds.amazonaws.com"),
            Target::Name
        );
    }

    #[test]
    fn only_g_and_n_answer_a_gssenc_request() {
        assert_eq!(check_reply(b'G'), Ok(()));
        assert_eq!(check_reply(b'N'), Ok(()));
        assert_eq!(check_reply(b'E'), Err(ProbeError::NotPostgres(b'E')));
        assert!(ProbeError::NoAnswer("connect")
            .to_string()
            .contains("within 2 s"));
    }
}
