//! rights.csv: PREMIS rights for files of the package, one row per (file, basis, act).
//! Checked at intake so nothing an archivist wrote is refused later or silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::profile::PackageKind;
use crate::intake::layout::metadata_row_name;

pub const REQUIRED_COLUMNS: &[&str] = &["file", "basis"];
pub const OPTIONAL_COLUMNS: &[&str] = &[
    "status",
    "determination_date",
    "start_date",
    "end_date",
    "jurisdiction",
    "terms",
    "citation",
    "note",
    "grant_act",
    "grant_restriction",
    "grant_start_date",
    "grant_end_date",
    "grant_note",
    "doc_id_type",
    "doc_id_value",
    "doc_id_role",
];
pub const BASES: &[&str] = &["copyright", "donor", "license", "other", "policy", "statute"];
pub const GRANT_RESTRICTIONS: &[&str] = &["allow", "conditional", "disallow"];
/// The columns that hold dates: ISO 8601 (`2001`, `2001-02`, `2001-02-03`, or a date and
/// time), and for an end, `OPEN` — as Archivematica reads them.
const DATE_COLUMNS: &[&str] = &["determination_date", "start_date", "end_date", "grant_start_date", "grant_end_date"];
const END_COLUMNS: &[&str] = &["end_date", "grant_end_date"];

/// `file` values that name the whole transfer rather than one file.
pub const WHOLE_TRANSFER: &[&str] = &["objects", "objects/"];

/// The line (from 1) the byte at `offset` is on, whatever ends lines: `\r\n`, `\n` or `\r`
/// (the CSV reader's own count is one off for `\r\n`).
fn line_at(bytes: &[u8], offset: u64) -> u64 {
    let before = &bytes[..(offset as usize).min(bytes.len())];
    let mut lines = 1;
    let mut i = 0;
    while i < before.len() {
        match before[i] {
            b'\r' => {
                lines += 1;
                if before.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => lines += 1,
            _ => {}
        }
        i += 1;
    }
    lines
}

/// Whether an end date is open (`OPEN`, in any case).
pub fn is_open(value: &str) -> bool {
    value.eq_ignore_ascii_case("open")
}

/// Whether a value is a date as ISO 8601 writes one: a year, a year and month, a day, or a
/// day and a time.
fn is_iso_date(value: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let date_ok = match parts.as_slice() {
        [y] => digits(y, 4),
        [y, m] => digits(y, 4) && digits(m, 2) && (1..=12).contains(&m.parse::<u32>().unwrap_or(0)),
        [_, _, _] => chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && digits(parts[0], 4),
        _ => false,
    };
    date_ok
        && time.is_none_or(|_| {
            parts.len() == 3
                && chrono::DateTime::parse_from_rfc3339(value)
                    .map(|_| ())
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").map(|_| ()))
                    .is_ok()
        })
}

fn required_fields(basis: &str) -> &'static [&'static str] {
    match basis {
        "copyright" => &["status", "jurisdiction"],
        "statute" => &["citation", "jurisdiction"],
        _ => &[],
    }
}

fn one_of(value: &str, allowed: &[&str]) -> bool {
    allowed.iter().any(|a| a.eq_ignore_ascii_case(value))
}

/// One row of rights.csv, trimmed: column → value (empty values left out).
pub type RightsRow = BTreeMap<String, String>;

/// The rows of a rights.csv that intake accepted, by the file they are about.
pub fn rows_by_file(bytes: &[u8], kind: PackageKind) -> BTreeMap<String, Vec<RightsRow>> {
    let mut out: BTreeMap<String, Vec<RightsRow>> = BTreeMap::new();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let Ok(headers) = reader.headers().map(|h| h.iter().map(|s| s.trim().to_string()).collect::<Vec<_>>()) else {
        return out;
    };
    for record in reader.records().flatten() {
        let row: RightsRow = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.clone(), v.trim().to_string()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        if let Some(file) = row.get("file").map(|f| metadata_row_name(kind, f)) {
            out.entry(file).or_default().push(row);
        }
    }
    out
}

/// Every problem with rights.csv, each naming its line. `package_files` are the package's
/// file paths (`objects/...`).
pub fn check_rights_csv(bytes: &[u8], package_files: &BTreeSet<&str>, kind: PackageKind) -> Vec<String> {
    examine(bytes, package_files, kind).0
}

/// What the archivist is told of a rights.csv that is no problem: each date not written as
/// ISO 8601 (`31/12/2013`, as Archivematica's own sample has), kept as written — PREMIS
/// rights dates are text — but never silently.
pub fn rights_notes(bytes: &[u8], package_files: &BTreeSet<&str>, kind: PackageKind) -> Vec<String> {
    examine(bytes, package_files, kind).1
}

