//! The dashboard: a page for analysts at `/dashboard` (and `/`, which redirects
//! there), built on the v2 reports. The component serves its three assets,
//! embedded at build time, so that it runs wherever the service runs and
//! fetches nothing from elsewhere; the page's script reads the v2 API with the
//! key the analyst signs in with, and draws the figures, the chart (with uPlot,
//! vendored from npm in `vendor/`) and the members table.
//!
//! Each asset is a v2 representation (strong `ETag`, `304`, gzip), revalidated
//! on every load (`no-cache`), and sent with a strict Content-Security-Policy:
//! scripts, styles and connections from this origin only, nothing inline.

use spin_sdk::http::Response;

use crate::v2::representation::{Preferences, Representation};

/// Where the dashboard lives.
pub const PAGE: &str = "/dashboard";

/// The methods the dashboard's paths answer.
const ALLOWED_METHODS: &str = "GET, HEAD";

/// What the page may load: only this origin's script, style and API, images
/// drawn inline (`data:` for the icon); no frames, forms posted elsewhere or
/// plugins. The page has no inline script or style to hash.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// An embedded file of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The page, its style and its script. The chart library goes first in the
/// style and the script, so that a page load makes three requests, not five.
pub const ASSETS: [Asset; 3] = [
    Asset {
        path: PAGE,
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/index.html"),
    },
    Asset {
        path: "/dashboard/dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: concat!(
            include_str!("vendor/uPlot.min.css"),
            "\n",
            include_str!("assets/dashboard.css")
        ),
    },
    Asset {
        path: "/dashboard/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: concat!(
            include_str!("vendor/uPlot.iife.min.js"),
            "\n",
            include_str!("assets/dashboard.js")
        ),
    },
];

/// What to do with a request for one of the dashboard's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    Serve(Asset),
    /// `/`: a 302 to the dashboard.
    ToDashboard,
    MethodNotAllowed,
}

/// Where a request goes, when its path is the dashboard's; `None` leaves it to
/// the legacy routes.
pub fn dispatch(method: &str, path: &str) -> Option<Dispatch> {
    let target = if path == "/" {
        Dispatch::ToDashboard
    } else {
        Dispatch::Serve(*ASSETS.iter().find(|asset| asset.path == path)?)
    };
    Some(match method {
        "GET" | "HEAD" => target,
        _ => Dispatch::MethodNotAllowed,
    })
}

/// The answer for a dashboard path.
pub fn respond(dispatch: Dispatch, preferences: Preferences<'_>) -> Response {
    let mut response = match dispatch {
        Dispatch::Serve(asset) => {
            let representation = Representation {
                content_type: asset.content_type,
                body: asset.body.as_bytes().to_vec(),
                filename: None,
                link: None,
            };
            match representation.respond(preferences, 0) {
                Ok(mut response) => {
                    response.set_header("cache-control", "no-cache");
                    response.set_header("vary", "Accept-Encoding");
                    response
                }
                Err(err) => crate::render::text(500, &err.to_string()),
            }
        }
        Dispatch::ToDashboard => Response::builder()
            .status(302)
            .header("location", PAGE)
            .header("content-length", "0")
            .build(),
        Dispatch::MethodNotAllowed => Response::builder()
            .status(405)
            .header("allow", ALLOWED_METHODS)
            .header("content-length", "0")
            .build(),
    };
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        response.set_header(name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_redirects_and_the_assets_are_served() {
        assert_eq!(dispatch("GET", "/"), Some(Dispatch::ToDashboard));
        assert_eq!(
            dispatch("HEAD", "/dashboard"),
            Some(Dispatch::Serve(ASSETS[0]))
        );
        assert_eq!(
            dispatch("GET", "/dashboard/dashboard.js"),
            Some(Dispatch::Serve(ASSETS[2]))
        );
        assert_eq!(
            dispatch("POST", "/dashboard"),
            Some(Dispatch::MethodNotAllowed)
        );
        for path in ["/dashboard/", "/dashboard/x.js", "/health_check", "//"] {
            assert_eq!(dispatch("GET", path), None, "{path}");
        }
    }

    /// The page loads only its own assets, with no inline script or style
    /// (which the policy would block).
    #[test]
    fn the_page_names_its_assets_and_inlines_nothing() {
        let page = ASSETS[0].body;
        for asset in &ASSETS[1..] {
            assert!(page.contains(asset.path), "{} is not loaded", asset.path);
        }
        assert!(!page.contains("style="), "an inline style");
        assert!(!page.contains("<style"), "an inline style sheet");
        for (at, _) in page.match_indices("<script") {
            assert!(
                page[at..].starts_with("<script src=\"/dashboard/"),
                "an inline script at byte {at}"
            );
        }
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
