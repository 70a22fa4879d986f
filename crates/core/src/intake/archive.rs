//! What is inside an uploaded package, read without extracting it: a zip's central
//! directory through ranged reads, or a tar's headers in one streamed pass. Intake checks
//! the listing; extraction follows it entry by entry.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::profile::PackageKind;
use crate::io::ranged::RangedReader;
use crate::io::tar_sparse::pax_sparse;
pub use crate::io::tar_sparse::PaxSparse;
use crate::io::tar_stream::{TarPosition, TarStream};
use crate::io::zip_entry::ZipAt;
use crate::ports::ObjectStore;

/// metadata.csv and rights.csv are small: anything larger is not one.
pub const MAX_CSV_BYTES: u64 = 1 << 20;
/// A supplied checksum file lists every file: allow for large packages.
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// The algorithm of a supplied checksum file's path (`metadata/checksum.md5` → `md5`).
pub fn manifest_algorithm(name: &str) -> Option<&str> {
    let algo = name.strip_prefix("metadata/checksum.")?;
    crate::analysis::fixity::ALGORITHMS.contains(&algo).then_some(algo)
}

pub use crate::intake::layout::PROCESSING_MCP;

/// Whether intake reads this entry's content, and how much of it at most. The package's
/// own names may sit under one wrapping folder and a bag's `data/`: which of them count is
/// decided once the listing is whole (`Listing::arranged`).
fn kept_limit(name: &str) -> Option<u64> {
    // A folder the layout names (objects/, …) is no wrapper: a file of the package is not
    // read for what its name looks like.
    let below_wrapper = name
        .split_once('/')
        .filter(|(top, _)| !["objects", "metadata", "logs", "submissionDocumentation", "data"].contains(top))
        .map(|(_, rest)| rest);
    [Some(name), below_wrapper].into_iter().flatten().find_map(|n| {
        if is_bag_tag_file(n) {
            return Some(MAX_MANIFEST_BYTES);
        }
        let n = n.strip_prefix("data/").unwrap_or(n);
        if n == "metadata/metadata.csv" || n == "metadata/rights.csv" || n == PROCESSING_MCP {
            Some(MAX_CSV_BYTES)
        } else if manifest_algorithm(n).is_some() {
            Some(MAX_MANIFEST_BYTES)
        } else {
            None
        }
    })
}

/// A tag file at the top of a BagIt bag: bagit.txt, bag-info.txt, (tag)manifests.
pub fn is_bag_tag_file(name: &str) -> bool {
    !name.contains('/')
        && (name == "bagit.txt"
            || name == "bag-info.txt"
            || ((name.starts_with("manifest-") || name.starts_with("tagmanifest-")) && name.ends_with(".txt")))
}
/// Ranged reads of a zip index fetch this much at a time.
const INDEX_CHUNK: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
}

