//! The AIP's layout: names and paths shared by the METS writer, the bagger and the verifier.

use crate::config::profile::Profile;
use crate::error::{StageError, StageResult};
use crate::intake::feedback::escape_controls;
use crate::model::{EventType, File, FileUse, PremisEvent, Transfer};
use crate::ports::JobLedger;
pub use crate::record::keys::{bag_name, mets_name};

/// The longest identifier that still leaves room in a storage key (S3 allows 1,024 bytes)
/// for the space, the version and the bag's name.
pub const MAX_IDENTIFIER_BYTES: usize = 512;

/// Why an identifier cannot name a place in the AIP store, if it cannot: AIPs are filed
/// under `<space>/<identifier>/v<N>/`, so every part of it must be a plain folder name.
pub fn identifier_storage_problem(identifier: &str) -> Option<String> {
    let why = if identifier.chars().any(char::is_control) {
        "it holds a control character (a line break or tab)"
    } else if identifier.contains('\\') {
        "it holds a backslash"
    } else if identifier.starts_with('/') {
        "it starts with \"/\""
    } else if identifier.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        "it has an empty, \".\" or \"..\" part between slashes"
    } else if identifier.len() > MAX_IDENTIFIER_BYTES {
        "it is longer than 512 bytes"
    } else if identifier.split('/').any(|s| s.len() > crate::intake::sanitize::MAX_NAME_BYTES) {
        "a part of it between slashes is longer than 255 bytes"
    } else {
        return None;
    };
    Some(format!("the identifier {identifier:?} cannot name a storage location: {why}"))
}

/// Where a transfer file sits in the AIP, relative to `data/`. Originals keep their place
/// under `objects/`; the package's metadata files go where Archivematica puts transfer
/// metadata.
pub fn payload_path(transfer: &Transfer, file: &File) -> String {
    match file.file_use {
        // A preservation copy sits beside its original.
        FileUse::Original | FileUse::Preservation | FileUse::Transcription => file.current_path.clone(),
        FileUse::Metadata => {
            let transfer_folder = format!("{}-{}", crate::record::keys::safe_name(transfer), transfer.id);
            match file.current_path.strip_prefix("metadata/") {
                Some(rest) => format!("objects/metadata/transfers/{transfer_folder}/{rest}"),
                // A standard transfer's own logs/ and processingMCP.xml: where Archivematica
                // keeps a transfer's logs, apart from the AIP's own.
                None => format!("logs/transfers/{transfer_folder}/{}", file.current_path),
            }
        }
        FileUse::SubmissionDocumentation => format!("objects/{}", file.current_path),
    }
}

/// The transfer METS's place among the AIP's submission documentation, relative to
/// `objects/`.
pub fn transfer_mets_path(transfer: &Transfer) -> String {
    format!("submissionDocumentation/transfer-{}-{}/METS.xml", crate::record::keys::safe_name(transfer), transfer.id)
}

/// `.tar.gz`, or `.tar` for a profile that stores AIPs uncompressed (gzip level 0).
pub fn package_extension(profile: &Profile) -> &'static str {
    if profile.gzip_level == 0 {
        "tar"
    } else {
        "tar.gz"
    }
}

/// The log of what the upload held that the AIP does not, in `data/logs/`.
pub const LEFT_OUT_LOG: &str = "leftOut.log";

/// The log of names sanitizing changed, relative to `data/`.
pub const FILENAME_CHANGES_LOG: &str = "logs/filenameChanges.log";

/// Whether a payload path (relative to the bag) is one Vellum writes itself rather than a
/// transfer file: the METS and its own logs (a transfer's logs, under `logs/transfers/`, are
/// the transfer's files).
pub fn is_generated_payload(transfer: &Transfer, path: &str) -> bool {
    path == format!("data/{}", mets_name(transfer))
        || path == format!("data/objects/{}", transfer_mets_path(transfer))
        || (path.starts_with("data/logs/") && !path.starts_with("data/logs/transfers/"))
}

