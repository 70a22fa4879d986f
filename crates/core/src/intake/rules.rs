//! Intake: the checks a package must pass before anything is extracted, each failure named
//! in words an archivist can act on, with a wrong and a right example where the layout is
//! what went wrong.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::profile::{Limits, PackageKind, Profile};
use crate::intake::archive::{
    zip_method_name, zip_method_readable, EntryKind, LeftOut, ListedEntry, Listing, ListingLine,
};
use crate::intake::feedback::escape_controls;
use crate::intake::layout::standard_place;
pub use crate::intake::layout::unsafe_path_reason;
use crate::intake::metadata::parse_metadata_csv;
use crate::intake::sanitize::{plan, PlanError, MAX_NAME_BYTES};
use crate::model::CatalogueIdentifiers;
use crate::record::rights::check_rights_csv;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What the check is about, short: "metadata.csv", "layout", "entry paths".
    pub check: &'static str,
    /// What is wrong, naming the entry or value.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// The layout as it should not be, and as it should.
    pub example: Option<(&'static str, &'static str)>,
    /// A ready text to start from (a metadata.csv for the profile).
    pub template: Option<String>,
    /// Whether the log ends with the layout Vellum expects (shown once, however many
    /// problems ask for it).
    pub shows_layout: bool,
}

impl Problem {
    fn new(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, message: message.into(), fix: fix.into(), example: None, template: None, shows_layout: false }
    }

    fn with_layout(mut self) -> Self {
        self.shows_layout = true;
        self
    }

    fn with_template(mut self, template: String) -> Self {
        self.template = Some(template);
        self
    }

    fn with_example(mut self, wrong: &'static str, right: &'static str) -> Self {
        self.example = Some((wrong, right));
        self
    }
}

const LAYOUT_WRONG: &str = "\
PP-ABC-1.zip
└── PP-ABC-1/
    ├── objects/
    │   └── letter.pdf
    └── metadata/
        ├── metadata.csv
        └── notes.docx";

const LAYOUT_RIGHT: &str = "\
PP-ABC-1.zip
├── objects/
│   └── letter.pdf
└── metadata/
    ├── metadata.csv
    └── rights.csv      (optional)";

const CATALOGUED_WRONG: &str = "\
filename,dc.identifier
objects/letter.pdf,PP/ABC/1
objects/photo.jpg,PP/ABC/1";

const CATALOGUED_RIGHT: &str = "\
filename,dc.identifier,dc.title
objects/,PP/ABC/1,Letters of A. B. C.";

const ACCESSION_WRONG: &str = "\
filename,dc.identifier
objects/,PP/ABC/1";

const ACCESSION_RIGHT: &str = "\
filename,collection_reference,accession_number
objects/,PP/ABC,2026/17";

/// How many entries a message names before it says "and N more".
const NAMED: usize = 5;