impl ArchiveKind {
    pub fn of_key(key: &str) -> Option<Self> {
        let k = key.to_ascii_lowercase();
        if k.ends_with(".zip") {
            Some(Self::Zip)
        } else if k.ends_with(".tar.gz") || k.ends_with(".tgz") {
            Some(Self::TarGz)
        } else if k.ends_with(".tar") {
            Some(Self::Tar)
        } else {
            None
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Zip => "a zip",
            Self::Tar => "a plain (uncompressed) tar",
            Self::TarGz => "a gzipped tar",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Directory,
    Link,
    /// Devices, pipes and other things that are no file.
    Special,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedEntry {
    /// The entry's position in the archive (zip central directory order, tar stream order).
    pub index: u64,
    /// The name as the archive gives it, decoded (UTF-8, or CP437 for zips without the
    /// UTF-8 flag), with `\` read as a folder separator.
    pub name: String,
    pub kind: EntryKind,
    /// Declared uncompressed size.
    pub size: u64,
    /// Bytes the entry takes in the archive (zip); the size for tar.
    pub compressed_size: u64,
    pub encrypted: bool,
    /// The zip compression method (0 for stored, and for tar members).
    #[serde(default)]
    pub method: u16,
    /// Where a zip entry lies, when it can be opened there alone (not encrypted; stored or
    /// deflated): what lets extraction spread a zip over many invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<ZipAt>,
}

#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub entries: Vec<ListedEntry>,
    /// What the upload was read as.
    pub kind: Option<ArchiveKind>,
    /// Things worth telling the archivist that are no problem (the name said zip, the bytes
    /// said tar).
    pub notes: Vec<String>,
    /// Entries whose bytes in the archive cross another entry's: one piece of data counted
    /// as several files, as zip bombs do.
    pub overlapping: Vec<String>,
    /// Every non-folder name of a zip's raw central directory, when the zip reader found
    /// names it holds more than once (it keeps only one entry per name).
    pub hidden_duplicates: Vec<String>,
    pub metadata_csv: Option<Vec<u8>>,
    pub rights_csv: Option<Vec<u8>>,
    /// `metadata/checksum.<algorithm>` files, by algorithm.
    pub supplied_manifests: BTreeMap<String, Vec<u8>>,
    /// A BagIt package's tag files (bagit.txt, bag-info.txt, manifests), by name.
    pub bag_tags: BTreeMap<String, Vec<u8>>,
    /// The transfer's own `processingMCP.xml`.
    pub processing_mcp: Option<Vec<u8>>,
    /// The folder `arranged` left behind, if the upload had one around the transfer.
    pub wrapper: Option<String>,
    /// Entries renamed by `arranged` (a wrapping folder left behind): the name each had in
    /// the upload, by index, so the record keeps it.
    pub original_names: BTreeMap<u64, String>,
    /// Small files read while listing, by entry name, until `arranged` sorts them.
    pub(crate) kept: BTreeMap<String, Vec<u8>>,
    /// Bytes read from the object store to make the listing.
    pub bytes_read: u64,
}

impl Listing {
    /// Keeps the content of one of the small metadata files intake reads.
    fn keep(&mut self, path: &str, bytes: Vec<u8>) {
        self.kept.insert(path.to_string(), bytes);
    }

    /// The listing as the profile's kind of package lays it out, once it is whole: an
    /// Archivematica transfer's one wrapping folder left behind, and the small files intake
    /// reads sorted (a bag's metadata is under `data/`, an ordinary package's at the top).
    pub fn arranged(mut self, kind: PackageKind) -> Self {
        if let Some(folder) = self.wrapping_folder(kind) {
            self.unwrap(&folder);
            self.wrapper = Some(folder);
        }
        self.resolve(kind);
        self
    }

    /// The one folder an Archivematica transfer was zipped inside, if it was: every entry
    /// (Mac metadata aside) under it — for a bag, with `bagit.txt` in it. As Archivematica
    /// takes a zipped transfer, the folder is the transfer (its name stays on record as each
    /// file's original name); one named as a part of the layout (`objects/`, `data/`, …) is
    /// that part, not a wrapper.
    fn wrapping_folder(&self, kind: PackageKind) -> Option<String> {
        if !kind.is_archivematica_transfer() {
            return None;
        }
        let mut names =
            self.entries.iter().map(|e| e.name.as_str()).filter(|n| *n != "__MACOSX" && !n.starts_with("__MACOSX/"));
        let first = names.next()?;
        let folder = first.split('/').next()?.to_string();
        let under = |n: &str| n == folder || n.strip_prefix(folder.as_str()).is_some_and(|r| r.starts_with('/'));
        if !names.all(under) || !under(first) {
            return None;
        }
        // A folder: something is in it, and nothing of that name is anything but a folder.
        let prefix = format!("{folder}/");
        let is_folder = self.entries.iter().any(|e| e.name.starts_with(&prefix))
            && self.entries.iter().all(|e| e.name != folder || e.kind == EntryKind::Directory);
        let bagit = format!("{folder}/bagit.txt");
        let layout = is_folder && (kind != PackageKind::Bag || self.entries.iter().any(|e| e.name == bagit));
        let reserved = ["objects", "metadata", "logs", "submissionDocumentation", "data"].contains(&folder.as_str());
        (layout && !reserved).then_some(folder)
    }

    /// Leaves the wrapping folder behind: its own entry goes, every name under it loses it.
    fn unwrap(&mut self, folder: &str) {
        let prefix = format!("{folder}/");
        let strip = |n: &str| n.strip_prefix(prefix.as_str()).map(str::to_string);
        self.entries.retain(|e| e.name != folder);
        for e in &mut self.entries {
            if let Some(inner) = strip(&e.name) {
                self.original_names.insert(e.index, std::mem::replace(&mut e.name, inner));
            }
        }
        for list in [&mut self.overlapping, &mut self.hidden_duplicates] {
            for n in list.iter_mut() {
                if let Some(inner) = strip(n) {
                    *n = inner;
                }
            }
        }
        self.kept = std::mem::take(&mut self.kept).into_iter().filter_map(|(n, b)| Some((strip(&n)?, b))).collect();
    }

    /// Sorts what was kept: a bag's tag files, its metadata under `data/`; an ordinary
    /// package's metadata at the top; the processing configuration at the top (or in a
    /// bag's payload).
    fn resolve(&mut self, kind: PackageKind) {
        let kept = std::mem::take(&mut self.kept);
        let bag = match kind {
            PackageKind::Bag => true,
            PackageKind::Standard => false,
            PackageKind::Catalogued | PackageKind::Accession => kept.contains_key("bagit.txt"),
        };
        for (path, bytes) in kept {
            if is_bag_tag_file(&path) {
                if kind != PackageKind::Standard {
                    self.bag_tags.insert(path, bytes);
                }
                continue;
            }
            if path == PROCESSING_MCP {
                self.processing_mcp = Some(bytes);
                continue;
            }
            // A bag transfer's metadata may be a tag folder at its top, as Archivematica's are.
            let inner = match (bag, kind) {
                (true, PackageKind::Bag) => Some(path.strip_prefix("data/").unwrap_or(&path)),
                (true, _) => path.strip_prefix("data/"),
                (false, _) => Some(path.as_str()).filter(|p| !p.starts_with("data/")),
            };
            match inner {
                Some("metadata/metadata.csv") => self.metadata_csv = Some(bytes),
                Some("metadata/rights.csv") => self.rights_csv = Some(bytes),
                Some(PROCESSING_MCP) => self.processing_mcp = Some(bytes),
                Some(other) => {
                    if let Some(algo) = manifest_algorithm(other) {
                        self.supplied_manifests.insert(algo.to_string(), bytes);
                    }
                }
                None => {}
            }
        }
    }

    /// Paths the package holds more than once, once normalised (`objects\a.txt` and
    /// `objects/a.txt`, `objects/./a.txt`, a UTF-8 and a code page 437 spelling).
    pub fn duplicates(&self) -> Vec<String> {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| e.kind != EntryKind::Directory) {
            *count.entry(e.name.as_str()).or_default() += 1;
        }
        for n in &self.hidden_duplicates {
            *count.entry(n.as_str()).or_default() += 1;
        }
        // A hidden-duplicate listing names every entry again, so twice is once.
        let once = if self.hidden_duplicates.is_empty() { 1 } else { 2 };
        count.into_iter().filter(|(_, n)| *n > once).map(|(k, _)| k.to_string()).collect()
    }

    /// Whether the package is itself a BagIt bag (once arranged).
    pub fn is_bag(&self) -> bool {
        self.bag_tags.contains_key("bagit.txt") || self.entries.iter().any(|e| e.name == "bagit.txt")
    }
}

/// Why an entry is not preserved as content, though the package holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOut {
    /// A file on the profile's list of desktop clutter (`.DS_Store`, `Thumbs.db`, …).
    Clutter,
    /// A folder with no file in it: a bag has no place for it.
    EmptyFolder,
    /// Finder's `__MACOSX/` entries and AppleDouble `._name` files beside `name`.
    MacMetadata,
}

