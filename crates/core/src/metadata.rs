//! metadata.csv: the one-row description of a package that names its catalogue record.

use std::collections::BTreeMap;

use crate::model::Identifiers;
use crate::profile::PackageKind;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads metadata.csv, returning its identifiers or every problem found, each in words an
/// archivist can act on.
pub fn parse_metadata_csv(bytes: &[u8], kind: PackageKind) -> Result<Identifiers, Vec<String>> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    if std::str::from_utf8(bytes).is_err() {
        return Err(vec!["metadata/metadata.csv is not UTF-8 text (it was probably saved as Latin-1 or \
             Windows-1252): open it and save it again as \"CSV UTF-8\""
            .to_string()]);
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(bytes);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => return Err(vec![format!("metadata/metadata.csv cannot be read as CSV: {e}")]),
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(r) if r.iter().all(|f| f.trim().is_empty()) => continue,
            Ok(r) => rows.push(r),
            Err(e) => return Err(vec![format!("metadata/metadata.csv cannot be read as CSV: {e}")]),
        }
    }
    let mut problems = Vec::new();
    if rows.len() != 1 {
        problems.push(format!(
            "metadata/metadata.csv must have exactly one data row (describing objects/), but it has {}",
            rows.len()
        ));
        return Err(problems);
    }
    let row: BTreeMap<&str, &str> = headers.iter().map(String::as_str).zip(rows[0].iter().map(str::trim)).collect();
    match row.get("filename") {
        None => problems.push("metadata/metadata.csv has no \"filename\" column".to_string()),
        Some(&"objects/") => {}
        Some(other) => {
            problems.push(format!("in metadata/metadata.csv the filename must be \"objects/\", not {other:?}"))
        }
    }
    let non_empty = |col: &str| row.get(col).filter(|v| !v.is_empty()).map(|v| v.to_string());
    let ids = Identifiers {
        catalogue_identifier: non_empty("dc.identifier"),
        collection_reference: non_empty("collection_reference"),
        accession_number: non_empty("accession_number"),
        dublin_core: row
            .iter()
            .filter_map(|(k, v)| {
                let term = k.strip_prefix("dc.")?;
                (!v.is_empty()).then(|| (term.to_string(), v.to_string()))
            })
            .collect(),
    };
    match kind {
        PackageKind::Catalogued if ids.catalogue_identifier.is_none() => problems
            .push("metadata/metadata.csv needs a non-empty \"dc.identifier\" (the catalogue reference)".to_string()),
        PackageKind::Accession => {
            for col in ["collection_reference", "accession_number"] {
                if non_empty(col).is_none() {
                    problems.push(format!("metadata/metadata.csv needs a non-empty {col:?} for an accession"));
                }
            }
        }
        _ => {}
    }
    if problems.is_empty() {
        Ok(ids)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_identifier_and_dublin_core_through_a_bom() {
        let csv = b"\xEF\xBB\xBFfilename,dc.identifier,dc.title\nobjects/,PP/ABC/1,Letters\n";
        let ids = parse_metadata_csv(csv, PackageKind::Catalogued).unwrap();
        assert_eq!(ids.catalogue_identifier.as_deref(), Some("PP/ABC/1"));
        assert_eq!(ids.dublin_core.get("title").map(String::as_str), Some("Letters"));
    }

    #[test]
    fn names_each_problem() {
        let e = parse_metadata_csv(b"filename,dc.identifier\nfoo/,\n", PackageKind::Catalogued).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("must be \"objects/\""));
        assert!(e[1].contains("dc.identifier"));
        let e = parse_metadata_csv(b"filename\nobjects/\nobjects/\n", PackageKind::Catalogued).unwrap_err();
        assert!(e[0].contains("exactly one data row"), "{e:?}");
        let e = parse_metadata_csv(b"filename,dc.identifier\nobjects/,caf\xe9\n", PackageKind::Catalogued).unwrap_err();
        assert!(e[0].contains("not UTF-8"));
        let e = parse_metadata_csv(b"filename,accession_number\nobjects/,12\n", PackageKind::Accession).unwrap_err();
        assert!(e[0].contains("collection_reference"), "{e:?}");
    }
}
