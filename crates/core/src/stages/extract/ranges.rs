//! Extraction in ranges: the first invocation cuts the listing into a plan, fixes its counts
//! and sends one message per range; each range's invocation opens its entries where they lie
//! with ranged reads (no central directory, no shared disk), writes each batch, counts it on
//! the extract job and hands it to the per-file stages. The batch that completes the count
//! finishes the job. A range out of time goes on from its next batch in a new message.

use std::io::BufRead;

use crate::error::{StageError, StageResult};
use crate::intake::archive::ListingLine;
use crate::io::ranged::RangedReader;
use crate::model::messages::StageMessage;
use crate::model::{Stage, Transfer};
use crate::ports::{ExtractCheckpoint, PortError};
use crate::record::keys::{extract_plan_key, listing_key};
use crate::stages::{Progress, StageContext};

use super::entries::{open_located, take_in};
use super::plan::{ExtractPlan, Limits, Sequential};
use super::{Extract, READ_CHUNK};

/// The plan of a package not yet extracted, saved and fixed; None when it is extracted in
/// one line (and why is logged).
pub(super) fn plan(p: &Extract<'_>, transfer: &Transfer) -> StageResult<Option<ExtractPlan>> {
    let profile = p.flow.profile(transfer)?;
    let limits = Limits::for_batches_of(p.flow.batch_size(&profile));
    let listing = std::io::BufReader::new(p.flow.working.get(&listing_key(transfer.id))?);
    let plan = match ExtractPlan::of(listing, limits)? {
        Ok(plan) => plan,
        Err(Sequential::Small) => return Ok(None),
        Err(Sequential::Unlocated(why)) => {
            tracing::info!(transfer_id = %transfer.id, "extracted in one line of invocations: {why}");
            return Ok(None);
        }
    };
    let json = serde_json::to_vec(&plan).expect("a plan serializes");
    p.flow.working.put(&extract_plan_key(transfer.id), &json)?;
    match p.files.plan_extract(transfer.id, &ExtractCheckpoint::default(), &plan.checkpoint()) {
        Ok(_) => {}
        // An earlier delivery fixed the same plan (it is made from the same listing).
        Err(PortError::Conflict(_)) if p.files.extract_checkpoint(transfer.id)? == plan.checkpoint() => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        transfer_id = %transfer.id,
        files = plan.files,
        batches = plan.batches.len(),
        ranges = plan.ranges.len(),
        "extraction spread over ranges"
    );
    Ok(Some(plan))
}

/// The plan fixed for a transfer, if it has one.
pub(super) fn saved_plan(p: &Extract<'_>, transfer: &Transfer) -> StageResult<Option<ExtractPlan>> {
    let key = extract_plan_key(transfer.id);
    if p.flow.working.head(&key)?.is_none() {
        return Ok(None);
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut p.flow.working.get(&key)?, &mut text)?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| StageError::Transient(format!("the extraction plan of {} is unreadable: {e}", transfer.id)))
}

/// Sends a message for each range. A transfer message delivered again after the plan was
/// fixed (its first delivery died before it was acknowledged, or the transfer was retried
/// from extract) sends them all again: a range extracted twice writes the same records and
/// counts its batches once, and a retry needs every range that had not finished.
pub(super) fn send_ranges(p: &Extract<'_>, transfer: &Transfer, plan: &ExtractPlan) -> StageResult<Progress> {
    let msgs: Vec<StageMessage> = plan.ranges.iter().map(|&first| StageMessage::batch(transfer.id, first)).collect();
    p.flow.send(Stage::Extract, &msgs)?;
    Ok(Progress::Continued)
}

/// A range's batches are extracted in order by one chain of messages, so the batch that
/// completes extraction's count is the last of its range; its delivery finishes the job
/// before sending the batch on (no later stage ends before extraction), and one that died
/// between the two left only that batch unsent. A late copy sends it again: a batch sent
/// twice is done twice, to the same records.
pub(super) fn send_range_end_again(p: &Extract<'_>, transfer: &Transfer, batch: u32) -> StageResult<Progress> {
    let Some(plan) = saved_plan(p, transfer)? else {
        return Ok(Progress::Ignored);
    };
    let Some(last) = plan.range_end(batch).checked_sub(1) else {
        return Ok(Progress::Ignored);
    };
    p.flow.send(Stage::PER_FILE[0], &[StageMessage::batch(transfer.id, last)])?;
    Ok(Progress::Done)
}

/// Extracts the batches from `first` to the end of its range.
pub(super) fn extract_range(
    p: &Extract<'_>,
    transfer: &Transfer,
    first: u32,
    ctx: &StageContext,
) -> StageResult<Progress> {
    let plan = saved_plan(p, transfer)?.ok_or_else(|| {
        StageError::Transient(format!("batch {first} of {} was sent to extract with no plan saved", transfer.id))
    })?;
    if first as usize >= plan.batches.len() {
        return Err(StageError::Failed(format!("batch {first} is not in the extraction plan")));
    }
    let profile = p.flow.profile(transfer)?;
    let key = &transfer.source_key;
    let meta = p.uploads.head(key)?.ok_or_else(|| {
        StageError::Failed(format!("the upload {key:?} disappeared from the bucket during extraction: upload it again"))
    })?;
    let mut zip = RangedReader::new(p.uploads.clone(), key, meta.size, READ_CHUNK);
    let end = plan.range_end(first);
    for batch in first..end {
        let (offset, len) = plan.lines_of(batch).expect("the batch is in the plan");
        let text = p.flow.working.get_range(&listing_key(transfer.id), offset, len)?;
        let (mut files, mut events) = (Vec::new(), Vec::new());
        for line in (&text[..]).lines() {
            let line: ListingLine = serde_json::from_str(&line?)
                .map_err(|e| StageError::Transient(format!("the package listing is unreadable: {e}")))?;
            let (reader, located) = (&mut zip, &line);
            // Moving the reader in makes the closure run once: what it opens borrows it.
            let open = move || match &located.at {
                Some(at) => {
                    let reader = reader;
                    open_located(reader, at, located)
                }
                None => Err(StageError::Failed(format!("the listing no longer says where {:?} lies", located.name))),
            };
            take_in(p, transfer, profile.kind, &line, batch, open, &mut files, &mut events)?;
        }
        super::packages::unpack(p, transfer, &profile, &mut files, &mut events)?;
        p.files.write_extracted_batch(transfer.id, batch, &files, &events)?;
        // The batch's commit point; the one that completes the count finishes the job
        // before its batch goes on, so no later stage can end before extraction.
        if p.files.mark_batch_done(transfer.id, Stage::Extract.name(), batch)?.stage_complete {
            p.flow.finish_job(transfer.id, Stage::Extract)?;
        }
        p.flow.send(Stage::PER_FILE[0], &[StageMessage::batch(transfer.id, batch)])?;
        if batch + 1 < end && ctx.should_yield() {
            tracing::info!(next_batch = batch + 1, "the range continues in a new message");
            p.flow.send(Stage::Extract, &[StageMessage::batch(transfer.id, batch + 1)])?;
            return Ok(Progress::Continued);
        }
    }
    Ok(Progress::Done)
}