fn some_of(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(NAMED).map(|n| format!("{n:?}")).collect();
    match names.len().saturating_sub(NAMED) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The checks that the entries themselves pass: safe paths, no links or devices, no
/// encryption, no duplicates, within the profile's limits.
fn check_entries(listing: &Listing, limits: &Limits, problems: &mut Vec<Problem>) {
    let collect = |pred: &dyn Fn(&crate::intake::archive::ListedEntry) -> bool| -> Vec<String> {
        listing.entries.iter().filter(|e| pred(e)).map(|e| e.name.clone()).collect()
    };
    for reason in [
        "is an absolute path",
        "starts with a drive letter",
        "has a \"..\" step that leads out of its folder",
        "has a NUL character in its name",
    ] {
        let bad = collect(&|e| unsafe_path_reason(&e.name) == Some(reason));
        if !bad.is_empty() {
            problems.push(Problem::new(
                "entry paths",
                format!("{} {reason}: an entry may not point outside the package", some_of(&bad)),
                "make the zip from inside the package folder, so every path starts with objects/ or metadata/",
            ));
        }
    }
    let links = collect(&|e| e.kind == EntryKind::Link);
    if !links.is_empty() {
        problems.push(Problem::new(
            "links",
            format!("the package holds links (shortcuts): {}; a link is never followed or preserved", some_of(&links)),
            "replace each link with the file it points to, or leave it out",
        ));
    }
    let special = collect(&|e| e.kind == EntryKind::Special);
    if !special.is_empty() {
        problems.push(Problem::new(
            "special files",
            format!("the package holds entries that are not files or folders (devices, pipes): {}", some_of(&special)),
            "leave them out of the package",
        ));
    }
    let encrypted = collect(&|e| e.encrypted);
    if !encrypted.is_empty() {
        problems.push(Problem::new(
            "encryption",
            format!("these entries are encrypted: {}", some_of(&encrypted)),
            "make the zip again without a password",
        ));
    }
    let duplicates = listing.duplicates();
    if !duplicates.is_empty() {
        problems.push(Problem::new(
            "duplicate entries",
            format!(
                "the package holds the same path more than once (counting `\\` as `/`, and names spelled in two encodings or with `.` or empty steps as one): {}",
                some_of(&duplicates)
            ),
            "make the zip again so each file is in it once",
        ));
    }
    if duplicates.is_empty() && !listing.hidden_duplicates.is_empty() {
        // The zip reader merged entries whose names it reads as one, though they are
        // spelled apart: whichever way, one would be lost.
        problems.push(Problem::new(
            "duplicate entries",
            "the zip's index holds more entries than distinct names (two entries whose names read the same)",
            "make the zip again so each file is in it once",
        ));
    }
    if !listing.overlapping.is_empty() {
        problems.push(Problem::new(
            "overlapping entries",
            format!(
                "these entries share their bytes in the zip with other entries, as zip bombs are made to: {}",
                some_of(&listing.overlapping)
            ),
            "check where the package came from, and make the zip again with an ordinary zip tool",
        ));
    }
    let unreadable: Vec<String> = listing
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File && !e.encrypted && !zip_method_readable(e.method))
        .map(|e| format!("{} ({})", e.name, zip_method_name(e.method)))
        .collect();
    if !unreadable.is_empty() {
        problems.push(Problem::new(
            "compression",
            format!("these entries are compressed with a method Vellum cannot read: {}", some_of(&unreadable)),
            "make the zip again with Deflate, the usual method (in 7-Zip: Archive format zip, Compression method Deflate; Finder, Explorer and `zip -r` use it already)",
        ));
    }
    let count = listing.entries.len() as u64;
    if count > limits.max_entries {
        problems.push(Problem::new(
            "limits",
            format!("the package has {count} entries, more than the limit of {} (max_entries)", limits.max_entries),
            "split it into several packages",
        ));
    }
    let total: u64 = listing.entries.iter().map(|e| e.size).fold(0, u64::saturating_add);
    if total > limits.max_total_bytes {
        problems.push(Problem::new(
            "limits",
            format!(
                "the package unpacks to {total} bytes, more than the limit of {} (max_total_bytes)",
                limits.max_total_bytes
            ),
            "split it into several packages",
        ));
    }
    // No ratio is checked: a file of zeros compresses a thousandfold and is no bomb. What a
    // bomb does is caught above (declared sizes past the limits, entries that share their
    // bytes) and at extraction, where no entry yields more than it declares.
}

fn is_supplied_manifest(name: &str) -> bool {
    crate::analysis::fixity::ALGORITHMS.iter().any(|a| name == crate::analysis::fixity::supplied_manifest_path(a))
}

/// A metadata.csv to start from, for a profile's kind of package: its columns and one row.
fn metadata_template(kind: PackageKind) -> String {
    match kind {
        PackageKind::Catalogued => CATALOGUED_RIGHT.to_string(),
        PackageKind::Accession => ACCESSION_RIGHT.to_string(),
        PackageKind::Standard | PackageKind::Bag => "filename,dc.title\nobjects/,Letters of A. B. C.".to_string(),
    }
}

/// An Archivematica transfer's layout: anything may sit in `metadata/`, nothing is stray
/// (the top's files are the objects), but there must be something to preserve.
fn check_transfer_layout(listing: &Listing, problems: &mut Vec<Problem>) {
    let mut files = listing.entries.iter().filter(|e| e.kind == EntryKind::File);
    if files.clone().next().is_none() {
        problems.push(Problem::new(
            "layout",
            "the upload is empty: it holds no files at all",
            "zip the transfer's folder, with its files, and upload that zip",
        ));
    } else if !files.any(|e| e.name.starts_with("objects/")) {
        problems.push(Problem::new(
            "layout",
            "the transfer holds only metadata (metadata/, logs/, submission documentation): there is no file to preserve",
            "put the files to preserve at the transfer's top or in objects/",
        ));
    }
}

