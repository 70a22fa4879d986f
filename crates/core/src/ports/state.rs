//! The state store's port, one trait a role: transfers, jobs and tasks, files, events.

use uuid::Uuid;

use super::{Page, PortResult, PAGE_SIZE};
use crate::model::{
    CatalogueIdentifiers, File, FilePatch, Job, JobStatus, PremisEvent, Stage, StoredAip, Task, Timestamp, Transfer,
    TransferStatus, ValidationCounts,
};

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

impl JobSpec<'static> {
    /// The job of one of Vellum's stages, under Archivematica's names.
    pub fn of(stage: Stage) -> Self {
        Self { stage: stage.name(), microservice_group: stage.microservice_group(), name: stage.job_name() }
    }
}

/// The state store, by role: it speaks in domain operations, each safe to repeat. An operation that
/// touches more than `MAX_TRANSACTION_ITEMS` items names its commit point: the one
/// conditional write after which it has happened. Before it, the operation has not
/// happened: no count, checkpoint or fan-in has moved, and a retry writes the same items
/// again, identically. Adapters take time from the `Clock` they are built with. Reads are
/// strongly consistent.
/// A transfer's life as the stages move it: created once per upload event, its identifiers
/// and current microservice kept, ended once (REJECTED, FAILED or COMPLETE).
pub trait TransferRegister: Send + Sync {
    /// Creates the transfer unless `idempotency_key` was seen before; then returns the
    /// transfer created the first time and `false`.
    fn create_transfer(&self, idempotency_key: &str, transfer: &Transfer) -> PortResult<(Transfer, bool)>;

    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>>;

    fn set_identifiers(&self, id: Uuid, identifiers: &CatalogueIdentifiers) -> PortResult<()>;

    /// Records how many of the transfer's files were not scanned for viruses.
    fn set_files_not_scanned(&self, id: Uuid, count: u64) -> PortResult<()>;
    /// Records how many originals a copy could not be made of (counted once, by the METS
    /// stage).
    fn set_files_not_normalized(&self, id: Uuid, count: u64) -> PortResult<()>;
    /// Records how the files' validation statements came out (counted once, by the METS
    /// stage).
    fn set_validation_counts(&self, id: Uuid, counts: ValidationCounts) -> PortResult<()>;

    fn set_microservice(&self, id: Uuid, microservice: &str) -> PortResult<()>;

    /// Ends a transfer as FAILED or REJECTED with a reason, unless it has already ended;
    /// returns false when it had (the first ending stands).
    fn end_transfer(&self, id: Uuid, status: TransferStatus, reason: &str) -> PortResult<bool>;

    /// Records the stored AIP and marks the transfer COMPLETE, unless already ended.
    fn complete_transfer(&self, id: Uuid, aip: &StoredAip) -> PortResult<bool>;

    /// The AIP version for this transfer under (space, identifier): the next free one the
    /// first time it is asked, the same one every time after; two transfers racing for the
    /// same identifier never get the same version.
    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32>;
}

/// What operators and the dashboard do with transfers beside the flow: list and find them,
/// hide an ended one, reopen a failed one, flag a stuck one, note a fixity audit.
pub trait TransferOversight: Send + Sync {
    /// Newest first (by creation time, then id), filtered by status when asked.
    fn list_transfers(&self, query: &TransferQuery) -> PortResult<Page<Transfer>>;

    /// The transfer whose SIP this is (a transfer and its SIP are one record in Vellum).
    fn transfer_by_sip(&self, sip_uuid: Uuid) -> PortResult<Option<Transfer>>;

    /// The transfer whose AIP this is.
    fn transfer_by_aip(&self, aip_uuid: Uuid) -> PortResult<Option<Transfer>>;

    /// Marks a PROCESSING transfer as flagged stuck since its last progress `since`; false
    /// when it was flagged for that same `since` already (or has ended).
    fn flag_stuck(&self, id: Uuid, since: Timestamp) -> PortResult<bool>;

    /// Records when the fixity audit last read the transfer's stored AIP back.
    fn set_fixity_checked(&self, id: Uuid, at: Timestamp) -> PortResult<()>;

