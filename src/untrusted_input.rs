//! Property tests over every parser of untrusted input and every writer of
//! text from the database: the query string and its parameters, `Accept`,
//! `Accept-Encoding`, `If-None-Match`, `Authorization`, paths, and the CSV
//! and JSON of member names. Whatever comes in, nothing panics, and each
//! answer is one the API documents: a 400 that names its parameters, a 406,
//! a 200 or a 304, a route or a 404.
//!
//! The inputs mix a grammar of near misses (the names and shapes the API
//! knows, a character off) with arbitrary text. `PROPTEST_CASES` raises the
//! 256 cases of each property for a longer run.

use chrono::NaiveDate;
use chrono_tz::Tz;
use proptest::prelude::*;

use crate::v2::access::{self, ApiKeys};
use crate::v2::members::{member_id, MemberRow, MembersRequest};
use crate::v2::negotiate::{Coding, Format};
use crate::v2::representation::{entity_tag, Preferences, Representation};
use crate::v2::table::members_csv;
use crate::v2::usage::UsageRequest;
use crate::{dashboard, routes, v2};

const TODAY: NaiveDate = match NaiveDate::from_ymd_opt(2026, 12, 3) {
    Some(date) => date,
    None => panic!("a date"),
};

/// A parameter name: the API's, one a letter off, or anything.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            v2::usage::PARAMETERS
                .iter()
                .chain(v2::members::PARAMETERS)
                .chain(&["From", "to ", "tz[]", ""])
                .copied()
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_owned),
        "[a-z_%+]{0,12}",
        any::<String>(),
    ]
}

/// A value: the shapes the API reads, near misses, far dates, huge numbers,
/// broken percent-encoding, or anything.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "2024-01-01",
            "2024-02-30",
            "2024-1-1",
            "+262143-12-31",
            "-4713-01-01",
            "-262144-01-01",
            "9999-12-31",
            "0000-01-01",
            "Asia/Kolkata",
            "asia/kolkata",
            "Mars/Olympus",
            "UTC",
            "EST5EDT",
            "day",
            "week",
            "month",
            "year",
            "monday",
            "sunday",
            "-visits",
            "visits",
            "-last_visit",
            "joined_at",
            "member_id",
            "0",
            "1",
            "1000",
            "1001",
            "-1",
            "2147483647",
            "2147483648",
            "99999999999999999999",
            "1e3",
            "true",
            "false",
            "json",
            "csv",
            "visits,active_members",
            ",",
            "%",
            "%zz",
            "%ff%fe",
            "%00",
            "+",
            "",
        ])
        .prop_map(str::to_owned),
        "[0-9:+-]{0,12}",
        any::<String>(),
    ]
}

/// A query string of such pairs, some without `=`, some repeated.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec((name(), value(), any::<bool>()), 0..10).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(name, value, bare)| {
                    if bare {
                        name
                    } else {
                        format!("{name}={value}")
                    }
                })
                .collect::<Vec<_>>()
                .join("&")
        }),
        any::<String>(),
    ]
}

/// A query parsed and resolved, or a 400 for it.
fn assert_request_or_400<T>(query: &str, resolved: Result<T, v2::problem::Problem>) {
    if let Err(problem) = resolved {
        assert_invalid_parameters(&problem, query);
    }
}

/// A 400 from the parameters names each bad one and says what it accepts.
fn assert_invalid_parameters(problem: &v2::problem::Problem, query: &str) {
    assert_eq!(problem.status, 400, "{query:?}: {problem:?}");
    assert!(!problem.errors.is_empty(), "{query:?}: {problem:?}");
    for error in &problem.errors {
        assert!(!error.detail.is_empty(), "{query:?}: {error:?}");
    }
}

