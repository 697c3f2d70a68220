//! Content negotiation: JSON or CSV by `format` or by `Accept`, and the content
//! coding by `Accept-Encoding`, both with their q-values (RFC 9110 §12).
//!
//! `headers-accept` reads `Accept` (media ranges, q-values, specificity). No
//! maintained crate reads `Accept-Encoding` without panicking on a bad q-value,
//! so each of its codings is read by the same parser as a media range of a
//! private type (`gzip;q=0.5` as `coding/gzip;q=0.5`, `*` as `coding/*`): its
//! grammar is `Accept`'s with a token for the type.

use std::str::FromStr;

use headers_accept::Accept;
use mediatype::MediaType;

use crate::v2::problem::Problem;

/// A representation the v2 reports have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

pub const JSON_TYPE: &str = "application/json";
pub const CSV_TYPE: &str = "text/csv; charset=utf-8; header=present";

impl Format {
    pub const NAMES: &'static str = "json or csv";

    /// The `format` parameter's values.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON_TYPE,
            Format::Csv => CSV_TYPE,
        }
    }

    /// The format of a request among `available` (in the server's order of
    /// preference): its `format` parameter, else its `Accept` (the first
    /// available when it has none, or one that cannot be read, which RFC 9110
    /// §12.5.1 lets a server disregard), else a 406.
    pub fn negotiate(
        parameter: Option<Format>,
        accept: Option<&str>,
        available: &[Format],
    ) -> Result<Format, Problem> {
        if let Some(format) = parameter {
            return Ok(format);
        }
        let first = available.first().copied().unwrap_or(Format::Json);
        let Some(accept) = accept
            .filter(|value| !value.trim().is_empty())
            .and_then(|value| Accept::from_str(value).ok())
        else {
            return Ok(first);
        };
        // The bare types first; then, for a client that names them only with
        // the parameters this service sends (`text/csv; charset=utf-8`), those.
        let offer = |forms: std::ops::Range<usize>| -> Option<Format> {
            let offers: Vec<(MediaType, Format)> = available
                .iter()
                .flat_map(|format| {
                    let texts = format.media_types();
                    forms.clone().map(move |form| {
                        (
                            MediaType::parse(texts[form]).expect("a media type"),
                            *format,
                        )
                    })
                })
                .collect();
            let chosen = accept.negotiate(offers.iter().map(|(media_type, _)| media_type))?;
            offers
                .iter()
                .find(|(media_type, _)| media_type == chosen)
                .map(|(_, format)| *format)
        };
        let names: Vec<&str> = available
            .iter()
            .map(|format| format.media_types()[0])
            .collect();
        offer(0..1)
            .or_else(|| offer(1..3))
            .ok_or_else(|| Problem::not_acceptable(&names.join(" or ")))
    }

    /// The media type, then the forms with the parameters that this service sends.
    fn media_types(self) -> [&'static str; 3] {
        match self {
            Format::Json => [
                "application/json",
                "application/json; charset=utf-8",
                "application/json; charset=UTF-8",
            ],
            Format::Csv => [
                "text/csv",
                "text/csv; charset=utf-8",
                "text/csv; charset=utf-8; header=present",
            ],
        }
    }
}

/// What the reports are available as: JSON first.
pub const REPORT_FORMATS: &[Format] = &[Format::Json, Format::Csv];

/// A content coding of a response body. No brotli: its encoder's tables
/// would raise every instance's initial memory past 1 MiB (the API tests'
/// `each_instance_starts_with_under_a_mebibyte_of_memory`), which Spin maps and
/// resets on every request of every endpoint, for a gain on large reports only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Identity,
}

impl Coding {
    /// The `Content-Encoding` value; `None` for identity, which is not sent.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }

