//! One fault injector for every port: `Faulty<P>` wraps any adapter of any port (an object
//! store, the state store's roles, a queue, a virus scanner, a notifier) and asks its
//! `Injector`, before each call, whether to fail it, lose its answer after it ran, or
//! delay it. The chaos tests arm it from a seed (`Faults`); a test that wants one fault at
//! one place scripts it (`Scripted`); the contract suites run every state-store adapter
//! under it (`state_store::writes_whose_answers_are_lost_are_repeated_safely`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;
use vellum_core::model::{
    CatalogueIdentifiers, File, FilePatch, Job, JobStatus, PremisEvent, StoredAip, Task, Transfer, TransferStatus,
    ValidationCounts,
};
use vellum_core::ports::{
    BatchRecorded, DeadLetter, Delivery, EventLog, ExtractCheckpoint, FileCatalogue, JobLedger, JobSpec, Notifier,
    ObjectMeta, ObjectStore, ObjectWriter, Page, PortError, PortResult, Queue, ScanVerdict, StateStore,
    TransferOversight, TransferQuery, TransferRegister, VirusScanner,
};

/// What the injector does to one call.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The call fails before it does anything.
    Fail(PortError),
    /// The call runs, then its caller is told it failed (a crash between a write and its
    /// acknowledgement).
    LoseAnswer(PortError),
    /// The call runs after a pause.
    Delay(Duration),
}

/// Decides, call by call, what goes wrong. `what` names the call (`store.get`,
/// `state.record_batch`, `queue.send_batch`, …); `key` is the object's key for an object
/// store's calls.
pub trait Injector: Send + Sync {
    fn fault(&self, what: &str, key: Option<&str>) -> Option<Fault>;

    /// Whether this injector wraps an object store's writers: then a `compose` goes through
    /// the wrapped writer too, instead of the store's own server-side copy.
    fn wraps_writers(&self) -> bool {
        false
    }

    /// Wraps an object store's writer (to damage or slow what is written).
    fn wrap_writer(&self, writer: Box<dyn ObjectWriter>) -> Box<dyn ObjectWriter> {
        writer
    }
}

/// Any adapter of any port, under an injector.
pub struct Faulty<P: ?Sized> {
    pub inner: Arc<P>,
    pub injector: Arc<dyn Injector>,
}

impl<P: ?Sized> Faulty<P> {
    pub fn new(inner: Arc<P>, injector: Arc<dyn Injector>) -> Self {
        Self { inner, injector }
    }

    fn call<T>(&self, what: &str, f: impl FnOnce() -> PortResult<T>) -> PortResult<T> {
        run(self.injector.as_ref(), what, None, f)
    }

    fn call_on<T>(&self, what: &str, key: Option<&str>, f: impl FnOnce() -> PortResult<T>) -> PortResult<T> {
        run(self.injector.as_ref(), what, key, f)
    }
}

/// Runs a port call under the injector's fault for it, if any.
fn run<T>(injector: &dyn Injector, what: &str, key: Option<&str>, f: impl FnOnce() -> PortResult<T>) -> PortResult<T> {
    match injector.fault(what, key) {
        None => f(),
        Some(Fault::Fail(e)) => Err(e),
        Some(Fault::LoseAnswer(e)) => f().and_then(|_| Err(e)),
        Some(Fault::Delay(pause)) => {
            std::thread::sleep(pause);
            f()
        }
    }
}

type Fail = Box<dyn Fn(&str, Option<&str>) -> Option<Fault> + Send + Sync>;
type Wrap = Box<dyn Fn(Box<dyn ObjectWriter>) -> Box<dyn ObjectWriter> + Send + Sync>;

/// A test's own faults: `fail` answers the fault for a call (by its name and key), and
/// `wrap` wraps every writer.
#[derive(Default)]
pub struct Scripted {
    pub fail: Option<Fail>,
    pub wrap: Option<Wrap>,
}

impl Scripted {
    /// Reads of an object (`get`) fail with the error `fail` gives for its key.
    pub fn failing_reads(fail: impl Fn(&str) -> Option<PortError> + Send + Sync + 'static) -> Self {
        Self {
            fail: Some(Box::new(move |what, key| match (what, key) {
                ("store.get", Some(key)) => fail(key).map(Fault::Fail),
                _ => None,
            })),
            wrap: None,
        }
    }

