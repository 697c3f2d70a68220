//! The v2 reports as CSV (RFC 4180): a header row, CRLF line ends, fields quoted
//! where they must be. A text that a spreadsheet would run as a formula (it
//! starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
//! `'`, as OWASP's advice on CSV injection says. Only the names are texts:
//! numbers stay numbers, and dates stay dates (a BC year starts with `-`).

use std::borrow::Cow;

use crate::errors::AppError;
use crate::v2::measures::Measure;
use crate::v2::members::MemberRow;
use crate::v2::usage::UsageReport;

const MEMBERS_HEADER: [&str; 7] = [
    "member_id",
    "first_name",
    "last_name",
    "joined_at",
    "visits",
    "tokens_issued",
    "last_visit",
];

/// One row per bucket: its start and end, then the figures `fields` chose.
pub fn usage_csv(report: &UsageReport) -> Result<Vec<u8>, AppError> {
    let mut table = writer(Vec::new());
    let header = ["start", "end"]
        .into_iter()
        .chain(report.fields.iter().copied());
    table.write_record(header).map_err(failed)?;
    for bucket in &report.buckets {
        let figures = Measure::ALL
            .into_iter()
            .filter_map(|measure| bucket.counts.get(measure))
            .map(|figure| Cow::Owned(figure.to_string()));
        write(
            &mut table,
            [
                Cow::Borrowed(bucket.start.as_str()),
                Cow::Borrowed(bucket.end.as_str()),
            ]
            .into_iter()
            .chain(figures),
        )?;
    }
    finish(table)
}

/// One row per member; empty fields where a value is missing. Each row is
/// dropped once written, and the output is sized for all of them up front, so
/// that the CSV of every member (9 MB for 100,000) does not hold the rows, the
/// output and the output's doubled copy at once within the instance's memory.
pub fn members_csv(members: Vec<MemberRow>) -> Result<Vec<u8>, AppError> {
    let digits = |number: i64| number.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 2;
    let size: usize = members
        .iter()
        .map(|member| {
            // Six separators and the line end; quoting, rare, may grow it.
            8 + digits(member.member_id.into())
                + digits(member.visits)
                + digits(member.tokens_issued)
                + [
                    &member.first_name,
                    &member.last_name,
                    &member.joined_at,
                    &member.last_visit,
                ]
                .iter()
                .map(|text| text.as_ref().map_or(0, String::len))
                .sum::<usize>()
        })
        .sum();
    let mut table = writer(Vec::with_capacity(size));
    table.write_record(MEMBERS_HEADER).map_err(failed)?;
    for member in members {
        write(
            &mut table,
            [
                Cow::Owned(member.member_id.to_string()),
                optional(&member.first_name),
                optional(&member.last_name),
                Cow::Borrowed(member.joined_at.as_deref().unwrap_or("")),
                Cow::Owned(member.visits.to_string()),
                Cow::Owned(member.tokens_issued.to_string()),
                Cow::Borrowed(member.last_visit.as_deref().unwrap_or("")),
            ],
        )?;
    }
    finish(table)
}

fn write<'a>(
    table: &mut csv::Writer<Vec<u8>>,
    fields: impl IntoIterator<Item = Cow<'a, str>>,
) -> Result<(), AppError> {
    for field in fields {
        table.write_field(field.as_bytes()).map_err(failed)?;
    }
    // An empty record ends the one written field by field.
    table.write_record(None::<&[u8]>).map_err(failed)
}

fn writer(output: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(output)
}

fn finish(table: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, AppError> {
    table
        .into_inner()
        .map_err(|err| AppError::Data(format!("CSV: {err}")))
}

fn failed(err: csv::Error) -> AppError {
    AppError::Data(format!("CSV: {err}"))
}

/// An optional name: empty when missing.
fn optional(value: &Option<String>) -> Cow<'_, str> {
    value.as_deref().map_or(Cow::Borrowed(""), text)
}

/// A text field, neutralised if a spreadsheet would take it for a formula.
fn text(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(first_name: &str) -> MemberRow {
        MemberRow {
            member_id: 7,
            first_name: Some(first_name.into()),
            last_name: None,
            joined_at: Some("2024-01-02T03:04:05.000000+05:30".into()),
            visits: 3,
            tokens_issued: 4,
            last_visit: None,
        }
    }

    fn csv_of(first_name: &str) -> String {
        String::from_utf8(members_csv(vec![member(first_name)]).unwrap()).unwrap()
    }

    #[test]
    fn rows_end_in_crlf_after_a_header() {
        assert_eq!(
            csv_of("Ada"),
            "member_id,first_name,last_name,joined_at,visits,tokens_issued,last_visit\r\n\
             7,Ada,,2024-01-02T03:04:05.000000+05:30,3,4,\r\n"
        );
    }

    #[test]
    fn quotes_commas_and_newlines_are_quoted() {
        assert!(csv_of("O\"Brien, Jr.\nII").contains("7,\"O\"\"Brien, Jr.\nII\",,"));
    }

    #[test]
    fn formulas_are_neutralised() {
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            let row = csv_of(formula);
            assert!(row.contains(&format!("'{formula}")), "{row:?}");
        }
        assert!(csv_of("=HYPERLINK(\"x\")").contains("\"'=HYPERLINK(\"\"x\"\")\""));
    }
}
