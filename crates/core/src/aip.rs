//! The AIP's layout: names and paths shared by the METS writer, the bagger and the verifier.

use crate::model::{File, FileUse, PremisEvent, Transfer};
use crate::profile::Profile;

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
        FileUse::SubmissionDocumentation => format!("objects/{}", file.current_path),
    }
}

/// The transfer METS's place among the AIP's submission documentation, relative to
/// `objects/`.
pub fn transfer_mets_path(transfer: &Transfer) -> String {
    format!("submissionDocumentation/transfer-{}-{}/METS.xml", transfer.name, transfer.id)
}

/// Where the transfer METS is kept until packaging.
pub fn working_transfer_mets_key(transfer: &Transfer) -> String {
    format!("{}/aip/transfer-METS.xml", transfer.id)
}

/// Where the working copy of the AIP METS is kept until packaging.
pub fn working_mets_key(transfer: &Transfer) -> String {
    format!("{}/aip/{}", transfer.id, mets_name(transfer))
}

/// `.tar.gz`, or `.tar` for a profile that stores AIPs uncompressed (gzip level 0).
pub fn package_extension(profile: &Profile) -> &'static str {
    if profile.gzip_level == 0 {
        "tar"
    } else {
        "tar.gz"
    }
}

/// The log of names sanitizing changed, relative to `data/`.
pub const FILENAME_CHANGES_LOG: &str = "logs/filenameChanges.log";

/// Whether a payload path (relative to the bag) is one Vellum writes itself rather than a
/// transfer file: the METS and the logs.
pub fn is_generated_payload(transfer: &Transfer, path: &str) -> bool {
    path == format!("data/{}", mets_name(transfer))
        || path == format!("data/objects/{}", transfer_mets_path(transfer))
        || path.starts_with("data/logs/")
}

/// The filename-changes log: one line per file whose name sanitizing changed.
pub fn filename_changes_log(files: &[File]) -> String {
    let mut out = String::from("# Names changed by \"Sanitize object's file and directory names\": original -> new\n");
    for f in files.iter().filter(|f| f.original_path != f.current_path) {
        out.push_str(&format!("{} -> {}\n", f.original_path, f.current_path));
    }
    out
}

/// The logs the AIP carries in `data/logs/`, by name: what sanitizing renamed, what each
/// file was identified as, and what the virus scan said of it.
pub fn logs(
    files: &[File],
    events_of: &dyn Fn(&File) -> std::io::Result<Vec<PremisEvent>>,
) -> std::io::Result<Vec<(String, String)>> {
    let mut identification = String::from("# path\tPUID\tformat\tbasis\n");
    for f in files {
        match &f.format {
            Some(fmt) => identification.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                f.current_path,
                fmt.puid,
                fmt.name,
                if fmt.tentative { "extension (tentative)" } else { "signature" }
            )),
            None => identification.push_str(&format!("{}\tUNKNOWN\t\t\n", f.current_path)),
        }
    }
    let mut scan = String::from("# path\toutcome\tdetail\n");
    for f in files {
        for e in events_of(f)?.iter().filter(|e| e.event_type == "virus check") {
            scan.push_str(&format!("{}\t{}\t{} {}\n", f.current_path, e.outcome.as_str(), e.detail, e.outcome_detail));
        }
    }
    Ok(vec![
        ("fileFormatIdentification.log".to_string(), identification),
        ("filenameChanges.log".to_string(), filename_changes_log(files)),
        ("virusScan.log".to_string(), scan),
    ])
}
