//! metadata.csv: the one-row description of a package that names its catalogue record.

use std::collections::BTreeMap;

use crate::config::profile::PackageKind;
use crate::intake::layout::metadata_row_name;
use crate::model::CatalogueIdentifiers;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The fifteen Dublin Core elements (`dc.<element>`); other `dc.*` columns are DCMI terms.
pub const DC_ELEMENTS: &[&str] = &[
    "title",
    "creator",
    "subject",
    "description",
    "publisher",
    "contributor",
    "date",
    "type",
    "format",
    "identifier",
    "source",
    "language",
    "relation",
    "coverage",
    "rights",
];

/// A column name as Vellum knows it, whatever case a spreadsheet gave it: the known
/// columns and the `dc.` prefix in lower case, a DCMI term (`dc.isPartOf`) otherwise as
/// written.
fn column_name(header: &str) -> String {
    let header = header.trim();
    let lower = header.to_ascii_lowercase();
    if let Some(term) = lower.strip_prefix("dc.") {
        if DC_ELEMENTS.contains(&term) {
            return lower;
        }
        return format!("dc.{}", &header[3..]);
    }
    if ["filename", "collection_reference", "accession_number"].contains(&lower.as_str()) {
        return lower;
    }
    header.to_string()
}

/// Why metadata.csv's bytes cannot be read as text without guessing, with how to save it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum UnreadableText {
    #[error(
        "metadata/metadata.csv is not UTF-8 text (it was probably saved as Latin-1 or Windows-1252): open it and \
         save it again as \"CSV UTF-8\""
    )]
    NotUtf8,
    #[error(
        "metadata/metadata.csv looks like UTF-16 text without a byte-order mark, which cannot be read without \
         guessing: save it again as \"CSV UTF-8\""
    )]
    Utf16WithoutMark,
    #[error("metadata/metadata.csv says it is UTF-16 but has an odd number of bytes: save it again as \"CSV UTF-8\"")]
    OddUtf16,
    #[error("metadata/metadata.csv is damaged UTF-16 text: save it again as \"CSV UTF-8\"")]
    DamagedUtf16,
    #[error("metadata/metadata.csv's first line {0:?} declares a separator Vellum cannot use")]
    Separator(String),
    #[error(
        "metadata/metadata.csv is separated by semicolons, not commas (as a spreadsheet set to a European locale \
         saves it): save it as \"CSV UTF-8 (comma delimited)\", or make its first line sep=;"
    )]
    Semicolons,
}

/// metadata.csv as spreadsheets save it, made plain: its text (UTF-8, or UTF-16 with a
/// byte-order mark, as Excel's "Unicode Text" is) and its separator (a comma; the one an
/// Excel `sep=` first line declares; a tab when the header has tabs and no comma).
/// Anything that cannot be read without doubt is refused with its real cause.
fn decode(bytes: &[u8]) -> Result<(String, u8), UnreadableText> {
    let text = if let Some(rest) = bytes.strip_prefix(BOM) {
        std::str::from_utf8(rest).map(str::to_string).map_err(|_| UnreadableText::NotUtf8)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        utf16(rest, u16::from_le_bytes)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        utf16(rest, u16::from_be_bytes)?
    } else {
        match std::str::from_utf8(bytes) {
            Ok(t) if !t.contains('\0') => t.to_string(),
            _ if bytes.len() >= 4 && (bytes[1] == 0 || bytes[0] == 0) => return Err(UnreadableText::Utf16WithoutMark),
            _ => return Err(UnreadableText::NotUtf8),
        }
    };
    let first = text.lines().next().unwrap_or("");
    if let Some(sep) = first.trim().strip_prefix("sep=").or_else(|| first.trim().strip_prefix("SEP=")) {
        let rest = text[first.len()..].trim_start_matches(['\r', '\n']).to_string();
        return match sep.as_bytes() {
            [b] => Ok((rest, *b)),
            _ => Err(UnreadableText::Separator(first.to_string())),
        };
    }
    if first.contains(',') {
        Ok((text, b','))
    } else if first.contains('\t') {
        Ok((text, b'\t'))
    } else if first.contains(';') {
        Err(UnreadableText::Semicolons)
    } else {
        Ok((text, b','))
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, UnreadableText> {
    if !bytes.len().is_multiple_of(2) {
        return Err(UnreadableText::OddUtf16);
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|_| UnreadableText::DamagedUtf16)
}

/// Reads metadata.csv, returning its identifiers or every problem found, each in words an
/// archivist can act on. Column names are matched without regard to case (Excel
/// capitalises `Filename`).
/// The columns Vellum reads: the filename, the accession's two, and Dublin Core's fifteen.
const KNOWN_COLUMNS: &[&str] = &[
    "filename",
    "collection_reference",
    "accession_number",
    "dc.title",
    "dc.creator",
    "dc.subject",
    "dc.description",
    "dc.publisher",
    "dc.contributor",
    "dc.date",
    "dc.type",
    "dc.format",
    "dc.identifier",
    "dc.source",
    "dc.language",
    "dc.relation",
    "dc.coverage",
    "dc.rights",
];

/// Edits (insert, delete, replace) from `a` to `b`.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Columns that are almost a known one (a typing slip): each named, with what was meant.
fn near_misses(headers: &[String]) -> Vec<String> {
    headers
        .iter()
        .filter(|h| !KNOWN_COLUMNS.contains(&h.as_str()) && h.len() > 3)
        .filter_map(|h| {
            let (known, d) = KNOWN_COLUMNS.iter().map(|k| (*k, edits(h, k))).min_by_key(|(_, d)| *d)?;
            (d <= 2).then(|| {
                format!("metadata/metadata.csv has a column {h:?} that Vellum does not know — did you mean {known:?}?")
            })
        })
        .collect()
}

/// The row that describes the package: `objects/` (or `objects`).
fn is_transfer_row(filename: &str) -> bool {
    filename == "objects/" || filename == "objects"
}

/// A row that describes one file or one folder: `objects/<path>` (a folder's with or
/// without its trailing `/`).
fn is_file_row(filename: &str) -> bool {
    filename.trim_end_matches('/').len() > "objects/".len() && filename.starts_with("objects/")
}

/// The rows of metadata.csv that describe one file or folder each: its `objects/<path>`
/// (without a trailing `/`) and its Dublin Core (the `dc.*` columns it fills, by term). Empty where the file cannot be read
/// (intake has refused it then).
pub fn file_rows(bytes: &[u8], kind: PackageKind) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Ok((text, delimiter)) = decode(bytes) else { return out };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(false).delimiter(delimiter).from_reader(text.as_bytes());
    let Ok(headers) = reader.headers().map(|h| h.iter().map(column_name).collect::<Vec<_>>()) else { return out };
    for record in reader.records().flatten() {
        let row: BTreeMap<&str, &str> = headers.iter().map(String::as_str).zip(record.iter().map(str::trim)).collect();
        let Some(name) = row.get("filename").map(|n| metadata_row_name(kind, n)).filter(|n| is_file_row(n)) else {
            continue;
        };
        let name = name.trim_end_matches('/');
        let dc: BTreeMap<String, String> = row
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("dc.")?.to_string(), v.to_string())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        out.insert(name.to_string(), dc);
    }
    out
}

