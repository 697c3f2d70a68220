//! `allowed_outbound_hosts`, as Spin checks it: the manifest's entries
//! (templates expanded at load time) against every host and port of the
//! PostgreSQL address a component opens, and against the address of every TCP
//! or UDP socket it connects (wasi:sockets: Spin checks the socket's IP address
//! and port, so a `tcp://` entry with a host name admits no socket).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use tokio_postgres::config::Host;

use crate::error_text::error_text;

/// The default port of the `postgres` scheme.
const POSTGRES_PORT: u16 = 5432;

/// One allowed `scheme://host:port`; `*` matches anything in that position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<AllowedHost> {
        let (scheme, rest) = entry
            .split_once("://")
            .with_context(|| format!("allowed_outbound_hosts entry {entry:?} has no scheme"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, None),
            Some((host, port)) => (
                host,
                Some(
                    port.parse()
                        .with_context(|| format!("bad port in {entry:?}"))?,
                ),
            ),
            None if scheme == "postgres" => (rest, Some(POSTGRES_PORT)),
            None => bail!("allowed_outbound_hosts entry {entry:?} needs a port"),
        };
        Ok(AllowedHost {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let same_host = match (
            self.host.trim_matches(['[', ']']).parse::<IpAddr>(),
            host.trim_matches(['[', ']']).parse::<IpAddr>(),
        ) {
            (Ok(allowed), Ok(host)) => allowed == host,
            _ => self.host.eq_ignore_ascii_case(host),
        };
        (self.scheme == "*" || self.scheme == scheme)
            && (self.host == "*" || same_host)
            && self.port.is_none_or(|allowed| allowed == port)
    }
}

/// The PostgreSQL destinations a component may open.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    /// From the expanded `allowed_outbound_hosts` entries.
    pub fn new(entries: &[String]) -> Result<OutboundPolicy> {
        let allowed = entries
            .iter()
            .map(|entry| AllowedHost::parse(entry))
            .collect::<Result<_>>()?;
        Ok(OutboundPolicy { allowed })
    }

    /// Check an address passed to `connection.open`; `Err` holds Spin's
    /// `connection-failed` text.
    pub fn check(&self, address: &str) -> Result<tokio_postgres::Config, String> {
        let config = tokio_postgres::Config::from_str(address).map_err(|err| error_text(&err))?;
        let ports = config.get_ports();
        for (index, host) in config.get_hosts().iter().enumerate() {
            let Host::Tcp(host) = host else {
                return Err("Unix sockets are not supported on WebAssembly".to_owned());
            };
            // The port at the host's index, or the only port given for all hosts;
            // without one, the scheme's default applies.
            let port = ports
                .get(index)
                .or_else(|| (ports.len() == 1).then(|| &ports[0]))
                .copied();
            let permitted = self
                .allowed
                .iter()
                .any(|allowed| allowed.allows("postgres", host, port.unwrap_or(POSTGRES_PORT)));
            if !permitted {
                let address = match port {
                    Some(port) => format!("postgres://{host}:{port}"),
                    None => format!("postgres://{host}"),
                };
                return Err(format!("address {address} is not permitted"));
            }
        }
        Ok(config)
    }

    /// Whether a component may connect a socket of `scheme` (`tcp`, `udp`) to
    /// `address`: its IP address must be an entry's host.
    pub fn allows_socket(&self, scheme: &str, address: SocketAddr) -> bool {
        let host = address.ip().to_string();
        self.allowed
            .iter()
            .any(|allowed| allowed.allows(scheme, &host, address.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn only_the_configured_host_and_port_are_permitted() {
        let policy = policy(&["postgres://127.0.0.1:56432"]);
        assert!(policy.check("postgres://u:p@127.0.0.1:56432/db").is_ok());
        assert!(policy.check("host=127.0.0.1 port=56432 user=u").is_ok());
        assert_eq!(
            policy
                .check("postgres://u:p@localhost:56432/db")
                .unwrap_err(),
            "address postgres://localhost:56432 is not permitted"
        );
        assert_eq!(
            policy
                .check("postgres://u:p@127.0.0.1:5433/db")
                .unwrap_err(),
            "address postgres://127.0.0.1:5433 is not permitted"
        );
        assert_eq!(
            // tokio-postgres gives a URL without a port the default one.
            policy.check("postgres://u:p@127.0.0.1/db").unwrap_err(),
            "address postgres://127.0.0.1:5432 is not permitted"
        );
    }

    #[test]
    fn the_postgres_scheme_defaults_to_port_5432_and_wildcards_match() {
        assert!(policy(&["postgres://db"]).check("postgres://db/x").is_ok());
        assert!(policy(&["postgres://*:*"])
            .check("postgres://any:1/x")
            .is_ok());
        assert!(policy(&["*://db:*"]).check("postgres://db:9/x").is_ok());
    }

    #[test]
    fn sockets_are_checked_by_address_and_port() {
        let policy = policy(&[
            "postgres://db.internal:5432",
            "tcp://127.0.0.1:5432",
            "tcp://[::1]:6543",
        ]);
        assert!(policy.allows_socket("tcp", "127.0.0.1:5432".parse().unwrap()));
        assert!(policy.allows_socket("tcp", "[::1]:6543".parse().unwrap()));
        assert!(!policy.allows_socket("tcp", "127.0.0.1:5433".parse().unwrap()));
        assert!(!policy.allows_socket("udp", "127.0.0.1:5432".parse().unwrap()));
        // A postgres:// entry admits no socket, and a name no address.
        let named = super::OutboundPolicy::new(&["tcp://localhost:5432".to_string()]).unwrap();
        assert!(!named.allows_socket("tcp", "127.0.0.1:5432".parse().unwrap()));
    }

    #[test]
    fn unix_sockets_and_bad_addresses_are_refused() {
        let policy = policy(&["postgres://*:*"]);
        assert!(policy.check("host=/var/run/postgresql user=u").is_err());
        assert_eq!(
            policy
                .check("postgres://u:p@ss:w/rd#1?@127.0.0.1:5432/db")
                .unwrap_err(),
            "invalid connection string: invalid value for option `port`"
        );
    }
}
