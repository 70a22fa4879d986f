//! The monitor's duties that are domain logic: a message that went to a dead-letter queue
//! ends its transfer as FAILED, with the reason, so nothing is stuck without a word.

use crate::model::messages::{StageMessage, UploadEvent};
use crate::model::Stage;
use crate::model::{by_vellum, EventType, JobStatus, TransferStatus};
use crate::ports::{DeadLetter, ObjectStore, PortResult, Queue, StateStore};

/// The sentence a transfer's record keeps when its message was dead-lettered.
pub fn dead_letter_reason(dl: &DeadLetter) -> String {
    let job = dl.queue.parse::<Stage>().map_or(dl.queue.as_str(), |stage| stage.job_name());
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

/// Each queue of a stage, with its stage: its own and its long-job queue.
fn stage_queues(stage: Stage) -> impl Iterator<Item = (Stage, &'static str)> {
    stage.queues().map(move |q| (stage, q))
}

/// Every dead-lettered message (of one stage, or all), with what the records know of it.
pub fn dead_letters(
    state: &dyn StateStore,
    queue: &dyn Queue,
    stage: Option<Stage>,
) -> PortResult<Vec<DeadLetterView>> {
    let mut out = Vec::new();
    for (stage, q) in Stage::ALL.into_iter().filter(|q| stage.is_none_or(|s| s == *q)).flat_map(stage_queues) {
        for dl in queue.dead_letters(q)? {
            let transfer_id = transfer_of(&dl);
            let last_error = match (&dl.last_error, transfer_id) {
                (Some(e), _) => Some(e.clone()),
                (None, Some(id)) => state.job(id, stage.name())?.and_then(|j| j.last_error),
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
pub fn redrive(state: &dyn StateStore, queue: &dyn Queue, stage: Option<Stage>) -> PortResult<Vec<(String, usize)>> {
    let mut out = Vec::new();
    for (stage, q) in Stage::ALL.into_iter().filter(|q| stage.is_none_or(|s| s == *q)).flat_map(stage_queues) {
        let letters = queue.dead_letters(q)?;
        if letters.is_empty() {
            continue;
        }
        for id in letters.iter().filter_map(transfer_of) {
            let failed_here = state.job(id, stage.name())?.is_some_and(|j| j.status == JobStatus::Failed);
            if failed_here && state.reopen_transfer(id, stage.name())? {
                tracing::info!(transfer_id = %id, stage = q, "transfer reopened for a redriven message");
            }
        }
        out.push((q.to_string(), queue.redrive(q)?));
    }
    Ok(out)
}

/// Ends the transfer a dead letter belongs to, and tells the archivist: the `.failed.` log
/// beside the upload, written first, so that a transfer ended here always has its answer.
/// Returns false when the message names no transfer Vellum knows (e.g. an upload event that
/// never created one).
pub fn fail_dead_lettered(state: &dyn StateStore, uploads: &dyn ObjectStore, dl: &DeadLetter) -> PortResult<bool> {
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
    let job: &str = match Stage::of_queue(&dl.queue) {
        Some(stage) => stage.name(),
        None => &dl.queue,
    };
    let mut dl = dl.clone();
    if dl.last_error.is_none() {
        dl.last_error = state.job(id, job)?.and_then(|j| j.last_error);
    }
    let reason = dead_letter_reason(&dl);
    if let Some(transfer) = state.transfer(id)?.filter(|t| !t.status.is_terminal()) {
        let text = crate::intake::feedback::processing_failure_log(&transfer, &reason);
        crate::intake::feedback::write_log(uploads, &transfer, crate::intake::feedback::LogOutcome::Failed, &text)?;
    }
    if state.end_transfer(id, TransferStatus::Failed, &reason)? {
        state.finish_job(id, job, JobStatus::Failed)?;
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
pub fn sweep_dead_letters(
    state: &dyn StateStore,
    uploads: &dyn ObjectStore,
    queue: &dyn Queue,
) -> PortResult<DeadLetterSweep> {
    let mut sweep = DeadLetterSweep::default();
    for (_, q) in Stage::ALL.into_iter().flat_map(stage_queues) {
        let letters = queue.dead_letters(q)?;
        if letters.is_empty() {
            continue;
        }
        for dl in &letters {
            if fail_dead_lettered(state, uploads, dl)? {
                sweep.transfers += 1;
            }
        }
        sweep.per_stage.push((q.to_string(), letters.len()));
    }
    Ok(sweep)
}

/// Every transfer on record, listed and hidden, page by page.
fn every_transfer(
    state: &dyn StateStore,
    mut each: impl FnMut(crate::model::Transfer) -> PortResult<()>,
) -> PortResult<()> {
    for hidden in [false, true] {
        let mut cursor = None;
        loop {
            let page = state.list_transfers(&crate::ports::TransferQuery {
                hidden,
                after: cursor,
                limit: 200,
                ..Default::default()
            })?;
            for t in page.items {
                each(t)?;
            }
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
    }
    Ok(())
}

/// A transfer that has made no progress for a while.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stuck {
    pub transfer_id: uuid::Uuid,
    pub name: String,
    /// The microservice it is in (its latest job's name).
    pub microservice: String,
    pub stage: String,
    /// Its last progress.
    pub since: crate::model::Timestamp,
    /// What an operator runs to start it again.
    pub retry: String,
}

/// When a transfer last moved on: its own record, or a job starting, ending, recording a
/// batch or taking a checkpoint.
fn last_progress(t: &crate::model::Transfer, jobs: &[crate::model::Job]) -> crate::model::Timestamp {
    jobs.iter()
        .flat_map(|j| [Some(j.started_at), j.ended_at, j.progressed_at])
        .flatten()
        .chain([t.updated_at, t.created_at])
        .max()
        .unwrap_or(t.created_at)
}

/// Transfers PROCESSING with no progress for `after`, each flagged once for each time it
/// stops (a transfer that moves on and stops again is flagged again). `all` lists those
/// flagged before too.
pub fn stuck(
    state: &dyn StateStore,
    now: crate::model::Timestamp,
    after: chrono::Duration,
    all: bool,
) -> PortResult<Vec<Stuck>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = state.list_transfers(&crate::ports::TransferQuery {
            status: Some(TransferStatus::Processing),
            after: cursor,
            limit: 200,
            ..Default::default()
        })?;
        for t in &page.items {
            let jobs = state.jobs(t.id)?;
            let since = last_progress(t, &jobs);
            if now - since < after {
                continue;
            }
            let newly = state.flag_stuck(t.id, since)?;
            if !newly && !all {
                continue;
            }
            let job = jobs.last();
            let stage = job.map(|j| j.stage.clone()).unwrap_or_else(|| Stage::Start.name().to_string());
            out.push(Stuck {
                transfer_id: t.id,
                name: t.name.clone(),
                microservice: job.map(|j| j.name.clone()).unwrap_or_else(|| Stage::Start.job_name().to_string()),
                retry: format!(
                    "vellum dlq redrive --stage {stage}   (or, once it has failed: POST /api/transfers/{}/retry)",
                    t.id
                ),
                stage,
                since,
            });
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => return Ok(out),
        }
    }
}

/// A stage's dead-letter queue, with the first message's reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetterDepth {
    pub stage: String,
    pub messages: usize,
    pub first_reason: Option<String>,
}

pub fn dead_letter_depths(state: &dyn StateStore, queue: &dyn Queue) -> PortResult<Vec<DeadLetterDepth>> {
    let letters = dead_letters(state, queue, None)?;
    let mut out: Vec<DeadLetterDepth> = Vec::new();
    for l in letters {
        match out.iter_mut().find(|d| d.stage == l.stage) {
            Some(d) => d.messages += 1,
            None => {
                out.push(DeadLetterDepth { stage: l.stage.clone(), messages: 1, first_reason: l.last_error.clone() })
            }
        }
    }
    Ok(out)
}

/// One transfer's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReportLine {
    pub identifier: String,
    pub name: String,
    pub transfer_id: uuid::Uuid,
    pub status: String,
    pub ended_at: crate::model::Timestamp,
    /// The reason, on one line (failed transfers only).
    pub reason: Option<String>,
}

/// What happened to the transfers that ended in the report's period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub environment: String,
    pub from: crate::model::Timestamp,
    pub to: crate::model::Timestamp,
    pub stored: Vec<ReportLine>,
    pub failed: Vec<ReportLine>,
}

/// The transfers that ended in the `days` before `now` (hidden ones too): stored, and
/// failed or refused with their reasons.
pub fn report(
    state: &dyn StateStore,
    now: crate::model::Timestamp,
    days: i64,
    environment: &str,
) -> PortResult<Report> {
    let from = now - chrono::Duration::days(days);
    let mut stored = Vec::new();
    let mut failed = Vec::new();
    every_transfer(state, |t| {
        let Some(ended) = t.completed_at.filter(|e| *e >= from && *e <= now) else { return Ok(()) };
        let line = ReportLine {
            identifier: t.identifiers.external_identifier().unwrap_or_else(|| "(no identifier)".into()),
            name: t.name.clone(),
            transfer_id: t.id,
            status: t.status.as_str().to_string(),
            ended_at: ended,
            reason: t.failure_reason.as_ref().map(|r| r.split_whitespace().collect::<Vec<_>>().join(" ")),
        };
        match t.status {
            TransferStatus::Complete => stored.push(line),
            TransferStatus::Failed | TransferStatus::Rejected => failed.push(line),
            TransferStatus::Processing => {}
        }
        Ok(())
    })?;
    let order = |a: &ReportLine, b: &ReportLine| (&a.identifier, a.ended_at).cmp(&(&b.identifier, b.ended_at));
    stored.sort_by(order);
    failed.sort_by(order);
    Ok(Report { environment: environment.to_string(), from, to: now, stored, failed })
}

impl Report {
    /// The report as text, worded for its environment.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Vellum {} — transfers that ended {} to {}: {} stored, {} failed or refused.\n",
            self.environment,
            self.from.format("%Y-%m-%d"),
            self.to.format("%Y-%m-%d"),
            self.stored.len(),
            self.failed.len()
        );
        if self.environment == "staging" {
            out.push_str("(staging: test packages; nothing here is preserved.)\n");
        }
        if !self.stored.is_empty() {
            out.push_str("Stored:\n");
            for l in &self.stored {
                out.push_str(&format!("  {} — {} ({})\n", l.identifier, l.name, l.ended_at.format("%Y-%m-%d")));
            }
        }
        if !self.failed.is_empty() {
            out.push_str("Failed or refused:\n");
            for l in &self.failed {
                out.push_str(&format!(
                    "  {} — {} {}: {}\n",
                    l.identifier,
                    l.name,
                    l.status,
                    l.reason.as_deref().unwrap_or("no reason recorded")
                ));
            }
        }
        out
    }

    /// As a Slack-style incoming-webhook message.
    pub fn webhook_body(&self) -> serde_json::Value {
        serde_json::json!({ "text": self.text() })
    }
}