    /// Hides an ended transfer from the lists; false when it has not ended or is hidden.
    fn hide_transfer(&self, id: Uuid) -> PortResult<bool>;

    /// A FAILED transfer back to PROCESSING for a new attempt at `stage`: its reason
    /// cleared and the stage's job PROCESSING again. False when it was not FAILED.
    fn reopen_transfer(&self, id: Uuid, stage: &str) -> PortResult<bool>;
}

/// Jobs (one microservice run on one transfer) and their tasks, with a long job's checkpoint.
pub trait JobLedger: Send + Sync {
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
}

/// The transfer's files: extraction commits them batch by batch behind its checkpoint, the
/// per-file stages write their results a batch at a time and count each batch once.
pub trait FileCatalogue: Send + Sync {
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

    /// Fixes a package's batches before its files are in, for extraction in ranges: the
    /// checkpoint moves from `from` to `planned` (done, with the final entry, batch and file
    /// counts) if it is still `from`, else `Conflict`. From then on the per-file fan-in
    /// knows the count while the ranges are extracted, each batch written by
    /// `write_extracted_batch`.
    fn plan_extract(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        planned: &ExtractCheckpoint,
    ) -> PortResult<ExtractCheckpoint>;

    /// Writes one planned batch's files (as batch `batch`) and events, idempotently and in
    /// writes of at most `MAX_TRANSACTION_ITEMS`, never over a file record a later stage has
    /// patched; moves no checkpoint (the batch's commit point is `mark_batch_done` on the
    /// extract job).
    fn write_extracted_batch(
        &self,
        transfer_id: Uuid,
        batch: u32,
        files: &[File],
        events: &[PremisEvent],
    ) -> PortResult<()>;

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

    /// The transfer's files in path order (`current_path`, compared as bytes), a page at a
    /// time after the cursor.
    fn files(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<File>>;

    /// The files of one batch in entry order, a page at a time.
    fn batch_files(&self, transfer_id: Uuid, batch: u32, after: Option<&str>, limit: usize) -> PortResult<Page<File>>;

    /// Every file of the transfer, page after page: for tests and small transfers. Stages
    /// walk `FilePages` instead, so that memory does not grow with the transfer.
    fn all_files(&self, transfer_id: Uuid) -> PortResult<Vec<File>> {
        FilePages::new(self, transfer_id).collect()
    }
}

/// PREMIS events, the archival record: written once (an event's id is derived, a repeat is
/// ignored), never rewritten, read back oldest first.
pub trait EventLog: Send + Sync {
    /// Events about the whole transfer (or written by per-transfer stages); ignored when
    /// an event with the same id exists.
    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()>;

    /// The transfer's events, oldest first, a page at a time.
    fn events(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<PremisEvent>>;

    /// The events of one file, oldest first: what the METS writer asks for, file by file,
    /// so a large transfer's events are never all in memory.
    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>>;

    /// The events about the transfer as a whole (no file), oldest first: what was left out
    /// of it, the AIP's fixity check.
    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>>;

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

/// Every role at once: what an adapter of the state store implements, and what a caller
/// that needs the whole ledger (the pipeline, the dashboard) holds. A stage is handed only
/// the roles it uses.
pub trait StateStore: TransferRegister + TransferOversight + JobLedger + FileCatalogue + EventLog {}

impl<T: TransferRegister + TransferOversight + JobLedger + FileCatalogue + EventLog + ?Sized> StateStore for T {}

/// A transfer's files in path order, fetched a page at a time as the iterator is walked.
pub struct FilePages<'a, S: FileCatalogue + ?Sized> {
    state: &'a S,
    transfer_id: Uuid,
    batch: Option<u32>,
    buffered: std::vec::IntoIter<File>,
    after: Option<String>,
    finished: bool,
    page_size: usize,
}

impl<'a, S: FileCatalogue + ?Sized> FilePages<'a, S> {
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

impl<S: FileCatalogue + ?Sized> Iterator for FilePages<'_, S> {
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