impl LeftOut {
    pub fn why(self) -> &'static str {
        match self {
            Self::Clutter => "desktop clutter, on the processing profile's list of files not preserved",
            Self::EmptyFolder => "an empty folder: a BagIt AIP holds files, not folders",
            Self::MacMetadata => {
                "Mac metadata (a __MACOSX/ entry or an AppleDouble ._ file: a Mac's resource fork and Finder information, not part of the package)"
            }
        }
    }
}

/// One line per archive entry to be extracted or recorded, in archive order: what it is and
/// where it goes. Intake writes it; extraction follows it, so every invocation extracts to
/// the same paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingLine {
    pub index: u64,
    /// The entry's name, decoded and normalised: the original name on record.
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// The sanitized path, for files that are extracted.
    pub path: Option<String>,
    /// Set for entries that are recorded but not extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<LeftOut>,
    /// Where a zip entry lies (see `ListedEntry::at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<ZipAt>,
}

/// Why a package could not be listed: it is not an archive of its kind, or it is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// A transient failure (the store) or an unreadable package.
#[derive(Debug)]
pub enum ListError {
    Unreadable(Unreadable),
    Io(io::Error),
}

/// A zip entry's name as one path: `\` read as a folder separator (Windows tools write it),
/// empty and `.` steps dropped (`objects//a`, `./objects/./a`), no trailing `/`. A leading
/// `/` and `..` steps are kept, so that intake can refuse them.
pub fn normalize_name(name: &str) -> String {
    normalize_path(&name.replace('\\', "/"))
}

