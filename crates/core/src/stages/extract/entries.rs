//! One listing line taken into its batch: an entry's bytes copied to the working area with
//! the file's record and events, or the event for an entry that is recorded but not kept.
//! The same whether the entry was reached through a zip's central directory, read in a tar's
//! stream, or opened where it lies.

use std::io::{self, Read, Write};

use crate::config::profile::PackageKind;
use crate::error::{read_failure, zip_read_failure, StageError, StageResult};
use crate::intake::archive::{tar_member, EntryKind, LeftOut, ListingLine};
use crate::io::ranged::RangedReader;
use crate::io::tar_sparse::SparseReader;
use crate::io::zip_entry::{open_at, ZipAt};
use crate::model::{
    by_vellum, derived_id, file_id, EventOutcome, EventType, File, FileUse, PremisEvent, Timestamp, Transfer,
};
use crate::record::keys::object_key;

use super::Extract;

/// One entry's bytes and when it was last modified.
pub(super) struct Opened<'a> {
    pub reader: Box<dyn Read + 'a>,
    pub modified: Option<Timestamp>,
}

/// Adds what one line brings to its batch: a file and its events, or the event of an entry
/// left out; a folder brings nothing. `open` is called only for an entry whose bytes are read.
#[allow(clippy::too_many_arguments)]
pub(super) fn take_in<'r>(
    p: &Extract<'_>,
    transfer: &Transfer,
    kind: PackageKind,
    line: &ListingLine,
    batch: u32,
    open: impl FnOnce() -> StageResult<Opened<'r>>,
    files: &mut Vec<File>,
    events: &mut Vec<PremisEvent>,
) -> StageResult<()> {
    if let Some(left_out) = line.left_out {
        let opened = if line.kind == EntryKind::File { Some(open()?) } else { None };
        events.push(left_out_event(p, transfer, line, left_out, opened)?);
    } else if line.kind == EntryKind::File {
        let file = extract_file(p, transfer, line, open()?, batch)?;
        events.extend(file_events(p, kind, &file));
        files.push(file);
    } else if line.kind != EntryKind::Directory {
        return Err(StageError::Failed(format!("the entry {:?} is not a file or folder", line.name)));
    }
    Ok(())
}

/// A zip entry opened where the listing says it lies, with no central directory read.
pub(super) fn open_located<'a>(zip: &'a mut RangedReader, at: &ZipAt, line: &ListingLine) -> StageResult<Opened<'a>> {
    let reader =
        open_at(zip, at).map_err(|e| read_failure(e, |e| format!("the entry {:?} cannot be read: {e}", line.name)))?;
    let modified =
        at.dos_time.and_then(|[date, time]| zip::DateTime::try_from_msdos(date, time).ok()).and_then(zip_time);
    Ok(Opened { reader, modified })
}

pub(super) fn open_zip_entry<'a>(
    zip: &'a mut zip::ZipArchive<RangedReader>,
    line: &ListingLine,
) -> StageResult<Opened<'a>> {
    let entry = zip
        .by_index(line.index as usize)
        .map_err(|e| zip_read_failure(e, |e| format!("the entry {:?} cannot be read: {e}", line.name)))?;
    let modified = entry.last_modified().and_then(zip_time);
    Ok(Opened { reader: Box::new(entry), modified })
}

/// A tar member's bytes: a PAX sparse member expanded to the file it stands for.
pub(super) fn open_tar_entry<'a, R: Read + 'a>(
    mut entry: tar::Entry<'a, R>,
    line: &ListingLine,
) -> StageResult<Opened<'a>> {
    let damaged = |e: io::Error| read_failure(e, |e| format!("the entry {:?} is damaged: {e}", line.name));
    let modified = entry.header().mtime().ok().and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0));
    let member = tar_member(&mut entry).map_err(damaged)?;
    let reader: Box<dyn Read + 'a> = match &member.sparse {
        Some(sparse) => Box::new(SparseReader::new(entry, sparse).map_err(damaged)?),
        None => Box::new(entry),
    };
    Ok(Opened { reader, modified })
}

