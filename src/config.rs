//! Configuration: the Flask app's database settings, read from Spin variables, and
//! the connection address built from them.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use url::Url;

/// How long to wait for PostgreSQL to accept a connection. The readiness probe
/// times out after 5 s, so a database host that never answers must fail well before.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A setting, with the Spin variable that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Username,
    Password,
    Host,
    Port,
    Name,
    SslMode,
    ReportSource,
}

impl Setting {
    /// The Spin variable name (`spin.toml`, `SPIN_VARIABLE_<NAME>`).
    pub fn variable(self) -> &'static str {
        match self {
            Setting::Username => "db_username",
            Setting::Password => "db_password",
            Setting::Host => "db_host",
            Setting::Port => "db_port",
            Setting::Name => "db_name",
            Setting::SslMode => "db_sslmode",
            Setting::ReportSource => "report_source",
        }
    }

    /// The Flask app's default; `None` for the settings it required.
    fn default_value(self) -> Option<&'static str> {
        match self {
            Setting::Username | Setting::Password => None,
            Setting::Host => Some("127.0.0.1"),
            Setting::Port => Some("5432"),
            Setting::Name => Some("postgres"),
            // Spin's own default: TLS when the server offers it.
            Setting::SslMode => Some("prefer"),
            Setting::ReportSource => Some("auto"),
        }
    }
}

/// A configuration mistake. It names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable has no value, or an empty one.
    Missing(Setting),
    /// `db_port` is not a TCP port number; `service_link` when it holds a
    /// Kubernetes service link address (`tcp://10.100.0.7:5432`).
    InvalidPort { service_link: bool },
    /// `db_sslmode` is not a mode Spin's PostgreSQL client takes.
    InvalidSslMode,
    /// `report_source` is not `auto`, `rollups` or `tokens`.
    InvalidReportSource,
    /// The variables interface failed; the text comes from the host.
    Unreadable { setting: Setting, reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing(setting) => write!(
                f,
                "required variable {} is not set (set SPIN_VARIABLE_{} or `spin up --variable {}=...`)",
                setting.variable(),
                setting.variable().to_uppercase(),
                setting.variable()
            ),
            ConfigError::InvalidPort { service_link } => {
                write!(f, "variable db_port must be a TCP port number from 1 to 65535")?;
                if *service_link {
                    write!(
                        f,
                        "; it holds a Kubernetes service link (tcp://...): a Service named db \
                         in the namespace gives every pod DB_PORT, which containerd-shim-spin \
                         reads as db_port. Rename that Service"
                    )?;
                }
                Ok(())
            }
            ConfigError::InvalidSslMode => write!(
                f,
                "variable db_sslmode must be disable, prefer or require (Spin's PostgreSQL \
                 client takes no other mode)"
            ),
            ConfigError::InvalidReportSource => write!(
                f,
                "variable report_source must be auto (the rollups when they can be read, else \
                 the tokens table), rollups or tokens"
            ),
            ConfigError::Unreadable { setting, reason } => {
                write!(f, "variable {} cannot be read: {reason}", setting.variable())
            }
        }
    }
}

/// Whether the connection to PostgreSQL uses TLS: the `sslmode`s of Spin's
/// client (tokio-postgres), which verifies the server's certificate against the
/// runtime's trust store whenever it uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it: someone in the path can refuse it for the server.
    Prefer,
    /// TLS or no connection.
    Require,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, ConfigError> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            _ => Err(ConfigError::InvalidSslMode),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
        }
    }
}

/// Where the reports read their counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSource {
    /// The rollups, or `tokens` where they cannot be read (a notice says so).
    Auto,
    /// The rollups only: their absence is an error.
    Rollups,
    /// `tokens` only, without trying the rollups: no failed query per request.
    Tokens,
}

impl ReportSource {
    fn parse(text: &str) -> Result<ReportSource, ConfigError> {
        match text {
            "auto" => Ok(ReportSource::Auto),
            "rollups" => Ok(ReportSource::Rollups),
            "tokens" => Ok(ReportSource::Tokens),
            _ => Err(ConfigError::InvalidReportSource),
        }
    }
}

