//! What every per-file stage shares: take a batch, do one thing to each file, write the
//! tasks, events and file changes, count the batch done (the commit point), then hand the
//! batch on (or fan in).

use crate::config::profile::Profile;
use crate::error::{StageError, StageResult};
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{derived_id, EventType, File, FilePatch, PremisEvent, Task, Transfer};
use crate::ports::{FileCatalogue, FilePages, MAX_TASK_OUTPUT};
use crate::stages::{Flow, Progress, StageContext};

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
    /// Files the stage made (a preservation copy), joining the batch after its originals.
    pub new_files: Vec<File>,
    /// The stage does nothing to this file (a copy another delivery made): no task.
    pub not_a_task: bool,
}

impl FileOutcome {
    /// The check was not made, and the file's record says why.
    pub fn not_performed(flow: &Flow, file: &File, event_type: EventType, program: &str, why: String) -> Self {
        let detail = format!("program=\"{program}\"; {why}");
        let event = flow.file_event(file, event_type, detail, crate::model::EventOutcome::NotPerformed, why.clone());
        Self { events: vec![event], stdout: why, ..Default::default() }
    }
}

/// Runs `work` on every file of the message's batch, from where the message resumes. A
/// batch of large files that runs out of time writes what it has done and continues in a
/// new message after the last file done; only the end of the batch counts it.
pub fn run_batch(
    flow: &Flow,
    catalogue: &dyn FileCatalogue,
    msg: &StageMessage,
    stage: Stage,
    ctx: &StageContext,
    mut work: impl FnMut(&Transfer, &Profile, &File) -> StageResult<FileOutcome>,
) -> StageResult<Progress> {
    let Some(transfer) = flow.active_transfer(msg.transfer_id)? else {
        return Ok(Progress::Ignored);
    };
    let batch = msg.batch.ok_or_else(|| StageError::Transient(format!("a {stage} message without a batch")))?;
    let profile = flow.profile(&transfer)?;
    let job = flow.begin_job(transfer.id, stage)?;
    let mut tasks = Vec::new();
    let mut events = Vec::new();
    let mut patches = Vec::new();
    let mut failures = Vec::new();
    let mut made = Vec::new();
    let mut files = FilePages::of_batch(catalogue, transfer.id, batch).after(msg.resume_after.clone()).peekable();
    while let Some(file) = files.next() {
        let file = file?;
        let started = flow.clock.now();
        let outcome = work(&transfer, &profile, &file)?;
        if outcome.not_a_task {
            continue;
        }
        tasks.push(Task {
            uuid: derived_id(file.uuid, &format!("task/{}", job.uuid)),
            job_uuid: job.uuid,
            file_uuid: file.uuid,
            file_name: file.current_path.clone(),
            exit_code: outcome.exit_code,
            started_at: started,
            ended_at: flow.clock.now(),
            stdout: bounded(outcome.stdout),
            stderr: bounded(outcome.stderr),
        });
        events.extend(outcome.events);
        patches.extend(outcome.patch);
        failures.extend(outcome.fails_transfer);
        made.extend(outcome.new_files);
        if failures.is_empty() && ctx.should_yield() && files.peek().is_some() {
            // The files made first: an event about a file is never kept without the file.
            catalogue.write_extracted_batch(transfer.id, batch, &made, &[])?;
            catalogue.write_batch_items(transfer.id, &tasks, &events, &patches)?;
            let cursor = file.entry_index.to_string();
            tracing::info!(batch, after = %cursor, "the batch continues in a new message");
            flow.send(stage, &[msg.continued(cursor)])?;
            return Ok(Progress::Continued);
        }
    }
    if !made.is_empty() {
        catalogue.write_extracted_batch(transfer.id, batch, &made, &[])?;
    }
    let recorded = catalogue.record_batch(transfer.id, stage.name(), batch, &tasks, &events, &patches)?;
    if !failures.is_empty() {
        return Err(StageError::Failed(failures.join("; ")));
    }
    hand_on(flow, transfer.id, stage, batch, recorded.stage_complete)
}

/// Keeps a task's output within `MAX_TASK_OUTPUT`, saying so when it was cut.
fn bounded(mut text: String) -> String {
    if text.len() <= MAX_TASK_OUTPUT {
        return text;
    }
    let mut cut = MAX_TASK_OUTPUT - 64;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let total = text.len();
    text.truncate(cut);
    text.push_str(&format!("\n[output cut at {cut} of {total} bytes]"));
    text
}

/// Sends a batch to the next per-file stage, and fans in to METS when the last per-file
/// stage has finished every batch. Repeated on redelivery: the receivers are idempotent.
fn hand_on(
    flow: &Flow,
    transfer_id: uuid::Uuid,
    stage: Stage,
    batch: u32,
    stage_complete: bool,
) -> StageResult<Progress> {
    match stage.next_per_file() {
        Some(next) => flow.send(next, &[StageMessage::batch(transfer_id, batch)])?,
        None if stage_complete => flow.send(Stage::Mets, &[StageMessage::transfer(transfer_id)])?,
        None => {}
    }
    if stage_complete {
        flow.finish_job(transfer_id, stage)?;
    }
    Ok(Progress::Done)
}
