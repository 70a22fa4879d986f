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

/// Errors from adapters, each in its class, kept to the edge: only `Unavailable` is worth
/// trying again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    /// What was asked for is not there: retrying will not make it appear.
    #[error("not found: {0}")]
    NotFound(String),
    /// A condition failed: another delivery moved the state first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored state that cannot be read back (a bad time, id, status or JSON value). It is
    /// never turned into a default: the record would lie.
    #[error("unreadable state: {0}")]
    Corrupt(String),
    /// The service refuses the request as it is (a key it cannot hold, too long a value):
    /// asking again the same way gets the same answer.
    #[error("refused: {0}")]
    Refused(String),
    /// Throttling, I/O, a busy database, a service that did not answer.
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
    /// Keys under a prefix, in lexicographic (byte) order, a page at a time: those after
    /// `after` (a key), at most `limit`. The cursor of the next page is the last key.
    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<Page<ObjectMeta>>;
    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> PortResult<()>;
    fn get_tags(&self, key: &str) -> PortResult<BTreeMap<String, String>>;
    fn delete(&self, key: &str) -> PortResult<()>;

    /// This store as `Any`, so that `compose` can see whether a source is of its own kind.
    fn as_any(&self) -> &dyn std::any::Any;

    /// Deletes every object whose key starts with `prefix`.
    fn delete_prefix(&self, prefix: &str) -> PortResult<()> {
        delete_page_by_page(self, prefix)
    }

    /// Where the object is a file on this machine, its path: an outside tool reads it
    /// there instead of from a copy (a folder as the bucket). None for a remote store.
    fn local_path(&self, _key: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// Makes `key` the concatenation of `parts` of `source` (this store or another), without
    /// the bytes passing through the caller where the service can copy them itself (S3
    /// UploadPartCopy; a file copy in the kernel on disk). Like a writer, nothing is
    /// visible under `key` until the whole is there. The default streams the parts.
    fn compose(&self, key: &str, source: &dyn ObjectStore, parts: &[String]) -> PortResult<ObjectMeta> {
        let mut writer = self.writer(key)?;
        for part in parts {
            std::io::copy(&mut source.get(part)?, &mut writer)?;
        }
        writer.commit()
    }

    /// Every key under a prefix, page after page: for tests and small prefixes.
    fn list(&self, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(prefix, after.as_deref(), 1000)?;
            out.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> PortResult<ObjectMeta> {
        let mut w = self.writer(key)?;
        w.write_all(bytes)?;
        w.commit()
    }
}

/// The most items one write may change at once: DynamoDB's transaction limit. A domain
/// operation that touches more writes its items idempotently first (derived ids), then
/// moves one conditional marker, its commit point.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The most bytes a task's captured output may keep (stdout and stderr each), so that a
/// batch's records stay far below DynamoDB's 400 KB item limit; longer output is cut and
/// says so.
pub const MAX_TASK_OUTPUT: usize = 16 * 1024;

/// One page of a read that grows with a transfer, and the cursor for the next; `next` is
/// None on the last page. Cursors are opaque: pass them back as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// How many items a caller asks for per page unless it has a reason to ask otherwise.
pub const PAGE_SIZE: usize = 500;

/// Which transfers a listing wants: newest first, optionally of one status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferQuery {
    pub status: Option<TransferStatus>,
    /// Only transfers whose name or an identifier holds this (any case).
    pub search: Option<String>,
    /// The hidden transfers instead of the visible ones.
    pub hidden: bool,
    /// Where the previous page ended.
    pub after: Option<String>,
    pub limit: usize,
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

/// The state store speaks in domain operations, each safe to repeat. An operation that
/// touches more than `MAX_TRANSACTION_ITEMS` items names its commit point: the one
/// conditional write after which it has happened. Before it, the operation has not
/// happened: no count, checkpoint or fan-in has moved, and a retry writes the same items
/// again, identically. Adapters take time from the `Clock` they are built with. Reads are
/// strongly consistent.
pub trait StateStore: Send + Sync {
    /// Creates the transfer unless `idempotency_key` was seen before; then returns the
    /// transfer created the first time and `false`.
    fn create_transfer(&self, idempotency_key: &str, transfer: &Transfer) -> PortResult<(Transfer, bool)>;
    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>>;
    /// Newest first (by creation time, then id), filtered by status when asked.
    fn list_transfers(&self, query: &TransferQuery) -> PortResult<Page<Transfer>>;
    fn set_identifiers(&self, id: Uuid, identifiers: &Identifiers) -> PortResult<()>;
    /// The transfer whose SIP this is (a transfer and its SIP are one record in Vellum).
    fn transfer_by_sip(&self, sip_uuid: Uuid) -> PortResult<Option<Transfer>>;
    /// The transfer whose AIP this is.
    fn transfer_by_aip(&self, aip_uuid: Uuid) -> PortResult<Option<Transfer>>;
    /// Marks a PROCESSING transfer as flagged stuck since its last progress `since`; false
    /// when it was flagged for that same `since` already (or has ended).
    fn flag_stuck(&self, id: Uuid, since: Timestamp) -> PortResult<bool>;
    /// Records when the fixity audit last read the transfer's stored AIP back.
    fn set_fixity_checked(&self, id: Uuid, at: Timestamp) -> PortResult<()>;
    /// Records how many of the transfer's files were not scanned for viruses.
    fn set_files_not_scanned(&self, id: Uuid, count: u64) -> PortResult<()>;
    /// Hides an ended transfer from the lists; false when it has not ended or is hidden.
    fn hide_transfer(&self, id: Uuid) -> PortResult<bool>;
    /// A FAILED transfer back to PROCESSING for a new attempt at `stage`: its reason
    /// cleared and the stage's job PROCESSING again. False when it was not FAILED.
    fn reopen_transfer(&self, id: Uuid, stage: &str) -> PortResult<bool>;
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
    /// Keeps the last transient error of the stage's job (no job yet: nothing is kept).
    fn note_job_error(&self, transfer_id: Uuid, stage: &str, error: &str) -> PortResult<()>;
    /// In the order they started.
    fn jobs(&self, transfer_id: Uuid) -> PortResult<Vec<Job>>;
    fn tasks(&self, job_uuid: Uuid) -> PortResult<Vec<Task>>;
    fn task(&self, uuid: Uuid) -> PortResult<Option<Task>>;

    /// A long-running per-transfer job's checkpoint (opaque text), if it has one.
    fn job_checkpoint(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<String>>;
    /// Moves a job's checkpoint from `expected` to `next`, or answers `Conflict` when it is
    /// no longer `expected` (another delivery moved it): a compare-and-swap.
    fn set_job_checkpoint(&self, transfer_id: Uuid, stage: &str, expected: Option<&str>, next: &str) -> PortResult<()>;

    fn extract_checkpoint(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint>;
    /// Commits one batch of extracted files and moves the checkpoint to `next_entry`, if the
    /// checkpoint is still `from` (else `Conflict`: another delivery got there first, and
    /// this one retries from the real checkpoint). The files and events are written first,
    /// idempotently and in writes of at most `MAX_TRANSACTION_ITEMS`, as batch
    /// `from.batches`; the commit point is the checkpoint's conditional move. A delivery that
    /// loses the race has written the same items (same ids, same batch). With no files it
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

    /// Writes a per-file stage's results for some files of a batch: tasks, events and file
    /// patches, idempotently (derived ids; a patch sets values, so applying it twice changes
    /// nothing), in writes of at most `MAX_TRANSACTION_ITEMS`. A stage that runs out of time
    /// mid-batch writes what it has done and continues; nothing here counts the batch.
    fn write_batch_items(
        &self,
        transfer_id: Uuid,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<()>;

    /// The commit point of a per-file stage's batch: the batch joins the job's set of done
    /// batches, conditionally, so it is counted once however often it is delivered. The
    /// fan-in answer says whether the whole stage is now complete (every batch of a
    /// finished extraction is in the set).
    fn mark_batch_done(&self, transfer_id: Uuid, stage: &str, batch: u32) -> PortResult<BatchRecorded>;

    /// A batch's results and then its commit point.
    fn record_batch(
        &self,
        transfer_id: Uuid,
        stage: &str,
        batch: u32,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<BatchRecorded> {
        self.write_batch_items(transfer_id, tasks, events, patches)?;
        self.mark_batch_done(transfer_id, stage, batch)
    }

    /// Events about the whole transfer (or written by per-transfer stages); ignored when
    /// an event with the same id exists.
    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()>;
    /// The transfer's files in path order (`current_path`, compared as bytes), a page at a
    /// time after the cursor.
    fn files(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<File>>;
    /// The files of one batch in entry order, a page at a time.
    fn batch_files(&self, transfer_id: Uuid, batch: u32, after: Option<&str>, limit: usize) -> PortResult<Page<File>>;
    /// The transfer's events, oldest first, a page at a time.
    fn events(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<PremisEvent>>;
    /// The events of one file, oldest first: what the METS writer asks for, file by file,
    /// so a large transfer's events are never all in memory.
    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>>;
    /// The events about the transfer as a whole (no file), oldest first: what was left out
    /// of it, the AIP's fixity check.
    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>>;

    /// The AIP version for this transfer under (space, identifier): the next free one the
    /// first time it is asked, the same one every time after; two transfers racing for the
    /// same identifier never get the same version.
    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32>;

    /// Every file of the transfer, page after page: for tests and small transfers. Stages
    /// walk `FilePages` instead, so that memory does not grow with the transfer.
    fn all_files(&self, transfer_id: Uuid) -> PortResult<Vec<File>> {
        FilePages::new(self, transfer_id).collect()
    }

    /// Every event of the transfer, page after page: for tests and the dashboard's detail.
    fn all_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.events(transfer_id, after.as_deref(), PAGE_SIZE)?;
            out.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }
}

/// A transfer's files in path order, fetched a page at a time as the iterator is walked.
pub struct FilePages<'a, S: StateStore + ?Sized> {
    state: &'a S,
    transfer_id: Uuid,
    batch: Option<u32>,
    buffered: std::vec::IntoIter<File>,
    after: Option<String>,
    finished: bool,
    page_size: usize,
}

impl<'a, S: StateStore + ?Sized> FilePages<'a, S> {
    pub fn new(state: &'a S, transfer_id: Uuid) -> Self {
        Self {
            state,
            transfer_id,
            batch: None,
            buffered: Vec::new().into_iter(),
            after: None,
            finished: false,
            page_size: PAGE_SIZE,
        }
    }

    /// The files of one batch, in entry order.
    pub fn of_batch(state: &'a S, transfer_id: Uuid, batch: u32) -> Self {
        Self { batch: Some(batch), ..Self::new(state, transfer_id) }
    }

    /// Starts after this cursor (a page's `next`), for a stage that continues.
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.after = cursor;
        self
    }

    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }
}

impl<S: StateStore + ?Sized> Iterator for FilePages<'_, S> {
    type Item = PortResult<File>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(f) = self.buffered.next() {
                return Some(Ok(f));
            }
            if self.finished {
                return None;
            }
            let page = match self.batch {
                Some(b) => self.state.batch_files(self.transfer_id, b, self.after.as_deref(), self.page_size),
                None => self.state.files(self.transfer_id, self.after.as_deref(), self.page_size),
            };
            match page {
                Ok(page) => {
                    self.finished = page.next.is_none();
                    self.after = page.next;
                    self.buffered = page.items.into_iter();
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
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

/// Users, their API keys and sign-in sessions (see `access.rs`). Secrets are never here,
/// only their digests.
pub trait AccessStore: Send + Sync {
    /// Registers a user; false when one of that name exists (it is left as it is).
    fn add_user(&self, user: &crate::model::User) -> PortResult<bool>;
    /// Removes a user, their keys and sessions; false when there was none.
    fn remove_user(&self, name: &str) -> PortResult<bool>;
    fn user(&self, name: &str) -> PortResult<Option<crate::model::User>>;
    /// Every user, by name.
    fn users(&self) -> PortResult<Vec<crate::model::User>>;
    fn add_api_key(&self, key: &crate::model::ApiKey) -> PortResult<()>;
    /// The key with this digest, revoked or not.
    fn api_key(&self, digest: &str) -> PortResult<Option<crate::model::ApiKey>>;
    /// Every key (revoked ones too), oldest first.
    fn api_keys(&self) -> PortResult<Vec<crate::model::ApiKey>>;
    /// Revokes the key with this id; false when none has it or it was already revoked.
    fn revoke_api_key(&self, id: &str, at: Timestamp) -> PortResult<bool>;
    fn add_session(&self, session: &crate::model::Session) -> PortResult<()>;
    fn session(&self, digest: &str) -> PortResult<Option<crate::model::Session>>;
    fn remove_session(&self, digest: &str) -> PortResult<()>;
}

/// Queues, named by stage, with no more than SQS promises: delivery at least once and in
/// any order; visibility and delays in whole seconds (an adapter whose service takes only
/// seconds rounds up); a depth that is approximate and may lag; a stale receipt that may
/// or may not still delete its message. At most 10 messages a receive or a send batch.
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
    /// How many messages of `queue` are dead-lettered (approximate on SQS), without
    /// looking at them: a status page asks this often.
    fn dead_letter_count(&self, queue: &str) -> PortResult<u64>;
    /// Sends every dead-lettered message of `queue` back to it, to be received afresh;
    /// returns how many.
    fn redrive(&self, queue: &str) -> PortResult<usize>;
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

/// Deletes what a prefix holds a listed page at a time, each page from the front (what was
/// deleted is gone from the listing).
pub fn delete_page_by_page<S: ObjectStore + ?Sized>(store: &S, prefix: &str) -> PortResult<()> {
    loop {
        let page = store.list_page(prefix, None, 1000)?;
        for o in &page.items {
            store.delete(&o.key)?;
        }
        if page.next.is_none() || page.items.is_empty() {
            return Ok(());
        }
    }
}

/// One call of an outside tool: `{file}` in `args` stands for the name of a copy of the
/// object the tool is run on, in the folder the tool runs in. The copy has the file's own
/// name, so what the tool reports about it names the file, the same on every run.
#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    /// Output beyond this many bytes is cut (and the tool stopped).
    pub max_output: usize,
    /// A tool still running after this long is killed.
    pub timeout: Duration,
    /// The tool speaks ExifTool's `-stay_open` protocol: one process takes file after file
    /// (its arguments, then `-execute`, on standard input) instead of one process a file.
    pub stay_open: bool,
    /// The tool takes a batch's files in one call, `{file}` standing for all of them, and
    /// answers with one `<media ref="NAME">` element a file (MediaInfo's XML).
    pub per_batch: bool,
}

/// What an outside tool gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    /// What it wrote to standard output, whole.
    Output(String),
    /// Its output ran past the call's bound: the first `max_output` bytes, and how many it
    /// wrote in all. Never recorded as if it were the whole answer.
    Cut { kept: String, total: u64 },
    /// It failed and wrote nothing useful, and why.
    Failed(String),
    /// It ran past its timeout and was killed.
    TimedOut,
}

/// One tool run on file after file (a batch): with `stay_open`, one process for them all.
pub trait ToolSession {
    /// Runs the tool on the object; `name` is the file's name in the transfer, which the
    /// copy the tool reads is given.
    fn run(&mut self, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput>;
    /// The objects (key, name) the session will be asked for next: a `per_batch` tool runs
    /// once for them all here, and `run` answers from what it said.
    fn prepare(&mut self, _source: &dyn ObjectStore, _objects: &[(String, String)]) -> PortResult<()> {
        Ok(())
    }
}

/// Outside tools (ExifTool, MediaInfo) run by the host on a copy of an object: child
/// processes with a timeout and a temporary file that is always removed. Core never spawns
/// a process or writes a file itself.
pub trait ToolRunner: Send + Sync {
    /// Whether the command is installed where this runner runs it.
    fn installed(&self, command: &str) -> bool;
    /// The installed tool's version, from its own answer to `args` (None: not known).
    fn version(&self, command: &str, args: &[String]) -> Option<String>;
    /// A tool that cannot be started is an error (transient); one that fails is an answer.
    fn run(&self, call: &ToolCall<'_>, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput>;
    /// A session for a batch of files.
    fn session<'a>(&'a self, call: ToolCall<'a>) -> Box<dyn ToolSession + 'a>;
}

/// A session that runs the tool once a file: for tools without a batch protocol.
pub struct OneProcessAFile<'a> {
    pub runner: &'a dyn ToolRunner,
    pub call: ToolCall<'a>,
}

impl ToolSession for OneProcessAFile<'_> {
    fn run(&mut self, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput> {
        self.runner.run(&self.call, source, key, name)
    }
}

/// A host with no outside tools: every rule that needs one is left out.
pub struct NoTools;

impl ToolRunner for NoTools {
    fn installed(&self, _command: &str) -> bool {
        false
    }
    fn version(&self, _command: &str, _args: &[String]) -> Option<String> {
        None
    }
    fn run(&self, call: &ToolCall<'_>, _source: &dyn ObjectStore, _key: &str, _name: &str) -> PortResult<ToolOutput> {
        Ok(ToolOutput::Failed(format!("{} is not installed here", call.command)))
    }
    fn session<'a>(&'a self, call: ToolCall<'a>) -> Box<dyn ToolSession + 'a> {
        Box::new(OneProcessAFile { runner: self, call })
    }
}

/// Tells downstream systems (IIIF builders, catalogues) that an AIP is stored. Delivery is
/// at least once: receivers key on `aip_uuid`.
pub trait Notifier: Send + Sync {
    fn publish(&self, notice: &crate::model::messages::AipStored) -> PortResult<()>;
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
