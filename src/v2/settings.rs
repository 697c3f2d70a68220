//! The v2 reports' own settings, read from Spin variables beside the database's
//! (`config`): the API keys and the time zones.

use std::fmt;

use chrono_tz::Tz;

use crate::v2::access::ApiKeys;
use crate::v2::zones;

/// A v2 setting's Spin variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    ApiKeys,
    DbTimezone,
    ReportTimezone,
    CacheMaxAge,
}

impl Setting {
    pub fn variable(self) -> &'static str {
        match self {
            Setting::ApiKeys => "api_keys",
            Setting::DbTimezone => "db_timezone",
            Setting::ReportTimezone => "report_timezone",
            Setting::CacheMaxAge => "cache_max_age",
        }
    }
}

/// A v2 configuration mistake. It names the variable, never a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingError {
    /// A time-zone variable that is not an IANA zone name.
    UnknownTimezone(Setting),
    /// `cache_max_age` is not a number of seconds up to a year.
    InvalidMaxAge,
    /// `api_keys` holds a key that an `Authorization: Bearer` header cannot carry.
    UnusableKey,
    /// The variables interface failed; the text comes from the host.
    Unreadable { setting: Setting, reason: String },
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::UnknownTimezone(setting) => write!(
                f,
                "variable {} must be an IANA time zone name such as UTC or Europe/Berlin \
                 (a region: CET, EET, MET, WET, EST, MST and HST are fixed offsets to the \
                 database)",
                setting.variable()
            ),
            SettingError::InvalidMaxAge => write!(
                f,
                "variable cache_max_age must be a whole number of seconds from 0 to {MAX_AGE_LIMIT}"
            ),
            SettingError::UnusableKey => write!(
                f,
                "variable api_keys holds a key that an Authorization: Bearer header cannot \
                 carry: keys are separated by commas or white space, and each may hold only \
                 letters, digits and - . _ ~ + / (then = at its end)"
            ),
            SettingError::Unreadable { setting, reason } => {
                write!(
                    f,
                    "variable {} cannot be read: {reason}",
                    setting.variable()
                )
            }
        }
    }
}

/// The v2 settings.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub api_keys: ApiKeys,
    /// The zone in which the Coworking API writes its `timestamp` columns.
    pub db_timezone: Tz,
    /// The calendar of a request that names no `tz`.
    pub report_timezone: Tz,
    /// How long a client may reuse a report without asking (`Cache-Control`).
    pub cache_max_age: u32,
}

/// A year: `max-age` beyond it is never what an operator meant.
pub const MAX_AGE_LIMIT: u32 = 31_536_000;

impl ReportSettings {
    /// Read the settings through `lookup`: a variable's value, `None` when it is
    /// undefined, or the host's error. Empty values count as unset.
    pub fn load(
        lookup: impl Fn(&str) -> Result<Option<String>, String>,
    ) -> Result<ReportSettings, SettingError> {
        let read = |setting: Setting| -> Result<Option<String>, SettingError> {
            let value = lookup(setting.variable())
                .map_err(|reason| SettingError::Unreadable { setting, reason })?;
            Ok(value.filter(|value| !value.trim().is_empty()))
        };
        let zone = |setting: Setting| -> Result<Tz, SettingError> {
            match read(setting)? {
                None => Ok(Tz::UTC),
                Some(name) => {
                    zones::zone(name.trim()).map_err(|_| SettingError::UnknownTimezone(setting))
                }
            }
        };
        let api_keys = match read(Setting::ApiKeys)? {
            Some(text) => ApiKeys::parse(&text).ok_or(SettingError::UnusableKey)?,
            None => ApiKeys::default(),
        };
        let cache_max_age = match read(Setting::CacheMaxAge)? {
            None => 0,
            Some(text) => text
                .trim()
                .parse()
                .ok()
                .filter(|seconds| *seconds <= MAX_AGE_LIMIT)
                .ok_or(SettingError::InvalidMaxAge)?,
        };
        Ok(ReportSettings {
            api_keys,
            db_timezone: zone(Setting::DbTimezone)?,
            report_timezone: zone(Setting::ReportTimezone)?,
            cache_max_age,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<ReportSettings, SettingError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        ReportSettings::load(|name| {
            Ok(vars
                .iter()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.clone()))
        })
    }

    #[test]
    fn zones_default_to_utc() {
        let settings = load(&[("db_timezone", "")]).unwrap();
        assert_eq!(settings.db_timezone, Tz::UTC);
        assert_eq!(settings.report_timezone, Tz::UTC);
        assert!(settings.api_keys.is_empty());
    }

    #[test]
    fn zones_are_iana_names() {
        let settings = load(&[
            ("db_timezone", "America/New_York"),
            ("report_timezone", " Asia/Kathmandu "),
        ])
        .unwrap();
        assert_eq!(settings.db_timezone, Tz::America__New_York);
        assert_eq!(settings.report_timezone, Tz::Asia__Kathmandu);
        for bad in ["IST", "+05:30", "Mars/Olympus", "CET"] {
            assert_eq!(
                load(&[("report_timezone", bad)]).unwrap_err(),
                SettingError::UnknownTimezone(Setting::ReportTimezone),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_max_age_is_seconds_up_to_a_year() {
        assert_eq!(load(&[]).unwrap().cache_max_age, 0);
        assert_eq!(
            load(&[("cache_max_age", "300")]).unwrap().cache_max_age,
            300
        );
        for bad in ["-1", "1.5", "31536001", "soon"] {
            assert_eq!(
                load(&[("cache_max_age", bad)]).unwrap_err(),
                SettingError::InvalidMaxAge,
                "{bad}"
            );
        }
    }

    #[test]
    fn unusable_keys_are_refused_without_showing_them() {
        let err = load(&[("api_keys", "good-key,bad\"key")]).unwrap_err();
        assert_eq!(err, SettingError::UnusableKey);
        assert!(!err.to_string().contains("bad\"key"));
    }
}
