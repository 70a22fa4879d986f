//! The package written by many invocations at once. The first invocation lists the bag's
//! entries (as one line of invocations would write them, sorted), writes the tag files,
//! cuts the list into slices and saves each slice's entries, fixes the parts (one a slice,
//! named by the plan) in the job's checkpoint, and sends one message a slice. Each slice's
//! invocation writes its part: whole tar entries in one gzip member, the tar ended only by
//! the last slice, so the joined parts are the bag one invocation would have written.
//!
//! A slice stands for eight of the transfer's batches (the last for what is left), and
//! counts them done on the package job when its part is written: the per-file fan-in's
//! count is the batch count, so the part that completes it is the last, and that
//! invocation hands the transfer to store.

use std::io::{BufRead, BufReader};

use serde::{Deserialize, Serialize};

use crate::error::{StageError, StageResult};
use crate::model::messages::StageMessage;
use crate::model::{derived_id, JobStatus, Stage, Transfer};
use crate::ports::PortError;
use crate::record::aip::PackageCheckpoint;
use crate::record::keys::{package_part_key, package_slice_key, package_tag_key};
use crate::stages::{Progress, StageContext};

use super::{write_entries, Package, Source};

/// Batches a slice stands for.
const BATCHES_A_SLICE: u32 = 8;
/// A slice may hold at most this many bytes, so that one invocation writes it well within
/// its deadline (gzip and two S3 streams: about a minute a GiB); a package with a larger
/// slice is written in one line of invocations.
const SLICE_BYTES: u64 = 4 << 30;

/// One entry of a slice, as saved: where its bytes are, how large, and its time.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SliceEntry {
    path: String,
    /// The working key; none for an original file, whose key follows from its UUID and path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// An original file's UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uuid: Option<uuid::Uuid>,
    size: u64,
    mtime: u64,
}

/// How many slices the package of `batches` batches is cut into.
pub(super) fn slice_count(batches: u32) -> u32 {
    batches.div_ceil(BATCHES_A_SLICE)
}

/// Whether a transfer is written in slices: more files than eight full batches hold (a
/// transfer of many small batches — extraction cut short again and again — is not large).
pub(super) fn worth_slicing(transfer: &Transfer, batch_size: u32) -> bool {
    slice_count(transfer.batch_count) >= 2 && transfer.file_count > u64::from(BATCHES_A_SLICE) * u64::from(batch_size)
}

/// The entries of slice `i` of `slices` among `total`: an equal share, in order.
fn bounds(i: u32, slices: u32, total: usize) -> (usize, usize) {
    let at = |i: u32| (i as u64 * total as u64 / slices as u64) as usize;
    (at(i), at(i + 1))
}

fn part_key(transfer: &Transfer, slice: u32, first_entry: usize) -> String {
    package_part_key(transfer.id, first_entry, derived_id(transfer.id, &format!("package/slice/{slice}")))
}

fn size_of(source: &Source) -> u64 {
    match source {
        Source::Bytes(b) => b.len() as u64,
        Source::Working { size, .. } | Source::Original { size, .. } => *size,
    }
}

