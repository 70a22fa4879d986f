//! The pipeline: the one place that names every stage. It is handed its ports once, builds
//! each message's stage with the ports that stage uses, runs it through the `Microservice`
//! trait, and turns its result into an outcome for the edge (Lambda or the local runner).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};
use uuid::Uuid;

use crate::analysis::pronom::FormatIdentifier;
use crate::config::fpr::Rules;
use crate::config::profile::Config;
use crate::config::Settings;
use crate::error::{ErrorClass, StageError};
use crate::intake::feedback;
use crate::model::messages::{StageMessage, UploadEvent};
use crate::model::{EventStamp, JobStatus, Stage, TransferStatus};
use crate::ports::{Clock, Notifier, ObjectStore, Queue, StateStore, ToolRunner, VirusScanner};
use crate::stages::{self, Flow, Microservice, Progress, StageContext};

/// What the edge does with a message after the core has handled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the next stage has its messages.
    Succeeded,
    /// Done for now; a continuation message carries on from a checkpoint.
    Continued,
    /// Nothing to do (a key that starts nothing, a transfer that already ended).
    Ignored,
    /// The transfer ended (REJECTED or FAILED) with this reason; do not retry.
    FailedForGood(String),
    /// A transient error: give the message back so it is delivered again.
    Retry(String),
}

/// How long a message that asked for a retry waits before it is delivered again: `first`,
/// doubled on each receive, at most 64 times `first`. A transient error that clears in
/// seconds is tried again soon; one that does not clear reaches the dead-letter queue within
/// minutes, not after the hours a whole visibility timeout would take each time.
pub fn retry_backoff(first: Duration, receive_count: u32) -> Duration {
    first * 2u32.saturating_pow(receive_count.saturating_sub(1).min(6))
}

impl Outcome {
    /// Whether the message is finished with (deleted from its queue).
    pub fn acknowledges(&self) -> bool {
        !matches!(self, Outcome::Retry(_))
    }
}

/// The core, handed its ports once and then given one message at a time.
#[derive(Clone)]
pub struct Pipeline {
    /// The bucket archivists upload to; read, tagged and written beside, never modified.
    pub uploads: Arc<dyn ObjectStore>,
    /// Extracted files, METS and AIPs in the making.
    pub working: Arc<dyn ObjectStore>,
    /// Stored AIPs.
    pub aips: Arc<dyn ObjectStore>,
    /// A second storage location every AIP is copied to and verified in before its
    /// transfer is COMPLETE (None: one location).
    pub replica: Option<Arc<dyn ObjectStore>>,
    /// Where DIPs are stored (None: this deployment has no DIP location).
    pub dips: Option<Arc<dyn ObjectStore>>,
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// The virus scanner, or None when scanning is turned off for this run.
    pub scanner: Option<Arc<dyn VirusScanner>>,
    /// The PRONOM identifier, loaded once from the signature files.
    pub format_identifier: Option<Arc<FormatIdentifier>>,
    /// Where "AIP stored" notices go (SNS in AWS, a folder in embedded mode).
    pub notifier: Arc<dyn Notifier>,
    /// The format policy rules (outside characterization tools).
    pub fpr: Arc<Rules>,
    /// Where those tools run: the host's child processes, or none.
    pub tools: Arc<dyn ToolRunner>,
    pub config: Config,
    pub settings: Settings,
}

