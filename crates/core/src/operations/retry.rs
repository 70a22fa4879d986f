//! A FAILED transfer tried again from the microservice that failed: the transfer is
//! reopened and that stage's messages are sent again. Every stage is idempotent, so what was
//! already recorded (files, events, tasks, batches) is found and not written twice.
//!
//! Who asks (the dashboard, the command line) only reopens the transfer and puts a resend
//! request on the start queue; the start function sends the stage's messages. So the
//! dashboard's role needs no permission to send to any stage's queue but the start queue,
//! which takes uploads too.

use uuid::Uuid;

use crate::model::messages::StageMessage;
use crate::model::{JobStatus, Transfer, TransferStatus};
use crate::model::{Stage, UnknownStage};
use crate::ports::{PortError, PortResult, Queue, StateStore};

/// A retry under way: the microservice it starts again from, and how many messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    pub stage: String,
    pub microservice: String,
    pub messages: usize,
}

/// Why a transfer cannot be retried, in words for the person who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRetried {
    NoSuchTransfer,
    NotFailed(TransferStatus),
    /// Intake failed: there is nothing to go on from; the package is uploaded again.
    AtIntake,
    NoFailedJob,
}

impl std::fmt::Display for NotRetried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchTransfer => f.write_str("there is no such transfer"),
            Self::NotFailed(status) => write!(
                f,
                "only a FAILED transfer is retried; this one is {} (a REJECTED package is fixed and uploaded again)",
                status.as_str()
            ),
            Self::AtIntake => f.write_str("the transfer failed at intake: upload the package again"),
            Self::NoFailedJob => f.write_str(
                "no microservice of this transfer is recorded as failed, so there is nowhere to start again",
            ),
        }
    }
}

/// Reopens a FAILED transfer and sends its failed stage's messages again.
pub fn retry(state: &dyn StateStore, queue: &dyn Queue, id: Uuid) -> PortResult<Result<Retried, NotRetried>> {
    let Some(transfer) = state.transfer(id)? else {
        return Ok(Err(NotRetried::NoSuchTransfer));
    };
    if transfer.status != TransferStatus::Failed {
        return Ok(Err(NotRetried::NotFailed(transfer.status)));
    }
    let Some(job) = state.jobs(id)?.into_iter().rev().find(|j| j.status == JobStatus::Failed) else {
        return Ok(Err(NotRetried::NoFailedJob));
    };
    let stage: Stage = job.stage.parse().map_err(|e: UnknownStage| PortError::Corrupt(e.to_string()))?;
    if stage == Stage::Start {
        return Ok(Err(NotRetried::AtIntake));
    }
    if !state.reopen_transfer(id, &job.stage)? {
        // Another retry reopened it first: that one sends the messages.
        return Ok(Err(NotRetried::NotFailed(TransferStatus::Processing)));
    }
    let messages = stage_messages(&transfer, stage);
    let request = Resend { resend: ResendOf { transfer_id: id, stage: job.stage.clone() } };
    queue.send(Stage::Start.name(), &serde_json::to_string(&request).expect("a resend request serializes"))?;
    tracing::info!(transfer_id = %id, stage = %job.stage, messages = messages.len(), "transfer retried");
    Ok(Ok(Retried { microservice: stage.job_name().to_string(), stage: job.stage, messages: messages.len() }))
}

/// A request, on the start queue, to send a reopened transfer's stage messages again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    pub resend: ResendOf,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendOf {
    pub transfer_id: Uuid,
    pub stage: String,
}

/// The start function's half of a retry: the stage's messages, sent only while the transfer
/// is PROCESSING with that stage's job reopened (a late or repeated request sends them
/// again, which the stages take in their stride; one for a transfer that has moved on, or
/// was never reopened, sends nothing). True when messages were sent.
pub fn resend(state: &dyn StateStore, queue: &dyn Queue, of: &ResendOf) -> PortResult<bool> {
    let stage: Stage = of.stage.parse().map_err(|e: UnknownStage| PortError::Refused(e.to_string()))?;
    let Some(transfer) = state.transfer(of.transfer_id)? else {
        return Ok(false);
    };
    let reopened = state.job(of.transfer_id, stage.name())?.is_some_and(|j| j.status == JobStatus::Processing);
    if transfer.status != TransferStatus::Processing || !reopened || stage == Stage::Start {
        return Ok(false);
    }
    for chunk in stage_messages(&transfer, stage).chunks(10) {
        queue.send_batch(stage.name(), &chunk.iter().map(StageMessage::to_json).collect::<Vec<_>>())?;
    }
    Ok(true)
}

/// The messages that start `stage` of `transfer` again: a message a batch for a per-file
/// stage, one for the transfer otherwise.
fn stage_messages(transfer: &Transfer, stage: Stage) -> Vec<StageMessage> {
    if stage.is_per_file() {
        (0..transfer.batch_count.max(1)).map(|b| StageMessage::batch(transfer.id, b)).collect()
    } else {
        vec![StageMessage::transfer(transfer.id)]
    }
}
