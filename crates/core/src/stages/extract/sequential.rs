//! Extraction in one line of invocations: entries in listing order, a batch committed
//! behind the checkpoint as soon as it is full, a continuation in a new message when time
//! runs out. The path of tars (whose members are found only by reading the stream), of zips
//! with entries that cannot be opened where they lie, and of packages of one range.

use std::io::{BufRead, BufReader};

use crate::error::{read_failure, zip_read_failure, StageError, StageResult};
use crate::intake::archive::{detect_kind, ArchiveKind, ListError, ListingLine};
use crate::io::ranged::RangedReader;
use crate::io::tar_stream::{TarPosition, TarStream};
use crate::model::Stage;
use crate::model::{File, PremisEvent, Transfer};
use crate::ports::ExtractCheckpoint;
use crate::record::keys::listing_key;
use crate::stages::StageContext;

use super::entries::{open_tar_entry, open_zip_entry, take_in};
use super::{commit, Extract, READ_CHUNK};

/// Extracts from the checkpoint on; returns the final checkpoint, or None when out of time
/// (the checkpoint is saved and a continuation is due).
pub(super) fn extract(
    p: &Extract<'_>,
    transfer: &Transfer,
    mut checkpoint: ExtractCheckpoint,
    ctx: &StageContext,
) -> StageResult<Option<ExtractCheckpoint>> {
    let profile = p.flow.profile(transfer)?;
    let batch_size = p.flow.batch_size(&profile) as usize;
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
        let open = || match (&mut zip, tar_entry) {
            (Some(zip), _) => open_zip_entry(zip, &line),
            (None, Some(entry)) => open_tar_entry(entry, &line),
            (None, None) => Err(StageError::Failed("the tar has fewer entries than its listing".into())),
        };
        take_in(p, transfer, profile.kind, &line, checkpoint.batches, open, &mut files, &mut events)?;
        index = line.index + 1;
        let out_of_time = ctx.should_yield();
        if files.len() >= batch_size || out_of_time {
            checkpoint = commit(p, transfer, &checkpoint, &mut files, &mut events, index)?;
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
        commit(p, transfer, &checkpoint, &mut files, &mut events, index)?;
    }
    Ok(Some(p.files.finish_extract(transfer.id)?))
}
