//! IANA zone names as PostgreSQL will read them. `AT TIME ZONE 'name'` looks a
//! name up among PostgreSQL's time-zone abbreviations before its zone database,
//! and seven IANA names are also abbreviations of its `Default` set, with a
//! fixed offset there: `CET` would be UTC+1 all summer, against the IANA zone's
//! daylight saving. Those names are refused, with the region to give instead.

use chrono_tz::Tz;

/// The IANA names that PostgreSQL reads as fixed-offset abbreviations, and the
/// region zone that the IANA name links to (tzdata 2024b).
const ABBREVIATIONS: [(&str, &str); 7] = [
    ("CET", "Europe/Brussels"),
    ("EET", "Europe/Athens"),
    ("MET", "Europe/Brussels"),
    ("WET", "Europe/Lisbon"),
    ("EST", "America/Panama"),
    ("MST", "America/Phoenix"),
    ("HST", "Pacific/Honolulu"),
];

/// Why a name is not a zone the reports can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneError {
    Unknown,
    /// An abbreviation to PostgreSQL; the region zone to give instead.
    Abbreviation(&'static str),
}

/// The zone of an IANA name (case-sensitive), unless PostgreSQL would read it
/// as something else.
pub fn zone(name: &str) -> Result<Tz, ZoneError> {
    if let Some((_, region)) = ABBREVIATIONS
        .iter()
        .find(|(abbreviation, _)| abbreviation.eq_ignore_ascii_case(name))
    {
        return Err(ZoneError::Abbreviation(region));
    }
    name.parse().map_err(|_| ZoneError::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_zones_and_abbreviations_are_refused() {
        assert_eq!(zone("Europe/Brussels"), Ok(Tz::Europe__Brussels));
        assert_eq!(zone("UTC"), Ok(Tz::UTC));
        assert_eq!(zone("CET"), Err(ZoneError::Abbreviation("Europe/Brussels")));
        assert_eq!(
            zone("hst"),
            Err(ZoneError::Abbreviation("Pacific/Honolulu"))
        );
        assert_eq!(zone("Mars/Olympus"), Err(ZoneError::Unknown));
        // Every refused name is one chrono-tz knows, and its region too.
        for (abbreviation, region) in ABBREVIATIONS {
            assert!(abbreviation.parse::<Tz>().is_ok(), "{abbreviation}");
            assert!(region.parse::<Tz>().is_ok(), "{region}");
        }
    }
}
