//! The ports: small traits that stage logic talks to. AWS and embedded adapters implement
//! them, and `vellum-contract` holds the one test suite every adapter must pass.
//!
//! The ports are synchronous on purpose: stage logic streams bytes through `std::io`
//! readers and writers (zip, tar, gzip, digests all speak `std::io`), and an async adapter
//! bridges with its runtime's `block_on` inside a blocking task.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use uuid::Uuid;

use crate::model::{
    File, FilePatch, Identifiers, Job, JobStatus, PremisEvent, StoredAip, Task, Timestamp, Transfer, TransferStatus,
};

/// Errors from adapters. Every adapter error is transient (throttling, I/O, a busy
/// database) unless it is `NotFound` or `Conflict`: the stage decides what those mean.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<std::io::Error> for PortError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            PortError::NotFound(e.to_string())
        } else {
            PortError::Unavailable(e.to_string())
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<Timestamp>,
}

/// A streaming upload. Nothing is visible under the key until `commit` succeeds; dropping
/// the writer without committing leaves nothing behind (an S3 multipart upload is aborted,
/// a temporary file removed).
pub trait ObjectWriter: Write + Send {
    fn commit(self: Box<Self>) -> PortResult<ObjectMeta>;
}

/// A bucket, or a directory standing in for one.
pub trait ObjectStore: Send + Sync {
    /// The bucket's name, as it appears in events.
    fn bucket(&self) -> &str;
    fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>>;
    fn get(&self, key: &str) -> PortResult<Box<dyn Read + Send>>;
    /// Up to `len` bytes from `offset`; fewer only at the end of the object.
    fn get_range(&self, key: &str, offset: u64, len: u64) -> PortResult<Vec<u8>>;
    fn writer(&self, key: &str) -> PortResult<Box<dyn ObjectWriter>>;
    /// Keys under a prefix, in lexicographic order.
    fn list(&self, prefix: &str) -> PortResult<Vec<ObjectMeta>>;
    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> PortResult<()>;
    fn get_tags(&self, key: &str) -> PortResult<BTreeMap<String, String>>;
    fn delete(&self, key: &str) -> PortResult<()>;

    fn put(&self, key: &str, bytes: &[u8]) -> PortResult<ObjectMeta> {
        let mut w = self.writer(key)?;
        w.write_all(bytes)?;
        w.commit()
    }
}

/// What the state store answers when a per-file stage finishes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRecorded {
    /// False when this batch had already been recorded (a redelivered message).
    pub newly_recorded: bool,
    /// True when every batch of the transfer has now finished this stage.
    pub stage_complete: bool,
}

/// Where extraction stands: entries before `next_entry` are in committed batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractCheckpoint {
    pub next_entry: u64,
    pub batches: u32,
    pub files: u64,
    /// Set once every entry is extracted and the batch count is final.
    pub done: bool,
}

/// A new job: the stage, and Archivematica's group and job names for it.
#[derive(Debug, Clone)]
pub struct JobSpec<'a> {
    pub stage: &'a str,
    pub microservice_group: &'a str,
    pub name: &'a str,
}

/// The state store speaks in domain operations, each atomic, each safe to repeat.
pub trait StateStore: Send + Sync {
    /// Creates the transfer unless `idempotency_key` was seen before; then returns the
    /// transfer created the first time and `false`.
    fn create_transfer(&self, idempotency_key: &str, transfer: &Transfer) -> PortResult<(Transfer, bool)>;
    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>>;
    /// Newest first.
    fn list_transfers(&self, limit: usize) -> PortResult<Vec<Transfer>>;
    fn set_identifiers(&self, id: Uuid, identifiers: &Identifiers) -> PortResult<()>;
    fn set_microservice(&self, id: Uuid, microservice: &str) -> PortResult<()>;
    /// Ends a transfer as FAILED or REJECTED with a reason, unless it has already ended;
    /// returns false when it had (the first ending stands).
    fn end_transfer(&self, id: Uuid, status: TransferStatus, reason: &str) -> PortResult<bool>;
    /// Records the stored AIP and marks the transfer COMPLETE, unless already ended.
    fn complete_transfer(&self, id: Uuid, aip: &StoredAip) -> PortResult<bool>;