    /// Every writer wrapped by `wrap` (which sees every byte written, copies included).
    pub fn wrapping_writers(
        wrap: impl Fn(Box<dyn ObjectWriter>) -> Box<dyn ObjectWriter> + Send + Sync + 'static,
    ) -> Self {
        Self { fail: None, wrap: Some(Box::new(wrap)) }
    }
}

impl Injector for Scripted {
    fn fault(&self, what: &str, key: Option<&str>) -> Option<Fault> {
        self.fail.as_ref().and_then(|fail| fail(what, key))
    }
    fn wraps_writers(&self) -> bool {
        self.wrap.is_some()
    }
    fn wrap_writer(&self, writer: Box<dyn ObjectWriter>) -> Box<dyn ObjectWriter> {
        match &self.wrap {
            Some(wrap) => wrap(writer),
            None => writer,
        }
    }
}

/// Every write's first answer lost after the write went through (a crash between a write
/// and its acknowledgement, for each kind of write once); reads pass. What the contract
/// suites check commit points with.
#[derive(Default)]
pub struct LoseFirstAnswers {
    lost: Mutex<std::collections::HashSet<String>>,
}

impl LoseFirstAnswers {
    /// The calls whose answers were lost, in no order.
    pub fn lost(&self) -> Vec<String> {
        self.lost.lock().unwrap().iter().cloned().collect()
    }
}

/// The state store's writes: what `LoseFirstAnswers` loses the first answer of.
const STATE_WRITES: &[&str] = &[
    "state.create_transfer",
    "state.set_identifiers",
    "state.set_microservice",
    "state.set_files_not_scanned",
    "state.set_files_not_normalized",
    "state.set_validation_counts",
    "state.end_transfer",
    "state.complete_transfer",
    "state.assign_aip_version",
    "state.hide_transfer",
    "state.reopen_transfer",
    "state.flag_stuck",
    "state.set_fixity_checked",
    "state.start_job",
    "state.finish_job",
    "state.note_job_error",
    "state.set_job_checkpoint",
    "state.commit_extract_batch",
    "state.finish_extract",
    "state.plan_extract",
    "state.write_extracted_batch",
    "state.write_batch_items",
    "state.mark_batch_done",
    "state.record_batch",
    "state.record_events",
];

impl Injector for LoseFirstAnswers {
    fn fault(&self, what: &str, _key: Option<&str>) -> Option<Fault> {
        if !STATE_WRITES.contains(&what) || !self.lost.lock().unwrap().insert(what.to_string()) {
            return None;
        }
        Some(Fault::LoseAnswer(PortError::Unavailable(format!("the answer of {what} was lost"))))
    }
}

/// Seeded faults, so a failing run can be replayed. Each stage invocation is, with the
/// fault rate, given one fault at a random port call: the call fails before it does
/// anything, fails *after* its write went through, or is delayed.
pub struct Faults {
    pub seed: u64,
    pub rate: f64,
    state: Mutex<State>,
}

struct State {
    rng: u64,
    /// Port calls left before the armed fault, and which fault.
    armed: Option<(u32, Armed)>,
    /// What was injected, for the report of a failing seed.
    log: Vec<String>,
}

impl Faults {
    pub fn new(seed: u64, rate: f64) -> Arc<Self> {
        Arc::new(Self {
            seed,
            rate,
            state: Mutex::new(State { rng: seed ^ 0x9E37_79B9_7F4A_7C15, armed: None, log: Vec::new() }),
        })
    }

    fn next(state: &mut State) -> u64 {
        // splitmix64: small, and the same numbers on every machine.
        state.rng = state.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        let mut s = self.state.lock().unwrap();
        (Self::next(&mut s) >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// A number below `n`.
    pub fn below(&self, n: u64) -> u64 {
        let mut s = self.state.lock().unwrap();
        Self::next(&mut s) % n.max(1)
    }

    /// Before an invocation: with the fault rate, one fault at one of its first 48 port calls.
    pub fn arm(&self) {
        if !self.chance(self.rate) {
            return;
        }
        let at = self.below(48) as u32;
        let fault = match self.below(5) {
            0 | 1 => Armed::Before,
            2 | 3 => Armed::AfterWrite,
            _ => Armed::Delay,
        };
        self.state.lock().unwrap().armed = Some((at, fault));
    }

    pub fn disarm(&self) {
        self.state.lock().unwrap().armed = None;
    }

    /// What was injected so far, one line each.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn note(&self, what: String) {
        self.state.lock().unwrap().log.push(what);
    }

    fn on_call(&self, what: &str) -> Option<Armed> {
        let mut s = self.state.lock().unwrap();
        let (left, fault) = s.armed?;
        if left > 0 {
            s.armed = Some((left - 1, fault));
            return None;
        }
        s.armed = None;
        s.log.push(format!("{fault:?} at {what}"));
        Some(fault)
    }
}

impl Injector for Faults {
    fn fault(&self, what: &str, _key: Option<&str>) -> Option<Fault> {
        Some(match self.on_call(what)? {
            Armed::Before => Fault::Fail(injected(what, "before it ran")),
            Armed::AfterWrite => Fault::LoseAnswer(injected(what, "after it ran (the answer was lost)")),
            Armed::Delay => Fault::Delay(Duration::from_millis(3)),
        })
    }
}

/// What the seed armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Armed {
    Before,
    AfterWrite,
    Delay,
}