/// The PREMIS event on the transfer for an entry that is recorded but not kept: what it
/// was, its size and digest (read here, since it is never extracted), and why.
fn left_out_event(
    p: &Extract<'_>,
    transfer: &Transfer,
    line: &ListingLine,
    left_out: LeftOut,
    opened: Option<Opened<'_>>,
) -> StageResult<PremisEvent> {
    let mut content = None;
    if let Some(mut opened) = opened {
        let damaged = |e: io::Error| read_failure(e, |e| format!("the entry {:?} is damaged: {e}", line.name));
        let (digests, size) = crate::analysis::fixity::Digests::for_algorithms(&["sha256"])
            .map_err(|e| StageError::Failed(e.to_string()))?
            .of_reader(&mut opened.reader.by_ref().take(line.size.saturating_add(1)))
            .map_err(damaged)?;
        if size != line.size {
            return Err(StageError::Failed(format!(
                "the entry {:?} holds {size} bytes, not the {} its archive declares: the package is damaged or was tampered with",
                line.name, line.size
            )));
        }
        content = Some((size, digests.get("sha256").cloned().unwrap_or_default()));
    }
    let mut event = PremisEvent::new(
        transfer.id,
        None,
        crate::record::aip::LEFT_OUT_EVENT,
        p.flow.clock.now(),
        crate::record::aip::left_out_detail(left_out),
        EventOutcome::None,
        crate::record::aip::left_out_outcome(&line.name, content.as_ref().map(|(n, d)| (*n, d.as_str()))),
        p.flow.agents(),
    );
    event.uuid = derived_id(transfer.id, &format!("left-out/{}", line.index));
    Ok(event)
}

pub(super) fn zip_time(dt: zip::DateTime) -> Option<Timestamp> {
    chrono::NaiveDate::from_ymd_opt(dt.year().into(), dt.month().into(), dt.day().into())?
        .and_hms_opt(dt.hour().into(), dt.minute().into(), dt.second().into())
        .map(|naive| naive.and_utc())
}

/// Copies the entry's bytes to the working area. Reading errors are the package's (damaged,
/// failed CRC, lying size): permanent. Writing errors are the store's: transient.
fn extract_file(
    p: &Extract<'_>,
    transfer: &Transfer,
    line: &ListingLine,
    opened: Opened<'_>,
    batch: u32,
) -> StageResult<File> {
    let path =
        line.path.clone().ok_or_else(|| StageError::Failed(format!("the listing has no path for {:?}", line.name)))?;
    let damaged = |e: io::Error| read_failure(e, |e| format!("the entry {:?} is damaged: {e}", line.name));
    let uuid = file_id(transfer.id, line.index);
    let mut out = p.flow.working.writer(&object_key(transfer.id, uuid, &path))?;
    // One byte past the declared size is enough to know the entry lies about it.
    let mut reader = opened.reader.take(line.size.saturating_add(1));
    let written = crate::io::scratch::pump(
        &mut reader,
        |chunk| out.write_all(chunk).map_err(|e| StageError::Transient(format!("writing {path}: {e}"))),
        damaged,
    )?;
    if written != line.size {
        let how = if written > line.size { "more" } else { "fewer" };
        return Err(StageError::Failed(format!(
            "the entry {:?} holds {how} bytes than the {} its archive declares: the package is damaged or was tampered with",
            line.name, line.size
        )));
    }
    out.commit()?;
    let file_use =
        if path.starts_with("metadata/") || path.starts_with("logs/") || path == crate::intake::archive::PROCESSING_MCP
        {
            FileUse::Metadata
        } else if path.starts_with("submissionDocumentation/") {
            FileUse::SubmissionDocumentation
        } else {
            FileUse::Original
        };
    Ok(File {
        uuid,
        transfer_id: transfer.id,
        batch,
        entry_index: line.index,
        file_use,
        original_path: line.name.clone(),
        current_path: path,
        size: written,
        checksums: Default::default(),
        format: None,
        modified: opened.modified,
        characteristics: Default::default(),
        source: None,
    })
}

/// Archivematica's events for a file taking its place in the transfer.
fn file_events(p: &Extract<'_>, kind: PackageKind, file: &File) -> Vec<PremisEvent> {
    let now = p.flow.clock.now();
    let first = match kind {
        PackageKind::Catalogued | PackageKind::Standard | PackageKind::Bag => EventType::Ingestion,
        PackageKind::Accession => EventType::Registration,
    };
    let mut events = vec![PremisEvent::new(
        file.transfer_id,
        Some(file.uuid),
        first,
        now,
        String::new(),
        EventOutcome::None,
        String::new(),
        p.flow.agents(),
    )];
    if file.renamed() {
        events.push(PremisEvent::new(
            file.transfer_id,
            Some(file.uuid),
            EventType::FilenameChange,
            now,
            format!(
                "{}: {}",
                if crate::intake::sanitize::was_shortened(&file.original_path) {
                    "name shortened to fit the 255-byte limit of file names, prohibited characters removed"
                } else {
                    "prohibited characters removed"
                },
                by_vellum()
            ),
            EventOutcome::None,
            format!(
                "Original name=\"%transferDirectory%{}\"; new name=\"%transferDirectory%{}\"",
                file.original_path, file.current_path
            ),
            p.flow.agents(),
        ));
    }
    events
}
