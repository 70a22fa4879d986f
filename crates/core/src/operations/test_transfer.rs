//! The end-to-end test transfer: a small package of real formats (a PNG, a PDF in a nested
//! folder, a text file whose name is sanitized, nothing infected) with an identifier
//! starting `archivematica-dev/TEST`, so that its AIP goes to the testing space and never
//! beside real ones; and the checks of its outcome, made from outside the pipeline (the
//! records, and the stored AIP read back). `vellum e2e` and the start-test-transfer
//! function run it.

use std::io::Write;

use crate::model::{EventOutcome, Timestamp, Transfer, TransferStatus};
use crate::operations::storage::{self, Check};
use crate::ports::{ObjectStore, PortResult, StateStore};

/// The test transfer's identifier and upload key, from the time it starts.
pub fn names(now: Timestamp) -> (String, String) {
    let stamp = now.format("%Y%m%dT%H%M%S%3f");
    (format!("archivematica-dev/TEST-{stamp}"), format!("born-digital/vellum-e2e-{stamp}.zip"))
}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const PDF: &str =
    "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n\
trailer << /Root 1 0 R >>\n%%EOF\n";

/// The test package, as zip bytes.
pub fn package(identifier: &str) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let metadata = format!("filename,dc.identifier,dc.title\nobjects/,{identifier},Vellum end-to-end test\n");
    let files: [(&str, &[u8]); 4] = [
        ("metadata/metadata.csv", metadata.as_bytes()),
        ("objects/images/plan.png", PNG),
        ("objects/letters/1901/letter.pdf", PDF.as_bytes()),
        ("objects/notes: draft?.txt", b"A note whose name needs sanitizing.\n"),
    ];
    for (name, bytes) in files {
        zip.start_file(name, options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check { check: name.into(), passed, detail: detail.into() }
}

/// Every check of the outcome, from the records and the stored AIP.
pub fn judge(t: &Transfer, state: &dyn StateStore, aips: &dyn ObjectStore) -> PortResult<Vec<Check>> {
    let mut checks = vec![check(
        "the transfer is COMPLETE",
        t.status == TransferStatus::Complete,
        match &t.failure_reason {
            Some(r) => format!("{}: {r}", t.status.as_str()),
            None => t.status.as_str().to_string(),
        },
    )];
    let Some(aip_key) = &t.aip_key else {
        checks.push(check("the AIP is stored", false, "no AIP was stored"));
        return Ok(checks);
    };
    checks.push(check("the AIP is in the testing space", aip_key.starts_with("testing/"), aip_key.clone()));
    let files = state.all_files(t.id)?;
    let events = state.all_events(t.id)?;
    // The package's own files: not the copies and the text normalization made of them.
    let originals: Vec<_> = files
        .iter()
        .filter(|f| f.file_use == crate::model::FileUse::Original && f.current_path.starts_with("objects/"))
        .collect();
    let unidentified: Vec<&str> =
        originals.iter().filter(|f| f.format.is_none()).map(|f| f.current_path.as_str()).collect();
    checks.push(check(
        "every original has a format",
        unidentified.is_empty() && originals.len() == 3,
        if unidentified.is_empty() {
            originals
                .iter()
                .map(|f| format!("{} {}", f.current_path, f.format.as_ref().map_or("", |x| x.puid.as_str())))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("not identified: {}", unidentified.join(", "))
        },
    ));
    let scanned = originals
        .iter()
        .filter(|f| {
            events.iter().any(|e| {
                e.file_uuid == Some(f.uuid) && e.event_type == "virus check" && e.outcome == EventOutcome::Pass
            })
        })
        .count();
    checks.push(check(
        "every original passed the virus check",
        scanned == originals.len(),
        format!("{scanned} of {} scanned clean", originals.len()),
    ));
    let renamed = files.iter().filter(|f| f.renamed()).count();
    checks.push(check(
        "the awkward name was sanitized and its original kept",
        renamed >= 1,
        format!("{renamed} renamed"),
    ));
    match storage::entry(aips, aip_key)? {
        Some(_) => checks.extend(storage::verify_transfer(state, aips, t, aip_key)?),
        None => checks.push(check("the stored AIP is found by its identifier", false, aip_key.clone())),
    }
    Ok(checks)
}
