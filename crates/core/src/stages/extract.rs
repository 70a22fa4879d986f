//! extract: the package's entries are streamed into the working area, each file gets its
//! UUID and an ingestion event, and files are committed in batches. A package too large for
//! one invocation continues from its checkpoint in a new message; when every entry is in,
//! the batches fan out to the per-file stages.

use std::io::{self, Read};

use crate::error::{StageError, StageResult};
use crate::messages::{queues, StageMessage};
use crate::model::{derived_id, EventOutcome, File, FileUse, JobStatus, PremisEvent};
use crate::pipeline::{Pipeline, Progress, StageContext};
use crate::ranged::RangedReader;
use crate::stages::{working_key, PER_FILE_STAGES};

/// Reads of the package during extraction fetch this much at a time.
const READ_CHUNK: u64 = 8 * 1024 * 1024;

pub fn run(p: &Pipeline, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
    let Some(transfer) = p.active_transfer(msg.transfer_id)? else {
        return Ok(Progress::Ignored);
    };
    let profile = p.profile(&transfer)?;
    let batch_size = p.batch_size(profile) as usize;
    p.begin_job(transfer.id, queues::EXTRACT)?;
    let mut checkpoint = p.state.extract_checkpoint(transfer.id)?;
    if !checkpoint.done {
        let meta = p.uploads.head(&transfer.source_key)?.ok_or_else(|| {
            StageError::Failed(format!(
                "the upload {:?} disappeared from the bucket during extraction: upload it again",
                transfer.source_key
            ))
        })?;
        let reader = RangedReader::new(
            p.uploads.clone(),
            &transfer.source_key,
            meta.size,
            READ_CHUNK,
        );
        let mut zip = zip::ZipArchive::new(reader).map_err(|e| {
            StageError::Failed(format!("the package can no longer be read as a zip: {e}"))
        })?;
        let total = zip.len() as u64;
        let mut files: Vec<File> = Vec::new();
        let mut events: Vec<PremisEvent> = Vec::new();
        let mut index = checkpoint.next_entry;
        while index < total {
            if let Some(file) = extract_entry(p, &transfer, &mut zip, index, checkpoint.batches)? {
                events.push(ingestion_event(p, &file));
                files.push(file);
            }
            index += 1;
            let out_of_time = ctx.should_yield() && index < total;
            if files.len() >= batch_size || out_of_time {
                checkpoint = p.state.commit_extract_batch(
                    transfer.id,
                    &checkpoint,
                    &files,
                    &events,
                    index,
                )?;
                files.clear();
                events.clear();
            }
            if out_of_time {
                p.send(queues::EXTRACT, &[StageMessage::transfer(transfer.id)])?;
                tracing::info!(
                    next_entry = index,
                    total,
                    "extraction continues in a new message"
                );
                return Ok(Progress::Continued);
            }
        }
        if !files.is_empty() {
            p.state
                .commit_extract_batch(transfer.id, &checkpoint, &files, &events, index)?;
        }
        checkpoint = p.state.finish_extract(transfer.id)?;
    }
    // Re-sent on every delivery after the checkpoint is done: the per-file stages ignore
    // batches they have recorded, so a message lost between commit and send is recovered.
    let first = PER_FILE_STAGES[0];
    let msgs: Vec<StageMessage> = (0..checkpoint.batches)
        .map(|b| StageMessage::batch(transfer.id, b))
        .collect();
    p.send(first, &msgs)?;
    p.state
        .finish_job(transfer.id, queues::EXTRACT, JobStatus::Completed)?;
    Ok(Progress::Done)
}

/// Streams one entry to the working area. Directories yield no file.
fn extract_entry<R: Read + io::Seek>(
    p: &Pipeline,
    transfer: &crate::model::Transfer,
    zip: &mut zip::ZipArchive<R>,
    index: u64,
    batch: u32,
) -> StageResult<Option<File>> {
    let mut entry = zip.by_index(index as usize).map_err(|e| {
        StageError::Failed(format!("entry {index} of the package cannot be read: {e}"))
    })?;
    let raw_name = String::from_utf8_lossy(entry.name_raw()).into_owned();
    if entry.is_dir() {
        return Ok(None);
    }
    if entry.is_symlink() {
        return Err(StageError::Failed(format!(
            "the package holds a link, {raw_name:?}: links are not preserved; replace it with the file it points to"
        )));
    }
    if entry.encrypted() {
        return Err(StageError::Failed(format!(
            "{raw_name:?} is encrypted: make the zip again without a password"
        )));
    }
    let Some(safe) = entry.enclosed_name() else {
        return Err(StageError::Failed(format!(
            "the entry {raw_name:?} has a path that escapes the package (absolute, or with \"..\"): \
             make the zip from inside the package folder"
        )));
    };
    let path = safe.to_string_lossy().replace('\\', "/");
    let file_use = if path.starts_with("objects/") {
        FileUse::Original
    } else if path.starts_with("metadata/") {
        FileUse::Metadata
    } else {
        return Err(StageError::Failed(format!(
            "the entry {raw_name:?} is outside objects/ and metadata/: everything in the package \
             belongs in one of those two folders"
        )));
    };
    let declared = entry.size();
    let mut out = p.working.writer(&working_key(transfer.id, &path))?;
    let written = io::copy(&mut entry, &mut out).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof {
            StageError::Failed(format!("the entry {raw_name:?} is damaged: {e}"))
        } else {
            StageError::Transient(format!("extracting {raw_name:?}: {e}"))
        }
    })?;
    if written != declared {
        return Err(StageError::Failed(format!(
            "the entry {raw_name:?} holds {written} bytes but the zip declares {declared}: the package is damaged"
        )));
    }
    out.commit()?;
    let modified = entry
        .last_modified()
        .and_then(|dt| {
            chrono::NaiveDate::from_ymd_opt(dt.year().into(), dt.month().into(), dt.day().into())?
                .and_hms_opt(dt.hour().into(), dt.minute().into(), dt.second().into())
        })
        .map(|naive| naive.and_utc());
    Ok(Some(File {
        uuid: derived_id(transfer.id, &format!("file/{index}")),
        transfer_id: transfer.id,
        batch,
        entry_index: index,
        file_use,
        original_path: path.clone(),
        current_path: path,
        size: written,
        checksums: Default::default(),
        format: None,
        modified,
    }))
}

fn ingestion_event(p: &Pipeline, file: &File) -> PremisEvent {
    PremisEvent::new(
        file.transfer_id,
        Some(file.uuid),
        "ingestion",
        p.clock.now(),
        String::new(),
        EventOutcome::None,
        String::new(),
        p.agents(),
    )
}