fn check_layout(listing: &Listing, profile: &Profile, problems: &mut Vec<Problem>) {
    if profile.kind.is_archivematica_transfer() {
        return check_transfer_layout(listing, problems);
    }
    let files: Vec<&str> =
        listing.entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| e.name.as_str()).collect();
    if files.is_empty() {
        problems.push(
            Problem::new(
                "layout",
                "the zip is empty: it holds no files at all",
                "zip the package's objects/ and metadata/ folders (with the files in them) and upload that zip",
            )
            .with_layout(),
        );
        return;
    }
    let has_metadata = files.contains(&"metadata/metadata.csv");
    if !has_metadata {
        match files.iter().find_map(|f| f.strip_suffix("/metadata/metadata.csv")) {
            Some(folder) => problems.push(
                Problem::new(
                    "layout",
                    format!("metadata/metadata.csv is not at the top of the zip: everything is inside the folder {folder:?}"),
                    "zip the contents of the package folder, not the folder itself",
                )
                .with_example(LAYOUT_WRONG, LAYOUT_RIGHT),
            ),
            None => problems.push(
                Problem::new(
                    "layout",
                    "metadata/metadata.csv is missing",
                    format!(
                        "add metadata/metadata.csv beside objects/; for this upload's profile ({}) it has these columns and one row describing objects/",
                        profile.name
                    ),
                )
                .with_template(metadata_template(profile.kind))
                .with_layout(),
            ),
        }
    }
    if has_metadata && listing.metadata_csv.is_none() {
        problems.push(Problem::new(
            "metadata.csv",
            "metadata/metadata.csv cannot be read: it is larger than 1 MiB, encrypted, or compressed with a method Vellum cannot read",
            "save metadata.csv again as a small CSV file, zip the package without a password and upload it",
        ));
    }
    let extra_metadata: Vec<String> = listing
        .entries
        .iter()
        .filter(|e| e.kind != EntryKind::Directory)
        .map(|e| e.name.clone())
        .filter(|n| n.starts_with("metadata/") && n != "metadata/metadata.csv" && n != "metadata/rights.csv")
        .filter(|n| !(profile.supplied_checksums && is_supplied_manifest(n)))
        .collect();
    if !extra_metadata.is_empty() {
        problems.push(
            Problem::new(
                "layout",
                format!(
                    "metadata/ may hold only metadata.csv and rights.csv, but it also holds {}",
                    some_of(&extra_metadata)
                ),
                "move the other files into objects/ (if they are to be preserved) or leave them out",
            )
            .with_layout(),
        );
    }
    if !files.iter().any(|f| f.starts_with("objects/")) {
        problems.push(
            Problem::new("layout", "there is no file under objects/", "put the files to preserve in objects/")
                .with_layout(),
        );
    }
    let stray: BTreeSet<String> = listing
        .entries
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| {
            !n.is_empty()
                && *n != "."
                && *n != crate::intake::archive::PROCESSING_MCP
                && !n.starts_with("objects/")
                && !n.starts_with("metadata/")
                && *n != "objects"
                && *n != "metadata"
        })
        .filter(|n| unsafe_path_reason(n).is_none())
        .map(|n| n.split('/').next().unwrap_or(n).to_string())
        .collect();
    // A wrapper folder is already reported above, more helpfully.
    if !stray.is_empty() && has_metadata {
        let stray: Vec<String> = stray.into_iter().collect();
        problems.push(
            Problem::new(
                "layout",
                format!("the package has entries outside objects/ and metadata/: {}", some_of(&stray)),
                "move them into objects/ (if they are to be preserved) or leave them out",
            )
            .with_layout(),
        );
    }
}

/// Supplied checksum files must read, and name only files the package holds.
fn check_supplied_manifests(listing: &Listing, problems: &mut Vec<Problem>) {
    let files: BTreeSet<&str> =
        listing.entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| e.name.as_str()).collect();
    for (algorithm, bytes) in &listing.supplied_manifests {
        let name = crate::analysis::fixity::supplied_manifest_path(algorithm);
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => crate::analysis::fixity::parse_supplied_manifest(text).map_err(|e| e.to_string()),
            Err(_) => Err("it is not UTF-8 text".to_string()),
        };
        match parsed {
            Err(e) => problems.push(Problem::new(
                "checksums",
                format!("{name} cannot be read: {e}"),
                format!("write {name} as lines of `<digest>  objects/<path>`"),
            )),
            Ok(entries) => {
                let missing: Vec<String> = entries.keys().filter(|p| !files.contains(p.as_str())).cloned().collect();
                if !missing.is_empty() {
                    problems.push(Problem::new(
                        "checksums",
                        format!("{name} lists files that are not in the package: {}", some_of(&missing)),
                        format!("add the missing files, or remove their lines from {name}"),
                    ));
                }
            }
        }
    }
}

/// The result of intake: identifiers, and the listing extraction follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub identifiers: CatalogueIdentifiers,
    /// Every entry that is extracted, or recorded as left out, in archive order.
    pub lines: Vec<ListingLine>,
    /// What the archivist is told besides: what was left out, what the upload was read as.
    pub notes: Vec<String>,
}

impl Accepted {
    /// How many files are extracted.
    pub fn files(&self) -> usize {
        self.lines.iter().filter(|l| l.path.is_some()).count()
    }
}

