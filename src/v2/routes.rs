//! Routing of `/api/v2/`: which report a method and path go to. Unlike the
//! legacy routes, which follow Werkzeug's rules byte for byte, these follow the
//! `matchit` router's: exact paths, one parameter segment, no redirects.

use crate::v2::members::member_id;
use crate::v2::problem::Problem;

/// The methods of every v2 route.
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// A v2 resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A report: it takes an API key and reads the database.
    Report(Report),
    /// The OpenAPI document: open to all, like the legacy reports.
    OpenApi,
}

/// A v2 report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Usage,
    Members,
    /// One member, by its id.
    Member(i32),
}

/// What to do with a v2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// GET or HEAD: the server drops a HEAD's body, the headers stay.
    Serve(Route),
    /// OPTIONS: a 204 with `Allow`, open to all (a browser's CORS preflight
    /// carries no credentials).
    Options,
    Refuse(Problem),
}

/// Whether a path belongs to the v2 reports: everything under `/api/v2/`.
pub fn is_v2(path: &str) -> bool {
    path == "/api/v2" || path.starts_with("/api/v2/")
}

/// A route from its path's `id` segment, percent-decoded; `None` when the
/// segment names nothing there can be.
type MakeRoute = fn(&str) -> Option<Route>;

fn router() -> matchit::Router<MakeRoute> {
    let mut router = matchit::Router::new();
    let routes: [(&str, MakeRoute); 4] = [
        ("/api/v2/usage", |_| Some(Route::Report(Report::Usage))),
        ("/api/v2/members", |_| Some(Route::Report(Report::Members))),
        ("/api/v2/members/{id}", |id| {
            member_id(id).map(|id| Route::Report(Report::Member(id)))
        }),
        ("/api/v2/openapi.json", |_| Some(Route::OpenApi)),
    ];
    for (path, route) in routes {
        router
            .insert(path, route)
            .expect("the v2 routes do not overlap");
    }
    router
}

/// Decide where a v2 request goes from its method and path (without the query).
pub fn dispatch(method: &str, path: &str) -> Dispatch {
    let router = router();
    let Ok(matched) = router.at(path) else {
        return Dispatch::Refuse(Problem::not_found(
            "no report at this path; the reports are listed in /api/v2/openapi.json",
        ));
    };
    // The method first: a path of the routes' shape answers 405 to another
    // method, whatever its id, as the OpenAPI document's templates say.
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return Dispatch::Refuse(Problem::method_not_allowed(ALLOWED_METHODS));
    }
    let id = matched.params.get("id").unwrap_or_default();
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    match (matched.value)(&id) {
        None => Dispatch::Refuse(Problem::not_found(format!("there is no member {id}"))),
        Some(_) if method == "OPTIONS" => Dispatch::Options,
        Some(route) => Dispatch::Serve(route),
    }
}

/// The OpenAPI 3.1 document of every route, legacy and v2.
pub const OPENAPI: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Endpoint;

    /// The document names every route there is (the dashboard's too), and no other.
    #[test]
    fn the_openapi_document_lists_every_route() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        let mut documented: Vec<String> = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        documented.sort();
        let mut served: Vec<String> = Endpoint::ALL
            .iter()
            .map(|(path, _)| path.to_string())
            .collect();
        served.extend(
            [
                "/api/v2/usage",
                "/api/v2/members",
                "/api/v2/members/{id}",
                "/api/v2/openapi.json",
                "/",
            ]
            .map(String::from),
        );
        served.extend(
            crate::dashboard::ASSETS
                .iter()
                .map(|asset| asset.path.to_string()),
        );
        served.sort();
        assert_eq!(documented, served);
        let router = router();
        for path in document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|path| is_v2(path))
        {
            assert!(
                router.at(&path.replace("{id}", "1")).is_ok(),
                "{path} is not routed"
            );
        }
    }

    #[test]
    fn reports_answer_get_and_head() {
        for method in ["GET", "HEAD"] {
            assert_eq!(
                dispatch(method, "/api/v2/usage"),
                Dispatch::Serve(Route::Report(Report::Usage))
            );
            assert_eq!(
                dispatch(method, "/api/v2/members/42"),
                Dispatch::Serve(Route::Report(Report::Member(42)))
            );
        }
        assert_eq!(
            dispatch("GET", "/api/v2/members/4%32"),
            Dispatch::Serve(Route::Report(Report::Member(42)))
        );
        for id in ["0", "x", "2147483648"] {
            for method in ["GET", "OPTIONS"] {
                let Dispatch::Refuse(problem) = dispatch(method, &format!("/api/v2/members/{id}"))
                else {
                    panic!("{method} member {id} is served");
                };
                assert_eq!(problem.status, 404);
            }
        }
        assert_eq!(dispatch("OPTIONS", "/api/v2/members"), Dispatch::Options);
        // Another method is a 405 on any path of the routes' shape.
        let Dispatch::Refuse(problem) = dispatch("DELETE", "/api/v2/members/0") else {
            panic!("DELETE is served");
        };
        assert_eq!(problem.status, 405);
        assert_eq!(
            dispatch("GET", "/api/v2/openapi.json"),
            Dispatch::Serve(Route::OpenApi)
        );
    }

    #[test]
    fn other_methods_and_paths_are_problems() {
        let Dispatch::Refuse(problem) = dispatch("POST", "/api/v2/usage") else {
            panic!("POST is served");
        };
        assert_eq!(problem.status, 405);
        for path in [
            "/api/v2",
            "/api/v2/",
            "/api/v2/usage/",
            "/api/v2/members/1/x",
            "/api/v2/nope",
        ] {
            let Dispatch::Refuse(problem) = dispatch("GET", path) else {
                panic!("{path} is served");
            };
            assert_eq!(problem.status, 404, "{path}");
        }
    }

    #[test]
    fn v2_is_everything_under_its_prefix() {
        assert!(is_v2("/api/v2/usage"));
        assert!(is_v2("/api/v2"));
        assert!(!is_v2("/api/v20"));
        assert!(!is_v2("/api/reports/daily_usage"));
    }
}