fn injected(what: &str, when: &str) -> PortError {
    PortError::Unavailable(format!("injected fault: {what} failed {when}"))
}

/// An object store under faults; a writer's commit is a call of its own, and the injector
/// may wrap the writer (to damage or slow what is written).
impl ObjectStore for Faulty<dyn ObjectStore> {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        self.call_on("store.head", Some(key), || self.inner.head(key))
    }
    fn get(&self, key: &str) -> PortResult<Box<dyn Read + Send>> {
        self.call_on("store.get", Some(key), || self.inner.get(key))
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> PortResult<Vec<u8>> {
        self.call_on("store.get_range", Some(key), || self.inner.get_range(key, offset, len))
    }
    fn writer(&self, key: &str) -> PortResult<Box<dyn ObjectWriter>> {
        let inner = self.injector.wrap_writer(self.call_on("store.writer", Some(key), || self.inner.writer(key))?);
        Ok(Box::new(FaultyWriter { inner, injector: self.injector.clone() }))
    }
    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<Page<ObjectMeta>> {
        self.call("store.list_page", || self.inner.list_page(prefix, after, limit))
    }
    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> PortResult<()> {
        self.call_on("store.put_tags", Some(key), || self.inner.put_tags(key, tags))
    }
    fn get_tags(&self, key: &str) -> PortResult<BTreeMap<String, String>> {
        self.call_on("store.get_tags", Some(key), || self.inner.get_tags(key))
    }
    fn delete(&self, key: &str) -> PortResult<()> {
        self.call_on("store.delete", Some(key), || self.inner.delete(key))
    }
    fn delete_prefix(&self, prefix: &str) -> PortResult<()> {
        self.call_on("store.delete_prefix", Some(prefix), || self.inner.delete_prefix(prefix))
    }
    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(key)
    }
    fn compose(&self, key: &str, source: &dyn ObjectStore, parts: &[String]) -> PortResult<ObjectMeta> {
        self.call_on("store.compose", Some(key), || {
            if self.injector.wraps_writers() {
                // A wrapped writer must see the bytes the service's own copy would write.
                let mut writer = self.writer(key)?;
                for part in parts {
                    std::io::copy(&mut source.get(part)?, &mut writer)?;
                }
                writer.commit()
            } else {
                self.inner.compose(key, source, parts)
            }
        })
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self.inner.as_any()
    }
}

struct FaultyWriter {
    inner: Box<dyn ObjectWriter>,
    injector: Arc<dyn Injector>,
}

impl Write for FaultyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ObjectWriter for FaultyWriter {
    fn commit(self: Box<Self>) -> PortResult<ObjectMeta> {
        let FaultyWriter { inner, injector } = *self;
        run(injector.as_ref(), "store.commit", None, || inner.commit())
    }
}

impl TransferRegister for Faulty<dyn StateStore> {
    fn create_transfer(&self, key: &str, transfer: &Transfer) -> PortResult<(Transfer, bool)> {
        self.call("state.create_transfer", || self.inner.create_transfer(key, transfer))
    }

    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>> {
        self.call("state.transfer", || self.inner.transfer(id))
    }

    fn set_identifiers(&self, id: Uuid, identifiers: &CatalogueIdentifiers) -> PortResult<()> {
        self.call("state.set_identifiers", || self.inner.set_identifiers(id, identifiers))
    }

    fn set_files_not_scanned(&self, id: Uuid, count: u64) -> PortResult<()> {
        self.call("state.set_files_not_scanned", || self.inner.set_files_not_scanned(id, count))
    }

