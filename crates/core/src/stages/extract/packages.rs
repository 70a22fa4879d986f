//! Packages inside packages ("Extract packages"): an archive among a batch's originals — a
//! `.zip`, `.tar`, `.tar.gz`, `.tgz` or `.7z` whose bytes are what its name says (a `.docx` or an
//! `.epub` is a zip too, and is kept whole) — is unpacked beside itself into a folder
//! named after it and its UUID (`objects/mail.zip` → `objects/mail-<uuid>/`), under intake's
//! rules: only regular files, no path that leaves the folder, names sanitized, and the
//! profile's limits on entries and bytes (all the batch's archives together), no entries sharing their bytes. Each file taken out joins the
//! batch as an original (its `source` names its container) with an `unpacking` event naming
//! the container, and goes through every per-file stage; archives inside are unpacked in turn
//! to the profile's depth. The container is kept. An archive that breaks a rule, or cannot be
//! read, is kept as it is and gets an `unpacking` event saying why.

use std::io::{self, Read, Write};

use crate::config::profile::Profile;
use crate::error::StageResult;
use crate::intake::sanitize::{sanitize_component, MAX_NAME_BYTES};
use crate::io::ranged::RangedReader;
use crate::model::{by_vellum, derived_id, EventOutcome, EventType, File, FileUse, PremisEvent, Transfer};
use crate::record::keys::{key_of, object_key};

use super::Extract;

/// Extracted files are listed in their batch after its entries: their entry index is this
/// with bits of their UUID (copies and transcriptions add 2^62 and more).
const MEMBER_ENTRIES: u64 = 1 << 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zip,
    Tar,
    TarGz,
    SevenZip,
}

impl Kind {
    /// The PRONOM format an `extraction` rule names to have this kind unpacked.
    fn puid(self) -> &'static str {
        match self {
            Kind::Zip => "x-fmt/263",
            Kind::Tar => "x-fmt/265",
            Kind::TarGz => "x-fmt/266",
            Kind::SevenZip => "fmt/484",
        }
    }
}

/// Whether the name is a package's: `.zip`, `.tar`, `.tar.gz`, `.tgz`, `.7z`, in any case.
fn named_as_package(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [".zip", ".tar", ".tar.gz", ".tgz", ".7z"].iter().any(|e| name.ends_with(e))
}

/// A 7z archive's signature header starts with these six bytes.
const SEVEN_ZIP_MAGIC: &[u8] = b"7z\xBC\xAF\x27\x1C";

/// What a 7z decoder may hold in memory (dictionary, header buffers): 7-Zip's "ultra" level
/// uses 64 MiB; an archive that asks for more is kept as it is, not unpacked.
const SEVEN_ZIP_MEMORY_KIB: usize = 256 * 1024;

/// What the archive is, by its name and its first bytes (for a gzip, the first bytes of what
/// it holds): both must say it. Formats are identified only after extraction, so the name
/// decides which zips are packages.
fn kind_of(name: &str, head: &[u8]) -> Option<Kind> {
    let name = name.to_ascii_lowercase();
    let is_tar = |block: &[u8]| block.len() >= 262 && &block[257..262] == b"ustar";
    if name.ends_with(".zip") && head.starts_with(b"PK\x03\x04") {
        Some(Kind::Zip)
    } else if (name.ends_with(".tar.gz") || name.ends_with(".tgz")) && head.starts_with(&[0x1f, 0x8b]) {
        let mut block = Vec::new();
        let _ = flate2::read::MultiGzDecoder::new(head).take(512).read_to_end(&mut block);
        is_tar(&block).then_some(Kind::TarGz)
    } else if name.ends_with(".tar") && is_tar(head) {
        Some(Kind::Tar)
    } else if name.ends_with(".7z") && head.starts_with(SEVEN_ZIP_MAGIC) {
        Some(Kind::SevenZip)
    } else {
        None
    }
}

/// Why an archive was kept as it is.
struct Kept(String);