/// Cuts the bag's entries into slices, saves them and fixes the parts; None when the
/// package is better written in one line (a slice would be too large for one invocation).
pub(super) fn plan(
    p: &Package<'_>,
    transfer: &Transfer,
    bagged: crate::model::Timestamp,
    entries: &[(String, Source)],
    (seen, mut checkpoint): (Option<String>, PackageCheckpoint),
) -> StageResult<Option<PackageCheckpoint>> {
    let slices = slice_count(transfer.batch_count);
    let total = entries.len();
    let largest = (0..slices)
        .map(|i| {
            let (from, to) = bounds(i, slices, total);
            entries[from..to].iter().map(|(_, s)| size_of(s)).sum::<u64>()
        })
        .max()
        .unwrap_or(0);
    if largest > SLICE_BYTES {
        tracing::info!(largest, "the package is written in one line: a slice would hold more than 4 GiB");
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(slices as usize);
    let mut lines = Vec::new();
    for i in 0..slices {
        let (from, to) = bounds(i, slices, total);
        lines.clear();
        for (path, source) in entries[from..to].iter() {
            let entry = match source {
                Source::Bytes(bytes) => {
                    let key = package_tag_key(transfer.id, path);
                    p.flow.working.put(&key, bytes)?;
                    let mtime = bagged.timestamp().max(0) as u64;
                    SliceEntry { path: path.clone(), key: Some(key), uuid: None, size: bytes.len() as u64, mtime }
                }
                Source::Working { key, size, mtime } => {
                    SliceEntry { path: path.clone(), key: Some(key.clone()), uuid: None, size: *size, mtime: *mtime }
                }
                Source::Original { uuid, size, mtime } => {
                    SliceEntry { path: path.clone(), key: None, uuid: Some(*uuid), size: *size, mtime: *mtime }
                }
            };
            serde_json::to_writer(&mut lines, &entry).expect("an entry serializes");
            lines.push(b'\n');
        }
        p.flow.working.put(&package_slice_key(transfer.id, i), &lines)?;
        parts.push(part_key(transfer, i, from));
    }
    checkpoint.next_entry = total;
    checkpoint.parts = parts;
    checkpoint.slices = Some(slices);
    let text = serde_json::to_string(&checkpoint).expect("a checkpoint serializes");
    match p.flow.jobs.set_job_checkpoint(transfer.id, Stage::Package.name(), seen.as_deref(), &text) {
        Ok(()) => {}
        // Another delivery fixed the plan first: the same one, from the same records.
        Err(PortError::Conflict(_)) => return Ok(Some(PackageCheckpoint::load(p.flow.jobs, transfer.id)?.1)),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(slices, entries = total, "the package is written in slices");
    Ok(Some(checkpoint))
}

/// Sends a message for each slice (again, when a delivery died before all were sent: a
/// slice written twice writes the same part).
pub(super) fn send_slices(p: &Package<'_>, transfer: &Transfer, slices: u32) -> StageResult<Progress> {
    let msgs: Vec<StageMessage> = (0..slices).map(|i| StageMessage::batch(transfer.id, i)).collect();
    p.flow.send(Stage::Package, &msgs)?;
    Ok(Progress::Continued)
}

/// Writes slice `i`'s part and counts its batches; the slice that completes the count
/// finishes the job and hands the transfer to store.
pub(super) fn write_slice(
    p: &Package<'_>,
    transfer: &Transfer,
    job_status: JobStatus,
    bagged: crate::model::Timestamp,
    i: u32,
    _ctx: &StageContext,
) -> StageResult<Progress> {
    if job_status != JobStatus::Processing {
        // A late copy of a slice's message: the package is written.
        return Ok(Progress::Ignored);
    }
    let (_, checkpoint) = PackageCheckpoint::load(p.flow.jobs, transfer.id)?;
    let slices = checkpoint.slices.ok_or_else(|| {
        StageError::Transient(format!("slice {i} of {}'s package was sent before its plan was fixed", transfer.id))
    })?;
    let key = checkpoint
        .parts
        .get(i as usize)
        .ok_or_else(|| StageError::Failed(format!("slice {i} is not in the package's plan of {slices}")))?;
    let profile = p.flow.profile(transfer)?;
    let reader = BufReader::new(p.flow.working.get(&package_slice_key(transfer.id, i))?);
    let mut entries = Vec::new();
    for line in reader.lines() {
        let entry: SliceEntry = serde_json::from_str(&line?)
            .map_err(|e| StageError::Transient(format!("slice {i} of the package is unreadable: {e}")))?;
        let source = match (entry.key, entry.uuid) {
            (Some(key), _) => Source::Working { key, size: entry.size, mtime: entry.mtime },
            (None, Some(uuid)) => Source::Original { uuid, size: entry.size, mtime: entry.mtime },
            (None, None) => {
                return Err(StageError::Failed(format!(
                    "slice {i} of the package names {:?} by neither key nor UUID (written by an older Vellum?)",
                    entry.path
                )))
            }
        };
        entries.push((entry.path, source));
    }
    let last = i + 1 == slices;
    let written = write_entries(p, transfer, &profile, bagged, key, &entries, &mut |_| true, |_| last)?;
    if written != entries.len() {
        return Err(StageError::Transient(format!("slice {i} wrote {written} of its {} entries", entries.len())));
    }
    // The slice's batches: eight, the last slice what is left.
    let first = i * BATCHES_A_SLICE;
    let end = (first + BATCHES_A_SLICE).min(transfer.batch_count);
    let mut complete = false;
    for batch in first..end {
        complete |= p.files.mark_batch_done(transfer.id, Stage::Package.name(), batch)?.stage_complete;
    }
    if complete {
        p.flow.finish_job(transfer.id, Stage::Package)?;
        p.flow.send(Stage::Store, &[StageMessage::transfer(transfer.id)])?;
    }
    Ok(Progress::Done)
}