/// The longest path a package file may have once sanitized: as long as a POSIX system
/// allows (PATH_MAX, 4,096 bytes with its terminating NUL). Working copies are keyed by
/// file UUID (`record::keys::file_key`), so S3's 1,024-byte keys do not bound it.
pub const MAX_PATH_BYTES: usize = 4096 - 1;

/// Finder's `__MACOSX/` folder and AppleDouble `._name` files beside `name`: the resource
/// forks and Finder information of a Mac, not part of the package. They are never extracted.
fn is_mac_metadata(name: &str, names: &BTreeSet<String>) -> bool {
    if name == "__MACOSX" || name.starts_with("__MACOSX/") {
        return true;
    }
    let (folder, file) = match name.rsplit_once('/') {
        Some((folder, file)) => (Some(folder), file),
        None => (None, name),
    };
    match file.strip_prefix("._").filter(|real| !real.is_empty()) {
        Some(real) => names.contains(
            match folder {
                Some(folder) => format!("{folder}/{real}"),
                None => real.to_string(),
            }
            .as_str(),
        ),
        None => false,
    }
}

/// The package without its Mac metadata, and those entries, each as a line left out of
/// the AIP under the name it had in the upload (so `leftOut.log` and the METS list it).
fn without_mac_metadata(mut listing: Listing) -> (Listing, Vec<ListingLine>) {
    let names: BTreeSet<String> = listing.entries.iter().map(|e| e.name.clone()).collect();
    let (mac, kept): (Vec<ListedEntry>, Vec<ListedEntry>) =
        std::mem::take(&mut listing.entries).into_iter().partition(|e| is_mac_metadata(&e.name, &names));
    listing.entries = kept;
    let left_out = mac
        .into_iter()
        .map(|e| ListingLine {
            index: e.index,
            name: listing.original_names.get(&e.index).cloned().unwrap_or(e.name),
            kind: e.kind,
            size: e.size,
            path: None,
            left_out: Some(LeftOut::MacMetadata),
            at: e.at,
        })
        .collect();
    (listing, left_out)
}

/// Runs every check on a listed package, laid out as the profile's kind of package is.
pub fn check_package(listing: Listing, profile: &Profile) -> Result<Accepted, Vec<Problem>> {
    let listing = listing.arranged(profile.kind);
    let wrapper = listing.wrapper.clone();
    let (listing, mac_metadata) = without_mac_metadata(listing);
    let mac_count = mac_metadata.len();
    let mut accepted = match profile.kind {
        PackageKind::Bag if !listing.is_bag() => Err(vec![not_a_bag()]),
        PackageKind::Standard => check_plain_package(&placed_as_standard(listing), profile),
        _ if listing.is_bag() => check_bag_package(&listing, profile),
        _ => check_plain_package(&listing, profile),
    }?;
    accepted.identifiers.wrapping_folder = wrapper;
    if mac_count > 0 {
        accepted.notes.push(format!(
            "{mac_count} entr{} of Mac metadata (__MACOSX/ and ._ files) left out: they are not part of the package; the AIP's logs/leftOut.log lists them",
            if mac_count == 1 { "y" } else { "ies" }
        ));
        // Extraction follows the lines in archive order (a tar is read as a stream).
        accepted.lines.extend(mac_metadata);
        accepted.lines.sort_by_key(|l| l.index);
    }
    Ok(accepted)
}

fn not_a_bag() -> Problem {
    Problem::new(
        "bag",
        "the upload is not a BagIt bag: there is no bagit.txt at its top, or inside its one folder",
        "make the bag with a bag tool (bagit-python: `bagit.py --sha256 FOLDER`; Bagger), zip the bag's folder and upload it; a transfer that is not a bag goes under the standard/ prefix",
    )
}

/// A standard transfer's listing with every entry in its place; the name each had in the
/// upload is kept.
fn placed_as_standard(mut listing: Listing) -> Listing {
    for e in &mut listing.entries {
        if let Some(placed) = standard_place(&e.name) {
            let original = std::mem::replace(&mut e.name, placed);
            listing.original_names.entry(e.index).or_insert(original);
        }
    }
    for list in [&mut listing.overlapping, &mut listing.hidden_duplicates] {
        for n in list.iter_mut() {
            if let Some(placed) = standard_place(n) {
                *n = placed;
            }
        }
    }
    listing
}

/// Each line under the entry's name in the upload, where the layout moved it.
fn with_upload_names(mut accepted: Accepted, listing: &Listing) -> Accepted {
    if !listing.original_names.is_empty() {
        for line in &mut accepted.lines {
            if let Some(original) = listing.original_names.get(&line.index) {
                line.name = original.clone();
            }
        }
    }
    accepted
}

