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

    /// The format of a request: its `format` parameter, else its `Accept`
    /// (JSON when it has none), else a 406.
    pub fn negotiate(parameter: Option<Format>, accept: Option<&str>) -> Result<Format, Problem> {
        if let Some(format) = parameter {
            return Ok(format);
        }
        let Some(accept) = accept.filter(|value| !value.trim().is_empty()) else {
            return Ok(Format::Json);
        };
        let json = MediaType::parse("application/json").expect("a media type");
        let csv = MediaType::parse("text/csv").expect("a media type");
        let refused = || Problem::not_acceptable("application/json or text/csv");
        let accept = Accept::from_str(accept).map_err(|_| refused())?;
        match accept.negotiate([&json, &csv]) {
            Some(chosen) if *chosen == csv => Ok(Format::Csv),
            Some(_) => Ok(Format::Json),
            None => Err(refused()),
        }
    }
}

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
        let as_ranges: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|coding| !coding.is_empty())
            .map(|coding| format!("coding/{coding}"))
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
            Format::negotiate(Some(Format::Csv), Some("application/json")),
            Ok(Format::Csv)
        );
        assert_eq!(Format::negotiate(None, None), Ok(Format::Json));
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
        ];
        for (accept, format) in cases {
            assert_eq!(
                Format::negotiate(None, Some(accept)),
                Ok(format),
                "{accept}"
            );
        }
        for refused in [
            "text/html",
            "application/xml, image/*",
            "text/csv;q=0, application/json;q=0",
        ] {
            let problem = Format::negotiate(None, Some(refused)).unwrap_err();
            assert_eq!(problem.status, 406, "{refused}");
        }
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
        ];
        for (value, coding) in cases {
            assert_eq!(Coding::negotiate(value), coding, "{value:?}");
        }
    }
}