/// Unpacks the archives among `files` (and the archives inside them, to the profile's depth),
/// adding what they hold to `files` and `events`.
pub(super) fn unpack(
    p: &Extract<'_>,
    transfer: &Transfer,
    profile: &Profile,
    files: &mut Vec<File>,
    events: &mut Vec<PremisEvent>,
) -> StageResult<()> {
    if !profile.extract_packages {
        return Ok(());
    }
    let mut todo: Vec<(File, u32)> =
        files.iter().filter(|f| f.file_use == FileUse::Original).cloned().map(|f| (f, 1)).collect();
    let mut budget = Budget { profile, entries: 0, bytes: 0 };
    while let Some((container, depth)) = todo.pop() {
        // By name first: only a file named as a package is read (one request, not one a file).
        if !named_as_package(&container.current_path) {
            continue;
        }
        let key = key_of(&container);
        let head = p.flow.working.get_range(&key, 0, 64 * 1024)?;
        let Some(kind) = kind_of(&container.current_path, &head) else { continue };
        if !p.fpr.unpacks(kind.puid()) {
            continue;
        }
        let mut members = Vec::new();
        let before = (budget.entries, budget.bytes);
        let b = &mut budget;
        let result = match kind {
            Kind::Zip => unzip(p, transfer, b, &container, &mut members),
            Kind::Tar | Kind::TarGz => untar(p, transfer, b, &container, kind == Kind::TarGz, &mut members),
            Kind::SevenZip => un7z(p, transfer, b, &container, &mut members),
        };
        if result.is_err() {
            budget.give_back(budget.entries - before.0, budget.bytes - before.1);
        }
        match result {
            Ok(()) => {
                for member in members {
                    events.extend(member_events(p, &container, &member));
                    if depth < profile.package_depth {
                        todo.push((member.clone(), depth + 1));
                    }
                    files.push(member);
                }
            }
            Err(Outcome::Kept(Kept(why))) => {
                // What was written of it stays in the working area unlisted: the clean-up
                // after store takes it with the rest.
                events.push(container_event(p, &container, EventOutcome::Fail, why));
            }
            Err(Outcome::Store(e)) => return Err(e.into()),
        }
    }
    Ok(())
}

/// How unpacking an archive ended, when it did not: kept as it is, or the store failed.
enum Outcome {
    Kept(Kept),
    Store(crate::ports::PortError),
}

impl From<crate::ports::PortError> for Outcome {
    fn from(e: crate::ports::PortError) -> Self {
        Outcome::Store(e)
    }
}

fn kept(why: impl Into<String>) -> Outcome {
    Outcome::Kept(Kept(why.into()))
}

/// The folder an archive is unpacked into: beside it, its name without the extension and
/// its UUID, so it never meets a folder of the package.
fn folder_of(container: &File) -> String {
    let (parent, name) = match container.current_path.rsplit_once('/') {
        Some((parent, name)) => (format!("{parent}/"), name),
        None => (String::new(), container.current_path.as_str()),
    };
    let lower = name.to_ascii_lowercase();
    let stem = lower
        .ends_with(".tar.gz")
        .then(|| &name[..name.len() - 7])
        .or_else(|| name.rsplit_once('.').map(|(s, _)| s))
        .unwrap_or(name);
    let mut end = MAX_NAME_BYTES.saturating_sub(37).min(stem.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{parent}{}-{}", &stem[..end], container.uuid)
}

/// A member's path inside the folder: each part sanitized as intake sanitizes names; None
/// for a path that would leave the folder or names nothing. A `\` separates folders in a zip
/// or 7z name (Windows tools write it) but is part of a tar member's name.
fn member_path(folder: &str, name: &str, backslash_separates: bool) -> Option<String> {
    let separators: &[char] = if backslash_separates { &['/', '\\'] } else { &['/'] };
    let mut parts = Vec::new();
    for part in name.split(separators) {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(sanitize_component(part)),
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p.is_empty() || p.len() > MAX_NAME_BYTES) {
        return None;
    }
    Some(format!("{folder}/{}", parts.join("/")))
}

/// What the profile allows the archives of one batch to hold, all of them together: the
/// archives inside archives count against the same entries and bytes, so nesting (as
/// 42.zip nests) multiplies nothing. Declared sizes are taken before a byte is written, and
/// no member yields more than it declared (`take_out`).
struct Budget<'a> {
    profile: &'a Profile,
    entries: u64,
    bytes: u64,
}