    /// Starts the stage's job, or returns the job already started for it.
    fn start_job(&self, transfer_id: Uuid, spec: &JobSpec<'_>) -> PortResult<Job>;
    fn finish_job(&self, transfer_id: Uuid, stage: &str, status: JobStatus) -> PortResult<()>;
    fn job(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<Job>>;
    /// In the order they started.
    fn jobs(&self, transfer_id: Uuid) -> PortResult<Vec<Job>>;
    fn tasks(&self, job_uuid: Uuid) -> PortResult<Vec<Task>>;

    /// A long-running per-transfer job's checkpoint (opaque text), if it has one.
    fn job_checkpoint(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<String>>;
    /// Moves a job's checkpoint from `expected` to `next`, or answers `Conflict` when it is
    /// no longer `expected` (another delivery moved it): a compare-and-swap.
    fn set_job_checkpoint(&self, transfer_id: Uuid, stage: &str, expected: Option<&str>, next: &str) -> PortResult<()>;

    fn extract_checkpoint(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint>;
    /// Commits one batch of extracted files and moves the checkpoint to `next_entry`, in one
    /// transaction, if the checkpoint is still `from` (else `Conflict`: another delivery
    /// got there first, and this one retries from the real checkpoint). With no files it
    /// only moves the checkpoint. Returns the new checkpoint.
    fn commit_extract_batch(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        files: &[File],
        events: &[PremisEvent],
        next_entry: u64,
    ) -> PortResult<ExtractCheckpoint>;
    /// Marks extraction done; the batch and file counts become final.
    fn finish_extract(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint>;

    /// Records a per-file stage's results for one batch: tasks, events and file patches,
    /// once. The fan-in answer says whether the whole stage is now complete.
    fn record_batch(
        &self,
        transfer_id: Uuid,
        stage: &str,
        batch: u32,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<BatchRecorded>;

    /// Events about the whole transfer (or written by per-transfer stages); ignored when
    /// an event with the same id exists.
    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()>;
    fn files(&self, transfer_id: Uuid) -> PortResult<Vec<File>>;
    fn batch_files(&self, transfer_id: Uuid, batch: u32) -> PortResult<Vec<File>>;
    /// All events of the transfer, oldest first.
    fn events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>>;
    /// The events of one file, oldest first: what the METS writer asks for, file by file,
    /// so a large transfer's events are never all in memory.
    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>>;
    /// The events about the transfer as a whole (no file), oldest first: what was left out
    /// of it, the AIP's fixity check.
    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>>;

    /// The AIP version for this transfer under (space, identifier): the next free one the
    /// first time it is asked, the same one every time after.
    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32>;
}

/// A message as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    /// Names this receipt of the message; acks and extensions use it.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// A message that was received too often and moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub queue: String,
    pub body: String,
    pub receive_count: u32,
    pub last_error: Option<String>,
}

/// Queues, named by stage. Delivery is at least once.
pub trait Queue: Send + Sync {
    fn send(&self, queue: &str, body: &str) -> PortResult<()> {
        self.send_batch(queue, &[body.to_string()])
    }
    fn send_batch(&self, queue: &str, bodies: &[String]) -> PortResult<()>;
    /// Up to `max` messages, each hidden from other consumers for `visibility`. A message
    /// already received `max_receives` times goes to the dead-letter queue instead.
    fn receive(&self, queue: &str, max: usize, visibility: Duration) -> PortResult<Vec<Delivery>>;
    /// Done with the message: it is deleted. A stale receipt is ignored.
    fn ack(&self, queue: &str, receipt: &str) -> PortResult<()>;
    /// Give the message back, visible again after `delay`; `error` is kept for the
    /// dead-letter record.
    fn nack(&self, queue: &str, receipt: &str, delay: Duration, error: &str) -> PortResult<()>;
    /// Keep the message hidden for `visibility` more, while work goes on.
    fn extend(&self, queue: &str, receipt: &str, visibility: Duration) -> PortResult<()>;
    fn dead_letters(&self, queue: &str) -> PortResult<Vec<DeadLetter>>;
    /// Messages waiting or in flight.
    fn depth(&self, queue: &str) -> PortResult<u64>;
}

/// What a virus scanner says about one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    Clean,
    /// Infected, with the signature that matched.
    Infected(String),
    /// The scanner could not look at it (e.g. larger than its stream limit), and why.
    NotScanned(String),
}

/// A virus scanner. Not reaching it is an error (transient), never a clean verdict.
pub trait VirusScanner: Send + Sync {
    /// Engine and signature versions, for the PREMIS event.
    fn version(&self) -> PortResult<String>;
    fn scan(&self, data: &mut dyn Read) -> PortResult<ScanVerdict>;
}

/// Tells downstream systems (IIIF builders, catalogues) that an AIP is stored. Delivery is
/// at least once: receivers key on `aip_uuid`.
pub trait Notifier: Send + Sync {
    fn publish(&self, notice: &crate::messages::AipStored) -> PortResult<()>;
}

/// Time and ids, injectable so tests can pin them.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    fn new_id(&self) -> Uuid;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}