/// Archivematica's `metadata/metadata.json`, the JSON twin of metadata.csv: an array of
/// objects, each with its `filename` (`objects/` or `objects/<path>`) and `dc.*` fields
/// (a string, or a list of strings, joined by "; "). Rows by filename, Dublin Core by term.
pub fn json_rows(bytes: &[u8], kind: PackageKind) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(bytes)
        .map_err(|e| format!("metadata/metadata.json is not an array of objects ({e})"))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let Some(name) = row.get("filename").and_then(|v| v.as_str()).map(|n| metadata_row_name(kind, n.trim())) else {
            continue;
        };
        let name = name.as_str();
        let name = if is_transfer_row(name) { "objects/".to_string() } else { name.trim_end_matches('/').to_string() };
        let dc: BTreeMap<String, String> = row
            .iter()
            .filter_map(|(k, v)| {
                let term = column_name(k).strip_prefix("dc.")?.to_string();
                let value = match v {
                    serde_json::Value::String(s) => s.trim().to_string(),
                    serde_json::Value::Array(items) => {
                        items.iter().filter_map(|i| i.as_str()).map(str::trim).collect::<Vec<_>>().join("; ")
                    }
                    _ => return None,
                };
                (!value.is_empty()).then_some((term, value))
            })
            .collect();
        out.insert(name, dc);
    }
    Ok(out)
}

