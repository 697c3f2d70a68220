//! The v2 reports' own settings, read from Spin variables beside the database's
//! (`config`): the API keys and the time zones.

use std::fmt;

use chrono_tz::Tz;

use crate::v2::access::ApiKeys;

/// A v2 setting's Spin variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    ApiKeys,
    DbTimezone,
    ReportTimezone,
}

impl Setting {
    pub fn variable(self) -> &'static str {
        match self {
            Setting::ApiKeys => "api_keys",
            Setting::DbTimezone => "db_timezone",
            Setting::ReportTimezone => "report_timezone",
        }
    }
}

/// A v2 configuration mistake. It names the variable, never a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingError {
    /// A time-zone variable that is not an IANA zone name.
    UnknownTimezone(Setting),
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
                "variable {} must be an IANA time zone name such as UTC or Europe/Berlin",
                setting.variable()
            ),
            SettingError::UnusableKey => write!(
                f,
                "variable api_keys holds a key that an Authorization: Bearer header cannot \
                 carry: keys are separated by commas or white space, and each may hold only \
                 letters, digits and - . _ ~ + / (then = at its end)"
            ),
            SettingError::Unreadable { setting, reason } => {
                write!(f, "variable {} cannot be read: {reason}", setting.variable())
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
}

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
                Some(name) => name
                    .trim()
                    .parse()
                    .map_err(|_| SettingError::UnknownTimezone(setting)),
            }
        };
        let api_keys = match read(Setting::ApiKeys)? {
            Some(text) => ApiKeys::parse(&text).ok_or(SettingError::UnusableKey)?,
            None => ApiKeys::default(),
        };
        Ok(ReportSettings {
            api_keys,
            db_timezone: zone(Setting::DbTimezone)?,
            report_timezone: zone(Setting::ReportTimezone)?,
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
        for bad in ["IST", "+05:30", "Mars/Olympus"] {
            assert_eq!(
                load(&[("report_timezone", bad)]).unwrap_err(),
                SettingError::UnknownTimezone(Setting::ReportTimezone),
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
