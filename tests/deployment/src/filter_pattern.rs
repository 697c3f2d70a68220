//! CloudWatch Logs metric filter patterns over JSON log events, the part of
//! the language that `deployment/monitoring/` uses: `{ A && B && ... }` where
//! each condition, bracketed or not, is `$.a.b = "value"` or `!=`, a string
//! value in which `*` stands for any run of characters. Anything else is
//! refused, so that a template cannot drift into syntax these checks would
//! read differently from CloudWatch.
//!
//! CloudWatch's rules that matter here (Filter pattern syntax, "Using filter
//! patterns to match terms in JSON log events"): a selector that names no
//! field, or a field that is not a string, does not match `=`; the whole
//! string must match the value, its `*`s aside.

use serde_json::Value;

#[derive(Debug, PartialEq, Eq)]
pub struct JsonPattern {
    conditions: Vec<Condition>,
}

#[derive(Debug, PartialEq, Eq)]
struct Condition {
    path: Vec<String>,
    equal: bool,
    value: String,
}

impl JsonPattern {
    pub fn parse(text: &str) -> Result<JsonPattern, String> {
        let inner = text
            .trim()
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .ok_or_else(|| format!("not a JSON pattern in braces: {text}"))?;
        let conditions = split_conditions(inner)?
            .iter()
            .map(|condition| Condition::parse(condition))
            .collect::<Result<_, _>>()?;
        Ok(JsonPattern { conditions })
    }

    pub fn matches(&self, event: &Value) -> bool {
        self.conditions
            .iter()
            .all(|condition| condition.matches(event))
    }
}

/// The `&&`-separated conditions, outside quoted values.
fn split_conditions(text: &str) -> Result<Vec<String>, String> {
    let mut conditions = vec![String::new()];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '|' if !quoted => return Err(format!("`||` is not supported here: {text}")),
            '&' if !quoted => {
                if chars.next() != Some('&') {
                    return Err(format!("a lone `&`: {text}"));
                }
                conditions.push(String::new());
                continue;
            }
            _ => {}
        }
        conditions.last_mut().expect("one at least").push(c);
    }
    if quoted {
        return Err(format!("an unclosed quote: {text}"));
    }
    Ok(conditions)
}

impl Condition {
    fn parse(text: &str) -> Result<Condition, String> {
        let mut text = text.trim();
        if let Some(inner) = text
            .strip_prefix('(')
            .and_then(|rest| rest.strip_suffix(')'))
        {
            text = inner.trim();
        }
        let (selector, equal, value) = if let Some((selector, value)) = text.split_once("!=") {
            (selector, false, value)
        } else if let Some((selector, value)) = text.split_once('=') {
            (selector, true, value)
        } else {
            return Err(format!("not `$.field = \"value\"`: {text}"));
        };
        let path = selector
            .trim()
            .strip_prefix("$.")
            .ok_or_else(|| format!("a selector starts with `$.`: {text}"))?
            .split('.')
            .map(|name| {
                let plain =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                plain
                    .then(|| name.to_owned())
                    .ok_or_else(|| format!("not a plain field name `{name}`: {text}"))
            })
            .collect::<Result<_, _>>()?;
        let value = value
            .trim()
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|value| !value.contains('"') && !value.contains('\\'))
            .ok_or_else(|| format!("the value is one quoted string without escapes: {text}"))?;
        Ok(Condition {
            path,
            equal,
            value: value.to_owned(),
        })
    }

    fn matches(&self, event: &Value) -> bool {
        let field = self
            .path
            .iter()
            .try_fold(event, |value, name| value.get(name))
            .and_then(Value::as_str);
        match field {
            Some(field) => wildcard_match(&self.value, field) == self.equal,
            None => !self.equal,
        }
    }
}

/// Whether `text` is `pattern` with each `*` standing for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({"log": "[t] ERROR in app: readiness check failed: x", "kubernetes": {"namespace_name": "coworking"}})
    }

    #[test]
    fn every_condition_must_hold() {
        let pattern = JsonPattern::parse(
            r#"{ ($.kubernetes.namespace_name = "coworking") && ($.log = "*ERROR in app: *") }"#,
        )
        .unwrap();
        assert!(pattern.matches(&event()));
        let elsewhere =
            json!({"log": "[t] ERROR in app: x", "kubernetes": {"namespace_name": "other"}});
        assert!(!pattern.matches(&elsewhere));
        assert!(!pattern.matches(&json!({"log": "[t] ERROR in app: x"})));
    }

    #[test]
    fn wildcards_stand_for_any_run_and_the_rest_must_match_whole() {
        assert!(wildcard_match("*in app*", "x in app y"));
        assert!(wildcard_match("a*b*c", "abc"));
        assert!(wildcard_match("a*b*c", "a-b-b-c"));
        assert!(!wildcard_match("a*b*c", "a-c-b"));
        assert!(!wildcard_match("ERROR", "ERROR in app"));
        assert!(wildcard_match("*200*", "GET /x 200"));
        assert!(!wildcard_match("*ab*ba", "aba"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn not_equal_holds_for_a_missing_field() {
        let pattern = JsonPattern::parse(r#"{ $.stream != "stdout" }"#).unwrap();
        assert!(pattern.matches(&json!({"stream": "stderr"})));
        assert!(pattern.matches(&json!({})));
        assert!(!pattern.matches(&json!({"stream": "stdout"})));
    }

    #[test]
    fn syntax_beyond_the_subset_is_refused() {
        for text in [
            r#"{ $.a = "x" || $.b = "y" }"#,
            r#"$.a = "x""#,
            r#"{ $.a[0] = "x" }"#,
            r#"{ $.a = x }"#,
            r#"{ $.a = "x\"y" }"#,
            r#"{ $.a > 3 }"#,
            "\"ERROR\"",
        ] {
            assert!(JsonPattern::parse(text).is_err(), "{text}");
        }
    }
}