/// The settings of the service's database sessions (the `options` of its
/// address; the benchmark's Spin floor sets them too). `statement_timeout`
/// bounds every query (zero: none). JIT is off: the reports are short queries
/// whose ranges the planner cannot see before they run, so it costs them as
/// scans, and compiling them took 50–60 ms of a 13 ms report (measured on the
/// v2 usage report at L).
pub fn session_options(statement_timeout: Duration) -> String {
    format!(
        "-c statement_timeout={} -c jit=off",
        statement_timeout.as_millis()
    )
}

/// The database settings of the service.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSettings {
    pub username: String,
    password: String,
    pub host: String,
    pub port: u16,
    pub name: String,
    pub sslmode: SslMode,
    pub report_source: ReportSource,
}

impl fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSettings")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("name", &self.name)
            .field("sslmode", &self.sslmode)
            .field("report_source", &self.report_source)
            .finish()
    }
}

impl DbSettings {
    /// Read the settings through `lookup`, which returns a variable's value, `None`
    /// when it is undefined, or the host's error. Empty values count as unset, so an
    /// empty optional setting takes the Flask default and an empty required one is
    /// reported as missing.
    pub fn load(
        lookup: impl Fn(&str) -> Result<Option<String>, String>,
    ) -> Result<DbSettings, ConfigError> {
        let read = |setting: Setting| -> Result<String, ConfigError> {
            let value = lookup(setting.variable())
                .map_err(|reason| ConfigError::Unreadable { setting, reason })?
                .filter(|value| !value.is_empty());
            match (value, setting.default_value()) {
                (Some(value), _) => Ok(value),
                (None, Some(default)) => Ok(default.to_owned()),
                (None, None) => Err(ConfigError::Missing(setting)),
            }
        };
        let port_text = read(Setting::Port)?;
        let port = port_text
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or(ConfigError::InvalidPort {
                service_link: port_text.starts_with("tcp://"),
            })?;
        Ok(DbSettings {
            username: read(Setting::Username)?,
            password: read(Setting::Password)?,
            host: read(Setting::Host)?,
            port,
            name: read(Setting::Name)?,
            sslmode: SslMode::parse(&read(Setting::SslMode)?)?,
            report_source: ReportSource::parse(&read(Setting::ReportSource)?)?,
        })
    }

    /// The address for Spin's `Connection::open`, in URL form: user, password and
    /// database are percent-encoded, so any character in them is safe. The
    /// session's settings are [`session_options`]. Keepalives and
    /// `tcp_user_timeout` (seconds, in tokio-postgres, whose 0.7.12 in Spin
    /// parses them) end a pooled connection whose peer vanished, instead of
    /// TCP's own minutes: idle, after 10 s and three 5 s probes; with data in
    /// flight, after 10 s without an acknowledgement.
    pub fn address(&self, statement_timeout: Duration) -> String {
        let mut url = Url::parse("postgres://localhost").expect("a valid base URL");
        // An IPv6 literal must be bracketed in a URL.
        let host = match self.host.parse::<Ipv6Addr>() {
            Ok(_) => format!("[{}]", self.host),
            Err(_) => self.host.clone(),
        };
        // `postgres` is not a special scheme for the url crate, so these only fail
        // for hosts that no PostgreSQL address could carry either; they then leave
        // the placeholder, and the host refuses the address as not permitted.
        let _ = url.set_host(Some(&host));
        let _ = url.set_port(Some(self.port));
        let _ = url.set_username(&encode(&self.username));
        let _ = url.set_password(Some(&encode(&self.password)));
        url.set_path(&format!("/{}", encode(&self.name)));
        let options = session_options(statement_timeout);
        url.set_query(Some(&format!(
            "sslmode={}&connect_timeout={}&keepalives=1&keepalives_idle=10&keepalives_interval=5\
             &keepalives_retries=3&tcp_user_timeout=10&application_name=coworking-analytics\
             &options={}",
            self.sslmode.as_str(),
            CONNECT_TIMEOUT.as_secs(),
            encode(&options)
        )));
        url.into()
    }

