//! The secrets' watch: everything the host sends or writes for the component
//! (each response's headers and body, the component's output, the host's own
//! error lines, a trap's message among them) is scanned for the values of the
//! manifest's secret variables, as they are and as they would look in JSON or
//! a URL. A finding names the variable and the place, never the value.
//!
//! A value is watched whole and, for a list such as `api_keys`, item by item
//! (split at commas and line ends); forms shorter than [`SHORTEST`] bytes are
//! not watched, since any text would contain them.

use std::sync::{Arc, Mutex};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Shorter forms would match by chance.
pub const SHORTEST: usize = 6;

/// Everything but RFC 3986's unreserved characters, as a URL's userinfo
/// encodes them.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a scan saw, and where it found a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakReport {
    /// The distinct forms watched (values, items, encodings).
    pub forms: usize,
    pub responses: u64,
    pub bytes: u64,
    /// One line per finding: the variable, its form and the place.
    pub findings: Vec<String>,
}

#[derive(Clone, Default)]
pub struct LeakScan {
    /// (what it is, its bytes)
    forms: Arc<Vec<(String, Vec<u8>)>>,
    seen: Arc<Mutex<LeakReport>>,
}

impl LeakScan {
    /// A watch over these `(variable name, value)` pairs.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> LeakScan {
        let mut forms: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, value) in secrets {
            let items = value.split([',', '\n']).map(str::trim);
            for item in std::iter::once(value).chain(items) {
                let json = serde_json::to_string(item).expect("a string is JSON");
                let encodings = [
                    ("as it is", item.to_owned()),
                    ("JSON-escaped", json[1..json.len() - 1].to_owned()),
                    (
                        "percent-encoded",
                        utf8_percent_encode(item, NON_ALPHANUMERIC).to_string(),
                    ),
                    (
                        "percent-encoded",
                        utf8_percent_encode(item, NOT_UNRESERVED).to_string(),
                    ),
                ];
                for (how, form) in encodings {
                    let known = forms.iter().any(|(_, seen)| seen == form.as_bytes());
                    if form.len() >= SHORTEST && !known {
                        forms.push((format!("the secret {name} ({how})"), form.into_bytes()));
                    }
                }
            }
        }
        let seen = LeakReport {
            forms: forms.len(),
            ..LeakReport::default()
        };
        LeakScan {
            forms: Arc::new(forms),
            seen: Arc::new(Mutex::new(seen)),
        }
    }

    /// Scan one whole piece of output, found at `place`.
    pub fn scan(&self, place: &str, bytes: &[u8]) {
        let findings = self.findings_in(place, bytes);
        let mut seen = self.seen.lock().expect("scan lock");
        seen.bytes += bytes.len() as u64;
        seen.findings.extend(findings);
    }

    /// What a scan of `bytes` would find, without recording it.
    pub fn findings_in(&self, place: &str, bytes: &[u8]) -> Vec<String> {
        self.forms
            .iter()
            .filter(|(_, form)| contains(bytes, form))
            .map(|(what, _)| format!("{what} in {place}"))
            .collect()
    }

    /// A scan of one response body, frame by frame: a secret split across two
    /// frames is found too.
    pub fn body(&self, place: String) -> BodyScan {
        self.seen.lock().expect("scan lock").responses += 1;
        BodyScan {
            scan: self.clone(),
            place,
            tail: Vec::new(),
        }
    }

    pub fn report(&self) -> LeakReport {
        self.seen.lock().expect("scan lock").clone()
    }

    fn longest(&self) -> usize {
        self.forms
            .iter()
            .map(|(_, form)| form.len())
            .max()
            .unwrap_or(0)
    }
}

pub struct BodyScan {
    scan: LeakScan,
    place: String,
    /// The end of the frames so far, as long as a form less one byte.
    tail: Vec<u8>,
}

impl BodyScan {
    pub fn feed(&mut self, frame: &[u8]) {
        let mut window = std::mem::take(&mut self.tail);
        let overlap = window.len();
        window.extend_from_slice(frame);
        self.scan.scan(&self.place, &window);
        // The overlap was counted with the frame before.
        self.scan.seen.lock().expect("scan lock").bytes -= overlap as u64;
        let keep = self.scan.longest().saturating_sub(1).min(window.len());
        self.tail = window[window.len() - keep..].to_vec();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_of_a_secret_is_found_and_named_without_its_value() {
        let scan = LeakScan::new([
            ("db_password", "p@ss w\"rd"),
            ("api_keys", "key-one1, key-two2"),
        ]);
        scan.scan(
            "the log",
            b"connect to postgres://u:p%40ss%20w%22rd@h failed",
        );
        scan.scan("a body", b"{\"detail\": \"p@ss w\\\"rd\"}");
        scan.scan("a header", b"x-key: key-two2");
        scan.scan("clean", b"nothing to see, key-one");
        let report = scan.report();
        assert_eq!(
            report.findings,
            [
                "the secret db_password (percent-encoded) in the log",
                "the secret db_password (JSON-escaped) in a body",
                "the secret api_keys (as it is) in a header",
            ]
        );
        assert!(report
            .findings
            .iter()
            .all(|finding| !finding.contains("p@ss")));
    }

    #[test]
    fn a_secret_across_two_frames_is_found() {
        let scan = LeakScan::new([("db_password", "split-secret")]);
        let mut body = scan.body("GET /x".into());
        body.feed(b"...split-");
        body.feed(b"secret...");
        let report = scan.report();
        assert_eq!(
            report.findings,
            ["the secret db_password (as it is) in GET /x"]
        );
        assert_eq!((report.responses, report.bytes), (1, 18));
    }

    #[test]
    fn short_forms_are_not_watched() {
        let scan = LeakScan::new([("db_password", "abc"), ("api_keys", "k1,long-key-9")]);
        scan.scan("text", b"abc k1 long-key");
        assert!(scan.report().findings.is_empty());
    }
}