/// The checks of a package that is not a bag (or of a bag's payload).
fn check_plain_package(listing: &Listing, profile: &Profile) -> Result<Accepted, Vec<Problem>> {
    let mut problems = Vec::new();
    check_entries(listing, &profile.limits, &mut problems);
    check_layout(listing, profile, &mut problems);

    let identifiers = match &listing.metadata_csv {
        Some(bytes) => match parse_metadata_csv(bytes, profile.kind) {
            Ok(ids) => {
                if let Some(problem) =
                    ids.external_identifier().and_then(|id| crate::record::aip::identifier_storage_problem(&id))
                {
                    problems.push(Problem::new(
                        "metadata.csv",
                        problem,
                        "AIPs are filed under their identifier: give one of plain names joined by \"/\", such as PP/ABC/1",
                    ));
                }
                let files: BTreeSet<&str> =
                    listing.entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| e.name.as_str()).collect();
                let folders: BTreeSet<&str> =
                    files.iter().flat_map(|f| f.match_indices('/').map(move |(i, _)| &f[..i])).collect();
                let absent: Vec<String> = crate::intake::metadata::file_rows(bytes, profile.kind)
                    .into_keys()
                    .filter(|name| !files.contains(name.as_str()) && !folders.contains(name.as_str()))
                    .collect();
                if !absent.is_empty() {
                    problems.push(Problem::new(
                        "metadata.csv",
                        format!(
                            "metadata/metadata.csv describes files that are not in the package: {}",
                            some_of(&absent)
                        ),
                        "correct the filename of each row to the file's (or folder's) objects/<path>, or remove the row",
                    ));
                }
                Some(ids)
            }
            Err(found) => {
                let example = match profile.kind {
                    PackageKind::Catalogued => Some((CATALOGUED_WRONG, CATALOGUED_RIGHT)),
                    PackageKind::Accession => Some((ACCESSION_WRONG, ACCESSION_RIGHT)),
                    PackageKind::Standard | PackageKind::Bag => None,
                };
                for message in found {
                    let problem = Problem::new(
                        "metadata.csv",
                        message,
                        "correct metadata/metadata.csv, zip the package again and upload it",
                    );
                    problems.push(match example {
                        Some((wrong, right)) => problem.with_example(wrong, right),
                        None => problem,
                    });
                }
                None
            }
        },
        // An Archivematica transfer needs no metadata.csv: it is filed under its name.
        None if profile.kind.is_archivematica_transfer() => Some(CatalogueIdentifiers::default()),
        None => None,
    };
    let identifiers = match (identifiers, &listing.processing_mcp) {
        (Some(mut ids), Some(xml)) => match crate::intake::processing::choices(xml) {
            Ok(choices) => {
                ids.processing_choices = choices;
                Some(ids)
            }
            Err(why) => {
                problems.push(Problem::new(
                    "processingMCP.xml",
                    format!("processingMCP.xml cannot be read: {why}"),
                    "save the transfer's processing configuration again from Archivematica (Administration → Processing configuration), or leave it out to use the profile's",
                ));
                None
            }
        },
        (ids, _) => ids,
    };
    let mut rights_notes = Vec::new();
    if let Some(rights) = &listing.rights_csv {
        let files: BTreeSet<&str> =
            listing.entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| e.name.as_str()).collect();
        for message in check_rights_csv(rights, &files, profile.kind) {
            problems.push(Problem::new(
                "rights.csv",
                message,
                "correct metadata/rights.csv, zip the package again and upload it",
            ));
        }
        rights_notes = crate::record::rights::rights_notes(rights, &files, profile.kind);
    }

    if profile.supplied_checksums {
        check_supplied_manifests(listing, &mut problems);
    }

    let is_object = |name: &str| name.starts_with("objects/");
    let clutter = |e: &crate::intake::archive::ListedEntry| {
        e.kind == EntryKind::File && is_object(&e.name) && profile.is_clutter(&e.name)
    };
    let kept_files: Vec<&str> = listing
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File && unsafe_path_reason(&e.name).is_none() && !clutter(e))
        .map(|e| e.name.as_str())
        .collect();
    let clutter_count = listing.entries.iter().filter(|e| clutter(e)).count();
    if clutter_count > 0 && !kept_files.iter().any(|f| is_object(f)) {
        problems.push(Problem::new(
            "layout",
            format!(
                "objects/ holds nothing but desktop clutter ({}), which is not preserved",
                some_of(&listing.entries.iter().filter(|e| clutter(e)).map(|e| e.name.clone()).collect::<Vec<_>>())
            ),
            "put the files to preserve in objects/",
        ));
    }
    let planned = match plan(&kept_files, MAX_NAME_BYTES, MAX_PATH_BYTES) {
        Ok(p) => Some(p),
        Err(PlanError::FileIsAlsoFolder(path)) => {
            problems.push(Problem::new(
                "entry paths",
                format!("{path:?} is a file, and also the folder of other entries"),
                "rename the file or the folder so they differ",
            ));
            None
        }
        Err(PlanError::TooLong(paths)) => {
            problems.push(Problem::new(
                "entry paths",
                format!(
                    "these paths are too long to store even with every name shortened (at most {MAX_PATH_BYTES} bytes): {}",
                    some_of(&paths)
                ),
                "move the files into fewer, shorter folders",
            ));
            None
        }
    };
    if problems.is_empty() && identifiers.is_none() {
        // Every refusal names its cause: this one is a check that found nothing to say.
        problems.push(Problem::new(
            "metadata.csv",
            "metadata/metadata.csv could not be read for a reason intake did not name",
            "report this package to the people who run Vellum",
        ));
    }
    match (identifiers, planned) {
        (Some(identifiers), Some(planned)) if problems.is_empty() => {
            let paths: BTreeMap<&str, String> = kept_files.iter().copied().zip(planned).collect();
            let mut lines: Vec<ListingLine> = listing
                .entries
                .iter()
                .map(|e| ListingLine {
                    index: e.index,
                    name: e.name.clone(),
                    kind: e.kind,
                    size: e.size,
                    path: paths.get(e.name.as_str()).cloned(),
                    left_out: clutter(e).then_some(LeftOut::Clutter),
                    at: e.at,
                })
                .collect();
            let empty = mark_empty_folders(&mut lines);
            let mut notes = listing.notes.clone();
            if clutter_count > 0 {
                notes.push(format!(
                    "{clutter_count} file(s) of desktop clutter (such as .DS_Store or Thumbs.db) left out; the AIP's logs/leftOut.log lists them with their sizes and digests"
                ));
            }
            if empty > 0 {
                notes.push(format!("{empty} empty folder(s) left out; the AIP's logs/leftOut.log lists them"));
            }
            notes.extend(rights_notes);
            if !identifiers.processing_choices.is_empty() {
                let set: Vec<String> = identifiers
                    .processing_choices
                    .iter()
                    .map(|(k, v)| format!("{k} {}", if *v { "on" } else { "off" }))
                    .collect();
                notes.push(format!("the transfer's processingMCP.xml sets {}", set.join(", ")));
            }
            Ok(with_upload_names(Accepted { identifiers, lines, notes }, listing))
        }
        _ => Err(problems),
    }
}

