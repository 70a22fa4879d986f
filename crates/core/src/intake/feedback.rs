//! What an archivist sees beside their upload: a log object per outcome, in words they can
//! act on, and tags on the upload once it is accepted. The upload itself is never changed.

use std::collections::BTreeMap;

use crate::model::Transfer;
use crate::ports::{ObjectStore, PortResult};
use crate::record::keys::log_key;
pub use crate::record::keys::LogOutcome;

/// A name or value as it may stand in a log line: control characters (a newline in a file
/// name would start a forged line) are written as escapes, `\n`, `\r`, `\t` or `\u{…}`, and
/// a backslash as `\\` so that an escape can be told from a name that spells one.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Writes a log beside the upload. Each line of `text` is one line of the log: whatever
/// names it quotes were escaped with `escape_controls` by whoever wrote it.
pub fn write_log(uploads: &dyn ObjectStore, transfer: &Transfer, outcome: LogOutcome, text: &str) -> PortResult<()> {
    uploads.put(&log_key(transfer, outcome), text.as_bytes()).map(|_| ())
}

/// S3 allows letters, digits, spaces and `+ - = . _ : / @` in tag values, up to 256.
fn tag_value(v: &str) -> String {
    v.chars().map(|c| if c.is_alphanumeric() || " +-=._:/@".contains(c) { c } else { '_' }).take(256).collect()
}

/// Tags the accepted upload with what it became.
pub fn tag_upload(uploads: &dyn ObjectStore, transfer: &Transfer) -> PortResult<()> {
    let mut tags = BTreeMap::from([
        ("TransferId".to_string(), transfer.id.to_string()),
        ("ProcessingConfig".to_string(), tag_value(&transfer.profile)),
        ("S3EventTime".to_string(), tag_value(&transfer.source_event_time)),
    ]);
    let ids = &transfer.identifiers;
    if let Some(c) = &ids.catalogue_identifier {
        tags.insert("CatalogueIdentifier".into(), tag_value(c));
    }
    if let Some(a) = &ids.accession_number {
        tags.insert("AccessionNumber".into(), tag_value(a));
    }
    uploads.put_tags(&transfer.source_key, &tags)
}

/// The final answer for a stored transfer: where its AIP is, under which identifier and
/// version, and that it was read back and verified.
pub fn stored_log(
    transfer: &Transfer,
    aip_key: &str,
    space: &str,
    identifier: &str,
    version: u32,
    files: u64,
) -> String {
    format!(
        "Vellum stored {key}.\nIts AIP is in the {space} space under identifier {identifier}, version {version}: {aip}.\n{files} payload file(s) were read back from storage and every digest matched.\n{scanned}{validated}Transfer {id}, AIP {aip_uuid}.\n",
        scanned = not_scanned_line(transfer),
        validated = validation_line(transfer),
        key = escape_controls(&transfer.source_key),
        space = escape_controls(space),
        identifier = escape_controls(identifier),
        aip = escape_controls(aip_key),
        id = transfer.id,
        aip_uuid = transfer.aip_uuid,
    )
}

/// What the success log, the final line and the reports say of files not scanned for viruses.
pub fn not_scanned_line(transfer: &Transfer) -> String {
    match transfer.files_not_scanned {
        Some(0) | None => String::new(),
        Some(n) => format!(
            "{n} file(s) were NOT scanned for viruses (over the virus scanner's size limit, or scanning is off): \
             their PREMIS virus check says \"Not performed\" and virusScan.log in the AIP names them.\n"
        ),
    }
}

/// What the success log says of the files' validation statements.
pub fn validation_line(transfer: &Transfer) -> String {
    match transfer.validation {
        None => String::new(),
        Some(v) => format!(
            "Validation: {} file(s) passed, {} failed, {} not performed (nothing validates their format; each file's PREMIS validation event says which).\n",
            v.passed, v.failed, v.not_performed
        ),
    }
}

/// The log for a transfer that failed after intake.
pub fn processing_failure_log(transfer: &Transfer, reason: &str) -> String {
    format!(
        "Vellum accepted {key}, but could not finish processing it.\nTransfer {id} failed at \"{step}\": {reason}.\nNothing was stored, and the upload was not changed. When the cause is fixed, upload the package again.\n",
        key = escape_controls(&transfer.source_key),
        reason = escape_controls(reason),
        id = transfer.id,
        step = transfer.current_microservice.as_deref().unwrap_or("processing"),
    )
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_cannot_start_a_line() {
        assert_eq!(escape_controls("a\nb\rc\td\u{7}"), "a\\nb\\rc\\td\\u{7}");
        assert_eq!(escape_controls("plain é"), "plain é");
        assert_eq!(escape_controls("x\\ny"), "x\\\\ny", "a spelled-out escape stays distinct");
        assert!(!escape_controls("forged\n2026 ok -> x").contains('\n'));
    }
}
