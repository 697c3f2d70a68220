//! A v2 report's 200: its bytes as negotiated, with a strong `ETag`, answered
//! `304` when `If-None-Match` matches (RFC 9110 §13.1.2: weak comparison,
//! lists and `*`), cached privately for `cache_max_age` seconds, and compressed
//! by `Accept-Encoding` when the body is over 1 KiB.
//!
//! The ETag is a digest of the uncompressed body and its content type, so it
//! changes exactly when the answer does; a compressed body is another
//! representation and gets its coding appended (`"…-gzip"`).

use std::io::Write;

use headers::{ETag, Header, IfNoneMatch};
use sha2::{Digest, Sha256};
use spin_sdk::http::Response;

use crate::errors::AppError;
use crate::v2::negotiate::Coding;

/// Bodies up to this size go uncompressed: the coding would cost more than it saves.
pub const COMPRESS_ABOVE: usize = 1024;

/// Every v2 answer varies by these request headers.
pub const VARY: &str = "Accept, Accept-Encoding, Authorization";

/// A report ready to send.
pub struct Representation {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The download's name, for CSV.
    pub filename: Option<String>,
    /// RFC 8288 links (the member list's pages).
    pub link: Option<String>,
}

/// What a request says about the answer it can use.
#[derive(Debug, Default, Clone, Copy)]
pub struct Preferences<'a> {
    pub if_none_match: Option<&'a [u8]>,
    pub accept_encoding: Option<&'a str>,
}

impl Representation {
    pub fn respond(self, preferences: Preferences<'_>, max_age: u32) -> Result<Response, AppError> {
        let coding = if self.body.len() > COMPRESS_ABOVE {
            Coding::negotiate(preferences.accept_encoding)
        } else {
            Coding::Identity
        };
        let etag = entity_tag(self.content_type, &self.body, coding);
        let mut builder = Response::builder();
        builder
            .header("etag", etag.as_str())
            .header("cache-control", format!("private, max-age={max_age}"))
            .header("vary", VARY);
        if let Some(link) = &self.link {
            builder.header("link", link.as_str());
        }
        if matches_any(preferences.if_none_match, &etag) {
            return Ok(builder.status(304).build());
        }
        let body = encode(coding, self.body)?;
        builder
            .status(200)
            .header("content-type", self.content_type)
            .header("content-length", body.len().to_string());
        if let Some(coding) = coding.header() {
            builder.header("content-encoding", coding);
        }
        if let Some(filename) = &self.filename {
            builder.header(
                "content-disposition",
                format!("attachment; filename=\"{filename}\""),
            );
        }
        Ok(builder.body(body).build())
    }
}

/// `"<first 128 bits of SHA-256, hex>[-coding]"`.
pub fn entity_tag(content_type: &str, body: &[u8], coding: Coding) -> String {
    let mut digest = Sha256::new();
    digest.update(content_type.as_bytes());
    digest.update([0]);
    digest.update(body);
    let hex: String = digest.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    match coding.header() {
        Some(coding) => format!("\"{hex}-{coding}\""),
        None => format!("\"{hex}\""),
    }
}

/// Whether `If-None-Match` matches `etag`. A header that cannot be read counts
/// as absent: the client gets the full answer.
fn matches_any(if_none_match: Option<&[u8]>, etag: &str) -> bool {
    let Some(value) = if_none_match.and_then(|value| http::HeaderValue::from_bytes(value).ok())
    else {
        return false;
    };
    let (Ok(condition), Ok(etag)) = (
        IfNoneMatch::decode(&mut std::iter::once(&value)),
        etag.parse::<ETag>(),
    ) else {
        return false;
    };
    !condition.precondition_passes(&etag)
}

fn encode(coding: Coding, body: Vec<u8>) -> Result<Vec<u8>, AppError> {
    let failed = |err: std::io::Error| AppError::Data(format!("compression: {err}"));
    match coding {
        Coding::Identity => Ok(body),
        Coding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&body).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn respond(
        body: &[u8],
        if_none_match: Option<&str>,
        accept_encoding: Option<&str>,
    ) -> Response {
        Representation {
            content_type: crate::v2::negotiate::JSON_TYPE,
            body: body.to_vec(),
            filename: None,
            link: None,
        }
        .respond(
            Preferences {
                if_none_match: if_none_match.map(str::as_bytes),
                accept_encoding,
            },
            60,
        )
        .unwrap()
    }

    fn header(response: &Response, name: &str) -> Option<String> {
        response
            .header(name)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    }

    #[test]
    fn a_matching_etag_is_a_304_without_a_body() {
        let first = respond(b"{\"a\":1}\n", None, None);
        assert_eq!(*first.status(), 200);
        let etag = header(&first, "etag").unwrap();
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "strong: {etag}"
        );
        assert_eq!(
            header(&first, "cache-control").as_deref(),
            Some("private, max-age=60")
        );
        assert_eq!(header(&first, "vary").as_deref(), Some(VARY));
        let weak = format!("W/{etag}");
        for condition in [
            etag.as_str(),
            weak.as_str(),
            "*",
            &format!("\"other\", {etag}"),
        ] {
            let again = respond(b"{\"a\":1}\n", Some(condition), None);
            assert_eq!(*again.status(), 304, "{condition}");
            assert!(again.body().is_empty());
            assert_eq!(header(&again, "etag"), Some(etag.clone()));
            assert_eq!(header(&again, "vary").as_deref(), Some(VARY));
        }
        for condition in ["\"other\"", "not an etag", ""] {
            assert_eq!(
                *respond(b"{\"a\":1}\n", Some(condition), None).status(),
                200,
                "{condition}"
            );
        }
        // Another answer, another tag.
        let changed = respond(b"{\"a\":2}\n", Some(&etag), None);
        assert_eq!(*changed.status(), 200);
        assert_ne!(header(&changed, "etag"), Some(etag));
    }

    #[test]
    fn large_bodies_are_compressed_as_asked() {
        let body = "x".repeat(5_000);
        let gzip = respond(body.as_bytes(), None, Some("gzip"));
        assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
        let mut plain = String::new();
        flate2::read::GzDecoder::new(gzip.body())
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
        assert!(header(&gzip, "etag").unwrap().ends_with("-gzip\""));

        let refused = respond(body.as_bytes(), None, Some("gzip;q=0"));
        assert_eq!(header(&refused, "content-encoding"), None);
        assert_eq!(refused.body().len(), body.len());
        let small = respond(b"{}\n", None, Some("gzip"));
        assert_eq!(header(&small, "content-encoding"), None);
    }
}
