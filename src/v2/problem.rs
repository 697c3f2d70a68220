//! v2 errors as RFC 9457 problem details (`application/problem+json`): `type`,
//! `title`, `status` and `detail`, and for a 400 each bad parameter in
//! `errors: [{parameter, detail}]`.

use serde::Serialize;
use spin_sdk::http::Response;

use crate::errors::AppError;
use crate::render::{json_line, response};
use crate::v2::access::Denied;
use crate::v2::settings::SettingError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `type` of a 400: a tag URI (RFC 4151), unique without a server to resolve it.
pub const INVALID_PARAMETERS: &str = "tag:coworking-analytics,2026:invalid-parameters";
/// Every other problem is plain HTTP, which RFC 9457 §4.2.1 spells `about:blank`.
pub const ABOUT_BLANK: &str = "about:blank";

/// One bad query parameter and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterError {
    pub parameter: String,
    pub detail: String,
}

impl ParameterError {
    pub fn new(parameter: &str, detail: impl Into<String>) -> ParameterError {
        ParameterError {
            parameter: parameter.to_owned(),
            detail: detail.into(),
        }
    }
}

/// A problem detail, and the headers that go with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ParameterError>,
    #[serde(skip)]
    headers: Vec<(&'static str, String)>,
}

impl Problem {
    fn plain(status: u16, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: ABOUT_BLANK,
            title,
            status,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Problem {
        self.headers.push((name, value.into()));
        self
    }

    /// A 400 listing every bad parameter.
    pub fn invalid_parameters(errors: Vec<ParameterError>) -> Problem {
        let names: Vec<&str> = errors.iter().map(|e| e.parameter.as_str()).collect();
        Problem {
            kind: INVALID_PARAMETERS,
            title: "Invalid query parameters",
            status: 400,
            detail: format!("fix the query parameters: {}", names.join(", ")),
            errors,
            headers: Vec::new(),
        }
    }

    pub fn unauthorized(denied: Denied) -> Problem {
        Problem::plain(401, "Unauthorized", denied.detail())
            .with_header("www-authenticate", denied.challenge())
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::plain(404, "Not Found", detail)
    }

    pub fn method_not_allowed(allow: &str) -> Problem {
        Problem::plain(
            405,
            "Method Not Allowed",
            format!("this resource answers {allow} only"),
        )
        .with_header("allow", allow)
    }

    pub fn not_acceptable(available: &str) -> Problem {
        Problem::plain(
            406,
            "Not Acceptable",
            format!("this resource is available as {available}; ask for one in Accept"),
        )
    }

    /// The legacy rules: database trouble is a quick 503 that names nothing
    /// internal; the rest is a 500. The log gets the details.
    pub fn from_error(err: &AppError) -> Problem {
        match err.status() {
            503 => Problem::plain(503, "Service Unavailable", err.public_message())
                .with_header("retry-after", "5"),
            _ => Problem::plain(500, "Internal Server Error", err.public_message()),
        }
    }

    /// A v2 variable the operator must fix: named, never shown.
    pub fn configuration(err: &SettingError) -> Problem {
        Problem::plain(
            500,
            "Internal Server Error",
            format!("configuration error: {err}"),
        )
    }

    pub fn into_response(self) -> Response {
        let body = json_line(&self).expect("a problem serializes");
        let mut response = response(self.status, PROBLEM_JSON, body);
        response.set_header("cache-control", "no-store");
        for (name, value) in self.headers {
            response.set_header(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(problem: Problem) -> serde_json::Value {
        serde_json::from_slice(problem.into_response().body()).unwrap()
    }

    #[test]
    fn a_400_lists_each_parameter() {
        let problem = Problem::invalid_parameters(vec![
            ParameterError::new("tz", "unknown time zone"),
            ParameterError::new("limit", "at most 1000"),
        ]);
        assert_eq!(
            body(problem),
            serde_json::json!({
                "type": INVALID_PARAMETERS,
                "title": "Invalid query parameters",
                "status": 400,
                "detail": "fix the query parameters: tz, limit",
                "errors": [
                    {"parameter": "tz", "detail": "unknown time zone"},
                    {"parameter": "limit", "detail": "at most 1000"},
                ],
            })
        );
    }

    #[test]
    fn problems_carry_their_status_headers() {
        let response = Problem::unauthorized(Denied::WrongKey).into_response();
        assert_eq!(*response.status(), 401);
        let header = |name: &str| {
            response
                .header(name)
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        };
        assert_eq!(header("content-type").as_deref(), Some(PROBLEM_JSON));
        assert!(header("www-authenticate").unwrap().starts_with("Bearer "));
        let response = Problem::method_not_allowed("GET, HEAD, OPTIONS").into_response();
        assert_eq!(
            response.header("allow").and_then(|v| v.as_str()),
            Some("GET, HEAD, OPTIONS")
        );
        let unavailable = Problem::from_error(&AppError::DatabaseUnavailable("10.0.0.7".into()));
        assert_eq!(unavailable.status, 503);
        assert!(!unavailable.detail.contains("10.0.0.7"));
    }
}