/// rights.csv's problems, and its notes.
fn examine(bytes: &[u8], package_files: &BTreeSet<&str>, kind: PackageKind) -> (Vec<String>, Vec<String>) {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return (
            vec!["metadata/rights.csv starts with a byte-order mark: save it as UTF-8 without a BOM".into()],
            vec![],
        );
    }
    if std::str::from_utf8(bytes).is_err() {
        return (vec!["metadata/rights.csv is not UTF-8 text: save it again as UTF-8 (without a BOM)".into()], vec![]);
    }
    let mut notes = Vec::new();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => return (vec![format!("metadata/rights.csv cannot be read as CSV: {e}")], notes),
    };
    if headers.iter().all(String::is_empty) {
        return (
            vec!["metadata/rights.csv is empty: it needs a header row and at least one row of rights".into()],
            notes,
        );
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for h in &headers {
        if !seen.insert(h.as_str()) {
            problems.push(format!("metadata/rights.csv has the column {h:?} twice"));
        }
    }
    let unknown: Vec<&str> = headers
        .iter()
        .map(String::as_str)
        .filter(|h| !REQUIRED_COLUMNS.contains(h) && !OPTIONAL_COLUMNS.contains(h))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "metadata/rights.csv has columns Vellum does not know: {}; the known columns are {}",
            unknown.join(", "),
            REQUIRED_COLUMNS.iter().chain(OPTIONAL_COLUMNS).copied().collect::<Vec<_>>().join(", ")
        ));
    }
    for col in REQUIRED_COLUMNS {
        if !headers.iter().any(|h| h == col) {
            problems.push(format!("metadata/rights.csv has no {col:?} column"));
        }
    }
    if !problems.is_empty() {
        return (problems, notes);
    }
    let mut rows = 0;
    let mut combinations = BTreeSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("metadata/rights.csv cannot be read as CSV: {e}"));
                break;
            }
        };
        let line = record.position().map_or(0, |p| line_at(bytes, p.byte()));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        rows += 1;
        if record.len() != headers.len() {
            problems.push(format!(
                "line {line} of metadata/rights.csv has {} values for {} columns: quote values that hold commas, and keep an empty value for each unused column",
                record.len(),
                headers.len()
            ));
            continue;
        }
        let row: BTreeMap<&str, &str> = headers.iter().map(String::as_str).zip(record.iter().map(str::trim)).collect();
        let get = |c: &str| row.get(c).copied().unwrap_or("");
        let file = metadata_row_name(kind, get("file"));
        let file = file.as_str();
        let basis = get("basis").to_ascii_lowercase();
        if file.is_empty() || basis.is_empty() {
            problems.push(format!("line {line} of metadata/rights.csv needs both a file and a basis"));
            continue;
        }
        if WHOLE_TRANSFER.contains(&file) {
            // Rights of the whole transfer: every file of objects/.
        } else if !file.starts_with("objects/") {
            problems.push(format!(
                "line {line} of metadata/rights.csv names the file {file:?}, which does not start with objects/"
            ));
        } else if !package_files.contains(file) {
            problems.push(format!(
                "line {line} of metadata/rights.csv names the file {file:?}, which is not in the package"
            ));
        }
        if !BASES.contains(&basis.as_str()) {
            problems.push(format!(
                "line {line} of metadata/rights.csv has the basis {:?}; it must be one of {}",
                get("basis"),
                BASES.join(", ")
            ));
            continue;
        }
        for field in required_fields(&basis) {
            if get(field).is_empty() {
                problems.push(format!("line {line} of metadata/rights.csv needs a {field} for the {basis} basis"));
            }
        }
        // A value the basis has no PREMIS place for (a statute's terms, say) is not refused:
        // Archivematica reads past it, and rights.csv itself is kept in the AIP.
        for column in DATE_COLUMNS {
            let value = get(column);
            if value.is_empty() || is_iso_date(value) || (END_COLUMNS.contains(column) && is_open(value)) {
                continue;
            }
            notes.push(format!(
                "line {line} of metadata/rights.csv, column {column}: {value:?} is not a date as ISO 8601 writes one (YYYY-MM-DD, YYYY-MM or YYYY{}); it is kept as written",
                if END_COLUMNS.contains(column) { ", or OPEN for an open end" } else { "" }
            ));
        }
        if get("doc_id_type").is_empty() != get("doc_id_value").is_empty()
            || (!get("doc_id_role").is_empty() && get("doc_id_type").is_empty())
        {
            problems
                .push(format!("line {line} of metadata/rights.csv must give doc_id_type and doc_id_value together"));
        }
        let grant_act = get("grant_act");
        let grant_detail = ["grant_restriction", "grant_start_date", "grant_end_date", "grant_note"]
            .iter()
            .any(|f| !get(f).is_empty());
        if grant_detail && grant_act.is_empty() {
            problems.push(format!("line {line} of metadata/rights.csv gives grant details without a grant_act"));
        }
        let restriction = get("grant_restriction");
        if (!get("grant_start_date").is_empty() || !get("grant_end_date").is_empty()) && restriction.is_empty() {
            problems.push(format!(
                "line {line} of metadata/rights.csv gives grant dates without a grant_restriction (allow, conditional or disallow)"
            ));
        }
        if !restriction.is_empty() && !one_of(restriction, GRANT_RESTRICTIONS) {
            problems.push(format!(
                "line {line} of metadata/rights.csv has the grant_restriction {restriction:?}; it must be allow, conditional or disallow"
            ));
        }
        if !combinations.insert((file.to_string(), basis.clone(), grant_act.to_ascii_lowercase())) {
            problems.push(format!(
                "line {line} of metadata/rights.csv repeats the file {file:?}, basis {basis} and grant_act {grant_act:?} of an earlier row: combine the two rows"
            ));
        }
    }
    if rows == 0 && problems.is_empty() {
        problems
            .push("metadata/rights.csv has a header but no rights: add at least one row, or leave the file out".into());
    }
    (problems, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn files() -> BTreeSet<&'static str> {
        BTreeSet::from(["objects/a.pdf", "objects/b.jpg"])
    }

    fn check(text: &str) -> Vec<String> {
        check_rights_csv(text.as_bytes(), &files(), PackageKind::Catalogued)
    }

    #[test]
    fn a_valid_rights_csv_passes() {
        let ok = "file,basis,status,jurisdiction,note,grant_act,grant_restriction,grant_start_date\n\
                  objects/a.pdf,copyright,copyrighted,GB,In copyright,disseminate,disallow,2020-01-01\n\
                  objects/b.jpg,license,,,CC-BY,,,\n";
        assert_eq!(check(ok), Vec::<String>::new());
    }

    /// Dates Archivematica's own sample writes (`31/12/2013`, `2000-09-00`) are kept as
    /// written, each said in a note; nothing else about them is refused.
    #[test]
    fn dates_not_in_iso_form_are_kept_and_said() {
        let cases = [
            (
                "file,basis,start_date\nobjects/a.pdf,donor,31/12/1948\n",
                "column start_date: \"31/12/1948\" is not a date as ISO 8601 writes one",
            ),
            ("file,basis,end_date\nobjects/a.pdf,donor,someday\n", "or OPEN for an open end"),
            ("file,basis,start_date\nobjects/a.pdf,donor,OPEN\n", "column start_date"),
            (
                "file,basis,grant_act,grant_restriction,grant_end_date\nobjects/a.pdf,donor,use,allow,2030-13-01\n",
                "grant_end_date",
            ),
        ];
        for (text, words) in cases {
            assert_eq!(check(text), Vec::<String>::new(), "{text:?} is no problem");
            let notes = rights_notes(text.as_bytes(), &files(), PackageKind::Catalogued);
            assert!(
                notes.len() == 1 && notes[0].contains(words) && notes[0].contains("kept as written"),
                "{text:?}: {notes:?}"
            );
        }
        assert!(rights_notes(
            b"file,basis,start_date\nobjects/a.pdf,donor,2020-02-29\n",
            &files(),
            PackageKind::Catalogued
        )
        .is_empty());
    }

    #[test]
    fn each_rule_names_its_line() {
        let cases = [
            ("file,basis\nobjects/zzz.pdf,donor\n", "not in the package"),
            ("file,basis\nobjects/a.pdf,gift\n", "must be one of copyright"),
            ("file,basis\nobjects/a.pdf,copyright\n", "needs a status"),
            ("file,basis,doc_id_type\nobjects/a.pdf,donor,agreement\n", "doc_id_type and doc_id_value together"),
            ("file,basis,grant_note\nobjects/a.pdf,donor,n\n", "without a grant_act"),
            (
                "file,basis,grant_act,grant_end_date\nobjects/a.pdf,donor,use,2030-01-01\n",
                "without a grant_restriction",
            ),
            (
                "file,basis,grant_act,grant_restriction\nobjects/a.pdf,donor,use,maybe\n",
                "allow, conditional or disallow",
            ),
            ("file,basis,grant_act\nobjects/a.pdf,donor,use\nobjects/a.pdf,DONOR, Use\n", "line 3"),
            ("file,basis,colour\nobjects/a.pdf,donor,red\n", "columns Vellum does not know: colour"),
            ("file,basis\n", "no rights"),
            ("file,basis\nobjects/a.pdf,donor,extra\n", "3 values for 2 columns"),
            ("\u{feff}file,basis\nobjects/a.pdf,donor\n", "byte-order mark"),
        ];
        for (text, words) in cases {
            let problems = check(text);
            assert!(problems.iter().any(|p| p.contains(words)), "{text:?}: {problems:?}");
        }
        assert!(check_rights_csv(b"file,basis\nobjects/caf\xe9,donor\n", &files(), PackageKind::Catalogued)[0]
            .contains("not UTF-8"));
    }

    /// Archivematica's own sample rights files (DemoTransfer, rightsTransferMixed, the Conan
    /// Doyle letters), their files renamed to this package's: free-text notes and statuses,
    /// a statute's terms, OPEN ends, rights of the whole transfer.
    #[test]
    fn archivematicas_sample_rights_pass() {
        let samples = [
            "file,basis,status,determination_date,jurisdiction,start_date,end_date,terms,citation,note,grant_act,grant_restriction,grant_start_date,grant_end_date,grant_note,doc_id_type,doc_id_value,doc_id_role\n\
             objects/a.pdf,copyright,copyright status,2001-01-01,Canada,2002-02-02,2003-03-03,,,Note 1,Act 1,Allow,2004-04-04,2005-05-05,Grant note 1,,,\n\
             objects/a.pdf,copyright,copyright status,,Canada,,,,,Note 2,Act 2,Disallow,,,Grant note 2,,,\n\
             objects/a.pdf,license,,,,1982-01-01,1983-02-02,License terms,,Note license,Act license,Allow,,,,,,\n\
             objects/a.pdf,statute,,1972-02-02,Canada,1966-01-01,open,Statute terms,Citation,Note statute,Act statute,Allow,,,,,,\n\
             objects/a.pdf,other,,,,1945-01-01,1950-05-05,,,Note other,Act other,Allow,1920-01-01,1921-01-01,Grant note other,,,\n\
             objects/b.jpg,donor,,,,,,,,,Act donor,,,,,,,\n\
             objects/b.jpg,policy,,,,,,,,,Act policy,,,,,,,\n",
            "file,basis,terms,grant_act,grant_restriction\n\
             objects/,license,Transfer license terms.,use,Allow\n\
             objects,license,Duplicate license terms.,use,Allow\n\
             objects/b.jpg,license,Additional file license terms.,use,Allow\n",
            "file,basis,status,determination_date,jurisdiction,start_date,end_date,terms,citation,note,grant_act,grant_restriction,grant_start_date,grant_end_date,grant_note,doc_id_type,doc_id_value,doc_id_role\n\
             objects,copyright,public domain,2001-01-01,Canada,1948-12-31,OPEN,,,Public domain as per the Copyright Act of Canada.,Disseminate,Allow,1948-12-31,OPEN,,,,\n",
        ];
        for sample in samples {
            assert_eq!(check(sample), Vec::<String>::new(), "{sample}");
        }
    }

    /// A CRLF file's problems and notes name the same lines as an LF file's.
    #[test]
    fn line_numbers_are_right_for_any_line_ending() {
        let lf = "file,basis,start_date\nobjects/a.pdf,gift,2001-01-01\nobjects/b.jpg,donor,01/01/2001\n";
        for text in [lf.to_string(), lf.replace('\n', "\r\n"), lf.replace('\n', "\r")] {
            let problems = check(&text);
            assert_eq!(problems.len(), 1, "{text:?}: {problems:?}");
            assert!(problems[0].starts_with("line 2 "), "{text:?}: {problems:?}");
            let notes = rights_notes(text.as_bytes(), &files(), PackageKind::Catalogued);
            assert_eq!(notes.len(), 1, "{text:?}: {notes:?}");
            assert!(notes[0].starts_with("line 3 "), "{text:?}: {notes:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = check_rights_csv(&bytes, &files(), PackageKind::Catalogued);
            let _ = crate::intake::metadata::parse_metadata_csv(&bytes, crate::config::profile::PackageKind::Catalogued);
        }

        #[test]
        fn never_panics_on_csv_shaped_text(text in "(file|basis|note|grant_act|objects/a.pdf|donor|copyright|,|\n|\"|x){0,60}") {
            let _ = check_rights_csv(text.as_bytes(), &files(), PackageKind::Catalogued);
            let _ = crate::intake::metadata::parse_metadata_csv(text.as_bytes(), crate::config::profile::PackageKind::Accession);
        }
    }
}
