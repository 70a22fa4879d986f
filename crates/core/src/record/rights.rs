//! rights.csv: PREMIS rights for files of the package, one row per (file, basis, act).
//! Checked at intake so nothing an archivist wrote is refused later or silently dropped.

use std::collections::{BTreeMap, BTreeSet};

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
pub const COPYRIGHT_NOTES: &[&str] = &["In copyright", "All Rights Reserved"];
pub const LICENSE_NOTES: &[&str] =
    &["CC-0", "CC-BY", "CC-BY-NC", "CC-BY-NC-ND", "CC-BY-SA", "CC-BY-NC-SA", "OGL", "OPL", "PDM"];

/// The basis fields a row may carry for each basis; the others would be dropped on import.
fn basis_fields(basis: &str) -> &'static [&'static str] {
    match basis {
        "copyright" => &["status", "determination_date", "start_date", "end_date", "jurisdiction", "note"],
        "license" => &["start_date", "end_date", "terms", "note"],
        "statute" => &["determination_date", "start_date", "end_date", "jurisdiction", "citation", "note"],
        _ => &["start_date", "end_date", "note"],
    }
}

fn required_fields(basis: &str) -> &'static [&'static str] {
    match basis {
        "copyright" => &["status", "jurisdiction"],
        "statute" => &["citation", "jurisdiction"],
        _ => &[],
    }
}

const ALL_BASIS_FIELDS: &[&str] =
    &["status", "determination_date", "start_date", "end_date", "jurisdiction", "terms", "citation", "note"];

fn one_of(value: &str, allowed: &[&str]) -> bool {
    allowed.iter().any(|a| a.eq_ignore_ascii_case(value))
}

/// One row of rights.csv, trimmed: column → value (empty values left out).
pub type RightsRow = BTreeMap<String, String>;

/// The rows of a rights.csv that intake accepted, by the file they are about.
pub fn rows_by_file(bytes: &[u8]) -> BTreeMap<String, Vec<RightsRow>> {
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
        if let Some(file) = row.get("file").cloned() {
            out.entry(file).or_default().push(row);
        }
    }
    out
}

/// Every problem with rights.csv, each naming its line. `package_files` are the package's
/// file paths (`objects/...`).
pub fn check_rights_csv(bytes: &[u8], package_files: &BTreeSet<&str>) -> Vec<String> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return vec!["metadata/rights.csv starts with a byte-order mark: save it as UTF-8 without a BOM".into()];
    }
    if std::str::from_utf8(bytes).is_err() {
        return vec!["metadata/rights.csv is not UTF-8 text: save it again as UTF-8 (without a BOM)".into()];
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => return vec![format!("metadata/rights.csv cannot be read as CSV: {e}")],
    };
    if headers.iter().all(String::is_empty) {
        return vec!["metadata/rights.csv is empty: it needs a header row and at least one row of rights".into()];
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
        return problems;
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
        let line = record.position().map_or(0, |p| p.line());
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
        let file = get("file");
        let basis = get("basis").to_ascii_lowercase();
        if file.is_empty() || basis.is_empty() {
            problems.push(format!("line {line} of metadata/rights.csv needs both a file and a basis"));
            continue;
        }
        if !file.starts_with("objects/") {
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
        let dropped: Vec<&str> = ALL_BASIS_FIELDS
            .iter()
            .copied()
            .filter(|f| !basis_fields(&basis).contains(f) && !get(f).is_empty())
            .collect();
        if !dropped.is_empty() {
            problems.push(format!(
                "line {line} of metadata/rights.csv fills {} which the {basis} basis does not have (they would be lost): leave them empty",
                dropped.join(", ")
            ));
        }
        let note = get("note");
        if basis == "copyright" && !note.is_empty() && !one_of(note, COPYRIGHT_NOTES) {
            problems.push(format!(
                "line {line} of metadata/rights.csv has the copyright note {note:?}; it must be \"In copyright\" or \"All Rights Reserved\""
            ));
        }
        if basis == "license" && !note.is_empty() && !one_of(note, LICENSE_NOTES) {
            problems.push(format!(
                "line {line} of metadata/rights.csv has the license note {note:?}; it must be one of {}",
                LICENSE_NOTES.join(", ")
            ));
        }
        if basis == "copyright" && get("end_date").eq_ignore_ascii_case("open") {
            problems.push(format!(
                "line {line} of metadata/rights.csv gives a copyright end_date of \"open\": leave it empty for no end date"
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
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn files() -> BTreeSet<&'static str> {
        BTreeSet::from(["objects/a.pdf", "objects/b.jpg"])
    }

    fn check(text: &str) -> Vec<String> {
        check_rights_csv(text.as_bytes(), &files())
    }

    #[test]
    fn a_valid_rights_csv_passes() {
        let ok = "file,basis,status,jurisdiction,note,grant_act,grant_restriction,grant_start_date\n\
                  objects/a.pdf,copyright,copyrighted,GB,In copyright,disseminate,disallow,2020-01-01\n\
                  objects/b.jpg,license,,,CC-BY,,,\n";
        assert_eq!(check(ok), Vec::<String>::new());
    }

    #[test]
    fn each_rule_names_its_line() {
        let cases = [
            ("file,basis\nobjects/zzz.pdf,donor\n", "not in the package"),
            ("file,basis\nobjects/a.pdf,gift\n", "must be one of copyright"),
            ("file,basis\nobjects/a.pdf,copyright\n", "needs a status"),
            ("file,basis,status,jurisdiction,note\nobjects/a.pdf,copyright,c,GB,Mine\n", "copyright note"),
            ("file,basis,note\nobjects/a.pdf,license,CC-BY-4\n", "license note"),
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
            ("file,basis,jurisdiction\nobjects/a.pdf,donor,GB\n", "would be lost"),
            ("file,basis\nobjects/a.pdf,donor,extra\n", "3 values for 2 columns"),
            ("\u{feff}file,basis\nobjects/a.pdf,donor\n", "byte-order mark"),
        ];
        for (text, words) in cases {
            let problems = check(text);
            assert!(problems.iter().any(|p| p.contains(words)), "{text:?}: {problems:?}");
        }
        assert!(check_rights_csv(b"file,basis\nobjects/caf\xe9,donor\n", &files())[0].contains("not UTF-8"));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = check_rights_csv(&bytes, &files());
            let _ = crate::intake::metadata::parse_metadata_csv(&bytes, crate::config::profile::PackageKind::Catalogued);
        }

        #[test]
        fn never_panics_on_csv_shaped_text(text in "(file|basis|note|grant_act|objects/a.pdf|donor|copyright|,|\n|\"|x){0,60}") {
            let _ = check_rights_csv(text.as_bytes(), &files());
            let _ = crate::intake::metadata::parse_metadata_csv(text.as_bytes(), crate::config::profile::PackageKind::Accession);
        }
    }
}