/// A header's list: elements of the grammar's kind, with q-values right and wrong.
fn list_of(elements: Vec<&'static str>) -> impl Strategy<Value = String> {
    let q = prop::sample::select(vec![
        "",
        ";q=0",
        ";q=0.5",
        ";q=1",
        ";q=1.000",
        ";q=1.5",
        ";q=-1",
        ";q=abc",
        ";q=",
        ";level=1",
        ";q=0.0001",
    ]);
    prop_oneof![
        prop::collection::vec((prop::sample::select(elements), q), 0..6).prop_map(|items| {
            items
                .into_iter()
                .map(|(element, q)| format!("{element}{q}"))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn any_usage_query_is_a_request_or_a_400(query in query()) {
        let parsed = UsageRequest::parse(&query, Tz::UTC);
        assert_request_or_400(&query, parsed.and_then(|request| request.resolve(Some(TODAY))));
    }

    #[test]
    fn any_members_query_is_a_request_or_a_400(query in query()) {
        let parsed = MembersRequest::parse(&query, Tz::UTC);
        assert_request_or_400(&query, parsed.and_then(|request| request.resolve(Some(TODAY))));
    }

    #[test]
    fn any_path_has_a_route_or_none(method in "[A-Z]{0,8}|\\PC{0,8}", path in "(/[a-z0-9_.%~-]{0,12}){0,5}|\\PC{0,40}") {
        routes::dispatch(&method, &path);
        v2::routes::dispatch(&method, &path);
        dashboard::dispatch(&method, &path);
        if let Some(id) = member_id(&path) {
            prop_assert!(id > 0);
        }
    }

    #[test]
    fn any_accept_is_a_format_or_a_406(
        accept in list_of(vec!["application/json", "text/csv", "text/*", "*/*", "text/html", "application/problem+json", "text/csv;header=present", "*", "/", "text/"]),
        parameter in prop::option::of("json|csv|xml|"),
    ) {
        let parameter = parameter.as_deref().and_then(Format::parse);
        match Format::negotiate(parameter, Some(&accept), &[Format::Json, Format::Csv]) {
            Ok(_) => {}
            Err(problem) => prop_assert_eq!(problem.status, 406, "{:?}", accept),
        }
    }

    #[test]
    fn gzip_refused_with_q_0_is_never_sent(
        accept_encoding in list_of(vec!["gzip", "GZIP", "br", "deflate", "identity", "*", "x-gzip", "gzip;q=0"]),
    ) {
        let coding = Coding::negotiate(Some(&accept_encoding));
        let elements: Vec<String> = accept_encoding
            .split(',')
            .map(|element| element.replace(' ', "").to_ascii_lowercase())
            .collect();
        let gzip: Vec<&String> = elements
            .iter()
            .filter(|element| element.split(';').next() == Some("gzip"))
            .collect();
        // Refused: listed, and only with weight 0. (A weight is one `q`
        // parameter, RFC 9110 §12.4.2; an element with two is malformed.)
        let refused = !gzip.is_empty() && gzip.iter().all(|element| *element == "gzip;q=0");
        if refused {
            prop_assert_eq!(coding, Coding::Identity, "{:?}", accept_encoding);
        }
    }

    #[test]
    fn any_if_none_match_is_a_200_or_a_304_for_a_match(
        if_none_match in prop::collection::vec(any::<u8>(), 0..80),
        tags in prop::collection::vec(prop::sample::select(vec!["W/\"x\"", "\"x\"", "\"\"", "OURS", "W/OURS"]), 1..4),
        any_tag in any::<bool>(),
        gzip in any::<bool>(),
    ) {
        let body = b"{\"figure\": 1}".repeat(100);
        let coding = if gzip { Coding::Gzip } else { Coding::Identity };
        let ours = entity_tag("application/json", &body, coding);
        // A well-formed field: `*` alone, or a list of entity tags. A malformed
        // one is ignored (RFC 9110 §13.1.2 via the headers crate): a 200.
        let listed = if any_tag {
            "*".to_owned()
        } else {
            tags.iter().map(|tag| tag.replace("OURS", &ours)).collect::<Vec<_>>().join(", ")
        };
        for header in [if_none_match, listed.clone().into_bytes()] {
            let representation = Representation {
                content_type: "application/json",
                body: body.clone(),
                filename: None,
                link: None,
            };
            let preferences = Preferences {
                if_none_match: Some(&header),
                accept_encoding: Some(if gzip { "gzip" } else { "identity" }),
            };
            let response = representation.respond(preferences, 0).expect("a response");
            let status = *response.status();
            prop_assert!(status == 200 || status == 304, "{}", status);
            let elements: Vec<&str> = std::str::from_utf8(&header).unwrap_or("").split(',').map(str::trim).collect();
            let matches = elements.iter().any(|tag| *tag == "*" || tag.trim_start_matches("W/") == ours);
            // A list that names our tag (weakly or not), or `*`, matches.
            if header == listed.as_bytes() && matches {
                prop_assert_eq!(status, 304, "{}", listed);
            }
            if status == 304 {
                prop_assert!(response.body().is_empty());
                prop_assert_eq!(response.header("etag").and_then(|v| v.as_str()), Some(ours.as_str()));
            }
        }
    }

    #[test]
    fn only_a_configured_key_lets_a_request_in(
        headers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..3),
        scheme in "Bearer|bearer|BEARER|Basic|Bearer\t|",
    ) {
        let key = "k3y.Secret~2026";
        let keys = ApiKeys::parse(key).expect("a key");
        // Arbitrary bytes never carry the key.
        prop_assert!(access::check(&keys, headers.iter().map(Vec::as_slice)).is_err());
        let header = format!("{scheme} {key}");
        let admitted = access::check(&keys, std::iter::once(header.as_bytes())).is_ok();
        prop_assert_eq!(admitted, scheme.eq_ignore_ascii_case("bearer"), "{:?}", header);
    }

    #[test]
    fn any_name_survives_csv_and_json_and_never_runs_as_a_formula(
        first_name in prop::option::of(prop_oneof!["[=+@\t\r,\"\n -]{0,3}[a-zA-Z ,\"\n']{0,8}", any::<String>()]),
        last_name in prop::option::of(any::<String>()),
    ) {
        let row = MemberRow {
            member_id: 7,
            first_name: first_name.clone(),
            last_name: last_name.clone(),
            joined_at: Some("2024-01-02T03:04:05.000000+05:30".into()),
            visits: 3,
            tokens_issued: 4,
            last_visit: None,
        };
        let csv = members_csv(vec![row.clone()]).expect("the CSV");
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(|record| record.expect("RFC 4180")).collect();
        prop_assert_eq!(records.len(), 1);
        let neutralised = |name: &Option<String>| match name.as_deref() {
            None => String::new(),
            Some(name) if name.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{name}"),
            Some(name) => name.to_owned(),
        };
        let (first, last) = (neutralised(&first_name), neutralised(&last_name));
        prop_assert_eq!(&records[0][1], first.as_str());
        prop_assert_eq!(&records[0][2], last.as_str());
        let json = serde_json::to_string(&row).expect("JSON");
        let back: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        prop_assert_eq!(back["first_name"].as_str(), first_name.as_deref());
        prop_assert_eq!(back["last_name"].as_str(), last_name.as_deref());
    }
}
