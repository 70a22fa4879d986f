//! One module per microservice stage. Each reads its message, does one job, records what
//! happened, and sends the next stage its messages. All are safe to run twice.
//!
//! A stage is a struct holding only the ports it uses (borrowed from the pipeline for one
//! message) and implements [`Microservice`]; [`Flow`] is what every stage shares: the working
//! area, the transfer's register, the job ledger, the queue, the clock, the configuration, and the
//! stamp put on every PREMIS event. Per-file stages run their batches through
//! [`per_file::run_batch`]. Nothing here imports the pipeline: it knows the stages, not the
//! other way round.

pub mod characterize;
pub mod checksum;
pub mod extract;
pub mod identify;
pub mod mets;
pub mod normalize;
pub mod package;
pub mod per_file;
pub mod scan;
pub mod start;
pub mod stopped_tools;
pub mod store;
pub mod tool_metadata;

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::profile::{Config, Profile};
use crate::config::Settings;
use crate::error::{StageError, StageResult};
use crate::model::messages::StageMessage;
use crate::model::{Agent, EventOutcome, EventStamp, EventType, File, Job, JobStatus, PremisEvent, Stage, Transfer};
use crate::ports::{Clock, JobLedger, JobSpec, ObjectStore, Queue, TransferRegister};

pub use characterize::Characterize;
pub use checksum::Checksum;
pub use extract::Extract;
pub use identify::Identify;
pub use mets::Mets;
pub use normalize::Normalize;
pub use package::Package;
pub use scan::Scan;
pub use start::Start;
pub use store::Store;

/// One microservice: the pipeline hands it a message and it does its one job.
pub trait Microservice {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress>;
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
    /// What this runner does with work too long for it (a long video's conversion).
    pub long_jobs: LongJobs,
}

/// Where a stage's long jobs (by the rules: a file larger than a rule's `long_above_bytes`)
/// run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongJobs {
    /// Here: this runner has no time limit to fear (embedded mode, the long-job worker).
    RunHere,
    /// Handed, with the whole message, to the stage's long-job queue, whose worker (a
    /// Fargate task on AWS) runs the same stage without Lambda's time limit.
    HandOff,
    /// Not run: a Lambda with no long-job worker deployed records the file as not
    /// normalized, saying why, rather than run into its time limit on every retry.
    NotRun,
}

impl StageContext {
    pub fn with_budget(budget: Duration) -> Self {
        Self { deadline: Instant::now() + budget, long_jobs: LongJobs::RunHere }
    }

    /// As this context, its long jobs going where `long_jobs` says.
    pub fn with_long_jobs(self, long_jobs: LongJobs) -> Self {
        Self { long_jobs, ..self }
    }

    pub fn should_yield(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// What every stage uses: the working area, and what it does its job's bookkeeping with —
/// find its transfer, start and finish its job, send the next stage its messages, stamp its
/// events.
#[derive(Clone, Copy)]
pub struct Flow<'a> {
    /// Extracted files, METS and AIPs in the making: every stage's workspace.
    pub working: &'a Arc<dyn ObjectStore>,
    pub register: &'a dyn TransferRegister,
    pub jobs: &'a dyn JobLedger,
    pub queue: &'a dyn Queue,
    pub clock: &'a dyn Clock,
    pub config: &'a Config,
    pub settings: &'a Settings,
    pub stamp: &'a EventStamp,
}

impl Flow<'_> {
    /// The transfer a message names, if it is still being processed.
    pub fn active_transfer(&self, id: Uuid) -> StageResult<Option<Transfer>> {
        match self.register.transfer(id)? {
            Some(t) if !t.status.is_terminal() => Ok(Some(t)),
            Some(_) => Ok(None),
            None => Err(StageError::Transient(format!("transfer {id} is not in the state store"))),
        }
    }

    /// The transfer a message names and the stage's job on it, started (or found), when
    /// the transfer is still being processed; None when it has ended and the message has
    /// nothing left to do.
    pub fn take_up(&self, transfer_id: Uuid, stage: Stage) -> StageResult<Option<(Transfer, Job)>> {
        let Some(transfer) = self.active_transfer(transfer_id)? else {
            return Ok(None);
        };
        let job = self.begin_job(transfer.id, stage)?;
        Ok(Some((transfer, job)))
    }

    /// The transfer's processing profile, with the switches its own `processingMCP.xml` set.
    pub fn profile(&self, transfer: &Transfer) -> StageResult<std::borrow::Cow<'_, Profile>> {
        let profile = self.config.profile(&transfer.profile).ok_or_else(|| {
            StageError::Failed(format!(
                "the processing profile {:?} is not configured in this deployment",
                transfer.profile
            ))
        })?;
        Ok(profile.with_choices(&transfer.identifiers.processing_choices))
    }

    pub fn batch_size(&self, profile: &Profile) -> u32 {
        self.settings.batch_size.unwrap_or(profile.batch_size).max(1)
    }

    /// Starts (or finds) the stage's job and shows it as the transfer's current step.
    pub fn begin_job(&self, transfer_id: Uuid, stage: Stage) -> StageResult<Job> {
        let spec = JobSpec::of(stage);
        let job = self.jobs.start_job(transfer_id, &spec)?;
        // A late, redelivered message for a finished job does not move the transfer back.
        if job.status == JobStatus::Processing {
            self.register.set_microservice(transfer_id, spec.microservice_group)?;
        }
        Ok(job)
    }

    pub fn finish_job(&self, transfer_id: Uuid, stage: Stage) -> StageResult<()> {
        Ok(self.jobs.finish_job(transfer_id, stage.name(), JobStatus::Completed)?)
    }

    /// A PREMIS event about one file, now, stamped with Vellum's agents.
    pub fn file_event(
        &self,
        file: &File,
        event_type: EventType,
        detail: String,
        outcome: EventOutcome,
        outcome_detail: String,
    ) -> PremisEvent {
        self.stamp.file_event(file, event_type, self.clock.now(), detail, outcome, outcome_detail)
    }

    pub fn agents(&self) -> Vec<Agent> {
        self.stamp.agents()
    }

    pub fn send(&self, stage: Stage, msgs: &[StageMessage]) -> StageResult<()> {
        for chunk in msgs.chunks(10) {
            let bodies: Vec<String> = chunk.iter().map(StageMessage::to_json).collect();
            self.queue.send_batch(stage.name(), &bodies)?;
        }
        Ok(())
    }
}