    fn set_files_not_normalized(&self, id: Uuid, count: u64) -> PortResult<()> {
        self.call("state.set_files_not_normalized", || self.inner.set_files_not_normalized(id, count))
    }
    fn set_validation_counts(&self, id: Uuid, counts: ValidationCounts) -> PortResult<()> {
        self.call("state.set_validation_counts", || self.inner.set_validation_counts(id, counts))
    }

    fn set_microservice(&self, id: Uuid, microservice: &str) -> PortResult<()> {
        self.call("state.set_microservice", || self.inner.set_microservice(id, microservice))
    }

    fn end_transfer(&self, id: Uuid, status: TransferStatus, reason: &str) -> PortResult<bool> {
        self.call("state.end_transfer", || self.inner.end_transfer(id, status, reason))
    }

    fn complete_transfer(&self, id: Uuid, aip: &StoredAip) -> PortResult<bool> {
        self.call("state.complete_transfer", || self.inner.complete_transfer(id, aip))
    }

    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32> {
        self.call("state.assign_aip_version", || self.inner.assign_aip_version(transfer_id, space, identifier))
    }
}

impl TransferOversight for Faulty<dyn StateStore> {
    fn list_transfers(&self, query: &TransferQuery) -> PortResult<Page<Transfer>> {
        self.call("state.list_transfers", || self.inner.list_transfers(query))
    }

    fn transfer_by_sip(&self, sip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.call("state.transfer_by_sip", || self.inner.transfer_by_sip(sip_uuid))
    }

    fn transfer_by_aip(&self, aip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.call("state.transfer_by_aip", || self.inner.transfer_by_aip(aip_uuid))
    }

    fn flag_stuck(&self, id: Uuid, since: vellum_core::model::Timestamp) -> PortResult<bool> {
        self.call("state.flag_stuck", || self.inner.flag_stuck(id, since))
    }

    fn set_fixity_checked(&self, id: Uuid, at: vellum_core::model::Timestamp) -> PortResult<()> {
        self.call("state.set_fixity_checked", || self.inner.set_fixity_checked(id, at))
    }

    fn hide_transfer(&self, id: Uuid) -> PortResult<bool> {
        self.call("state.hide_transfer", || self.inner.hide_transfer(id))
    }

    fn reopen_transfer(&self, id: Uuid, stage: &str) -> PortResult<bool> {
        self.call("state.reopen_transfer", || self.inner.reopen_transfer(id, stage))
    }
}

impl JobLedger for Faulty<dyn StateStore> {
    fn start_job(&self, transfer_id: Uuid, spec: &JobSpec<'_>) -> PortResult<Job> {
        self.call("state.start_job", || self.inner.start_job(transfer_id, spec))
    }

    fn finish_job(&self, transfer_id: Uuid, stage: &str, status: JobStatus) -> PortResult<()> {
        self.call("state.finish_job", || self.inner.finish_job(transfer_id, stage, status))
    }