/// A tar member's name as one path, as `normalize_name` but for the backslash: in a tar only
/// `/` separates folders, and a `\` is part of a name (sanitized later, its original kept).
pub fn normalize_tar_name(name: &str) -> String {
    normalize_path(name)
}

fn normalize_path(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let joined = parts.join("/");
    if name.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// A name from raw bytes that should be UTF-8: kept as it is when it is; otherwise each
/// byte that is not UTF-8 is written `%XX`, so no decoding is guessed and the original
/// bytes can always be told from the name.
pub fn decode_utf8_name(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Code page 437, the zip format's encoding for names without the UTF-8 flag: its upper half.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

pub fn decode_cp437(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| if b < 0x80 { b as char } else { CP437_HIGH.chars().nth((b - 0x80) as usize).unwrap_or('\u{fffd}') })
        .collect()
}

/// A zip entry's name: UTF-8 whenever its bytes are UTF-8 (flagged or not: Info-ZIP and
/// macOS write UTF-8 without the flag, and code page 437 text with accents is never valid
/// UTF-8); otherwise as the zip reader decodes an unflagged name (code page 437, or the
/// Unicode path extra field), and failing that the bytes percent-encoded.
fn zip_name(raw: &[u8], legacy: impl FnOnce() -> Option<String>) -> String {
    match std::str::from_utf8(raw) {
        Ok(name) => name.to_string(),
        Err(_) => legacy().unwrap_or_else(|| decode_utf8_name(raw)),
    }
}

/// Whether Vellum reads a zip compression method.
#[allow(deprecated)]
pub fn zip_method_readable(method: u16) -> bool {
    let m = zip::CompressionMethod::from_u16(method);
    !matches!(m, zip::CompressionMethod::Unsupported(_))
}

/// A compression method's name, for messages.
pub fn zip_method_name(method: u16) -> String {
    match method {
        98 => "PPMd".into(),
        99 => "AES encryption".into(),
        _ => {
            let name = zip::CompressionMethod::name_from_u16(method);
            if name.is_empty() || name.eq_ignore_ascii_case("unknown") {
                format!("method {method}")
            } else {
                format!("{name} (method {method})")
            }
        }
    }
}

/// The smallest number of bytes a zip entry takes at its local header: the header itself
/// and its data. Two entries whose spans so counted cross share bytes.
const LOCAL_HEADER_BYTES: u64 = 30;

/// An I/O error that is the store's (it did not answer), not the archive's: the listing is
/// tried again, the package is not refused for it.
fn is_store_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<crate::ports::PortError>())
}