impl Budget<'_> {
    fn take(&mut self, size: u64) -> Result<(), Outcome> {
        let limits = &self.profile.limits;
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.entries > limits.max_entries {
            return Err(kept(format!(
                "with the packages unpacked before it, it holds more than {} entries, the profile's limit",
                limits.max_entries
            )));
        }
        if self.bytes > limits.max_total_bytes {
            return Err(kept(format!(
                "with the packages unpacked before it, it unpacks to more than {} bytes, the profile's limit",
                limits.max_total_bytes
            )));
        }
        Ok(())
    }

    /// What is left after an archive that was kept whole gives back what it took.
    fn give_back(&mut self, entries: u64, bytes: u64) {
        self.entries -= entries;
        self.bytes -= bytes;
    }
}

/// Copies one member's bytes (no more than it declares) into the working area as a file of
/// the transfer.
fn take_out(
    p: &Extract<'_>,
    transfer: &Transfer,
    container: &File,
    path: String,
    reader: &mut dyn Read,
    declared: u64,
    modified: Option<crate::model::Timestamp>,
) -> Result<File, Outcome> {
    let uuid = derived_id(container.uuid, &format!("member/{path}"));
    let mut out = p.flow.working.writer(&object_key(transfer.id, uuid, &path))?;
    let written = io::copy(&mut reader.take(declared.saturating_add(1)), &mut WriteOut(&mut *out))
        .map_err(|e| kept(format!("{path:?} cannot be read from it: {e}")))?;
    if written != declared {
        return Err(kept(format!("{path:?} holds {written} bytes, not the {declared} it declares")));
    }
    out.commit()?;
    let bits = u64::from_be_bytes(uuid.as_bytes()[..8].try_into().expect("eight bytes")) & (MEMBER_ENTRIES - 1);
    Ok(File {
        uuid,
        transfer_id: transfer.id,
        batch: container.batch,
        entry_index: MEMBER_ENTRIES | bits,
        file_use: FileUse::Original,
        original_path: path.clone(),
        current_path: path,
        size: written,
        checksums: Default::default(),
        format: None,
        modified,
        characteristics: Default::default(),
        source: Some(container.uuid),
    })
}

/// A store's writer as `io::Write` for `io::copy`.
struct WriteOut<'a>(&'a mut dyn crate::ports::ObjectWriter);

impl Write for WriteOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn unzip(
    p: &Extract<'_>,
    transfer: &Transfer,
    budget: &mut Budget<'_>,
    container: &File,
    members: &mut Vec<File>,
) -> Result<(), Outcome> {
    let key = key_of(container);
    let reader = RangedReader::new(p.flow.working.clone(), &key, container.size, 1 << 20);
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| kept(format!("it cannot be read as a zip: {e}")))?;
    let folder = folder_of(container);
    // Every entry is checked from the index before a byte is unpacked: its name, that it is
    // a file, its declared size, and that its bytes are its own (entries that share them are
    // how a small zip writes terabytes).
    let mut planned = Vec::new();
    let mut spans = Vec::new();
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| kept(format!("its entry {i} cannot be read: {e}")))?;
        let name = match entry.name() {
            Ok(name) => name.to_string(),
            Err(_) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
        };
        // Where the entry's data starts is known once its local header is read; the header's
        // fixed 30 bytes are its least.
        let data = entry.data_start().unwrap_or(entry.header_start().saturating_add(30));
        spans.push((entry.header_start(), data.saturating_add(entry.compressed_size()), name.clone()));
        if entry.is_dir() {
            continue;
        }
        if entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
            return Err(kept(format!("{name:?} is a symbolic link")));
        }
        let path = member_path(&folder, &name, true).ok_or_else(|| kept(format!("{name:?} would leave its folder")))?;
        budget.take(entry.size())?;
        planned.push((i, path));
    }
    spans.sort();
    if let Some(pair) = spans.windows(2).find(|w| w[1].0 < w[0].1) {
        return Err(kept(format!(
            "its entries {:?} and {:?} share their bytes, as zip bombs are made to",
            pair[0].2, pair[1].2
        )));
    }
    for (i, path) in planned {
        let mut entry = zip.by_index(i).map_err(|e| kept(format!("its entry {i} cannot be read: {e}")))?;
        let modified = entry.last_modified().and_then(super::entries::zip_time);
        let size = entry.size();
        members.push(take_out(p, transfer, container, path, &mut entry, size, modified)?);
    }
    Ok(())
}

