//! What is inside an uploaded package, read without extracting it: a zip's central
//! directory through ranged reads, or a tar's headers in one streamed pass. Intake checks
//! the listing; extraction follows it entry by entry.

use std::io::{self, Read};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use crate::ports::ObjectStore;
use crate::ranged::RangedReader;

/// metadata.csv and rights.csv are small: anything larger is not one.
pub const MAX_CSV_BYTES: u64 = 1 << 20;
/// A supplied checksum file lists every file: allow for large packages.
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// The algorithm of a supplied checksum file's path (`metadata/checksum.md5` → `md5`).
pub fn manifest_algorithm(name: &str) -> Option<&str> {
    let algo = name.strip_prefix("metadata/checksum.")?;
    crate::stages::checksum::ALGORITHMS.contains(&algo).then_some(algo)
}

/// Whether intake reads this entry's content, and how much of it at most.
fn kept_limit(name: &str) -> Option<u64> {
    // A package that is a BagIt bag has its metadata under data/.
    let name = name.strip_prefix("data/").unwrap_or(name);
    if name == "metadata/metadata.csv" || name == "metadata/rights.csv" {
        Some(MAX_CSV_BYTES)
    } else if manifest_algorithm(name).is_some() || is_bag_tag_file(name) {
        Some(MAX_MANIFEST_BYTES)
    } else {
        None
    }
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
}

#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub entries: Vec<ListedEntry>,
    /// Names the archive holds more than once.
    pub duplicates: Vec<String>,
    pub metadata_csv: Option<Vec<u8>>,
    pub rights_csv: Option<Vec<u8>>,
    /// `metadata/checksum.<algorithm>` files, by algorithm.
    pub supplied_manifests: std::collections::BTreeMap<String, Vec<u8>>,
    /// A BagIt package's tag files (bagit.txt, bag-info.txt, manifests), by name.
    pub bag_tags: std::collections::BTreeMap<String, Vec<u8>>,
    /// Small files read while listing, by entry name, until `resolve` sorts them.
    pub(crate) kept: std::collections::BTreeMap<String, Vec<u8>>,
    /// Bytes read from the object store to make the listing.
    pub bytes_read: u64,
}

impl Listing {
    /// Keeps the content of one of the small metadata files intake reads.
    fn keep(&mut self, path: &str, bytes: Vec<u8>) {
        self.kept.insert(path.to_string(), bytes);
    }

    /// Sorts what was kept once the whole listing is known: a bag's metadata is under
    /// `data/`, an ordinary package's at the top.
    fn resolve(&mut self) {
        let kept = std::mem::take(&mut self.kept);
        let bag = kept.contains_key("bagit.txt");
        for (path, bytes) in kept {
            if is_bag_tag_file(&path) {
                self.bag_tags.insert(path, bytes);
                continue;
            }
            let inner =
                if bag { path.strip_prefix("data/") } else { Some(path.as_str()).filter(|p| !p.starts_with("data/")) };
            match inner {
                Some("metadata/metadata.csv") => self.metadata_csv = Some(bytes),
                Some("metadata/rights.csv") => self.rights_csv = Some(bytes),
                Some(other) => {
                    if let Some(algo) = manifest_algorithm(other) {
                        self.supplied_manifests.insert(algo.to_string(), bytes);
                    }
                }
                None => {}
            }
        }
    }

    /// Whether the package is itself a BagIt bag.
    pub fn is_bag(&self) -> bool {
        self.bag_tags.contains_key("bagit.txt") || self.entries.iter().any(|e| e.name == "bagit.txt")
    }
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

/// `\` read as a folder separator (old Windows tools write it), and a leading `./` (tar
/// writes it) dropped.
fn normalize_name(name: &str) -> String {
    let mut n = name.replace('\\', "/");
    while let Some(rest) = n.strip_prefix("./") {
        n = rest.to_string();
    }
    n
}

/// Lists a zip from its central directory, reading only the index and the two CSVs.
pub fn list_zip(store: Arc<dyn ObjectStore>, key: &str, size: u64) -> Result<Listing, ListError> {
    let reader = RangedReader::new(store.clone(), key, size, INDEX_CHUNK);
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| match e {
        zip::result::ZipError::Io(io) if io.kind() != io::ErrorKind::UnexpectedEof => ListError::Io(io),
        other => ListError::Unreadable(Unreadable(format!("it is not a readable zip file ({other})"))),
    })?;
    let mut listing = Listing::default();
    for i in 0..zip.len() {
        let entry = zip
            .by_index_data(i)
            .map_err(|e| ListError::Unreadable(Unreadable(format!("entry {i} of the zip cannot be read ({e})"))))?;
        let name = match entry.name() {
            Ok(n) => normalize_name(&n),
            Err(_) => normalize_name(&String::from_utf8_lossy(entry.name_raw())),
        };
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
        listing.entries.push(ListedEntry {
            index: i as u64,
            name,
            kind,
            size: entry.size(),
            compressed_size: entry.compressed_size(),
            encrypted: entry.encrypted(),
        });
    }
    if zip.has_duplicate_names() {
        let mut again = RangedReader::new(store, key, size, INDEX_CHUNK);
        listing.duplicates =
            duplicate_names_in_central_directory(&mut again, zip.central_directory_start()).map_err(ListError::Io)?;
    }
    let wanted: Vec<String> =
        listing.entries.iter().map(|e| e.name.clone()).filter(|n| kept_limit(n).is_some()).collect();
    for path in wanted {
        let Some(i) = zip.index_for_name(&path) else { continue };
        let limit = kept_limit(&path).unwrap_or(MAX_CSV_BYTES);
        let entry = zip
            .by_index(i)
            .map_err(|e| ListError::Unreadable(Unreadable(format!("{path} cannot be read from the zip ({e})"))))?;
        if entry.encrypted() || entry.size() > limit {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| ListError::Unreadable(Unreadable(format!("{path} cannot be read from the zip ({e})"))))?;
        listing.keep(&path, bytes);
    }
    listing.resolve();
    listing.bytes_read = zip.into_inner().bytes_fetched;
    Ok(listing)
}