    fn job(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<Job>> {
        self.call("state.job", || self.inner.job(transfer_id, stage))
    }

    fn note_job_error(&self, transfer_id: Uuid, stage: &str, error: &str) -> PortResult<()> {
        self.call("state.note_job_error", || self.inner.note_job_error(transfer_id, stage, error))
    }

    fn jobs(&self, transfer_id: Uuid) -> PortResult<Vec<Job>> {
        self.call("state.jobs", || self.inner.jobs(transfer_id))
    }

    fn tasks(&self, job_uuid: Uuid) -> PortResult<Vec<Task>> {
        self.call("state.tasks", || self.inner.tasks(job_uuid))
    }

    fn task(&self, uuid: Uuid) -> PortResult<Option<Task>> {
        self.call("state.task", || self.inner.task(uuid))
    }

    fn job_checkpoint(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<String>> {
        self.call("state.job_checkpoint", || self.inner.job_checkpoint(transfer_id, stage))
    }

    fn set_job_checkpoint(&self, transfer_id: Uuid, stage: &str, expected: Option<&str>, next: &str) -> PortResult<()> {
        self.call("state.set_job_checkpoint", || self.inner.set_job_checkpoint(transfer_id, stage, expected, next))
    }
}

impl FileCatalogue for Faulty<dyn StateStore> {
    fn extract_checkpoint(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        self.call("state.extract_checkpoint", || self.inner.extract_checkpoint(transfer_id))
    }

    fn commit_extract_batch(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        files: &[File],
        events: &[PremisEvent],
        next_entry: u64,
    ) -> PortResult<ExtractCheckpoint> {
        self.call("state.commit_extract_batch", || {
            self.inner.commit_extract_batch(transfer_id, from, files, events, next_entry)
        })
    }

    fn finish_extract(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        self.call("state.finish_extract", || self.inner.finish_extract(transfer_id))
    }

    fn plan_extract(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        planned: &ExtractCheckpoint,
    ) -> PortResult<ExtractCheckpoint> {
        self.call("state.plan_extract", || self.inner.plan_extract(transfer_id, from, planned))
    }

    fn write_extracted_batch(
        &self,
        transfer_id: Uuid,
        batch: u32,
        files: &[File],
        events: &[PremisEvent],
    ) -> PortResult<()> {
        self.call("state.write_extracted_batch", || self.inner.write_extracted_batch(transfer_id, batch, files, events))
    }

    fn write_batch_items(
        &self,
        transfer_id: Uuid,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<()> {
        self.call("state.write_batch_items", || self.inner.write_batch_items(transfer_id, tasks, events, patches))
    }

    fn mark_batch_done(&self, transfer_id: Uuid, stage: &str, batch: u32) -> PortResult<BatchRecorded> {
        self.call("state.mark_batch_done", || self.inner.mark_batch_done(transfer_id, stage, batch))
    }

    fn record_batch(
        &self,
        transfer_id: Uuid,
        stage: &str,
        batch: u32,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<BatchRecorded> {
        self.call("state.record_batch", || self.inner.record_batch(transfer_id, stage, batch, tasks, events, patches))
    }

    fn files(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        self.call("state.files", || self.inner.files(transfer_id, after, limit))
    }

    fn batch_files(&self, transfer_id: Uuid, batch: u32, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        self.call("state.batch_files", || self.inner.batch_files(transfer_id, batch, after, limit))
    }
}

impl EventLog for Faulty<dyn StateStore> {
    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()> {
        self.call("state.record_events", || self.inner.record_events(events))
    }

    fn events(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<PremisEvent>> {
        self.call("state.events", || self.inner.events(transfer_id, after, limit))
    }

    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.call("state.file_events", || self.inner.file_events(transfer_id, file_uuid))
    }

    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.call("state.transfer_events", || self.inner.transfer_events(transfer_id))
    }
}

/// The queue as the pipeline sends to it, under faults (a send may be lost after it went).
impl Queue for Faulty<dyn Queue> {
    fn send_batch(&self, queue: &str, bodies: &[String]) -> PortResult<()> {
        self.call("queue.send_batch", || self.inner.send_batch(queue, bodies))
    }
    fn receive(&self, queue: &str, max: usize, visibility: Duration) -> PortResult<Vec<Delivery>> {
        self.inner.receive(queue, max, visibility)
    }
    fn ack(&self, queue: &str, receipt: &str) -> PortResult<()> {
        self.inner.ack(queue, receipt)
    }
    fn nack(&self, queue: &str, receipt: &str, delay: Duration, error: &str) -> PortResult<()> {
        self.inner.nack(queue, receipt, delay, error)
    }
    fn extend(&self, queue: &str, receipt: &str, visibility: Duration) -> PortResult<()> {
        self.call("queue.extend", || self.inner.extend(queue, receipt, visibility))
    }
    fn dead_letters(&self, queue: &str) -> PortResult<Vec<DeadLetter>> {
        self.inner.dead_letters(queue)
    }
    fn dead_letter_count(&self, queue: &str) -> PortResult<u64> {
        self.inner.dead_letter_count(queue)
    }
    fn redrive(&self, queue: &str) -> PortResult<usize> {
        self.inner.redrive(queue)
    }
    fn depth(&self, queue: &str) -> PortResult<u64> {
        self.inner.depth(queue)
    }
}

/// The virus scanner under faults: a daemon that is, for a call, not there.
impl VirusScanner for Faulty<dyn VirusScanner> {
    fn version(&self) -> PortResult<String> {
        self.call("scanner.version", || self.inner.version())
    }
    fn scan(&self, data: &mut dyn Read) -> PortResult<ScanVerdict> {
        self.call("scanner.scan", || self.inner.scan(data))
    }
}

/// The notifier under faults (a notice may be sent and its answer lost: sent twice).
impl Notifier for Faulty<dyn Notifier> {
    fn publish(&self, notice: &vellum_core::model::messages::AipStored) -> PortResult<()> {
        self.call("notifier.publish", || self.inner.publish(notice))
    }
}