fn untar(
    p: &Extract<'_>,
    transfer: &Transfer,
    budget: &mut Budget<'_>,
    container: &File,
    gzipped: bool,
    members: &mut Vec<File>,
) -> Result<(), Outcome> {
    let key = key_of(container);
    let stream = p.flow.working.get(&key)?;
    let stream: Box<dyn Read> = if gzipped { Box::new(flate2::read::MultiGzDecoder::new(stream)) } else { stream };
    let mut tar = tar::Archive::new(stream);
    let folder = folder_of(container);
    let unreadable = |e: io::Error| kept(format!("it cannot be read as a tar: {e}"));
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            other => return Err(kept(format!("{name:?} is not a file or folder ({other:?})"))),
        }
        let path =
            member_path(&folder, &name, false).ok_or_else(|| kept(format!("{name:?} would leave its folder")))?;
        let size = entry.size();
        budget.take(size)?;
        let modified = entry.header().mtime().ok().and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0));
        members.push(take_out(p, transfer, container, path, &mut entry, size, modified)?);
    }
    Ok(())
}

fn un7z(
    p: &Extract<'_>,
    transfer: &Transfer,
    budget: &mut Budget<'_>,
    container: &File,
    members: &mut Vec<File>,
) -> Result<(), Outcome> {
    use sevenz_rust2::{ArchiveReader, EntryDecision, Error, Password};
    let key = key_of(container);
    let reader = RangedReader::new(p.flow.working.clone(), &key, container.size, 1 << 20);
    let said = |e: Error| match e {
        // Built without AES, the reader names the cipher as a method it lacks.
        Error::PasswordRequired | Error::MaybeBadPassword(_) => "it is encrypted (no password is known)".to_string(),
        Error::UnsupportedCompressionMethod(m) if m.starts_with("AES") => {
            format!("it is encrypted ({m}; no password is known)")
        }
        Error::MaxMemLimited { .. } => {
            format!("its decoder would need more than {} MiB of memory", SEVEN_ZIP_MEMORY_KIB / 1024)
        }
        e => format!("it cannot be read as a 7z archive: {e}"),
    };
    let mut archive = ArchiveReader::new_with_memory_limit(reader, Password::empty(), SEVEN_ZIP_MEMORY_KIB)
        .map_err(|e| kept(said(e)))?;
    // One thread: a transfer's batches already keep the cores busy.
    archive.set_thread_count(1);
    let folder = folder_of(container);
    // Every entry's declared size and path is checked before a byte is unpacked: a 7z lists
    // them all in its header, and the decoder gives no entry more than it declares.
    let mut paths = std::collections::HashMap::new();
    for (i, entry) in archive.archive().files.iter().enumerate() {
        if entry.is_directory || entry.is_anti_item {
            continue;
        }
        if is_7z_link(entry) {
            return Err(kept(format!("{:?} is a symbolic link", entry.name)));
        }
        let path = member_path(&folder, &entry.name, true)
            .ok_or_else(|| kept(format!("{:?} would leave its folder", entry.name)))?;
        budget.take(entry.size)?;
        paths.insert(i, path);
    }
    // The decoder gives the entries with bytes in the archive's order, block by block, then the
    // empty ones in order.
    let listed = &archive.archive().files;
    let mut order: Vec<usize> = (0..listed.len()).filter(|&i| listed[i].has_stream).collect();
    order.extend((0..listed.len()).filter(|&i| !listed[i].has_stream));
    let mut order = order.into_iter();
    let mut failed = None;
    let result = archive.for_each_entries_with_decision(|entry, data| {
        let Some(path) = order.next().and_then(|i| paths.remove(&i)) else { return Ok(EntryDecision::Continue) };
        if !path.ends_with(&*sanitize_last(&entry.name)) {
            failed = Some(kept(format!("its entries are not in the order its header lists ({:?})", entry.name)));
            return Ok(EntryDecision::Stop);
        }
        let modified = entry
            .has_last_modified_date
            .then(|| chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::from(entry.last_modified_date)));
        match take_out(p, transfer, container, path, data, entry.size, modified) {
            Ok(member) => {
                members.push(member);
                Ok(EntryDecision::Continue)
            }
            Err(e) => {
                failed = Some(e);
                Ok(EntryDecision::Stop)
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    result.map_err(|e| kept(said(e)))
}

/// The sanitized last part of an entry's name, to tell that a decoded entry is the one listed.
fn sanitize_last(name: &str) -> String {
    name.rsplit(['/', '\\']).find(|p| !p.is_empty()).map(sanitize_component).unwrap_or_default()
}

/// Whether a 7z entry is a link: 7-Zip keeps a Unix mode in the attributes' high half (with
/// the 0x8000 flag), and marks Windows links as reparse points.
fn is_7z_link(entry: &sevenz_rust2::ArchiveEntry) -> bool {
    const UNIX_EXTENSION: u32 = 0x8000;
    const REPARSE_POINT: u32 = 0x400;
    let attributes = entry.windows_attributes;
    entry.has_windows_attributes
        && (attributes & REPARSE_POINT != 0
            || (attributes & UNIX_EXTENSION != 0 && (attributes >> 16) & 0o170000 == 0o120000))
}

/// The events of a file taken out of an archive: its unpacking, naming the container.
fn member_events(p: &Extract<'_>, container: &File, member: &File) -> Vec<PremisEvent> {
    vec![PremisEvent::new(
        member.transfer_id,
        Some(member.uuid),
        EventType::Unpacking,
        p.flow.clock.now(),
        format!("{}; unpacked from {}", by_vellum(), container.current_path),
        EventOutcome::Positive,
        format!("container=\"%transferDirectory%{}\"; container UUID={}", container.current_path, container.uuid),
        p.flow.agents(),
    )]
}

/// The container's event when it is kept as it is.
fn container_event(p: &Extract<'_>, container: &File, outcome: EventOutcome, why: String) -> PremisEvent {
    PremisEvent::new(
        container.transfer_id,
        Some(container.uuid),
        EventType::Unpacking,
        p.flow.clock.now(),
        format!("{}; the package was not unpacked and is kept as it is", by_vellum()),
        outcome,
        why,
        p.flow.agents(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_never_leaves_its_folder_and_its_name_is_sanitized() {
        let zip = |name| member_path("objects/a-u", name, true);
        assert_eq!(zip("letters/1901.txt").as_deref(), Some("objects/a-u/letters/1901.txt"));
        assert_eq!(zip("./x//y.txt").as_deref(), Some("objects/a-u/x/y.txt"));
        assert_eq!(zip("..\\..\\etc\\passwd"), None);
        assert_eq!(zip("../x"), None);
        assert_eq!(zip("/"), None);
        assert_eq!(zip("letters\\1901.txt").as_deref(), Some("objects/a-u/letters/1901.txt"));
        // In a tar the backslash is part of the name, sanitized.
        let tar = member_path("objects/a-u", "letters\\1901.txt", false).unwrap();
        assert!(tar.starts_with("objects/a-u/letters") && !tar["objects/a-u/".len()..].contains('/'), "{tar}");
        let odd = zip("r\u{e9}sum\u{e9}: draft?.txt").unwrap();
        assert!(!odd.contains(':') && !odd.contains('?'), "{odd}");
    }

    #[test]
    fn only_a_zip_or_tar_by_name_and_by_bytes_is_a_package() {
        let mut tar_head = vec![0u8; 512];
        tar_head[257..262].copy_from_slice(b"ustar");
        assert_eq!(kind_of("objects/mail.ZIP", b"PK\x03\x04rest"), Some(Kind::Zip));
        assert_eq!(kind_of("objects/report.docx", b"PK\x03\x04rest"), None, "a document, kept whole");
        assert_eq!(kind_of("objects/fake.zip", b"%PDF-1.4"), None, "named a zip, not one");
        assert_eq!(kind_of("objects/backup.tar", &tar_head), Some(Kind::Tar));
        let mut gz = Vec::new();
        let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        enc.write_all(&tar_head).unwrap();
        enc.finish().unwrap();
        assert_eq!(kind_of("objects/backup.tgz", &gz), Some(Kind::TarGz));
        let mut plain = Vec::new();
        let mut enc = flate2::write::GzEncoder::new(&mut plain, flate2::Compression::fast());
        enc.write_all(b"just a csv").unwrap();
        enc.finish().unwrap();
        assert_eq!(kind_of("objects/data.tar.gz", &plain), None, "a gzip that holds no tar");
    }
}