/// The zip reader keeps one entry per name, so duplicates are found in the raw central
/// directory, which is read again only in this rare case.
fn duplicate_names_in_central_directory(reader: &mut RangedReader, start: u64) -> io::Result<Vec<String>> {
    use std::io::{Seek, SeekFrom};
    let end = reader.size();
    reader.seek(SeekFrom::Start(start))?;
    let mut cd = Vec::new();
    reader.take(end.saturating_sub(start)).read_to_end(&mut cd)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut dups = std::collections::BTreeSet::new();
    let mut pos = 0usize;
    while pos + 46 <= cd.len() && cd[pos..pos + 4] == [0x50, 0x4b, 0x01, 0x02] {
        let u16_at = |o: usize| u16::from_le_bytes([cd[pos + o], cd[pos + o + 1]]) as usize;
        let (name_len, extra_len, comment_len) = (u16_at(28), u16_at(30), u16_at(32));
        let Some(raw) = cd.get(pos + 46..pos + 46 + name_len) else {
            break;
        };
        let name = normalize_name(&String::from_utf8_lossy(raw));
        if !seen.insert(name.clone()) {
            dups.insert(name);
        }
        pos += 46 + name_len + extra_len + comment_len;
    }
    Ok(dups.into_iter().collect())
}

/// A tar (optionally gzipped) read as a stream from the object store.
pub fn open_tar(
    store: &dyn ObjectStore,
    key: &str,
    kind: ArchiveKind,
) -> io::Result<tar::Archive<Box<dyn Read + Send>>> {
    let raw = store.get(key).map_err(|e| io::Error::other(e.to_string()))?;
    let reader: Box<dyn Read + Send> = match kind {
        ArchiveKind::TarGz => Box::new(MultiGzDecoder::new(raw)),
        _ => raw,
    };
    Ok(tar::Archive::new(reader))
}

fn tar_kind(t: tar::EntryType) -> EntryKind {
    use tar::EntryType as T;
    match t {
        T::Regular | T::Continuous => EntryKind::File,
        T::Directory => EntryKind::Directory,
        T::Symlink | T::Link => EntryKind::Link,
        _ => EntryKind::Special,
    }
}

/// Lists a tar in one streamed pass over its headers (a compressed tar is decompressed once).
pub fn list_tar(store: &dyn ObjectStore, key: &str, kind: ArchiveKind) -> Result<Listing, ListError> {
    let unreadable =
        |e: io::Error| ListError::Unreadable(Unreadable(format!("it is not a readable tar archive ({e})")));
    let mut archive = open_tar(store, key, kind).map_err(ListError::Io)?;
    let mut listing = Listing::default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, entry) in archive.entries().map_err(unreadable)?.enumerate() {
        let mut entry = entry.map_err(unreadable)?;
        let name = normalize_name(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = tar_kind(entry.header().entry_type());
        let size = entry.size();
        let logical = name.trim_end_matches('/').to_string();
        if !seen.insert(logical.clone()) {
            listing.duplicates.push(name.clone());
        }
        if let Some(limit) = kept_limit(&logical).filter(|&l| kind == EntryKind::File && size <= l) {
            let mut bytes = Vec::with_capacity(size.min(limit) as usize);
            entry.read_to_end(&mut bytes).map_err(unreadable)?;
            listing.keep(&logical, bytes);
        }
        listing.entries.push(ListedEntry {
            index: i as u64,
            name,
            kind,
            size,
            compressed_size: size,
            encrypted: false,
        });
    }
    listing.resolve();
    Ok(listing)
}