/// Lists a zip from its central directory, reading only the index and the small metadata
/// files.
#[allow(deprecated)]
pub fn list_zip(store: Arc<dyn ObjectStore>, key: &str, size: u64) -> Result<Listing, ListError> {
    let reader = RangedReader::new(store.clone(), key, size, INDEX_CHUNK);
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| match e {
        zip::result::ZipError::Io(io) if io.kind() != io::ErrorKind::UnexpectedEof => ListError::Io(io),
        other => ListError::Unreadable(Unreadable(zip_error_words(&other))),
    })?;
    let mut listing = Listing { kind: Some(ArchiveKind::Zip), ..Default::default() };
    let mut spans = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_data(i).map_err(|e| match e {
            zip::result::ZipError::Io(io) if is_store_error(&io) => ListError::Io(io),
            e => ListError::Unreadable(Unreadable(format!("entry {i} of the zip cannot be read ({e})"))),
        })?;
        let name = normalize_name(&zip_name(entry.name_raw(), || entry.name().ok().map(|n| n.to_string())));
        let kind = if entry.is_symlink() {
            EntryKind::Link
        } else if entry.is_dir() {
            EntryKind::Directory
        } else if entry.unix_mode().is_some_and(|m| {
            let t = m & 0o170000;
            t != 0 && t != 0o100000 && t != 0o040000
        }) {
            EntryKind::Special
        } else {
            EntryKind::File
        };
        spans.push((entry.header_start(), entry.header_start() + LOCAL_HEADER_BYTES + entry.compressed_size(), i));
        listing.entries.push(ListedEntry {
            index: i as u64,
            name,
            kind,
            size: entry.size(),
            compressed_size: entry.compressed_size(),
            encrypted: entry.encrypted(),
            method: entry.compression().to_u16(),
            at: (!entry.encrypted() && ZipAt::readable(entry.compression().to_u16())).then(|| ZipAt {
                header: entry.header_start(),
                compressed: entry.compressed_size(),
                method: entry.compression().to_u16(),
                crc32: entry.crc32(),
                dos_time: entry.last_modified().map(|t| [t.datepart(), t.timepart()]),
            }),
        });
    }
    listing.overlapping = overlapping(&mut spans).into_iter().map(|i| listing.entries[i].name.clone()).collect();
    if zip.has_duplicate_names() {
        // The zip reader keeps one entry per name: the others are found in the raw
        // central directory, which is read again only in this rare case.
        let mut again = RangedReader::new(store, key, size, INDEX_CHUNK);
        listing.hidden_duplicates =
            names_in_central_directory(&mut again, zip.central_directory_start()).map_err(ListError::Io)?;
    }
    for i in 0..listing.entries.len() {
        let e = &listing.entries[i];
        let Some(limit) = kept_limit(&e.name).filter(|_| e.kind == EntryKind::File) else { continue };
        if e.encrypted || e.size > limit || !zip_method_readable(e.method) {
            continue;
        }
        let path = e.name.clone();
        let entry = zip.by_index(i).map_err(|e| match e {
            zip::result::ZipError::Io(io) if is_store_error(&io) => ListError::Io(io),
            e => ListError::Unreadable(Unreadable(format!("{path} cannot be read from the zip ({e})"))),
        })?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.take(limit).read_to_end(&mut bytes).map_err(|e| {
            if is_store_error(&e) {
                ListError::Io(e)
            } else {
                ListError::Unreadable(Unreadable(format!("{path} cannot be read from the zip ({e})")))
            }
        })?;
        listing.keep(&path, bytes);
    }
    listing.bytes_read = zip.into_inner().bytes_fetched;
    Ok(listing)
}

/// The zip reader's errors, in words: "EOCD" means nothing to an archivist.
fn zip_error_words(e: &zip::result::ZipError) -> String {
    let text = e.to_string();
    if text.contains("end of central directory") || text.contains("EOCD") || text.contains("Invalid zip header") {
        "the end of the zip is missing: the upload was cut short, or this is not a zip".to_string()
    } else {
        format!("it is not a readable zip file ({text})")
    }
}

/// The entries (by position) whose spans in the archive cross another's.
fn overlapping(spans: &mut [(u64, u64, usize)]) -> Vec<usize> {
    spans.sort_unstable();
    let mut found = std::collections::BTreeSet::new();
    // The entry reaching furthest so far: any later start before its end crosses it.
    let mut furthest: Option<(u64, usize)> = None;
    for &(start, end, i) in spans.iter() {
        if let Some((reach, j)) = furthest {
            if start < reach {
                found.insert(i);
                found.insert(j);
            }
        }
        if furthest.is_none_or(|(reach, _)| end > reach) {
            furthest = Some((end, i));
        }
    }
    found.into_iter().collect()
}