/// The PREMIS eventType of an entry left out of the AIP (desktop clutter, an empty folder).
pub const LEFT_OUT_EVENT: EventType = EventType::Deletion;

/// A left-out event's detail: why the entry is not kept.
pub fn left_out_detail(left_out: crate::intake::archive::LeftOut) -> String {
    format!("left out of the AIP: {}; the upload keeps it", left_out.why())
}

/// A left-out event's outcome detail: the entry's original name, and for a file its size
/// and SHA-256. `left_out_log` reads it back.
pub fn left_out_outcome(name: &str, content: Option<(u64, &str)>) -> String {
    let mut out = format!("Original name=\"%transferDirectory%{name}\"");
    if let Some((size, sha256)) = content {
        out.push_str(&format!("; size={size}; sha256={sha256}"));
    }
    out
}

/// The left-out log: one line per entry of the upload the AIP does not hold, with its size
/// and digest where it is a file, and why; each is also a PREMIS event on the transfer.
pub fn left_out_log(transfer_events: &[PremisEvent]) -> Option<String> {
    let left_out: Vec<&PremisEvent> = transfer_events.iter().filter(|e| e.event_type == LEFT_OUT_EVENT).collect();
    if left_out.is_empty() {
        return None;
    }
    let mut out = String::from(
        "# Entries of the upload not kept in the AIP (the upload keeps them)\n# path\tsize\tsha256\twhy\n",
    );
    for e in left_out {
        let field =
            |name: &str| e.outcome_detail.split("; ").find_map(|f| f.strip_prefix(name)).unwrap_or("").to_string();
        let path = left_out_path(e);
        let why = e.detail.strip_prefix("left out of the AIP: ").unwrap_or(&e.detail);
        let why = why.split("; the upload keeps it").next().unwrap_or(why);
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            escape_controls(path),
            field("size="),
            field("sha256="),
            escape_controls(why)
        ));
    }
    Some(out)
}

/// The upload's name of what a left-out event is about.
fn left_out_path(e: &PremisEvent) -> &str {
    e.outcome_detail
        .strip_prefix("Original name=\"%transferDirectory%")
        .and_then(|rest| rest.rsplit_once('"').map(|(p, _)| p))
        .unwrap_or(&e.outcome_detail)
}

/// The transfer's events about entries of the upload left out of the AIP.
pub fn left_out_events(transfer_events: Vec<PremisEvent>) -> Vec<PremisEvent> {
    transfer_events.into_iter().filter(|e| e.event_type == LEFT_OUT_EVENT).collect()
}

/// The empty folders of the upload (left out of the bag, which holds files), by their
/// upload names: the METS keeps them as empty divs of its structMap.
pub fn empty_folders(transfer_events: &[PremisEvent]) -> Vec<String> {
    let why = left_out_detail(crate::intake::archive::LeftOut::EmptyFolder);
    transfer_events
        .iter()
        .filter(|e| e.event_type == LEFT_OUT_EVENT && e.detail == why)
        .map(|e| left_out_path(e).to_string())
        .collect()
}

/// The logs the AIP carries in `data/logs/` that speak of each file, by name, with their
/// first lines: what each file was identified as, what sanitizing renamed, what the virus
/// scan said. The METS stage writes them a file at a time (`FileLogLines`), in path order;
/// the left-out log comes from the transfer's own events.
pub const FILE_LOGS: [(&str, &str); 3] = [
    ("fileFormatIdentification.log", "# path\tPUID\tformat\tbasis\n"),
    ("filenameChanges.log", "# Names changed by \"Sanitize object's file and directory names\": original -> new\n"),
    ("virusScan.log", "# path\toutcome\tdetail\n"),
];

/// One stretch of the per-file logs, in the order of `FILE_LOGS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileLogLines {
    pub lines: [String; 3],
    /// Files among them whose virus check was not performed.
    pub not_scanned: u64,
    /// Files among them a copy could not be made of (a failed `normalization` event).
    #[serde(default)]
    pub not_normalized: u64,
    /// How their validation statements came out.
    #[serde(default)]
    pub validation: crate::model::ValidationCounts,
}

