//! Rendering: the bytes the Flask app sent, for reports, texts and its error pages.
//!
//! Flask's `jsonify` writes compact JSON with sorted keys and a trailing newline;
//! Python's `str()` formats dates and datetimes; Werkzeug writes the HTML error pages.

use serde::Serialize;
use spin_sdk::http::Response;

use crate::errors::AppError;
use crate::routes::ALLOWED_METHODS;

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

const NOT_FOUND_PAGE: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n\
<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL \
manually please check your spelling and try again.</p>\n";

const METHOD_NOT_ALLOWED_PAGE: &str = "<!doctype html>\n<html lang=en>\n\
<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n\
<p>The method is not allowed for the requested URL.</p>\n";

/// A response with an explicit `Content-Length`: Spin does not add one, and HEAD
/// clients rely on it.
pub fn response(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len().to_string())
        .body(body)
        .build()
}

/// A plain text answer as Flask sends a returned string (`ok`, `failed`).
pub fn text(status: u16, body: &str) -> Response {
    response(status, HTML, body.as_bytes().to_vec())
}

/// `jsonify(value)`: a 200 answer of compact JSON and a newline.
pub fn json<T: Serialize>(value: &T) -> Result<Response, AppError> {
    Ok(response(200, JSON, json_line(value)?))
}

/// Compact JSON followed by `\n`, as `jsonify` writes it.
pub fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>, AppError> {
    let mut body = serde_json::to_vec(value).map_err(|err| AppError::Data(err.to_string()))?;
    body.push(b'\n');
    Ok(body)
}

pub fn error(err: &AppError) -> Response {
    response(err.status(), JSON, err.json_body())
}

pub fn not_found() -> Response {
    response(404, HTML, NOT_FOUND_PAGE.into())
}

pub fn method_not_allowed() -> Response {
    let mut response = response(405, HTML, METHOD_NOT_ALLOWED_PAGE.into());
    response.set_header("allow", ALLOWED_METHODS);
    response
}

/// Werkzeug's redirect (`werkzeug.utils.redirect`, 308 from the router): the
/// target in `Location` and in a short HTML page.
pub fn redirect(location: &str) -> Response {
    let escaped = html_escape(location);
    let page = format!(
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n\
         <h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: \
         <a href=\"{escaped}\">{escaped}</a>. If not, click the link.\n"
    );
    let mut response = response(308, HTML, page.into_bytes());
    response.set_header("location", location);
    response
}

/// Python's `html.escape(text)`, which Werkzeug's pages use.
fn html_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Flask answers OPTIONS itself: 200, no body, the allowed methods.
pub fn options() -> Response {
    let mut response = response(200, HTML, Vec::new());
    response.set_header("allow", ALLOWED_METHODS);
    response
}

/// Python's `repr()` of a dict of string keys and integer values, as the Flask app
/// logged its daily report: `{'2023-02-07': 40, '2023-02-08': 202}`. The keys are
/// dates, which need no escaping inside Python's single quotes.
pub fn python_dict_repr<'a>(entries: impl IntoIterator<Item = (&'a str, i64)>) -> String {
    let entries: Vec<String> = entries
        .into_iter()
        .map(|(key, value)| format!("'{key}': {value}"))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// A date or a datetime as Python's `str()` prints it, formatted into a buffer of
/// its own: a report formats one per row, and `format!` was their largest cost.
#[derive(Clone, Copy)]
pub struct PythonTime {
    text: [u8; PythonTime::CAPACITY],
    len: usize,
}

impl PythonTime {
    /// `YYYY-MM-DD HH:MM:SS.ffffff`
    const CAPACITY: usize = 26;

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..self.len]).expect("digits and separators are ASCII")
    }

    fn push(&mut self, separator: u8, value: u32, width: usize) {
        if separator != 0 {
            self.text[self.len] = separator;
            self.len += 1;
        }
        let mut rest = value;
        for slot in self.text[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.len += width;
    }
}

impl std::fmt::Debug for PythonTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for PythonTime {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PythonTime {}

impl Serialize for PythonTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Python's `str(date)`: `YYYY-MM-DD`. Python dates only hold years 1 to 9999, so
/// other years fail, as they did in the Flask app.
pub fn python_date(year: i32, month: u8, day: u8) -> Result<PythonTime, AppError> {
    let year = python_year(year)?;
    let mut time = PythonTime {
        text: [0; PythonTime::CAPACITY],
        len: 0,
    };
    time.push(0, year, 4);
    time.push(b'-', month.into(), 2);
    time.push(b'-', day.into(), 2);
    Ok(time)
}

/// A timestamp's fields as Spin's `datetime` carries them: year, month, day,
/// hour, minute, second, nanosecond.
pub type DatetimeFields = (i32, u8, u8, u8, u8, u8, u32);

/// Python's `str(datetime)`: `YYYY-MM-DD HH:MM:SS`, plus `.ffffff` when the
/// microseconds are not zero.
pub fn python_datetime(
    (year, month, day, hour, minute, second, nanosecond): DatetimeFields,
) -> Result<PythonTime, AppError> {
    let mut time = python_date(year, month, day)?;
    time.push(b' ', hour.into(), 2);
    time.push(b':', minute.into(), 2);
    time.push(b':', second.into(), 2);
    let micros = nanosecond / 1_000;
    if micros != 0 {
        time.push(b'.', micros, 6);
    }
    Ok(time)
}

fn python_year(year: i32) -> Result<u32, AppError> {
    match u32::try_from(year) {
        Ok(year @ 1..=9999) => Ok(year),
        _ => Err(AppError::Data(format!(
            "year {year} is out of the range that Python dates hold (1 to 9999)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_like_pythons_html_escape() {
        assert_eq!(
            html_escape("http://h/a?b=1&c=<d>\"'"),
            "http://h/a?b=1&amp;c=&lt;d&gt;&quot;&#x27;"
        );
    }

    #[test]
    fn datetimes_print_like_python() {
        assert_eq!(
            python_datetime((2023, 1, 20, 3, 23, 39, 757_813_000))
                .unwrap()
                .as_str(),
            "2023-01-20 03:23:39.757813"
        );
        assert_eq!(
            python_datetime((2023, 1, 20, 3, 23, 39, 0))
                .unwrap()
                .as_str(),
            "2023-01-20 03:23:39"
        );
        assert_eq!(
            python_datetime((2023, 1, 20, 3, 23, 39, 1_000))
                .unwrap()
                .as_str(),
            "2023-01-20 03:23:39.000001"
        );
        assert_eq!(
            python_datetime((1, 1, 1, 0, 0, 0, 0)).unwrap().as_str(),
            "0001-01-01 00:00:00"
        );
    }

    #[test]
    fn years_python_cannot_hold_fail() {
        assert!(python_date(0, 1, 1).is_err());
        assert!(python_date(10000, 1, 1).is_err());
        assert_eq!(python_date(9999, 12, 31).unwrap().as_str(), "9999-12-31");
        assert!(python_date(-1, 1, 1).is_err());
    }

    #[test]
    fn dicts_print_like_python() {
        assert_eq!(python_dict_repr([]), "{}");
        assert_eq!(
            python_dict_repr([("2023-02-07", 40), ("2023-02-08", 202)]),
            "{'2023-02-07': 40, '2023-02-08': 202}"
        );
    }

    #[test]
    fn json_lines_are_compact_with_a_newline() {
        let value = serde_json::json!({"a": 1, "b": {"c": "d"}});
        assert_eq!(
            json_line(&value).unwrap(),
            b"{\"a\":1,\"b\":{\"c\":\"d\"}}\n"
        );
    }
}