/// Every name in the raw central directory, decoded as the zip reader decodes them (UTF-8
/// when the entry says so, code page 437 otherwise) and normalised.
fn names_in_central_directory(reader: &mut RangedReader, start: u64) -> io::Result<Vec<String>> {
    use std::io::{Seek, SeekFrom};
    let end = reader.size();
    reader.seek(SeekFrom::Start(start))?;
    let mut cd = Vec::new();
    reader.take(end.saturating_sub(start)).read_to_end(&mut cd)?;
    let mut names = Vec::new();
    let mut pos = 0usize;
    while pos + 46 <= cd.len() && cd[pos..pos + 4] == [0x50, 0x4b, 0x01, 0x02] {
        let u16_at = |o: usize| u16::from_le_bytes([cd[pos + o], cd[pos + o + 1]]) as usize;
        let (flags, name_len, extra_len, comment_len) = (u16_at(8), u16_at(28), u16_at(30), u16_at(32));
        let Some(raw) = cd.get(pos + 46..pos + 46 + name_len) else {
            break;
        };
        let decoded = zip_name(raw, || (flags & (1 << 11) == 0).then(|| decode_cp437(raw)));
        if !decoded.ends_with('/') && !decoded.ends_with('\\') {
            names.push(normalize_name(&decoded));
        }
        pos += 46 + name_len + extra_len + comment_len;
    }
    Ok(names)
}

/// What an upload is, from its first bytes rather than its name: a `.tgz` that is a plain
/// tar, or a `.tar` that is gzipped, is read as what it is.
pub fn detect_kind(store: &dyn ObjectStore, key: &str, size: u64) -> Result<ArchiveKind, ListError> {
    let head = store.get_range(key, 0, size.min(512)).map_err(|e| ListError::Io(io::Error::other(e.to_string())))?;
    let named = ArchiveKind::of_key(key);
    let refuse = |what: &str| {
        Err(ListError::Unreadable(Unreadable(format!(
            "it is {what}, which Vellum does not read: make a .zip (or a .tar.gz) of the package instead"
        ))))
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(ArchiveKind::TarGz)
    } else if head.get(257..262) == Some(b"ustar") {
        Ok(ArchiveKind::Tar)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") || head.starts_with(b"PK\x07\x08") {
        Ok(ArchiveKind::Zip)
    } else if head.starts_with(b"BZh") {
        refuse("compressed with bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        refuse("compressed with xz")
    } else if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        refuse("a 7-Zip (.7z) archive")
    } else if head.starts_with(b"Rar!") {
        refuse("a RAR archive")
    } else {
        // A zip may start with anything (a self-extractor's program); an old tar has no magic.
        named.ok_or_else(|| ListError::Unreadable(Unreadable("it is not an archive Vellum reads".into())))
    }
}

/// Lists an upload of whatever kind its bytes say it is; notes where its name said otherwise.
pub fn list(store: Arc<dyn ObjectStore>, key: &str, size: u64) -> Result<Listing, ListError> {
    let kind = detect_kind(store.as_ref(), key, size)?;
    let mut listing = match kind {
        ArchiveKind::Zip => list_zip(store, key, size)?,
        ArchiveKind::Tar | ArchiveKind::TarGz => list_tar(store, key, size, kind)?,
    };
    listing.notes.extend(kind_note(key, kind));
    Ok(listing)
}

/// What to tell the archivist when the upload's name says one kind and its bytes another.
pub fn kind_note(key: &str, kind: ArchiveKind) -> Option<String> {
    ArchiveKind::of_key(key).filter(|&n| n != kind).map(|named| {
        format!(
            "the upload is named as {} but its content is {}: it was read as {}",
            named.describe(),
            kind.describe(),
            kind.describe()
        )
    })
}

fn tar_kind(t: tar::EntryType) -> EntryKind {
    use tar::EntryType as T;
    match t {
        // GNU sparse members are expanded by the tar reader itself.
        T::Regular | T::Continuous | T::GNUSparse => EntryKind::File,
        T::Directory => EntryKind::Directory,
        T::Symlink | T::Link => EntryKind::Link,
        _ => EntryKind::Special,
    }
}