pub fn parse_metadata_csv(bytes: &[u8], kind: PackageKind) -> Result<CatalogueIdentifiers, Vec<String>> {
    let (text, delimiter) = decode(bytes).map_err(|e| vec![e.to_string()])?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(false).delimiter(delimiter).from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(column_name).collect(),
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
    let mut problems = near_misses(&headers);
    let Some(column) = headers.iter().position(|h| h == "filename") else {
        problems.push("metadata/metadata.csv has no \"filename\" column".to_string());
        return Err(problems);
    };
    // One row describes objects/ (the package); others may describe one file each
    // (`objects/<path>`), as Archivematica reads them.
    let filename = |r: &csv::StringRecord| metadata_row_name(kind, r.get(column).unwrap_or_default().trim());
    for r in &rows {
        let name = filename(r);
        if !is_transfer_row(&name) && !is_file_row(&name) {
            problems.push(format!(
                "in metadata/metadata.csv the filename must be \"objects/\" or a file's or folder's objects/<path>, not {name:?}"
            ));
        }
    }
    let transfer_rows: Vec<&csv::StringRecord> = rows.iter().filter(|r| is_transfer_row(&filename(r))).collect();
    if transfer_rows.is_empty() && kind.is_archivematica_transfer() {
        // Archivematica reads a metadata.csv of file rows alone: the transfer has no own row.
        return if problems.is_empty() { Ok(CatalogueIdentifiers::default()) } else { Err(problems) };
    }
    if transfer_rows.len() != 1 {
        problems.push(format!(
            "metadata/metadata.csv must have exactly one row describing objects/ (the filename \"objects/\"), but it has {}",
            transfer_rows.len()
        ));
        return Err(problems);
    }
    let row: BTreeMap<&str, &str> =
        headers.iter().map(String::as_str).zip(transfer_rows[0].iter().map(str::trim)).collect();
    let non_empty = |col: &str| row.get(col).filter(|v| !v.is_empty()).map(|v| v.to_string());
    // A standard transfer or a bag is filed under its name: its dc.identifier is Dublin Core.
    let files_by_identifier = !kind.is_archivematica_transfer();
    let ids = CatalogueIdentifiers {
        catalogue_identifier: non_empty("dc.identifier").filter(|_| files_by_identifier),
        collection_reference: non_empty("collection_reference").filter(|_| files_by_identifier),
        accession_number: non_empty("accession_number").filter(|_| files_by_identifier),
        dublin_core: row
            .iter()
            .filter_map(|(k, v)| {
                let term = k.strip_prefix("dc.")?;
                (!v.is_empty()).then(|| (term.to_string(), v.to_string()))
            })
            .collect(),
        ..Default::default()
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
mod near_miss_tests {
    use super::*;

    #[test]
    fn slips_are_named_with_what_was_meant() {
        assert_eq!(edits("dc.identifer", "dc.identifier"), 1);
        let found = near_misses(&["filename".into(), "dc.identifer".into(), "dc.title".into(), "shelfmark".into()]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("\"dc.identifer\"") && found[0].contains("did you mean \"dc.identifier\"?"));
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
        assert!(e[0].contains("must be \"objects/\" or a file's or folder's objects/<path>"));
        assert!(e[1].contains("exactly one row describing objects/"));
        let e = parse_metadata_csv(b"filename\nobjects/\nobjects/\n", PackageKind::Catalogued).unwrap_err();
        assert!(e[0].contains("exactly one row describing objects/"), "{e:?}");
        let e = parse_metadata_csv(b"filename,dc.identifier\nobjects/,\n", PackageKind::Catalogued).unwrap_err();
        assert!(e[0].contains("dc.identifier"), "{e:?}");
        let e = parse_metadata_csv(b"filename,dc.identifier\nobjects/,caf\xe9\n", PackageKind::Catalogued).unwrap_err();
        assert!(e[0].contains("not UTF-8"));
        let e = parse_metadata_csv(b"filename,accession_number\nobjects/,12\n", PackageKind::Accession).unwrap_err();
        assert!(e[0].contains("collection_reference"), "{e:?}");
    }

    /// Archivematica's metadata.csv: the package's row and a row for each file described.
    #[test]
    fn rows_for_files_beside_the_packages() {
        let csv = b"filename,dc.identifier,dc.title,dc.creator\n\
                    objects/,PP/F/1,Papers,\n\
                    objects/letters/a.txt,,A letter,A. Writer\n";
        let ids = parse_metadata_csv(csv, PackageKind::Catalogued).unwrap();
        assert_eq!(ids.dublin_core.get("title").map(String::as_str), Some("Papers"));
        let files = file_rows(csv, PackageKind::Catalogued);
        assert_eq!(files.len(), 1);
        let a = &files["objects/letters/a.txt"];
        assert_eq!(a.get("title").map(String::as_str), Some("A letter"));
        assert_eq!(a.get("creator").map(String::as_str), Some("A. Writer"));
        assert!(!a.contains_key("identifier"), "empty values are left out");
    }

    #[test]
    fn metadata_json_rows_as_archivematica_writes_them() {
        let json = br#"[{"filename": "objects", "dc.title": "Papers", "dc.subject": ["Letters", "Maps"]},
                        {"filename": "objects/a.txt", "dc.title": "A", "dc.description": ""},
                        {"dc.title": "no filename"}]"#;
        let rows = json_rows(json, PackageKind::Standard).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows["objects/"]["subject"], "Letters; Maps");
        assert_eq!(rows["objects/a.txt"].len(), 1, "empty values are left out");
        assert!(json_rows(b"{}", PackageKind::Standard).unwrap_err().contains("not an array"));
    }

    #[test]
    fn reads_what_spreadsheets_save() {
        let id = |b: &[u8]| parse_metadata_csv(b, PackageKind::Catalogued).map(|i| i.catalogue_identifier.unwrap());
        assert_eq!(id(b"Filename,DC.Identifier,DC.Title\nobjects/,PP/X/1,T\n").unwrap(), "PP/X/1");
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "filename\tdc.identifier\r\nobjects/\tPP/U/1\r\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(id(&utf16).unwrap(), "PP/U/1", "Excel's Unicode Text: UTF-16LE, tab-separated");
        assert_eq!(id(b"sep=;\r\nfilename;dc.identifier\r\nobjects/;PP/S/1\r\n").unwrap(), "PP/S/1");
        let e = id(b"filename;dc.identifier\nobjects/;PP/S/1\n").unwrap_err();
        assert!(e[0].contains("semicolons"), "{e:?}");
        let e = id(&utf16[2..]).unwrap_err();
        assert!(e[0].contains("UTF-16"), "{e:?}");
    }
}
