//! The pipeline: the ports a stage is handed, and the one place where a stage's result is
//! turned into an outcome for the edge (Lambda or the local runner).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use uuid::Uuid;

use crate::config::profile::{Config, Profile};
use crate::error::StageError;
use crate::model::messages::{queues, StageMessage, UploadEvent};
use crate::model::{JobStatus, Transfer, TransferStatus};
use crate::ports::{Clock, JobSpec, ObjectStore, Queue, StateStore, VirusScanner};
use crate::stages;

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

impl Outcome {
    /// Whether the message is finished with (deleted from its queue).
    pub fn acknowledges(&self) -> bool {
        !matches!(self, Outcome::Retry(_))
    }
}

/// What a stage reports when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Done,
    Continued,
    Ignored,
}

/// The time an invocation has: a stage that may run long checkpoints and continues in a
/// new message before the deadline.
#[derive(Debug, Clone, Copy)]
pub struct StageContext {
    pub deadline: Instant,
}

impl StageContext {
    pub fn with_budget(budget: Duration) -> Self {
        Self { deadline: Instant::now() + budget }
    }

    pub fn should_yield(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// Knobs that are not part of a profile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Overrides every profile's batch size (tests use small batches).
    pub batch_size: Option<u32>,
    /// Who uploaded, for the PREMIS user agent.
    pub uploader: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { batch_size: None, uploader: "uploader".to_string() }
    }
}

/// Archivematica's microservice group and job name for each stage.
pub fn job_spec(stage: &str) -> JobSpec<'static> {
    let (stage, microservice_group, name) = match stage {
        queues::START => (queues::START, "Verify transfer compliance", "Verify transfer compliance"),
        queues::EXTRACT => (queues::EXTRACT, "Extract zipped transfer", "Assign file UUIDs to objects"),
        queues::CHECKSUM => {
            (queues::CHECKSUM, "Assign file UUIDs and checksums", "Assign checksums and file sizes to objects")
        }
        queues::SCAN => (queues::SCAN, "Scan for viruses", "Scan for viruses"),
        queues::IDENTIFY => (queues::IDENTIFY, "Identify file format", "Identify file format"),
        queues::CHARACTERIZE => {
            (queues::CHARACTERIZE, "Characterize and extract metadata", "Characterize and extract metadata")
        }
        queues::METS => (queues::METS, "Generate AIP METS", "Generate METS.xml document"),
        queues::PACKAGE => (queues::PACKAGE, "Prepare AIP", "Compress AIP"),
        queues::STORE => (queues::STORE, "Store AIP", "Store the AIP"),
        other => panic!("no job is defined for stage {other}"),
    };
    JobSpec { stage, microservice_group, name }
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
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// The virus scanner, or None when scanning is turned off for this run.
    pub scanner: Option<Arc<dyn VirusScanner>>,
    /// The PRONOM identifier, loaded once from the signature files.
    pub identifier: Option<Arc<crate::analysis::pronom::Identifier>>,
    /// Where "AIP stored" notices go (SNS in AWS, a folder in embedded mode).
    pub notifier: Arc<dyn crate::ports::Notifier>,
    /// The format policy rules (outside characterization tools).
    pub fpr: Arc<crate::config::fpr::Rules>,
    /// Where those tools run: the host's child processes, or none.
    pub tools: Arc<dyn crate::ports::ToolRunner>,
    pub config: Config,
    pub settings: Settings,
}