    /// Remove the password from a text that came back from the database host, in
    /// case it echoes the address: log lines and error bodies must never carry it.
    pub fn redact(&self, text: &str) -> String {
        if self.password.is_empty() {
            return text.to_owned();
        }
        text.replace(&encode(&self.password), "<redacted>")
            .replace(&self.password, "<redacted>")
    }
}

/// tokio-postgres percent-decodes every part of a URL and reads `+` literally, so
/// everything but letters and digits is encoded.
fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<DbSettings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DbSettings::load(|name| Ok(vars.get(name).cloned()))
    }

    #[test]
    fn flask_defaults_apply_to_unset_and_empty_values() {
        let settings = load(&[
            ("db_username", "analytics"),
            ("db_password", "secret"),
            ("db_host", ""),
        ])
        .unwrap();
        assert_eq!(settings.host, "127.0.0.1");
        assert_eq!(settings.port, 5432);
        assert_eq!(settings.name, "postgres");
    }

    #[test]
    fn missing_or_empty_required_variables_are_named_without_values() {
        let err = load(&[("db_username", "analytics")]).unwrap_err();
        assert_eq!(err, ConfigError::Missing(Setting::Password));
        assert!(err.to_string().contains("db_password"));
        assert!(err.to_string().contains("SPIN_VARIABLE_DB_PASSWORD"));

        let err = load(&[("db_username", ""), ("db_password", "pw")]).unwrap_err();
        assert_eq!(err, ConfigError::Missing(Setting::Username));
    }

    #[test]
    fn ports_must_be_port_numbers() {
        for port in ["0", "65536", "abc", "-1", "54 32"] {
            let err = load(&[
                ("db_username", "u"),
                ("db_password", "p"),
                ("db_port", port),
            ])
            .unwrap_err();
            assert_eq!(
                err,
                ConfigError::InvalidPort {
                    service_link: false
                },
                "{port}"
            );
        }
    }

    #[test]
    fn sslmode_is_one_of_spins_three_modes() {
        let with = |mode: &str| {
            load(&[
                ("db_username", "u"),
                ("db_password", "p"),
                ("db_sslmode", mode),
            ])
        };
        assert_eq!(with("").unwrap().sslmode, SslMode::Prefer, "the default");
        for (text, mode, parsed) in [
            (
                "disable",
                SslMode::Disable,
                tokio_postgres::config::SslMode::Disable,
            ),
            (
                "prefer",
                SslMode::Prefer,
                tokio_postgres::config::SslMode::Prefer,
            ),
            (
                "require",
                SslMode::Require,
                tokio_postgres::config::SslMode::Require,
            ),
        ] {
            let settings = with(text).unwrap();
            assert_eq!(settings.sslmode, mode);
            let config: tokio_postgres::Config = settings.address(CONNECT_TIMEOUT).parse().unwrap();
            assert_eq!(config.get_ssl_mode(), parsed, "{text}");
        }
        for bad in [
            "verify-full",
            "verify-ca",
            "allow",
            "REQUIRE",
            " require",
            "on",
        ] {
            let err = with(bad).unwrap_err();
            assert_eq!(err, ConfigError::InvalidSslMode, "{bad:?}");
            assert!(
                err.to_string().starts_with("variable db_sslmode must be"),
                "{err}"
            );
        }
    }

    /// Kubernetes puts `DB_PORT=tcp://...` in pods beside a Service `db`, and
    /// the shim reads it as `db_port`: the message says so, without the value.
    #[test]
    fn a_service_link_in_db_port_is_named_as_such() {
        let err = load(&[
            ("db_username", "u"),
            ("db_password", "p"),
            ("db_port", "tcp://10.100.0.7:5432"),
        ])
        .unwrap_err();
        assert_eq!(err, ConfigError::InvalidPort { service_link: true });
        let text = err.to_string();
        assert!(text.contains("a Service named db"), "{text}");
        assert!(!text.contains("10.100.0.7"), "{text}");
    }

    #[test]
    fn report_source_is_auto_rollups_or_tokens() {
        let with = |source: &str| {
            load(&[
                ("db_username", "u"),
                ("db_password", "p"),
                ("report_source", source),
            ])
        };
        assert_eq!(with("").unwrap().report_source, ReportSource::Auto);
        assert_eq!(
            with("rollups").unwrap().report_source,
            ReportSource::Rollups
        );
        assert_eq!(with("tokens").unwrap().report_source, ReportSource::Tokens);
        assert_eq!(with("on").unwrap_err(), ConfigError::InvalidReportSource);
    }

    #[test]
    fn host_errors_name_the_variable() {
        let err = DbSettings::load(|_| Err("provider down".to_owned())).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("variable db_port cannot be read"));
    }

    #[test]
    fn address_encodes_every_special_character() {
        let settings = load(&[
            ("db_username", "us@er:1"),
            ("db_password", "p@ss:w/rd#1?% &'\"é 日本"),
            ("db_host", "db.example.com"),
            ("db_port", "6543"),
            ("db_name", "my/db?x"),
        ])
        .unwrap();
        let address = settings.address(Duration::from_millis(2500));

        // Spin's host parses addresses with tokio-postgres.
        let parsed: tokio_postgres::Config = address.parse().unwrap();
        assert_eq!(parsed.get_user(), Some("us@er:1"));
        assert_eq!(
            parsed.get_password(),
            Some("p@ss:w/rd#1?% &'\"é 日本".as_bytes())
        );
        assert_eq!(parsed.get_dbname(), Some("my/db?x"));
        assert_eq!(parsed.get_ports(), [6543]);
        assert_eq!(parsed.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(
            parsed.get_options(),
            Some("-c statement_timeout=2500 -c jit=off")
        );
        assert_eq!(parsed.get_application_name(), Some("coworking-analytics"));

        let url = Url::parse(&address).unwrap();
        assert_eq!(url.host_str(), Some("db.example.com"));
        assert_eq!(url.port(), Some(6543));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .unwrap()
                .into_owned()
        };
        assert_eq!(decode(url.username()), "us@er:1");
        assert_eq!(decode(url.password().unwrap()), "p@ss:w/rd#1?% &'\"é 日本");
        assert_eq!(decode(&url.path()[1..]), "my/db?x");
        assert_eq!(
            parsed.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        assert!(parsed.get_keepalives());
        assert_eq!(parsed.get_keepalives_idle(), Duration::from_secs(10));
        assert_eq!(
            parsed.get_keepalives_interval(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parsed.get_keepalives_retries(), Some(3));
        assert_eq!(
            parsed.get_tcp_user_timeout(),
            Some(&Duration::from_secs(10))
        );
        assert!(address.ends_with(
            "?sslmode=prefer&connect_timeout=2&keepalives=1&keepalives_idle=10&keepalives_interval=5\
             &keepalives_retries=3&tcp_user_timeout=10&application_name=coworking-analytics\
             &options=%2Dc%20statement%5Ftimeout%3D2500%20%2Dc%20jit%3Doff"
        ));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let settings = load(&[
            ("db_username", "u"),
            ("db_password", "p"),
            ("db_host", "::1"),
        ])
        .unwrap();
        let address = settings.address(Duration::from_secs(1));
        assert!(
            address.starts_with("postgres://u:p@[::1]:5432/postgres?"),
            "{address}"
        );
    }

    #[test]
    fn debug_and_redact_hide_the_password() {
        let settings = load(&[("db_username", "u"), ("db_password", "s3cr&t pw")]).unwrap();
        assert!(!format!("{settings:?}").contains("s3cr&t"));
        let echoed = format!(
            "failed: {} / {}",
            settings.address(CONNECT_TIMEOUT),
            "s3cr&t pw"
        );
        let redacted = settings.redact(&echoed);
        assert!(!redacted.contains("s3cr"), "{redacted}");
    }
}
