//! What every per-file stage shares: take a batch, do one thing to each file, record the
//! tasks, events and file changes in one write, then hand the batch on (or fan in).

use crate::error::{StageError, StageResult};
use crate::messages::{queues, StageMessage};
use crate::model::{derived_id, File, FilePatch, JobStatus, PremisEvent, Task, Transfer};
use crate::pipeline::{Pipeline, Progress};
use crate::profile::Profile;

/// What a stage did to one file.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub events: Vec<PremisEvent>,
    pub patch: Option<FilePatch>,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Set when this file ends the transfer (an infected file, a digest that does not
    /// match): the batch is recorded first, so the evidence is kept.
    pub fails_transfer: Option<String>,
}

impl FileOutcome {
    /// The check was not made, and the file's record says why.
    pub fn not_performed(p: &Pipeline, file: &File, event_type: &str, program: &str, why: String) -> Self {
        let detail = format!("program=\"{program}\"; {why}");
        let event = p.file_event(file, event_type, detail, crate::model::EventOutcome::NotPerformed, why.clone());
        Self { events: vec![event], stdout: why, ..Default::default() }
    }
}

/// Runs `work` on every file of the message's batch.
pub fn run_batch(
    p: &Pipeline,
    msg: &StageMessage,
    stage: &'static str,
    mut work: impl FnMut(&Transfer, &Profile, &File) -> StageResult<FileOutcome>,
) -> StageResult<Progress> {
    let Some(transfer) = p.active_transfer(msg.transfer_id)? else {
        return Ok(Progress::Ignored);
    };
    let batch = msg.batch.ok_or_else(|| StageError::Transient(format!("a {stage} message without a batch")))?;
    let profile = p.profile(&transfer)?;
    let job = p.begin_job(transfer.id, stage)?;
    let files = p.state.batch_files(transfer.id, batch)?;
    let mut tasks = Vec::with_capacity(files.len());
    let mut events = Vec::with_capacity(files.len());
    let mut patches = Vec::with_capacity(files.len());
    let mut failures = Vec::new();
    for file in &files {
        let started = p.clock.now();
        let outcome = work(&transfer, profile, file)?;
        tasks.push(Task {
            uuid: derived_id(job.uuid, &format!("task/{}", file.uuid)),
            job_uuid: job.uuid,
            file_uuid: file.uuid,
            exit_code: outcome.exit_code,
            started_at: started,
            ended_at: p.clock.now(),
            stdout: outcome.stdout,
            stderr: outcome.stderr,
        });
        events.extend(outcome.events);
        patches.extend(outcome.patch);
        failures.extend(outcome.fails_transfer);
    }
    let recorded = p.state.record_batch(transfer.id, stage, batch, &tasks, &events, &patches)?;
    if !failures.is_empty() {
        return Err(StageError::Failed(failures.join("; ")));
    }
    hand_on(p, transfer.id, stage, batch, recorded.stage_complete)
}

/// Sends a batch to the next per-file stage, and fans in to METS when the last per-file
/// stage has finished every batch. Repeated on redelivery: the receivers are idempotent.
fn hand_on(
    p: &Pipeline,
    transfer_id: uuid::Uuid,
    stage: &str,
    batch: u32,
    stage_complete: bool,
) -> StageResult<Progress> {
    match queues::next_per_file(stage) {
        Some(next) => p.send(next, &[StageMessage::batch(transfer_id, batch)])?,
        None if stage_complete => p.send(queues::METS, &[StageMessage::transfer(transfer_id)])?,
        None => {}
    }
    if stage_complete {
        p.state.finish_job(transfer_id, stage, JobStatus::Completed)?;
    }
    Ok(Progress::Done)
}