    /// The coding for an `Accept-Encoding` value: gzip unless it refuses gzip
    /// (`q=0`, or not listed and no `*`), else identity. No header means no coding (RFC 9110 §12.5.3 lets a server choose;
    /// curl and scripts that send none want plain bytes). An unreadable header
    /// counts as none.
    pub fn negotiate(accept_encoding: Option<&str>) -> Coding {
        let Some(value) = accept_encoding else {
            return Coding::Identity;
        };
        // Each coding as a media range, without parameters but its weight:
        // Accept-Encoding defines no other (RFC 9110 §12.5.3), and one would
        // make its range more specific than the coding's own (`gzip;q=0,
        // *;level=1` would then accept gzip). A malformed one stays, and
        // leaves the header unreadable.
        let as_ranges: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|coding| !coding.is_empty())
            .map(|coding| {
                let mut parts = coding.split(';').map(str::trim);
                let name = parts.next().unwrap_or_default();
                let weight = parts.filter(|parameter| {
                    parameter
                        .split_once('=')
                        .is_none_or(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
                });
                std::iter::once(format!("coding/{name}"))
                    .chain(weight.map(str::to_owned))
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .collect();
        let Ok(accept) = Accept::from_str(&as_ranges.join(", ")) else {
            return Coding::Identity;
        };
        let gzip = MediaType::parse("coding/gzip").expect("a media type");
        match accept.negotiate([&gzip]) {
            Some(_) => Coding::Gzip,
            None => Coding::Identity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_parameter_wins_over_accept() {
        assert_eq!(
            Format::negotiate(Some(Format::Csv), Some("application/json"), REPORT_FORMATS),
            Ok(Format::Csv)
        );
        assert_eq!(
            Format::negotiate(None, None, REPORT_FORMATS),
            Ok(Format::Json)
        );
    }

    #[test]
    fn accept_is_read_with_its_q_values() {
        let cases = [
            ("text/csv", Format::Csv),
            ("application/json", Format::Json),
            ("*/*", Format::Json),
            ("text/*", Format::Csv),
            ("text/csv;q=0.5, application/json;q=0.9", Format::Json),
            ("text/csv;q=0.9, application/json;q=0.5", Format::Csv),
            ("application/json;q=0, */*", Format::Csv),
            ("text/html, text/csv;q=0.1", Format::Csv),
            ("text/csv; charset=utf-8", Format::Csv),
            ("text/csv; charset=utf-8; header=present", Format::Csv),
            ("application/json; charset=utf-8", Format::Json),
            // Java's default, which the parser cannot read: disregarded.
            (
                "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
                Format::Json,
            ),
        ];
        for (accept, format) in cases {
            assert_eq!(
                Format::negotiate(None, Some(accept), REPORT_FORMATS),
                Ok(format),
                "{accept}"
            );
        }
        for refused in [
            "text/html",
            "application/xml, image/*",
            "text/csv;q=0, application/json;q=0",
        ] {
            let problem = Format::negotiate(None, Some(refused), REPORT_FORMATS).unwrap_err();
            assert_eq!(problem.status, 406, "{refused}");
        }
        // The OpenAPI document is JSON only: a client that takes JSON at all gets it.
        let json_only = &[Format::Json];
        assert_eq!(
            Format::negotiate(None, Some("text/csv, application/json;q=0.5"), json_only),
            Ok(Format::Json)
        );
        let refused = Format::negotiate(None, Some("text/csv"), json_only).unwrap_err();
        assert_eq!(refused.status, 406);
    }

    #[test]
    fn accept_encoding_honours_q_values_and_refusals() {
        let cases = [
            (None, Coding::Identity),
            (Some(""), Coding::Identity),
            (Some("gzip"), Coding::Gzip),
            (Some("gzip, deflate, br"), Coding::Gzip),
            (Some("br;q=1, gzip;q=0.1"), Coding::Gzip),
            (Some("br, deflate"), Coding::Identity),
            (Some("br;q=0, *"), Coding::Gzip),
            (Some("*"), Coding::Gzip),
            (Some("*;q=0"), Coding::Identity),
            (Some("gzip;q=0, br;q=0"), Coding::Identity),
            (Some("identity"), Coding::Identity),
            (Some("GZIP"), Coding::Gzip),
            // headers-accept reads an unreadable q-value as 1.
            (Some("gzip;q=abc"), Coding::Gzip),
            (Some("gzip;;;,,,"), Coding::Identity),
            // A parameter beyond the weight makes no range more specific.
            (Some("gzip;q=0, *;level=1"), Coding::Identity),
            (Some("gzip;level=1"), Coding::Gzip),
        ];
        for (value, coding) in cases {
            assert_eq!(Coding::negotiate(value), coding, "{value:?}");
        }
    }
}
