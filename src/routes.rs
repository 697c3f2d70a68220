//! HTTP routing: which handler a method and path go to, with Flask's rules.
//!
//! The four legacy routes are fixed paths, matched as Werkzeug 3 matches them
//! (read in `werkzeug/routing/map.py` and `matcher.py`, and checked against
//! Flask 3.1 behind gunicorn): on the percent-decoded path, with its leading
//! slashes made one (`//health_check` is `/health_check`). A path that matches
//! only once its repeated slashes are merged (`/api//reports/daily_usage`) is
//! redirected there with a 308. Every route answers GET, HEAD and OPTIONS, as
//! Flask routes do; other methods get 405 with an `Allow` header.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The methods that every route accepts, as Flask lists them in `Allow`.
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// An endpoint of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    HealthCheck,
    ReadinessCheck,
    DailyUsage,
    UserVisits,
}

impl Endpoint {
    /// Every endpoint with its path.
    pub const ALL: [(&'static str, Endpoint); 4] = [
        ("/health_check", Endpoint::HealthCheck),
        ("/readiness_check", Endpoint::ReadinessCheck),
        ("/api/reports/daily_usage", Endpoint::DailyUsage),
        ("/api/reports/user_visits", Endpoint::UserVisits),
    ];

    fn from_path(path: &str) -> Option<Endpoint> {
        Self::ALL
            .iter()
            .find(|(route, _)| *route == path)
            .map(|(_, endpoint)| *endpoint)
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// Run the endpoint. HEAD runs it too: the server drops the body, the headers stay.
    Serve(Endpoint),
    /// Answer OPTIONS with the allowed methods.
    Options,
    /// A known path with a method it does not accept.
    MethodNotAllowed,
    /// An unknown path.
    NotFound,
    /// A route written with repeated slashes: a 308 to this path, merged and
    /// percent-encoded as Werkzeug encodes it.
    Redirect(String),
}

/// Decide where a request goes from its method name and its path (without the query).
pub fn dispatch(method: &str, path: &str) -> Dispatch {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    // MapAdapter.match: `"/" + path_info.lstrip("/")`.
    let path = format!("/{}", decoded.trim_start_matches('/'));
    let known_method = matches!(method, "GET" | "HEAD" | "OPTIONS");
    if let Some(endpoint) = Endpoint::from_path(&path) {
        return match method {
            "GET" | "HEAD" => Dispatch::Serve(endpoint),
            "OPTIONS" => Dispatch::Options,
            _ => Dispatch::MethodNotAllowed,
        };
    }
    // StateMachineMatcher.match: on no match, again with slashes merged; a
    // match there is a redirect for the route's methods, a 405 for the others.
    let merged = merge_slashes(&path);
    match Endpoint::from_path(&merged) {
        Some(_) if known_method => {
            Dispatch::Redirect(utf8_percent_encode(&merged, WERKZEUG_PATH_SAFE).to_string())
        }
        Some(_) => Dispatch::MethodNotAllowed,
        None => Dispatch::NotFound,
    }
}

/// `re.sub("/{2,}", "/", path)`.
fn merge_slashes(path: &str) -> String {
    let mut merged = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && merged.ends_with('/')) {
            merged.push(c);
        }
    }
    merged
}

/// What Werkzeug leaves unencoded in a redirect's path: `quote(path,
/// safe="!$&'()*+,/:;=@")`, on top of the letters, digits and `_.-~` that
/// Python's `quote` never encodes.
const WERKZEUG_PATH_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

