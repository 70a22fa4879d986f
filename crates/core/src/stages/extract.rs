//! extract: the package's entries are streamed into the working area under the names
//! intake planned, each file gets its UUID, an ingestion (or registration) event and, when
//! its name had to change, a filename-change event; files are committed in batches, and each
//! batch goes to the per-file stages as soon as it is committed, so that they work while
//! extraction goes on. A package too large for one invocation continues from its checkpoint
//! in a new message. When every entry is in, the final batch count is known: the per-file
//! stages that have already done every batch are finished here (the fan-in learns the count).

use crate::ports::FileCatalogue;
use crate::ports::ObjectStore;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;

use crate::config::profile::PackageKind;
use crate::error::{read_failure, zip_read_failure, StageError, StageResult};
use crate::intake::archive::{detect_kind, tar_member, ArchiveKind, EntryKind, LeftOut, ListError, ListingLine};
use crate::io::ranged::RangedReader;
use crate::io::tar_sparse::SparseReader;
use crate::io::tar_stream::{TarPosition, TarStream};
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{by_vellum, derived_id, EventOutcome, EventType, File, FileUse, PremisEvent, Timestamp, Transfer};
use crate::ports::ExtractCheckpoint;
use crate::record::keys::{listing_key, working_key};
use crate::stages::{Flow, Microservice, Progress, StageContext};

/// The extract stage and what it uses beside its `Flow`: the upload it reads and the file
/// catalogue it commits to.
pub struct Extract<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub uploads: &'a Arc<dyn ObjectStore>,
}

impl Microservice for Extract<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let Some((transfer, _)) = self.flow.take_up(msg.transfer_id, Stage::Extract)? else {
            return Ok(Progress::Ignored);
        };
        let mut checkpoint = self.files.extract_checkpoint(transfer.id)?;
        if !checkpoint.done {
            // Each batch is sent right after its commit; a delivery that died between the two
            // left only the last one unsent. Sent again, it is done again, to the same records.
            if let Some(last) = checkpoint.batches.checked_sub(1) {
                self.flow.send(Stage::PER_FILE[0], &[StageMessage::batch(transfer.id, last)])?;
            }
            match extract(self, &transfer, checkpoint, ctx)? {
                Some(done) => checkpoint = done,
                None => {
                    self.flow.send(Stage::Extract, &[StageMessage::transfer(transfer.id)])?;
                    return Ok(Progress::Continued);
                }
            }
        }
        // Repeated on every delivery after the checkpoint is done: finishing is idempotent.
        finish_done_stages(self, transfer.id, checkpoint.batches)?;
        self.flow.finish_job(transfer.id, Stage::Extract)?;
        Ok(Progress::Done)
    }
}

/// Reads of the package during extraction fetch this much at a time.
const READ_CHUNK: u64 = 8 * 1024 * 1024;

/// With the batch count final, finishes each per-file stage that has already done every
/// batch, and hands the transfer to METS if the last one has. A stage that records its last
/// batch after this sees the final count itself (the per-file fan-in): between the two, one
/// of them always sees it, and a second hand-on is harmless.
fn finish_done_stages(p: &Extract<'_>, transfer_id: uuid::Uuid, batches: u32) -> StageResult<()> {
    if batches == 0 {
        return Ok(());
    }
    for stage in Stage::PER_FILE {
        let done = p.flow.jobs.job(transfer_id, stage.name())?.is_some_and(|job| job.batches_done >= batches);
        if !done {
            return Ok(());
        }
        p.flow.finish_job(transfer_id, stage)?;
        if stage.next_per_file().is_none() {
            p.flow.send(Stage::Mets, &[StageMessage::transfer(transfer_id)])?;
        }
    }
    Ok(())
}

/// One entry's bytes and when it was last modified.
struct Opened<'a> {
    reader: Box<dyn Read + 'a>,
    modified: Option<Timestamp>,
}