impl Pipeline {
    /// Handles one message from `queue`; never panics on bad input, and never lets an
    /// error escape unclassified.
    pub fn handle(&self, queue: &str, body: &str, ctx: &StageContext) -> Outcome {
        if queue == queues::START {
            return match serde_json::from_str::<UploadEvent>(body) {
                Ok(event) => {
                    let (transfer_id, result) = stages::start::run(self, &event, ctx);
                    self.settle(transfer_id, queue, result)
                }
                // Intake's own continuation of a long tar's listing.
                Err(e) => match serde_json::from_str::<StageMessage>(body) {
                    Ok(msg) => {
                        let result = stages::start::resume(self, &msg, ctx);
                        self.settle(Some(msg.transfer_id), queue, result)
                    }
                    Err(_) => Outcome::Retry(format!("unreadable upload event: {e}")),
                },
            };
        }
        let msg: StageMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => return Outcome::Retry(format!("unreadable {queue} message: {e}")),
        };
        let span = tracing::info_span!("stage", transfer_id = %msg.transfer_id, stage = queue, batch = ?msg.batch);
        let _guard = span.enter();
        let result = match queue {
            queues::EXTRACT => stages::extract::run(self, &msg, ctx),
            queues::CHECKSUM => stages::checksum::run(self, &msg, ctx),
            queues::SCAN => stages::scan::run(self, &msg, ctx),
            queues::IDENTIFY => stages::identify::run(self, &msg, ctx),
            queues::CHARACTERIZE => stages::characterize::run(self, &msg, ctx),
            queues::METS => stages::mets::run(self, &msg, ctx),
            queues::PACKAGE => stages::package::run(self, &msg, ctx),
            queues::STORE => stages::store::run(self, &msg, ctx),
            other => return Outcome::Retry(format!("no stage listens on queue {other}")),
        };
        self.settle(Some(msg.transfer_id), queue, result)
    }

    /// The edge of the core: a stage's result becomes an outcome, and a permanent failure
    /// ends the transfer with its reason, exactly once.
    fn settle(&self, transfer_id: Option<Uuid>, stage: &str, result: Result<Progress, StageError>) -> Outcome {
        let (status, reason) = match result {
            Ok(Progress::Done) => return Outcome::Succeeded,
            Ok(Progress::Continued) => return Outcome::Continued,
            Ok(Progress::Ignored) => return Outcome::Ignored,
            Err(StageError::Transient(e)) => {
                warn!(stage, error = %e, "transient error, message will be retried");
                // Kept on the job for the dead-letter record; a failure here changes nothing.
                if let Some(id) = transfer_id {
                    if let Err(note) = self.state.note_job_error(id, stage, &e) {
                        warn!(stage, error = %note, "the transient error could not be kept on its job");
                    }
                }
                return Outcome::Retry(e);
            }
            Err(StageError::Superseded(e)) => {
                info!(stage, detail = %e, "another delivery carries this work on");
                return Outcome::Ignored;
            }
            Err(StageError::Rejected(r)) => (TransferStatus::Rejected, r),
            Err(StageError::Failed(r)) => (TransferStatus::Failed, r),
        };
        let Some(id) = transfer_id else {
            return Outcome::FailedForGood(reason);
        };
        // Intake writes its own, more detailed log; a later failure is told here.
        if status == TransferStatus::Failed {
            if let Err(e) = self.tell_uploader(id, &reason) {
                return Outcome::Retry(format!("could not write the failed log ({reason}): {e}"));
            }
        }
        let ended = self
            .state
            .end_transfer(id, status, &reason)
            .and_then(|_| self.state.finish_job(id, stage, JobStatus::Failed));
        match ended {
            Ok(()) => {
                info!(transfer_id = %id, stage, status = status.as_str(), %reason, "transfer ended");
                Outcome::FailedForGood(reason)
            }
            Err(e) => Outcome::Retry(format!("could not record the failure ({reason}): {e}")),
        }
    }

    fn tell_uploader(&self, id: Uuid, reason: &str) -> Result<(), crate::ports::PortError> {
        let Some(transfer) = self.state.transfer(id)? else {
            return Ok(());
        };
        if transfer.status.is_terminal() {
            return Ok(());
        }
        let text = crate::intake::feedback::processing_failure_log(&transfer, reason);
        crate::intake::feedback::write_log(
            self.uploads.as_ref(),
            &transfer,
            crate::intake::feedback::LogOutcome::Failed,
            &text,
        )
    }

    /// The transfer a message names, if it is still being processed.
    pub(crate) fn active_transfer(&self, id: Uuid) -> Result<Option<Transfer>, StageError> {
        match self.state.transfer(id)? {
            Some(t) if !t.status.is_terminal() => Ok(Some(t)),
            Some(_) => Ok(None),
            None => Err(StageError::Transient(format!("transfer {id} is not in the state store"))),
        }
    }

    pub(crate) fn profile(&self, transfer: &Transfer) -> Result<&Profile, StageError> {
        self.config.profile(&transfer.profile).ok_or_else(|| {
            StageError::Failed(format!(
                "the processing profile {:?} is not configured in this deployment",
                transfer.profile
            ))
        })
    }

    pub(crate) fn batch_size(&self, profile: &Profile) -> u32 {
        self.settings.batch_size.unwrap_or(profile.batch_size).max(1)
    }

    /// Starts (or finds) the stage's job and shows it as the transfer's current step.
    pub(crate) fn begin_job(&self, transfer_id: Uuid, stage: &str) -> Result<crate::model::Job, StageError> {
        let spec = job_spec(stage);
        let job = self.state.start_job(transfer_id, &spec)?;
        // A late, redelivered message for a finished job does not move the transfer back.
        if job.status == JobStatus::Processing {
            self.state.set_microservice(transfer_id, spec.microservice_group)?;
        }
        Ok(job)
    }

    pub(crate) fn send(&self, queue: &str, msgs: &[StageMessage]) -> Result<(), StageError> {
        for chunk in msgs.chunks(10) {
            let bodies: Vec<String> = chunk.iter().map(StageMessage::to_json).collect();
            self.queue.send_batch(queue, &bodies)?;
        }
        Ok(())
    }
}

impl Pipeline {
    /// A PREMIS event about one file, now, with Vellum's agents.
    pub(crate) fn file_event(
        &self,
        file: &crate::model::File,
        event_type: &str,
        detail: String,
        outcome: crate::model::EventOutcome,
        outcome_detail: String,
    ) -> crate::model::PremisEvent {
        crate::model::PremisEvent::new(
            file.transfer_id,
            Some(file.uuid),
            event_type,
            self.clock.now(),
            detail,
            outcome,
            outcome_detail,
            self.agents(),
        )
    }

    /// The agents of every event Vellum records: the software, the organization, the user.
    pub(crate) fn agents(&self) -> Vec<crate::model::Agent> {
        use crate::model::Agent;
        let org = &self.config.organization;
        let mut agents = crate::model::system_agents(&org.repository_code, &org.name);
        agents.push(Agent {
            identifier_type: "Archivematica user pk".into(),
            identifier_value: self.settings.uploader.clone(),
            name: format!("username=\"{}\"", self.settings.uploader),
            agent_type: "Archivematica user".into(),
        });
        agents
    }
}
