//! The monitor's duties that are domain logic: a message that went to a dead-letter queue
//! ends its transfer as FAILED, with the reason, so nothing is stuck without a word.

use crate::messages::{queues, StageMessage, UploadEvent};
use crate::model::{JobStatus, TransferStatus};
use crate::pipeline::job_spec;
use crate::ports::{DeadLetter, PortResult, Queue, StateStore};

/// The sentence a transfer's record keeps when its message was dead-lettered.
pub fn dead_letter_reason(dl: &DeadLetter) -> String {
    let job = if queues::ALL.contains(&dl.queue.as_str()) { job_spec(&dl.queue).name } else { dl.queue.as_str() };
    format!(
        "the \"{job}\" microservice failed {} times in a row and its message was moved to the {} dead-letter queue; \
         last error: {}. Fix the cause and redrive the message to finish the transfer",
        dl.receive_count,
        dl.queue,
        dl.last_error.as_deref().unwrap_or("none recorded")
    )
}

/// The transfer a dead-lettered message names, if any (an upload event names none yet).
pub fn transfer_of(dl: &DeadLetter) -> Option<uuid::Uuid> {
    serde_json::from_str::<StageMessage>(&dl.body).ok().map(|m| m.transfer_id)
}

/// A dead-lettered message as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetterView {
    pub stage: String,
    pub message_id: String,
    pub transfer_id: Option<uuid::Uuid>,
    /// For an upload event that never made a transfer: the upload it was about.
    pub upload_key: Option<String>,
    pub receive_count: u32,
    /// The queue's last error for it, or its job's last transient error.
    pub last_error: Option<String>,
}

/// Every dead-lettered message (of one stage, or all), with what the records know of it.
pub fn dead_letters(state: &dyn StateStore, queue: &dyn Queue, stage: Option<&str>) -> PortResult<Vec<DeadLetterView>> {
    let mut out = Vec::new();
    for q in queues::ALL.iter().filter(|q| stage.is_none_or(|s| s == **q)) {
        for dl in queue.dead_letters(q)? {
            let transfer_id = transfer_of(&dl);
            let last_error = match (&dl.last_error, transfer_id) {
                (Some(e), _) => Some(e.clone()),
                (None, Some(id)) => state.job(id, q)?.and_then(|j| j.last_error),
                (None, None) => None,
            };
            out.push(DeadLetterView {
                stage: q.to_string(),
                message_id: dl.message_id.clone(),
                transfer_id,
                upload_key: serde_json::from_str::<UploadEvent>(&dl.body).ok().map(|u| u.key),
                receive_count: dl.receive_count,
                last_error,
            });
        }
    }
    Ok(out)
}

/// Sends dead-lettered messages back to their stage (one stage, or all). A transfer that
/// the monitor ended FAILED because of the message (its job at that stage FAILED) is
/// reopened first, so the stage finishes the work; what was done before is found, not
/// written twice. Returns the messages sent back per stage.
pub fn redrive(state: &dyn StateStore, queue: &dyn Queue, stage: Option<&str>) -> PortResult<Vec<(String, usize)>> {
    let mut out = Vec::new();
    for q in queues::ALL.iter().filter(|q| stage.is_none_or(|s| s == **q)) {
        let letters = queue.dead_letters(q)?;
        if letters.is_empty() {
            continue;
        }
        for id in letters.iter().filter_map(transfer_of) {
            let failed_here = state.job(id, q)?.is_some_and(|j| j.status == JobStatus::Failed);
            if failed_here && state.reopen_transfer(id, q)? {
                tracing::info!(transfer_id = %id, stage = q, "transfer reopened for a redriven message");
            }
        }
        out.push((q.to_string(), queue.redrive(q)?));
    }
    Ok(out)
}

/// Ends the transfer a dead letter belongs to. Returns false when the message names no
/// transfer Vellum knows (e.g. an upload event that never created one).
pub fn fail_dead_lettered(state: &dyn StateStore, dl: &DeadLetter) -> PortResult<bool> {
    let transfer_id = transfer_of(dl);
    if transfer_id.is_none() {
        if let Ok(ev) = serde_json::from_str::<UploadEvent>(&dl.body) {
            tracing::error!(key = %ev.key, "an upload event was dead-lettered before it created a transfer");
        }
    }
    let Some(id) = transfer_id else {
        return Ok(false);
    };
    // The queue may keep no reason (SQS): the job's last transient error stands in.
    let mut dl = dl.clone();
    if dl.last_error.is_none() {
        dl.last_error = state.job(id, &dl.queue)?.and_then(|j| j.last_error);
    }
    let reason = dead_letter_reason(&dl);
    if state.end_transfer(id, TransferStatus::Failed, &reason)? {
        state.finish_job(id, &dl.queue, JobStatus::Failed)?;
        tracing::error!(transfer_id = %id, queue = %dl.queue, %reason, "transfer failed: dead letter");
    }
    Ok(true)
}

/// What one look at the dead-letter queues found.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetterSweep {
    /// Dead letters per stage, for the stages that have any.
    pub per_stage: Vec<(String, usize)>,
    /// Dead letters that named a transfer (now FAILED with the reason, if it was not ended).
    pub transfers: usize,
}

/// Looks at every stage's dead-letter queue (without taking the messages: an operator
/// redrives them) and ends each transfer named there as FAILED with the reason. Safe to
/// run again: a transfer already ended keeps its first ending.
pub fn sweep_dead_letters(state: &dyn StateStore, queue: &dyn Queue) -> PortResult<DeadLetterSweep> {
    let mut sweep = DeadLetterSweep::default();
    for stage in queues::ALL {
        let letters = queue.dead_letters(stage)?;
        if letters.is_empty() {
            continue;
        }
        for dl in &letters {
            if fail_dead_lettered(state, dl)? {
                sweep.transfers += 1;
            }
        }
        sweep.per_stage.push((stage.to_string(), letters.len()));
    }
    Ok(sweep)
}