impl FileLogLines {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.lines.iter().map(String::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one file's lines, given its events.
    pub fn add(&mut self, f: &File, events: &[PremisEvent]) {
        let [identification, renamed, scan] = &mut self.lines;
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
        if f.renamed() {
            renamed.push_str(&format!(
                "{} -> {}\n",
                escape_controls(&f.original_path),
                escape_controls(&f.current_path)
            ));
        }
        if events.iter().any(crate::record::normalization::failed) {
            self.not_normalized += 1;
        }
        self.validation.add(events);
        let checks = events.iter().filter(|e| e.event_type == "virus check");
        if checks.clone().any(|e| e.outcome == crate::model::EventOutcome::NotPerformed) {
            self.not_scanned += 1;
        }
        // One line a file, its detail said once: a check not performed says why in both
        // its detail and its outcome.
        for e in checks {
            let detail = if e.outcome_detail.is_empty() || e.detail.ends_with(&e.outcome_detail) {
                e.detail.clone()
            } else {
                format!("{} {}", e.detail, e.outcome_detail)
            };
            scan.push_str(&format!("{}\t{}\t{}\n", f.current_path, e.outcome.as_str(), escape_controls(&detail)));
        }
    }
}

/// How far packaging has come: the next bag entry, the parts written so far, and what the
/// first invocation learnt of the files Vellum wrote itself (read and digested once).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageCheckpoint {
    pub next_entry: usize,
    pub parts: Vec<String>,
    #[serde(default)]
    pub generated: Vec<GeneratedEntry>,
    /// Set when the bag is written as slices by many invocations at once: how many. The
    /// parts are then every slice's, fixed by the plan, each there once its slice is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<u32>,
}

/// A file of the bag that Vellum wrote (a METS, a log): where it is, its size and digests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GeneratedEntry {
    pub path: String,
    pub key: String,
    pub size: u64,
    pub digests: std::collections::BTreeMap<String, String>,
}

impl PackageCheckpoint {
    /// The checkpoint as stored (for the compare-and-swap) and as read.
    pub fn load(jobs: &dyn JobLedger, transfer_id: uuid::Uuid) -> StageResult<(Option<String>, Self)> {
        let text = jobs.job_checkpoint(transfer_id, crate::model::Stage::Package.name())?;
        let cp = match &text {
            Some(t) => serde_json::from_str(t).map_err(|e| {
                StageError::Failed(format!(
                    "the package checkpoint cannot be read back ({e}); the AIP must be packaged again"
                ))
            })?,
            None => Self::default(),
        };
        Ok((text, cp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventOutcome, EventType};

    fn file(original: &str, current: &str) -> File {
        File::for_test(original, current)
    }

    #[test]
    fn the_logs_say_each_file_once_and_a_bags_data_folder_is_no_rename() {
        let mut lines = FileLogLines::default();
        let why = "virus scanning was turned off for this run (--clamd none)";
        let not_scanned = PremisEvent::new(
            uuid::Uuid::nil(),
            Some(uuid::Uuid::nil()),
            EventType::VirusCheck,
            chrono::Utc::now(),
            format!("program=\"ClamAV\"; {why}"),
            EventOutcome::NotPerformed,
            why.to_string(),
            Vec::new(),
        );
        lines.add(&file("data/objects/a.txt", "objects/a.txt"), std::slice::from_ref(&not_scanned));
        lines.add(&file("objects/b c.txt", "objects/b_c.txt"), &[]);
        let [_, renamed, scan] = &lines.lines;
        assert_eq!(renamed, "objects/b c.txt -> objects/b_c.txt\n", "a bag's data/ is not a rename");
        assert_eq!(scan.matches(why).count(), 1, "the reason once: {scan}");
        assert_eq!(lines.not_scanned, 1);
    }
}