/// The `host[:port]` of a request's absolute URL. Spin gives the component the
/// request's authority (from its `Host` header) in the URL, not as a header:
/// wasi:http withholds `Host` from the headers.
pub fn request_host(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// The absolute URL of a redirect, as Werkzeug's `make_redirect_url` builds it
/// from the request: `http://{host}{path}`, with the query string as it came.
/// The host is the request's, without `:80` (the scheme's port), or empty when
/// it holds anything but a host name or address and a port (`get_host`).
pub fn redirect_location(host: Option<&str>, path: &str, query: &str) -> String {
    let host = host
        .map(|host| host.strip_suffix(":80").unwrap_or(host))
        .filter(|host| is_valid_host(host))
        .unwrap_or("");
    let mut location = format!("http://{host}{path}");
    if !query.is_empty() {
        location.push('?');
        location.push_str(query);
    }
    location
}

/// Werkzeug's `host_is_trusted` character check: a name or IPv4 address of
/// `[a-z0-9.-]`, or a bracketed IPv6 address, then an optional port 1 to 65535.
fn is_valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    let name_ok = if let Some(inner) = name.strip_prefix('[') {
        // `\[[a-f0-9]*:[a-f0-9.:]+]`
        inner.strip_suffix(']').is_some_and(|address| {
            address.split_once(':').is_some_and(|(head, tail)| {
                head.chars().all(|c| c.is_ascii_hexdigit())
                    && !tail.is_empty()
                    && tail
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            })
        })
    } else {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty()
            && port.len() <= 5
            && !port.starts_with('0')
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_serves_get_and_head() {
        for (path, endpoint) in Endpoint::ALL {
            assert_eq!(dispatch("GET", path), Dispatch::Serve(endpoint));
            assert_eq!(dispatch("HEAD", path), Dispatch::Serve(endpoint));
            assert_eq!(dispatch("OPTIONS", path), Dispatch::Options);
        }
    }

    #[test]
    fn other_methods_on_known_paths_are_not_allowed() {
        for method in ["POST", "PUT", "PATCH", "DELETE", "BREW"] {
            assert_eq!(
                dispatch(method, "/api/reports/daily_usage"),
                Dispatch::MethodNotAllowed
            );
        }
    }

    #[test]
    fn unknown_paths_are_not_found_whatever_the_method() {
        for path in [
            "/",
            "",
            "/health_check/",
            "/health_check//",
            "//health_check/",
            "/HEALTH_CHECK",
            "/api/reports",
            "/api/reports/daily_usage/x",
            "/api/reports/daily_usage/",
            "/api//reports",
        ] {
            assert_eq!(dispatch("GET", path), Dispatch::NotFound, "{path}");
            assert_eq!(dispatch("POST", path), Dispatch::NotFound, "{path}");
        }
    }

    /// Werkzeug strips the leading slashes before it matches.
    #[test]
    fn leading_slashes_match_the_route() {
        for path in ["//health_check", "///health_check", "/%2Fhealth_check"] {
            assert_eq!(
                dispatch("GET", path),
                Dispatch::Serve(Endpoint::HealthCheck),
                "{path}"
            );
        }
        assert_eq!(dispatch("OPTIONS", "//health_check"), Dispatch::Options);
        assert_eq!(
            dispatch("POST", "//health_check"),
            Dispatch::MethodNotAllowed
        );
    }

    /// Inner repeated slashes: a redirect to the merged path, for the route's
    /// methods (OPTIONS too, as Flask showed); a 405 for the others.
    #[test]
    fn inner_repeated_slashes_redirect_to_the_merged_path() {
        let redirect = Dispatch::Redirect("/api/reports/daily_usage".into());
        for path in [
            "/api//reports/daily_usage",
            "//api//reports//daily_usage",
            "/api/reports///daily_usage",
            "/api/%2Freports/daily_usage",
            "/api//reports/daily%5Fusage",
        ] {
            for method in ["GET", "HEAD", "OPTIONS"] {
                assert_eq!(dispatch(method, path), redirect, "{method} {path}");
            }
            assert_eq!(dispatch("POST", path), Dispatch::MethodNotAllowed, "{path}");
        }
    }

    #[test]
    fn redirect_locations_are_werkzeugs() {
        assert_eq!(
            redirect_location(Some("127.0.0.1:5999"), "/api/reports/daily_usage", ""),
            "http://127.0.0.1:5999/api/reports/daily_usage"
        );
        // The query string as it came; the default port dropped.
        assert_eq!(
            redirect_location(Some("example.com:80"), "/a", "x=1&y=%20&z=%zz&v=a+b"),
            "http://example.com/a?x=1&y=%20&z=%zz&v=a+b"
        );
        assert_eq!(
            redirect_location(Some("[::1]:3000"), "/a", ""),
            "http://[::1]:3000/a"
        );
        // A Host of other characters counts as none.
        for host in [
            "evil.com/x",
            "a b",
            "host:0",
            "host:65536",
            "host:",
            "",
            "é.com",
            "[:]",
        ] {
            assert_eq!(
                redirect_location(Some(host), "/a", ""),
                "http:///a",
                "{host:?}"
            );
        }
        assert_eq!(redirect_location(None, "/a", ""), "http:///a");
        assert_eq!(
            request_host("http://127.0.0.1:3000//a?b").as_deref(),
            Some("127.0.0.1:3000")
        );
        assert_eq!(request_host("http://[::1]/x").as_deref(), Some("[::1]"));
        assert_eq!(request_host("/x"), None);
        assert_eq!(
            utf8_percent_encode("/a b/é/!$&'()*+,;=:@%~", WERKZEUG_PATH_SAFE).to_string(),
            "/a%20b/%C3%A9/!$&'()*+,;=:@%25~"
        );
    }

    #[test]
    fn percent_encoded_paths_match_like_werkzeug() {
        assert_eq!(
            dispatch("GET", "/health%5Fcheck"),
            Dispatch::Serve(Endpoint::HealthCheck)
        );
    }
}
