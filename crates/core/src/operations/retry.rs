//! A FAILED transfer tried again from the microservice that failed: the transfer is
//! reopened and that stage's messages are sent again. Every stage is idempotent, so what was
//! already recorded (files, events, tasks, batches) is found and not written twice.

use uuid::Uuid;

use crate::model::messages::StageMessage;
use crate::model::{JobStatus, TransferStatus};
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
    let messages: Vec<StageMessage> = if stage.is_per_file() {
        (0..transfer.batch_count.max(1)).map(|b| StageMessage::batch(id, b)).collect()
    } else {
        vec![StageMessage::transfer(id)]
    };
    for chunk in messages.chunks(10) {
        queue.send_batch(&job.stage, &chunk.iter().map(StageMessage::to_json).collect::<Vec<_>>())?;
    }
    tracing::info!(transfer_id = %id, stage = %job.stage, messages = messages.len(), "transfer retried");
    Ok(Ok(Retried { microservice: stage.job_name().to_string(), stage: job.stage, messages: messages.len() }))
}