/// Extracts from the checkpoint on; returns the final checkpoint, or None when out of time
/// (the checkpoint is saved and a continuation is due).
fn extract(
    p: &Extract<'_>,
    transfer: &Transfer,
    mut checkpoint: ExtractCheckpoint,
    ctx: &StageContext,
) -> StageResult<Option<ExtractCheckpoint>> {
    let profile = p.flow.profile(transfer)?;
    let batch_size = p.flow.batch_size(profile) as usize;
    let key = &transfer.source_key;
    let gone = || {
        StageError::Failed(format!("the upload {key:?} disappeared from the bucket during extraction: upload it again"))
    };
    let meta = p.uploads.head(key)?.ok_or_else(gone)?;
    // Read as intake read it: by its bytes, not its name.
    let kind = detect_kind(p.uploads.as_ref(), key, meta.size).map_err(|e| match e {
        ListError::Io(e) => StageError::Transient(format!("reading {key}: {e}")),
        ListError::Unreadable(why) => StageError::Failed(format!("{key:?} can no longer be read: {}", why.0)),
    })?;
    let mut lines = BufReader::new(p.flow.working.get(&listing_key(transfer.id))?).lines();
    let mut next_line = || -> StageResult<Option<ListingLine>> {
        match lines.next() {
            None => Ok(None),
            Some(line) => serde_json::from_str(&line?)
                .map(Some)
                .map_err(|e| StageError::Transient(format!("the package listing is unreadable: {e}"))),
        }
    };
    let mut files: Vec<File> = Vec::new();
    let mut events: Vec<PremisEvent> = Vec::new();
    let mut index = checkpoint.next_entry;
    // A tar goes on from the position the last invocation noted (a hint: it may lag the
    // checkpoint, never lead it), reading past only what came after it.
    let hint_text = match kind {
        ArchiveKind::Zip => None,
        _ => p.flow.jobs.job_checkpoint(transfer.id, Stage::Extract.name())?,
    };
    let hint: Option<TarPosition> = hint_text
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .filter(|h: &TarPosition| h.entry <= checkpoint.next_entry);
    let mut skipped = hint.as_ref().map_or(0, |h| h.entry);
    // Where the entry after the last one read starts: (its index, its offset).
    let mut tar_end: Option<(u64, u64)> = None;
    // Zip entries are opened by index; a tar is read in order, skipping what is done.
    let mut zip = match kind {
        ArchiveKind::Zip => {
            let reader = RangedReader::new(p.uploads.clone(), key, meta.size, READ_CHUNK);
            Some(
                zip::ZipArchive::new(reader)
                    .map_err(|e| zip_read_failure(e, |e| format!("the package can no longer be read as a zip: {e}")))?,
            )
        }
        _ => None,
    };
    let mut tar = match kind {
        ArchiveKind::Zip => None,
        _ => Some(
            TarStream::open(p.uploads.clone(), key, meta.size, kind == ArchiveKind::TarGz, hint.as_ref())
                .map_err(|e| read_failure(e, |e| format!("the package can no longer be read as a tar: {e}")))?,
        ),
    };
    let (mut tar_entries, marks) = match tar.as_mut() {
        Some(t) => (
            Some(
                t.archive
                    .entries()
                    .map_err(|e| read_failure(e, |e| format!("the package can no longer be read as a tar: {e}")))?,
            ),
            Some(&t.marks),
        ),
        None => (None, None),
    };
    while let Some(line) = next_line()? {
        if line.index < index {
            continue;
        }
        let mut tar_entry = None;
        if let Some(entries) = tar_entries.as_mut() {
            // Entries before the checkpoint are read past, not extracted.
            loop {
                let entry =
                    entries.next().ok_or_else(|| StageError::Failed("the tar ended before its listing did".into()))?;
                let entry = entry.map_err(|e| read_failure(e, |e| format!("the package is damaged: {e}")))?;
                tar_end = marks.and_then(|m| m.end_of(&entry)).map(|end| (skipped + 1, end));
                if skipped == line.index {
                    skipped += 1;
                    tar_entry = Some(entry);
                    break;
                }
                skipped += 1;
            }
        }
        if let Some(left_out) = line.left_out {
            let opened = match (&mut zip, tar_entry) {
                (_, _) if line.kind != EntryKind::File => None,
                (Some(zip), _) => Some(open_zip_entry(zip, &line)?),
                (None, Some(entry)) => Some(open_tar_entry(entry, &line)?),
                (None, None) => return Err(StageError::Failed("the tar has fewer entries than its listing".into())),
            };
            events.push(left_out_event(p, transfer, &line, left_out, opened)?);
        } else if line.kind == EntryKind::File {
            let opened = match (&mut zip, tar_entry) {
                (Some(zip), _) => open_zip_entry(zip, &line)?,
                (None, Some(entry)) => open_tar_entry(entry, &line)?,
                (None, None) => return Err(StageError::Failed("the tar has fewer entries than its listing".into())),
            };
            let file = extract_file(p, transfer, &line, opened, checkpoint.batches)?;
            events.extend(file_events(p, profile.kind, &file));
            files.push(file);
        } else if line.kind != EntryKind::Directory {
            return Err(StageError::Failed(format!("the entry {:?} is not a file or folder", line.name)));
        }
        index = line.index + 1;
        let out_of_time = ctx.should_yield();
        if files.len() >= batch_size || out_of_time {
            checkpoint = commit(p, transfer, &checkpoint, &files, &events, index)?;
            files.clear();
            events.clear();
        }
        if out_of_time {
            tracing::info!(next_entry = index, "extraction continues in a new message");
            if let Some(position) = marks.zip(tar_end).and_then(|(m, (entry, end))| m.position(entry, end)) {
                let json = serde_json::to_string(&position).expect("a position serializes");
                // Only a hint: a delivery that lost the race leaves the other's in place.
                match p.flow.jobs.set_job_checkpoint(transfer.id, Stage::Extract.name(), hint_text.as_deref(), &json) {
                    Ok(()) | Err(crate::ports::PortError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // Only continue if anything is left; otherwise finish below.
            if next_line()?.is_some() {
                return Ok(None);
            }
            break;
        }
    }
    if !files.is_empty() || !events.is_empty() {
        commit(p, transfer, &checkpoint, &files, &events, index)?;
    }
    Ok(Some(p.files.finish_extract(transfer.id)?))
}

/// Commits a batch and sends it on at once.
fn commit(
    p: &Extract<'_>,
    transfer: &Transfer,
    from: &ExtractCheckpoint,
    files: &[File],
    events: &[PremisEvent],
    next_entry: u64,
) -> StageResult<ExtractCheckpoint> {
    let checkpoint = p.files.commit_extract_batch(transfer.id, from, files, events, next_entry)?;
    if checkpoint.batches > from.batches {
        p.flow.send(Stage::PER_FILE[0], &[StageMessage::batch(transfer.id, from.batches)])?;
    }
    Ok(checkpoint)
}

fn open_zip_entry<'a>(zip: &'a mut zip::ZipArchive<RangedReader>, line: &ListingLine) -> StageResult<Opened<'a>> {
    let entry = zip
        .by_index(line.index as usize)
        .map_err(|e| zip_read_failure(e, |e| format!("the entry {:?} cannot be read: {e}", line.name)))?;
    let modified = entry.last_modified().and_then(zip_time);
    Ok(Opened { reader: Box::new(entry), modified })
}

/// A tar member's bytes: a PAX sparse member expanded to the file it stands for.
fn open_tar_entry<'a, R: Read + 'a>(mut entry: tar::Entry<'a, R>, line: &ListingLine) -> StageResult<Opened<'a>> {
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

fn zip_time(dt: zip::DateTime) -> Option<Timestamp> {
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
    let mut out = p.flow.working.writer(&working_key(transfer.id, &path))?;
    // One byte past the declared size is enough to know the entry lies about it.
    let mut reader = opened.reader.take(line.size.saturating_add(1));
    let mut buf = vec![0u8; 256 * 1024];
    let mut written = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(damaged(e)),
        };
        out.write_all(&buf[..n]).map_err(|e| StageError::Transient(format!("writing {path}: {e}")))?;
        written += n as u64;
    }
    if written != line.size {
        let how = if written > line.size { "more" } else { "fewer" };
        return Err(StageError::Failed(format!(
            "the entry {:?} holds {how} bytes than the {} its archive declares: the package is damaged or was tampered with",
            line.name, line.size
        )));
    }
    out.commit()?;
    let file_use = if path.starts_with("metadata/") {
        FileUse::Metadata
    } else if path.starts_with("submissionDocumentation/") {
        FileUse::SubmissionDocumentation
    } else {
        FileUse::Original
    };
    Ok(File {
        uuid: derived_id(transfer.id, &format!("file/{}", line.index)),
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
    })
}

/// Archivematica's events for a file taking its place in the transfer.
fn file_events(p: &Extract<'_>, kind: PackageKind, file: &File) -> Vec<PremisEvent> {
    let now = p.flow.clock.now();
    let first = match kind {
        PackageKind::Catalogued => EventType::Ingestion,
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
    if file.original_path != file.current_path {
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