/// An upload removed by the clean-up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CleanedUp {
    pub transfer_id: uuid::Uuid,
    pub key: String,
    pub logs: usize,
}

/// Deletes the uploads (and the logs beside them) of transfers whose AIP was stored and
/// verified more than `after_days` ago. Never a failed or refused upload: an upload is
/// removed only when the newest transfer of its key is COMPLETE and the object is the one
/// that transfer read (not changed since it started).
pub fn clean_up(
    state: &dyn StateStore,
    uploads: &dyn crate::ports::ObjectStore,
    now: crate::model::Timestamp,
    after_days: i64,
) -> PortResult<Vec<CleanedUp>> {
    let before = now - chrono::Duration::days(after_days);
    let mut newest: std::collections::HashMap<String, crate::model::Transfer> = std::collections::HashMap::new();
    every_transfer(state, |t| {
        match newest.get(&t.source_key) {
            Some(n) if n.created_at >= t.created_at => {}
            _ => {
                newest.insert(t.source_key.clone(), t);
            }
        }
        Ok(())
    })?;
    let mut out = Vec::new();
    for t in newest.into_values() {
        if t.status != TransferStatus::Complete || t.completed_at.is_none_or(|c| c > before) {
            continue;
        }
        let Some(meta) = uploads.head(&t.source_key)? else { continue };
        if meta.last_modified.is_some_and(|m| m > t.created_at) {
            continue;
        }
        let logs = uploads.list(&format!("{}.", t.source_key))?;
        for log in logs.iter().filter(|l| l.key.ends_with(".log")) {
            uploads.delete(&log.key)?;
        }
        uploads.delete(&t.source_key)?;
        tracing::info!(key = %t.source_key, transfer_id = %t.id, "upload cleaned up: its AIP is stored and verified");
        out.push(CleanedUp {
            transfer_id: t.id,
            key: t.source_key.clone(),
            logs: logs.iter().filter(|l| l.key.ends_with(".log")).count(),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// One stored AIP read back by the fixity audit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Audited {
    pub transfer_id: uuid::Uuid,
    pub aip_key: String,
    pub passed: bool,
    pub detail: String,
}

/// The fixity audit: reads back the stored AIPs not checked for `every` (since they were
/// stored, or since the audit last read them), the longest-waiting first, at most `max` a
/// run so that each run's work is bounded; each result is recorded as a PREMIS fixity
/// check event on its transfer, and a mismatch is reported loudly. Nothing is repaired.
pub fn fixity_audit(
    state: &dyn StateStore,
    aips: &dyn crate::ports::ObjectStore,
    now: crate::model::Timestamp,
    every: chrono::Duration,
    max: usize,
    agents: &[crate::model::Agent],
) -> PortResult<Vec<Audited>> {
    let mut due: Vec<(crate::model::Timestamp, crate::model::Transfer)> = Vec::new();
    every_transfer(state, |t| {
        if t.status != TransferStatus::Complete || t.aip_key.is_none() {
            return Ok(());
        }
        let last = t.fixity_checked_at.or(t.completed_at).unwrap_or(t.created_at);
        if now - last >= every {
            due.push((last, t));
        }
        Ok(())
    })?;
    due.sort_by_key(|(last, t)| (*last, t.id));
    let mut out = Vec::new();
    for (_, t) in due.into_iter().take(max) {
        let key = t.aip_key.clone().unwrap_or_default();
        let checks = crate::operations::storage::verify_transfer(state, aips, &t, &key)?;
        let passed = checks.iter().all(|c| c.passed);
        let detail = checks
            .iter()
            .map(|c| format!("{} {}: {}", if c.passed { "PASS" } else { "FAIL" }, c.check, c.detail))
            .collect::<Vec<_>>()
            .join("; ");
        let mut event = crate::model::PremisEvent::new(
            t.id,
            None,
            EventType::FixityCheck,
            now,
            format!("{}; fixity audit of the stored AIP {key}", by_vellum()),
            if passed { crate::model::EventOutcome::Pass } else { crate::model::EventOutcome::Fail },
            detail.clone(),
            agents.to_vec(),
        );
        // One event per audit, not one per transfer.
        event.uuid = crate::model::derived_id(t.id, &format!("event/fixity audit/{}", now.to_rfc3339()));
        state.record_events(&[event])?;
        state.set_fixity_checked(t.id, now)?;
        if passed {
            tracing::info!(transfer_id = %t.id, aip = %key, "fixity audit passed");
        } else {
            tracing::error!(transfer_id = %t.id, aip = %key, %detail, "FIXITY AUDIT FAILED: the stored AIP does not match its record");
        }
        out.push(Audited { transfer_id: t.id, aip_key: key, passed, detail });
    }
    Ok(out)
}
