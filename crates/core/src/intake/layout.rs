//! Where a transfer's files sit in its layout: Wellcome's packages (`objects/`,
//! `metadata/`, or a bag of those), Archivematica's standard transfers (files at the top)
//! and bags (the payload is the transfer). Intake places every entry by these rules; a
//! stage that meets a name the transfer gave (a checksum file's, a metadata row's) finds the
//! file by them again.

use crate::config::profile::PackageKind;

/// The name of the processing configuration Archivematica reads from a transfer's top.
pub const PROCESSING_MCP: &str = "processingMCP.xml";

/// Why a path cannot be extracted safely, if it cannot.
pub fn unsafe_path_reason(name: &str) -> Option<&'static str> {
    if name.contains('\0') {
        return Some("has a NUL character in its name");
    }
    if name.starts_with('/') {
        return Some("is an absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Some("starts with a drive letter");
    }
    if name.split('/').any(|p| p == "..") {
        return Some("has a \"..\" step that leads out of its folder");
    }
    None
}

/// Where a standard transfer's entry belongs, as Archivematica arranges one: `objects/`,
/// `metadata/`, `logs/`, `submissionDocumentation/` and `processingMCP.xml` keep their
/// place (submission documentation may sit in `metadata/`); anything else at the top is
/// the transfer's content and goes under `objects/`. An unsafe name keeps its name, so
/// intake refuses it as it is.
pub fn standard_place(name: &str) -> Option<String> {
    if unsafe_path_reason(name).is_some() || name == PROCESSING_MCP {
        return None;
    }
    if let Some(inner) = name
        .strip_prefix("metadata/")
        .filter(|r| *r == "submissionDocumentation" || r.starts_with("submissionDocumentation/"))
    {
        return Some(inner.to_string());
    }
    match name.split('/').next() {
        Some("objects" | "metadata" | "logs" | "submissionDocumentation") => None,
        _ => Some(format!("objects/{name}")),
    }
}

/// Where a file named `upload_name` in the upload sits in the transfer's layout, before its
/// names are sanitized: what a checksum file or metadata.csv of the transfer calls it
/// (`objects/<path>`). A bag's payload is named as its manifests name it with `bag_payload`.
pub fn layout_name(kind: PackageKind, wrapper: Option<&str>, upload_name: &str, bag_payload: bool) -> String {
    let name = match wrapper {
        Some(folder) => upload_name.strip_prefix(folder).and_then(|r| r.strip_prefix('/')).unwrap_or(upload_name),
        None => upload_name,
    };
    let in_payload = name.strip_prefix("data/");
    match (kind, in_payload) {
        _ if bag_payload => name.to_string(),
        (PackageKind::Standard, _) => standard_place(name).unwrap_or_else(|| name.to_string()),
        (PackageKind::Bag, Some(inner)) => standard_place(inner).unwrap_or_else(|| inner.to_string()),
        (PackageKind::Catalogued | PackageKind::Accession, Some(inner)) => inner.to_string(),
        _ => name.to_string(),
    }
}

/// A metadata row's filename (metadata.csv, rights.csv) as the transfer's layout names it: a
/// bag's rows may name the payload as the bag does (`data/<path>`), which is
/// `objects/<path>` once the payload is the transfer.
pub fn metadata_row_name(kind: PackageKind, filename: &str) -> String {
    match filename.strip_prefix("data/").or((filename == "data").then_some("")) {
        Some(rest) if kind == PackageKind::Bag => format!("objects/{rest}"),
        _ => filename.to_string(),
    }
}