impl Pipeline {
    /// Handles one message of `stage`'s queue; never panics on bad input, and never lets an
    /// error escape unclassified.
    pub fn handle(&self, stage: Stage, body: &str, ctx: &StageContext) -> Outcome {
        let stamp = self.stamp();
        let flow = self.flow(&stamp);
        if stage == Stage::Start {
            if let Ok(request) = serde_json::from_str::<crate::operations::retry::Resend>(body) {
                let of = &request.resend;
                let sent = crate::operations::retry::resend(self.state.as_ref(), self.queue.as_ref(), of);
                return match sent {
                    Ok(true) => Outcome::Succeeded,
                    Ok(false) => Outcome::Ignored,
                    Err(e) => Outcome::Retry(format!("resending the {} messages of {}: {e}", of.stage, of.transfer_id)),
                };
            }
            if let Ok(event) = serde_json::from_str::<UploadEvent>(body) {
                let (transfer_id, result) = self.start(flow).start_transfer(&event, ctx);
                return self.settle(transfer_id, stage, result);
            }
            // Otherwise intake's own continuation of a long tar's listing, read below.
        }
        let msg: StageMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => return Outcome::Retry(format!("unreadable {stage} message: {e}")),
        };
        let span =
            tracing::info_span!("stage", transfer_id = %msg.transfer_id, stage = stage.name(), batch = ?msg.batch);
        let _guard = span.enter();
        let result = self.microservice(stage, flow).run(&msg, ctx);
        self.settle(Some(msg.transfer_id), stage, result)
    }

    /// Handles a message that arrived on the queue called `queue`: a name that is no
    /// stage's is an error that is never acknowledged, so the message is dead-lettered with
    /// the reason (it is not this version's to read).
    pub fn handle_queue(&self, queue: &str, body: &str, ctx: &StageContext) -> Outcome {
        if let Some(stage) = Stage::of_queue(queue).filter(|s| s.long_jobs_queue() == Some(queue)) {
            // Its consumer is the runner long jobs are handed to: it keeps them.
            return self.handle(stage, body, &ctx.with_long_jobs(crate::stages::LongJobs::RunHere));
        }
        match queue.parse::<Stage>() {
            Ok(stage) => self.handle(stage, body, ctx),
            Err(unknown) => Outcome::Retry(format!("no stage listens on this queue: {unknown}")),
        }
    }

    /// Who records this run's events.
    fn stamp(&self) -> EventStamp {
        let org = &self.config.organization;
        EventStamp::new(&org.repository_code, &org.name, &self.settings.uploader)
    }

    fn flow<'a>(&'a self, stamp: &'a EventStamp) -> Flow<'a> {
        Flow {
            working: &self.working,
            register: self.state.as_ref(),
            jobs: self.state.as_ref(),
            queue: self.queue.as_ref(),
            clock: self.clock.as_ref(),
            config: &self.config,
            settings: &self.settings,
            stamp,
        }
    }

    fn start<'a>(&'a self, flow: Flow<'a>) -> stages::Start<'a> {
        stages::Start { flow, uploads: &self.uploads }
    }

    /// The stage, with the ports it uses.
    fn microservice<'a>(&'a self, stage: Stage, flow: Flow<'a>) -> Box<dyn Microservice + 'a> {
        let files = self.state.as_ref();
        let events = self.state.as_ref();
        match stage {
            Stage::Start => Box::new(self.start(flow)),
            Stage::Extract => Box::new(stages::Extract { flow, files, uploads: &self.uploads, fpr: &self.fpr }),
            Stage::Checksum => Box::new(stages::Checksum { flow, files }),
            Stage::Scan => Box::new(stages::Scan { flow, files, scanner: &self.scanner }),
            Stage::Identify => Box::new(stages::Identify { flow, files, format_identifier: &self.format_identifier }),
            Stage::Characterize => Box::new(stages::Characterize { flow, files, fpr: &self.fpr, tools: &self.tools }),
            Stage::Normalize => Box::new(stages::Normalize {
                flow,
                files,
                fpr: &self.fpr,
                tools: &self.tools,
                format_identifier: &self.format_identifier,
            }),
            Stage::Mets => Box::new(stages::Mets { flow, files, events, format_identifier: &self.format_identifier }),
            Stage::Package => Box::new(stages::Package { flow, files }),
            Stage::Store => Box::new(stages::Store {
                flow,
                files,
                events,
                uploads: &self.uploads,
                aips: &self.aips,
                replica: &self.replica,
                dips: &self.dips,
                notifier: &self.notifier,
            }),
        }
    }

    /// The edge of the core: a stage's result becomes an outcome, and a permanent failure
    /// ends the transfer with its reason, exactly once.
    fn settle(&self, transfer_id: Option<Uuid>, stage: Stage, result: Result<Progress, StageError>) -> Outcome {
        let error = match result {
            Ok(Progress::Done) => return Outcome::Succeeded,
            Ok(Progress::Continued) => return Outcome::Continued,
            Ok(Progress::Ignored) => return Outcome::Ignored,
            Err(error) => error,
        };
        let reason = error.to_string();
        let status = match error.class() {
            ErrorClass::Retry => {
                warn!(stage = stage.name(), error = %reason, "transient error, message will be retried");
                // Kept on the job for the dead-letter record; a failure here changes nothing.
                if let Some(id) = transfer_id {
                    if let Err(note) = self.state.note_job_error(id, stage.name(), &reason) {
                        warn!(stage = stage.name(), error = %note, "the transient error could not be kept on its job");
                    }
                }
                return Outcome::Retry(reason);
            }
            ErrorClass::Superseded => {
                info!(stage = stage.name(), detail = %reason, "another delivery carries this work on");
                return Outcome::Ignored;
            }
            ErrorClass::Refuse => TransferStatus::Rejected,
            ErrorClass::Fail => TransferStatus::Failed,
        };
        let Some(id) = transfer_id else {
            return Outcome::FailedForGood(reason);
        };
        // A late copy of work another delivery finished (its stage completed, or the transfer
        // ended) may find that work's inputs already cleaned away: its failure is no news.
        if self.finished_elsewhere(id, stage) {
            info!(transfer_id = %id, stage = stage.name(), detail = %reason, "a late delivery of finished work failed; ignored");
            return Outcome::Ignored;
        }
        // Intake writes its own, more detailed log; a later failure is told here.
        if status == TransferStatus::Failed {
            if let Err(e) = self.tell_uploader(id, &reason) {
                return Outcome::Retry(format!("could not write the failed log ({reason}): {e}"));
            }
        }
        let ended = self
            .state
            .end_transfer(id, status, &reason)
            .and_then(|_| self.state.finish_job(id, stage.name(), JobStatus::Failed));
        match ended {
            Ok(()) => {
                info!(transfer_id = %id, stage = stage.name(), status = status.as_str(), %reason, "transfer ended");
                Outcome::FailedForGood(reason)
            }
            Err(e) => Outcome::Retry(format!("could not record the failure ({reason}): {e}")),
        }
    }

    /// Whether the stage's job is already complete, or the transfer already ended.
    fn finished_elsewhere(&self, id: Uuid, stage: Stage) -> bool {
        let ended = self.state.transfer(id).ok().flatten().is_some_and(|t| t.status.is_terminal());
        ended || self.state.job(id, stage.name()).ok().flatten().is_some_and(|j| j.status == JobStatus::Completed)
    }

    fn tell_uploader(&self, id: Uuid, reason: &str) -> Result<(), crate::ports::PortError> {
        let Some(transfer) = self.state.transfer(id)? else {
            return Ok(());
        };
        if transfer.status.is_terminal() {
            return Ok(());
        }
        let text = feedback::processing_failure_log(&transfer, reason);
        feedback::write_log(self.uploads.as_ref(), &transfer, feedback::LogOutcome::Failed, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_growing() {
        let first = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=5).map(|n| retry_backoff(first, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480]);
        assert_eq!(retry_backoff(first, 0), first, "a count SQS did not give is the first receive");
        assert_eq!(retry_backoff(first, 40), first * 64);
        // Five receives, four waits: a message that keeps failing is dead-lettered in 7.5 minutes.
        assert_eq!(waits[..4].iter().sum::<u64>(), 450);
    }
}