/// Marks the folders under `objects/` that hold no extracted file as left out; returns
/// how many.
fn mark_empty_folders(lines: &mut [ListingLine]) -> usize {
    let mut holding: BTreeSet<&str> = BTreeSet::new();
    for l in lines.iter().filter(|l| l.path.is_some()) {
        let mut name = l.name.as_str();
        while let Some((folder, _)) = name.rsplit_once('/') {
            if !holding.insert(folder) {
                break;
            }
            name = folder;
        }
    }
    let empty: BTreeSet<u64> = lines
        .iter()
        .filter(|l| l.kind == EntryKind::Directory && l.name.starts_with("objects/"))
        .filter(|l| !holding.contains(l.name.as_str()))
        .map(|l| l.index)
        .collect();
    for l in lines.iter_mut().filter(|l| empty.contains(&l.index)) {
        l.left_out = Some(LeftOut::EmptyFolder);
    }
    empty.len()
}

/// The one-sentence reason kept on the transfer record.
pub fn reason(problems: &[Problem]) -> String {
    let parts: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    format!("the package was refused: {}", parts.join("; "))
}

/// The failure log written beside the upload: each failed check, how to fix it, and the
/// layout as it should not be and as it should.
pub fn failure_log(key: &str, transfer_id: &str, problems: &[Problem]) -> String {
    let mut out = format!(
        "Vellum could not accept {}.\nTransfer {transfer_id} was refused at intake; nothing was processed and the upload was not changed.\n\n{} check(s) failed:\n",
        escape_controls(key),
        problems.len()
    );
    for (n, p) in problems.iter().enumerate() {
        out.push_str(&format!(
            "\n{}. [{}] {}\n   How to fix: {}\n",
            n + 1,
            p.check,
            escape_controls(&p.message),
            escape_controls(&p.fix)
        ));
        if let Some((wrong, right)) = p.example {
            out.push_str("\n   WRONG:\n");
            for line in wrong.lines() {
                out.push_str(&format!("      {line}\n"));
            }
            out.push_str("\n   RIGHT:\n");
            for line in right.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
        if let Some(template) = &p.template {
            out.push_str("\n   metadata/metadata.csv:\n");
            for line in template.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    let wrapped = problems.iter().any(|p| p.example == Some((LAYOUT_WRONG, LAYOUT_RIGHT)));
    if problems.iter().any(|p| p.shows_layout) && !wrapped {
        out.push_str("\nThe layout Vellum expects:\n");
        for line in LAYOUT_RIGHT.lines() {
            out.push_str(&format!("   {line}\n"));
        }
    }
    out.push_str("\nWhen it is fixed, upload the package again (a new upload is a new transfer).\n");
    out
}

pub fn accepted_log(key: &str, transfer_id: &str, profile: &str, accepted: &Accepted) -> String {
    let mut out = format!(
        "Vellum accepted {}.\nAll intake checks passed: {} file(s), processing profile {profile}, identifier {}.\nTransfer id: {transfer_id}\nProcessing has only begun. The final answer comes beside the upload: a .success. log once the AIP is stored and verified, or a .failed. log saying why not.\n",
        escape_controls(key),
        accepted.files(),
        escape_controls(&accepted.identifiers.external_identifier().unwrap_or_else(|| "(none)".into()))
    );
    for note in &accepted.notes {
        out.push_str(&format!("Note: {}.\n", escape_controls(note)));
    }
    out
}

/// Where a bag package's tag files go in the AIP: kept as submission documentation.
pub fn bag_tag_path(name: &str) -> String {
    format!("submissionDocumentation/bag/{name}")
}

/// A package that is itself a BagIt bag: the bag is checked as a bag verifier would
/// (from its index and tag files: manifests complete both ways, Payload-Oxum, tag
/// manifests), and its payload (`data/`) as a package. Each file's digests are checked
/// against the manifests when the checksum stage reads it.
fn check_bag_package(listing: &Listing, profile: &Profile) -> Result<Accepted, Vec<Problem>> {
    let mut problems = check_bag(listing);
    let mut inner = Listing {
        metadata_csv: listing.metadata_csv.clone(),
        rights_csv: listing.rights_csv.clone(),
        supplied_manifests: listing.supplied_manifests.clone(),
        processing_mcp: listing.processing_mcp.clone(),
        notes: listing.notes.clone(),
        ..Default::default()
    };
    let mut stray = Vec::new();
    let processing_mcp = crate::intake::archive::PROCESSING_MCP;
    // A bag transfer is laid out as Archivematica lays one out: its payload is the
    // transfer, its top-level metadata/, logs/ and submissionDocumentation/ (tag folders to
    // BagIt) are the transfer's, and any other tag file or folder is the bag's own.
    let bag_transfer = profile.kind == PackageKind::Bag;
    let transfer_metadata = |n: &str| {
        bag_transfer
            && ["metadata", "logs", "submissionDocumentation"]
                .iter()
                .any(|t| n == *t || n.strip_prefix(t).is_some_and(|r| r.starts_with('/')))
    };
    let mut push_inner = |e: &crate::intake::archive::ListedEntry, name: &str| {
        let mut inner_entry = e.clone();
        inner_entry.name = name.to_string();
        let upload_name = listing.original_names.get(&e.index).unwrap_or(&e.name);
        inner.original_names.insert(e.index, upload_name.clone());
        inner.entries.push(inner_entry);
    };
    for e in &listing.entries {
        match e.name.strip_prefix("data/") {
            Some(rest) if !rest.is_empty() => push_inner(e, rest),
            Some(_) => {}
            None if transfer_metadata(&e.name) => push_inner(e, &e.name),
            None if crate::intake::archive::is_bag_tag_file(&e.name) || e.name == "data" => {}
            None if e.name == processing_mcp || bag_transfer => {}
            None => stray.push(e.name.clone()),
        }
    }
    inner.hidden_duplicates =
        listing.hidden_duplicates.iter().map(|d| d.strip_prefix("data/").unwrap_or(d).to_string()).collect();
    inner.overlapping = listing.overlapping.clone();
    if !stray.is_empty() {
        problems.push(Problem::new(
            "bag",
            format!("the bag has entries outside data/ that are not tag files: {}", some_of(&stray)),
            "move them into the bag's data/ folder (a bag tool does it), or leave them out",
        ));
    }
    // A bag transfer's payload is a standard transfer; a Wellcome bag's is a package.
    let inner = if profile.kind == PackageKind::Bag { placed_as_standard(inner) } else { inner };
    match check_plain_package(&inner, profile) {
        Ok(mut accepted) if problems.is_empty() => {
            // The tag files are kept (and a processing configuration beside them).
            let tag_file = |name: &str| {
                crate::intake::archive::is_bag_tag_file(name)
                    || (bag_transfer && !name.starts_with("data/") && !transfer_metadata(name))
            };
            for e in listing
                .entries
                .iter()
                .filter(|e| e.kind == EntryKind::File && (tag_file(&e.name) || e.name == processing_mcp))
            {
                let path = if e.name == processing_mcp { e.name.clone() } else { bag_tag_path(&e.name) };
                accepted.lines.push(ListingLine {
                    index: e.index,
                    name: listing.original_names.get(&e.index).unwrap_or(&e.name).clone(),
                    kind: e.kind,
                    size: e.size,
                    path: Some(path),
                    left_out: None,
                    at: e.at,
                });
            }
            accepted.lines.sort_by_key(|l| l.index);
            Ok(accepted)
        }
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

fn check_bag(listing: &Listing) -> Vec<Problem> {
    let mut problems = Vec::new();
    let bag = |message: String| {
        Problem::new("bag", message, "make the bag again with a bag tool (bagit-python, bagger), zip it and upload it")
    };
    let tags = &listing.bag_tags;
    let text = |name: &str| tags.get(name).map(|b| String::from_utf8_lossy(b).into_owned());
    if !text("bagit.txt").is_some_and(|t| t.contains("BagIt-Version:")) {
        problems.push(bag("bagit.txt has no BagIt-Version line".into()));
    }
    let payload: BTreeMap<&str, u64> = listing
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File && e.name.starts_with("data/"))
        .map(|e| (e.name.as_str(), e.size))
        .collect();
    let manifests: Vec<(&String, &Vec<u8>)> = tags.iter().filter(|(n, _)| n.starts_with("manifest-")).collect();
    if manifests.is_empty() {
        problems.push(bag("the bag has no payload manifest (manifest-<algorithm>.txt)".into()));
    }
    for (name, bytes) in manifests {
        let algorithm = name.trim_start_matches("manifest-").trim_end_matches(".txt");
        if !crate::analysis::fixity::ALGORITHMS.contains(&algorithm) {
            problems.push(bag(format!(
                "{name} uses {algorithm}, which Vellum cannot verify (it knows md5, sha1, sha256, sha512)"
            )));
            continue;
        }
        match crate::record::bagit::parse_manifest(&String::from_utf8_lossy(bytes)) {
            Err(e) => problems.push(bag(format!("{name} cannot be read: {e}"))),
            Ok(entries) => {
                let missing: Vec<String> =
                    entries.keys().filter(|p| !payload.contains_key(p.as_str())).cloned().collect();
                if !missing.is_empty() {
                    problems.push(bag(format!("{name} lists files that are not in the bag: {}", some_of(&missing))));
                }
                let unlisted: Vec<String> =
                    payload.keys().filter(|p| !entries.contains_key(**p)).map(|p| p.to_string()).collect();
                if !unlisted.is_empty() {
                    problems.push(bag(format!("these payload files are not in {name}: {}", some_of(&unlisted))));
                }
            }
        }
    }
    if let Some(info) = text("bag-info.txt") {
        if let Some(oxum) = info.lines().find_map(|l| l.strip_prefix("Payload-Oxum:")).map(str::trim) {
            let actual = format!("{}.{}", payload.values().sum::<u64>(), payload.len());
            if oxum != actual {
                problems.push(bag(format!(
                    "bag-info.txt's Payload-Oxum is {oxum}, but the payload is {actual} (bytes.files)"
                )));
            }
        }
    }
    for (name, bytes) in tags.iter().filter(|(n, _)| n.starts_with("tagmanifest-")) {
        let algorithm = name.trim_start_matches("tagmanifest-").trim_end_matches(".txt");
        let Ok(entries) = crate::record::bagit::parse_manifest(&String::from_utf8_lossy(bytes)) else {
            problems.push(bag(format!("{name} cannot be read")));
            continue;
        };
        for (path, want) in entries {
            let Some(content) = tags.get(&path) else {
                if !listing.entries.iter().any(|e| e.name == path) {
                    problems.push(bag(format!("{name} lists the tag file {path}, which is not in the bag")));
                }
                continue;
            };
            let Ok(digests) = crate::analysis::fixity::Digests::for_algorithms(&[algorithm]) else { continue };
            let got = digests.of_reader(&mut content.as_slice()).map(|(d, _)| d.get(algorithm).cloned()).ok().flatten();
            if got.as_deref() != Some(want.as_str()) {
                problems.push(bag(format!(
                    "the tag file {path} does not match {name}: it says {want}, the file's is {}",
                    got.unwrap_or_default()
                )));
            }
        }
    }
    problems
}