/// One tar member as the package means it: a PAX sparse member under its real name and size.
pub struct TarMember {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    pub sparse: Option<PaxSparse>,
}

/// Reads a member's header (and PAX records) into what it stands for.
pub fn tar_member<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<TarMember> {
    let sparse = pax_sparse(entry)?;
    let raw = match &sparse {
        Some(s) => s.name.clone().unwrap_or_else(|| entry.path_bytes().into_owned()),
        None => entry.path_bytes().into_owned(),
    };
    Ok(TarMember {
        name: normalize_tar_name(&decode_utf8_name(&raw)),
        kind: tar_kind(entry.header().entry_type()),
        size: sparse.as_ref().map_or(entry.size(), |s| s.real_size),
        sparse,
    })
}

/// A tar's listing as far as one invocation got: the entries and kept files so far, and
/// where the next invocation goes on (None once the tar is listed to its end).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarListingPart {
    pub entries: Vec<ListedEntry>,
    /// The small metadata files read on the way, by entry name, hex.
    pub kept: BTreeMap<String, String>,
    pub next: Option<TarPosition>,
}

/// Lists a tar in one streamed pass over its headers (a compressed tar is decompressed
/// once), from `from` on, until the end or until `should_yield` says time is up after an
/// entry (and a position to go on from is known).
pub fn list_tar_from(
    store: Arc<dyn ObjectStore>,
    key: &str,
    size: u64,
    kind: ArchiveKind,
    from: Option<&TarPosition>,
    should_yield: &dyn Fn() -> bool,
) -> Result<TarListingPart, ListError> {
    let unreadable = |e: io::Error| {
        if is_store_error(&e) {
            ListError::Io(e)
        } else {
            ListError::Unreadable(Unreadable(format!("it is not a readable tar archive ({e})")))
        }
    };
    let mut stream =
        TarStream::open(store, key, size, kind == ArchiveKind::TarGz, from).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => unreadable(e),
            _ => ListError::Io(e),
        })?;
    let first = stream.marks.first_entry;
    let mut part = TarListingPart::default();
    let entries = stream.archive.entries().map_err(unreadable)?;
    for (index, entry) in (first..).zip(entries) {
        let mut entry = entry.map_err(unreadable)?;
        let member = tar_member(&mut entry).map_err(unreadable)?;
        if let Some(limit) = kept_limit(&member.name)
            .filter(|&l| member.kind == EntryKind::File && member.sparse.is_none() && member.size <= l)
        {
            let mut bytes = Vec::with_capacity(member.size.min(limit) as usize);
            entry.read_to_end(&mut bytes).map_err(unreadable)?;
            part.kept.insert(member.name.clone(), hex::encode(bytes));
        }
        part.entries.push(ListedEntry {
            index,
            name: member.name,
            kind: member.kind,
            size: member.size,
            compressed_size: entry.size(),
            encrypted: false,
            method: 0,
            at: None,
        });
        if should_yield() {
            // Read past the entry's data now, so that the position found is near its end.
            io::copy(&mut entry, &mut io::sink()).map_err(unreadable)?;
            if let Some(next) = stream.marks.position_after(index, &entry) {
                part.next = Some(next);
                return Ok(part);
            }
        }
    }
    Ok(part)
}

impl Listing {
    /// The listing of a tar listed in parts, in order.
    pub fn from_tar_parts(
        kind: ArchiveKind,
        parts: impl IntoIterator<Item = TarListingPart>,
    ) -> Result<Self, ListError> {
        let mut listing = Listing { kind: Some(kind), ..Default::default() };
        for part in parts {
            listing.entries.extend(part.entries);
            for (name, bytes) in part.kept {
                let bytes = hex::decode(bytes)
                    .map_err(|e| ListError::Io(io::Error::other(format!("a listing part is damaged: {e}"))))?;
                listing.keep(&name, bytes);
            }
        }
        Ok(listing)
    }
}

/// Lists a tar in one go.
pub fn list_tar(store: Arc<dyn ObjectStore>, key: &str, size: u64, kind: ArchiveKind) -> Result<Listing, ListError> {
    let part = list_tar_from(store, key, size, kind, None, &|| false)?;
    Listing::from_tar_parts(kind, [part])
}
