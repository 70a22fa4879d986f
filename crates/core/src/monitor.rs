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

/// Ends the transfer a dead letter belongs to. Returns false when the message names no
/// transfer Vellum knows (e.g. an upload event that never created one).
pub fn fail_dead_lettered(state: &dyn StateStore, dl: &DeadLetter) -> PortResult<bool> {
    let transfer_id = match serde_json::from_str::<StageMessage>(&dl.body) {
        Ok(m) => Some(m.transfer_id),
        Err(_) => match serde_json::from_str::<UploadEvent>(&dl.body) {
            Ok(ev) => {
                tracing::error!(key = %ev.key, "an upload event was dead-lettered before it created a transfer");
                None
            }
            Err(_) => None,
        },
    };
    let Some(id) = transfer_id else {
        return Ok(false);
    };
    let reason = dead_letter_reason(dl);
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
