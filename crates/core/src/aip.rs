//! The AIP's layout: names and paths shared by the METS writer, the bagger and the verifier.

use crate::model::{File, FileUse, Transfer};

/// The bag's top-level folder: `<name>-<aip-uuid>`.
pub fn bag_name(transfer: &Transfer) -> String {
    format!("{}-{}", transfer.name, transfer.aip_uuid)
}

/// The AIP METS file, relative to `data/`.
pub fn mets_name(transfer: &Transfer) -> String {
    format!("METS.{}.xml", transfer.aip_uuid)
}

/// Where a transfer file sits in the AIP, relative to `data/`. Originals keep their place
/// under `objects/`; the package's metadata files go where Archivematica puts transfer
/// metadata.
pub fn payload_path(transfer: &Transfer, file: &File) -> String {
    match file.file_use {
        FileUse::Original => file.current_path.clone(),
        FileUse::Metadata => {
            let rest = file.current_path.strip_prefix("metadata/").unwrap_or(&file.current_path);
            format!("objects/metadata/transfers/{}-{}/{rest}", transfer.name, transfer.id)
        }
    }
}

/// Where the working copy of the AIP METS is kept until packaging.
pub fn working_mets_key(transfer: &Transfer) -> String {
    format!("{}/aip/{}", transfer.id, mets_name(transfer))
}

/// Where the packaged AIP is written before it is stored.
pub fn working_package_key(transfer: &Transfer) -> String {
    format!("{}/aip/{}.tar.gz", transfer.id, bag_name(transfer))
}

/// The log of names sanitizing changed, relative to `data/`.
pub const FILENAME_CHANGES_LOG: &str = "logs/filenameChanges.log";

/// Whether a payload path (relative to the bag) is one Vellum writes itself rather than a
/// transfer file: the METS and the logs.
pub fn is_generated_payload(transfer: &Transfer, path: &str) -> bool {
    path == format!("data/{}", mets_name(transfer)) || path.starts_with("data/logs/")
}

/// The filename-changes log: one line per file whose name sanitizing changed.
pub fn filename_changes_log(files: &[File]) -> String {
    let mut out = String::from("# Names changed by \"Sanitize object's file and directory names\": original -> new\n");
    for f in files.iter().filter(|f| f.original_path != f.current_path) {
        out.push_str(&format!("{} -> {}\n", f.original_path, f.current_path));
    }
    out
}
