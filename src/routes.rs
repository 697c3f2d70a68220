//! HTTP routing: which handler a method and path go to, with Flask's rules.
//!
//! The four legacy routes are fixed paths, so routing is an exact match on the
//! percent-decoded path (Werkzeug decodes it too). Every route answers GET, HEAD
//! and OPTIONS, as Flask routes do; other methods get 405 with an `Allow` header.

use std::borrow::Cow;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Run the endpoint. HEAD runs it too: the server drops the body, the headers stay.
    Serve(Endpoint),
    /// Answer OPTIONS with the allowed methods.
    Options,
    /// A known path with a method it does not accept.
    MethodNotAllowed,
    /// An unknown path.
    NotFound,
}

/// Decide where a request goes from its method name and its path (without the query).
pub fn dispatch(method: &str, path: &str) -> Dispatch {
    let Some(endpoint) = Endpoint::from_path(&decode_path(path)) else {
        return Dispatch::NotFound;
    };
    match method {
        "GET" | "HEAD" => Dispatch::Serve(endpoint),
        "OPTIONS" => Dispatch::Options,
        _ => Dispatch::MethodNotAllowed,
    }
}

fn decode_path(path: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(path).decode_utf8_lossy()
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
            "/HEALTH_CHECK",
            "/api/reports",
            "/api/reports/daily_usage/x",
            "//health_check",
        ] {
            assert_eq!(dispatch("GET", path), Dispatch::NotFound, "{path}");
            assert_eq!(dispatch("POST", path), Dispatch::NotFound, "{path}");
        }
    }

    #[test]
    fn percent_encoded_paths_match_like_werkzeug() {
        assert_eq!(
            dispatch("GET", "/health%5Fcheck"),
            Dispatch::Serve(Endpoint::HealthCheck)
        );
    }
}
