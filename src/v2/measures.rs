//! The figures a usage bucket holds, and which of them a request asks for
//! (`fields`). Asking for fewer is cheaper: `active_members` is a distinct
//! count that no rollup holds, so only a report without it is read from the
//! rollups (`v2::usage_sql`).

use serde::Serialize;

/// One figure of a usage bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Used tokens created in the bucket (the legacy reports' visits).
    Visits,
    TokensIssued,
    /// Distinct members with a used token in the bucket.
    ActiveMembers,
    /// Members whose `joined_at` falls in the bucket.
    NewMembers,
}

impl Measure {
    /// In the order of the report's columns.
    pub const ALL: [Measure; 4] = [
        Measure::Visits,
        Measure::TokensIssued,
        Measure::ActiveMembers,
        Measure::NewMembers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Visits => "visits",
            Measure::TokensIssued => "tokens_issued",
            Measure::ActiveMembers => "active_members",
            Measure::NewMembers => "new_members",
        }
    }

    /// Where it is in [`Measure::ALL`].
    pub fn position(self) -> usize {
        self as usize
    }
}

/// The measures of a report: a non-empty set, always listed in
/// [`Measure::ALL`]'s order, whatever order `fields` named them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measures([bool; 4]);

impl Measures {
    pub const ALL: Measures = Measures([true; 4]);
    pub const NAMES: &'static str = "a comma-separated list of visits, tokens_issued, \
                                      active_members and new_members";

    /// `fields`: names separated by commas, each known; repeats count once.
    pub fn parse(text: &str) -> Option<Measures> {
        let mut chosen = [false; 4];
        for name in text.split(',') {
            let measure = Measure::ALL
                .into_iter()
                .find(|measure| measure.as_str() == name)?;
            chosen[measure.position()] = true;
        }
        Some(Measures(chosen))
    }

    pub fn contains(self, measure: Measure) -> bool {
        self.0[measure.position()]
    }

    pub fn iter(self) -> impl Iterator<Item = Measure> {
        Measure::ALL
            .into_iter()
            .filter(move |measure| self.contains(*measure))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Measure::as_str).collect()
    }
}

/// The figures of one bucket or of the whole range; `None` where not asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visits: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_issued: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_members: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_members: Option<i64>,
}

impl Counts {
    /// Zero in each of `measures`: a bucket without rows.
    pub fn zero(measures: Measures) -> Counts {
        let mut counts = Counts::default();
        for measure in measures.iter() {
            *counts.slot(measure) = Some(0);
        }
        counts
    }

    pub fn get(&self, measure: Measure) -> Option<i64> {
        match measure {
            Measure::Visits => self.visits,
            Measure::TokensIssued => self.tokens_issued,
            Measure::ActiveMembers => self.active_members,
            Measure::NewMembers => self.new_members,
        }
    }

    pub fn set(&mut self, measure: Measure, value: i64) {
        *self.slot(measure) = Some(value);
    }

    fn slot(&mut self, measure: Measure) -> &mut Option<i64> {
        match measure {
            Measure::Visits => &mut self.visits,
            Measure::TokensIssued => &mut self.tokens_issued,
            Measure::ActiveMembers => &mut self.active_members,
            Measure::NewMembers => &mut self.new_members,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_known_names_in_any_order_listed_in_one() {
        let measures = Measures::parse("new_members,visits,visits").unwrap();
        assert_eq!(measures.names(), ["visits", "new_members"]);
        assert!(!measures.contains(Measure::ActiveMembers));
        assert_eq!(
            Measures::parse("visits,tokens_issued,active_members,new_members"),
            Some(Measures::ALL)
        );
        for wrong in ["", "visits,", "Visits", "visits members", "members"] {
            assert_eq!(Measures::parse(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn only_the_chosen_counts_are_serialized() {
        let mut counts = Counts::zero(Measures::parse("tokens_issued,new_members").unwrap());
        counts.set(Measure::NewMembers, 3);
        assert_eq!(counts.get(Measure::Visits), None);
        assert_eq!(
            serde_json::to_value(counts).unwrap(),
            serde_json::json!({"tokens_issued": 0, "new_members": 3})
        );
    }
}
