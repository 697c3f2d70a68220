//! Access to the v2 reports: member names and per-member activity are personal
//! data, so every v2 route but the OpenAPI document takes `Authorization:
//! Bearer <key>` with one of the keys in the secret variable `api_keys`.
//!
//! Keys are compared by their SHA-256 digests in constant time, and every
//! configured key is compared, so neither the time of an answer nor its length
//! tells a caller how much of a key they guessed.

use headers::authorization::{Authorization, Bearer};
use headers::Header;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The configured keys, kept as digests only.
#[derive(Clone, Default)]
pub struct ApiKeys(Vec<[u8; 32]>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

impl ApiKeys {
    /// The keys of `api_keys`, separated by commas or white space (several, so
    /// that a key can be rotated: add the new one, move the clients, drop the
    /// old). `None` when one holds a character outside RFC 6750's `b64token`.
    pub fn parse(text: &str) -> Option<ApiKeys> {
        let mut digests = Vec::new();
        for key in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|key| !key.is_empty())
        {
            if !is_b64token(key) {
                return None;
            }
            digests.push(digest(key.as_bytes()));
        }
        Some(ApiKeys(digests))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `key` is one of the keys.
    fn admits(&self, key: &[u8]) -> bool {
        let presented = digest(key);
        let matched = self.0.iter().fold(Choice::from(0), |matched, known| {
            matched | known.ct_eq(&presented)
        });
        matched.into()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(key: &str) -> bool {
    let body = key.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `api_keys` is empty: nobody can be let in.
    NoKeysConfigured,
    /// No `Authorization` header, or one of another scheme.
    NoCredentials,
    /// A Bearer key that is not one of the keys.
    WrongKey,
}

impl Denied {
    /// The problem's `detail`, for the client.
    pub fn detail(self) -> &'static str {
        match self {
            Denied::NoKeysConfigured => {
                "no API keys are configured: the operator must set the api_keys variable \
                 before the v2 reports can be read"
            }
            Denied::NoCredentials => "send an API key as Authorization: Bearer <key>",
            Denied::WrongKey => "the API key is not valid",
        }
    }

    /// RFC 6750 §3's challenge; the error code tells a client a bad key from none.
    pub fn challenge(self) -> &'static str {
        match self {
            Denied::NoKeysConfigured | Denied::NoCredentials => {
                "Bearer realm=\"coworking-analytics\""
            }
            Denied::WrongKey => "Bearer realm=\"coworking-analytics\", error=\"invalid_token\"",
        }
    }
}

/// Let a request in by its `Authorization` header values, or say why not.
pub fn check<'a>(
    keys: &ApiKeys,
    authorization: impl Iterator<Item = &'a [u8]>,
) -> Result<(), Denied> {
    if keys.is_empty() {
        return Err(Denied::NoKeysConfigured);
    }
    let values: Vec<http::HeaderValue> = authorization
        .filter_map(|value| http::HeaderValue::from_bytes(value).ok())
        .collect();
    let bearer =
        Authorization::<Bearer>::decode(&mut values.iter()).map_err(|_| Denied::NoCredentials)?;
    if keys.admits(bearer.token().as_bytes()) {
        Ok(())
    } else {
        Err(Denied::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_header(keys: &str, header: Option<&str>) -> Result<(), Denied> {
        let keys = ApiKeys::parse(keys).unwrap();
        check(&keys, header.into_iter().map(str::as_bytes))
    }

    #[test]
    fn any_configured_key_lets_a_request_in() {
        let keys = "old-key-1, new.key~2\nthird+/key==";
        for key in ["old-key-1", "new.key~2", "third+/key=="] {
            assert_eq!(check_header(keys, Some(&format!("Bearer {key}"))), Ok(()));
        }
        // The scheme is case-insensitive (RFC 9110 §11.1).
        assert_eq!(check_header(keys, Some("bearer old-key-1")), Ok(()));
    }

    #[test]
    fn wrong_or_missing_keys_are_told_apart() {
        let keys = "old-key-1";
        assert_eq!(check_header(keys, None), Err(Denied::NoCredentials));
        assert_eq!(
            check_header(keys, Some("Basic b2xkLWtleS0xOg==")),
            Err(Denied::NoCredentials)
        );
        for wrong in [
            "Bearer old-key-",
            "Bearer old-key-12",
            "Bearer OLD-KEY-1",
            "Bearer ",
        ] {
            assert!(check_header(keys, Some(wrong)).is_err(), "{wrong}");
        }
        assert_eq!(check_header(keys, Some("Bearer x")), Err(Denied::WrongKey));
    }

    #[test]
    fn without_keys_nobody_is_let_in() {
        assert_eq!(
            check_header("", Some("Bearer anything")),
            Err(Denied::NoKeysConfigured)
        );
        assert_eq!(check_header(" , ", None), Err(Denied::NoKeysConfigured));
    }

    #[test]
    fn keys_must_be_b64tokens() {
        for bad in ["has\"quote", "semi;colon", "=leading", "é"] {
            assert!(ApiKeys::parse(bad).is_none(), "{bad}");
        }
        let keys = ApiKeys::parse("a,b").unwrap();
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)");
    }
}
