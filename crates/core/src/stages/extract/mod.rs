//! extract: the package's entries are streamed into the working area under the names
//! intake planned, each file gets its UUID, an ingestion (or registration) event and, when
//! its name had to change, a filename-change event; files are committed in batches, and each
//! batch goes to the per-file stages as soon as it is committed, so that they work while
//! extraction goes on.
//!
//! Two ways, one record: a zip larger than one range is spread over many invocations
//! (`plan`, `ranges`): its batches fixed first, each range extracted on its own. Any other
//! package goes in one line of invocations (`sequential`), continuing from its checkpoint in
//! a new message when time runs out; when every entry is in, the final batch count is known
//! and the per-file stages that have already done every batch are finished here.

mod entries;
mod packages;
mod plan;
mod ranges;
mod sequential;

use std::sync::Arc;

use crate::error::StageResult;
use crate::model::messages::StageMessage;
use crate::model::{File, JobStatus, PremisEvent, Stage, Transfer};
use crate::ports::{ExtractCheckpoint, FileCatalogue, ObjectStore};
use crate::stages::{Flow, Microservice, Progress, StageContext};

/// The extract stage and what it uses beside its `Flow`: the upload it reads, the file
/// catalogue it commits to, and the rules that say which packages inside it are unpacked.
pub struct Extract<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub uploads: &'a Arc<dyn ObjectStore>,
    pub fpr: &'a crate::config::fpr::Rules,
}

impl Microservice for Extract<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let Some((transfer, job)) = self.flow.take_up(msg.transfer_id, Stage::Extract)? else {
            return Ok(Progress::Ignored);
        };
        if let Some(batch) = msg.batch {
            // A range's message after extraction finished is a late copy, but perhaps of the
            // delivery that finished the job and died before its last batch went on.
            if job.status != JobStatus::Processing {
                return ranges::send_range_end_again(self, &transfer, batch);
            }
            return ranges::extract_range(self, &transfer, batch, ctx);
        }
        let mut checkpoint = self.files.extract_checkpoint(transfer.id)?;
        if checkpoint == ExtractCheckpoint::default() {
            if let Some(plan) = ranges::plan(self, &transfer)? {
                return ranges::send_ranges(self, &transfer, &plan);
            }
        } else if checkpoint.done && job.status == JobStatus::Processing {
            if let Some(plan) = ranges::saved_plan(self, &transfer)? {
                return ranges::send_ranges(self, &transfer, &plan);
            }
        }
        if !checkpoint.done {
            // Each batch is sent right after its commit; a delivery that died between the two
            // left only the last one unsent. Sent again, it is done again, to the same records.
            if let Some(last) = checkpoint.batches.checked_sub(1) {
                self.flow.send(Stage::PER_FILE[0], &[StageMessage::batch(transfer.id, last)])?;
            }
            match sequential::extract(self, &transfer, checkpoint, ctx)? {
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

/// Commits a batch (with what the packages among its files hold) and sends it on at once.
fn commit(
    p: &Extract<'_>,
    transfer: &Transfer,
    from: &ExtractCheckpoint,
    files: &mut Vec<File>,
    events: &mut Vec<PremisEvent>,
    next_entry: u64,
) -> StageResult<ExtractCheckpoint> {
    let profile = p.flow.profile(transfer)?;
    packages::unpack(p, transfer, &profile, files, events)?;
    let checkpoint = p.files.commit_extract_batch(transfer.id, from, files, events, next_entry)?;
    if checkpoint.batches > from.batches {
        p.flow.send(Stage::PER_FILE[0], &[StageMessage::batch(transfer.id, from.batches)])?;
    }
    Ok(checkpoint)
}
