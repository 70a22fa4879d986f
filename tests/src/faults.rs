//! Fault injection around every port, driven by a seed so a failing run can be replayed.
//!
//! Each stage invocation is, with the fault rate, given one fault at a random port call: the
//! call fails before it does anything, fails *after* its write went through (the caller never
//! hears that it did: a crash between a write and its acknowledgement), or is delayed. The
//! chaos driver adds what queues do: messages delivered twice, late (held back a round) and
//! out of order.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;
use vellum_core::model::Stage;
use vellum_core::model::{
    File, FilePatch, Identifiers, Job, JobStatus, PremisEvent, StoredAip, Task, Transfer, TransferStatus,
};
use vellum_core::ports::{
    BatchRecorded, DeadLetter, Delivery, EventLog, ExtractCheckpoint, FileCatalogue, JobLedger, JobSpec, Notifier,
    ObjectMeta, ObjectStore, ObjectWriter, Page, PortError, PortResult, Queue, ScanVerdict, StateStore,
    TransferOversight, TransferQuery, TransferRegister, VirusScanner,
};
use vellum_core::{Outcome, Pipeline, StageContext};

/// What an armed call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Before,
    AfterWrite,
    Delay,
}

/// The seed's random choices and the faults armed from them.
pub struct Faults {
    pub seed: u64,
    pub rate: f64,
    state: Mutex<State>,
}

struct State {
    rng: u64,
    /// Port calls left before the armed fault, and which fault.
    armed: Option<(u32, Fault)>,
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
            0 | 1 => Fault::Before,
            2 | 3 => Fault::AfterWrite,
            _ => Fault::Delay,
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

    fn on_call(&self, what: &str) -> Option<Fault> {
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

    /// Runs a port call under the armed fault, if this is its call.
    fn call<T>(&self, what: &str, f: impl FnOnce() -> PortResult<T>) -> PortResult<T> {
        match self.on_call(what) {
            None => f(),
            Some(Fault::Before) => Err(injected(what, "before it ran")),
            Some(Fault::AfterWrite) => f().and_then(|_| Err(injected(what, "after it ran (the answer was lost)"))),
            Some(Fault::Delay) => {
                std::thread::sleep(Duration::from_millis(3));
                f()
            }
        }
    }
}

fn injected(what: &str, when: &str) -> PortError {
    PortError::Unavailable(format!("injected fault: {what} failed {when}"))
}

/// An object store under faults; a writer's commit is a call of its own.
pub struct FaultyStore {
    pub inner: Arc<dyn ObjectStore>,
    pub faults: Arc<Faults>,
}

impl ObjectStore for FaultyStore {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        self.faults.call("store.head", || self.inner.head(key))
    }
    fn get(&self, key: &str) -> PortResult<Box<dyn Read + Send>> {
        self.faults.call("store.get", || self.inner.get(key))
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> PortResult<Vec<u8>> {
        self.faults.call("store.get_range", || self.inner.get_range(key, offset, len))
    }
    fn writer(&self, key: &str) -> PortResult<Box<dyn ObjectWriter>> {
        let inner = self.faults.call("store.writer", || self.inner.writer(key))?;
        Ok(Box::new(FaultyWriter { inner, faults: self.faults.clone() }))
    }
    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<Page<ObjectMeta>> {
        self.faults.call("store.list_page", || self.inner.list_page(prefix, after, limit))
    }
    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> PortResult<()> {
        self.faults.call("store.put_tags", || self.inner.put_tags(key, tags))
    }
    fn get_tags(&self, key: &str) -> PortResult<BTreeMap<String, String>> {
        self.faults.call("store.get_tags", || self.inner.get_tags(key))
    }
    fn delete(&self, key: &str) -> PortResult<()> {
        self.faults.call("store.delete", || self.inner.delete(key))
    }
    fn delete_prefix(&self, prefix: &str) -> PortResult<()> {
        self.faults.call("store.delete_prefix", || self.inner.delete_prefix(prefix))
    }
    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(key)
    }
    fn compose(&self, key: &str, source: &dyn ObjectStore, parts: &[String]) -> PortResult<ObjectMeta> {
        self.faults.call("store.compose", || self.inner.compose(key, source, parts))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self.inner.as_any()
    }
}

struct FaultyWriter {
    inner: Box<dyn ObjectWriter>,
    faults: Arc<Faults>,
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
        let FaultyWriter { inner, faults } = *self;
        faults.call("store.commit", || inner.commit())
    }
}

/// The state store under faults.
pub struct FaultyState {
    pub inner: Arc<dyn StateStore>,
    pub faults: Arc<Faults>,
}

impl TransferRegister for FaultyState {
    fn create_transfer(&self, key: &str, transfer: &Transfer) -> PortResult<(Transfer, bool)> {
        self.faults.call("state.create_transfer", || self.inner.create_transfer(key, transfer))
    }

    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>> {
        self.faults.call("state.transfer", || self.inner.transfer(id))
    }

    fn set_identifiers(&self, id: Uuid, identifiers: &Identifiers) -> PortResult<()> {
        self.faults.call("state.set_identifiers", || self.inner.set_identifiers(id, identifiers))
    }

    fn set_files_not_scanned(&self, id: Uuid, count: u64) -> PortResult<()> {
        self.faults.call("state.set_files_not_scanned", || self.inner.set_files_not_scanned(id, count))
    }

    fn set_microservice(&self, id: Uuid, microservice: &str) -> PortResult<()> {
        self.faults.call("state.set_microservice", || self.inner.set_microservice(id, microservice))
    }

    fn end_transfer(&self, id: Uuid, status: TransferStatus, reason: &str) -> PortResult<bool> {
        self.faults.call("state.end_transfer", || self.inner.end_transfer(id, status, reason))
    }

    fn complete_transfer(&self, id: Uuid, aip: &StoredAip) -> PortResult<bool> {
        self.faults.call("state.complete_transfer", || self.inner.complete_transfer(id, aip))
    }

    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32> {
        self.faults.call("state.assign_aip_version", || self.inner.assign_aip_version(transfer_id, space, identifier))
    }
}

impl TransferOversight for FaultyState {
    fn list_transfers(&self, query: &TransferQuery) -> PortResult<Page<Transfer>> {
        self.faults.call("state.list_transfers", || self.inner.list_transfers(query))
    }

    fn transfer_by_sip(&self, sip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.faults.call("state.transfer_by_sip", || self.inner.transfer_by_sip(sip_uuid))
    }

    fn transfer_by_aip(&self, aip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.faults.call("state.transfer_by_aip", || self.inner.transfer_by_aip(aip_uuid))
    }

    fn flag_stuck(&self, id: Uuid, since: vellum_core::model::Timestamp) -> PortResult<bool> {
        self.faults.call("state.flag_stuck", || self.inner.flag_stuck(id, since))
    }

    fn set_fixity_checked(&self, id: Uuid, at: vellum_core::model::Timestamp) -> PortResult<()> {
        self.faults.call("state.set_fixity_checked", || self.inner.set_fixity_checked(id, at))
    }

    fn hide_transfer(&self, id: Uuid) -> PortResult<bool> {
        self.faults.call("state.hide_transfer", || self.inner.hide_transfer(id))
    }

    fn reopen_transfer(&self, id: Uuid, stage: &str) -> PortResult<bool> {
        self.faults.call("state.reopen_transfer", || self.inner.reopen_transfer(id, stage))
    }
}

impl JobLedger for FaultyState {
    fn start_job(&self, transfer_id: Uuid, spec: &JobSpec<'_>) -> PortResult<Job> {
        self.faults.call("state.start_job", || self.inner.start_job(transfer_id, spec))
    }

    fn finish_job(&self, transfer_id: Uuid, stage: &str, status: JobStatus) -> PortResult<()> {
        self.faults.call("state.finish_job", || self.inner.finish_job(transfer_id, stage, status))
    }

    fn job(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<Job>> {
        self.faults.call("state.job", || self.inner.job(transfer_id, stage))
    }

    fn note_job_error(&self, transfer_id: Uuid, stage: &str, error: &str) -> PortResult<()> {
        self.faults.call("state.note_job_error", || self.inner.note_job_error(transfer_id, stage, error))
    }

    fn jobs(&self, transfer_id: Uuid) -> PortResult<Vec<Job>> {
        self.faults.call("state.jobs", || self.inner.jobs(transfer_id))
    }

    fn tasks(&self, job_uuid: Uuid) -> PortResult<Vec<Task>> {
        self.faults.call("state.tasks", || self.inner.tasks(job_uuid))
    }

    fn task(&self, uuid: Uuid) -> PortResult<Option<Task>> {
        self.faults.call("state.task", || self.inner.task(uuid))
    }

    fn job_checkpoint(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<String>> {
        self.faults.call("state.job_checkpoint", || self.inner.job_checkpoint(transfer_id, stage))
    }

    fn set_job_checkpoint(&self, transfer_id: Uuid, stage: &str, expected: Option<&str>, next: &str) -> PortResult<()> {
        self.faults
            .call("state.set_job_checkpoint", || self.inner.set_job_checkpoint(transfer_id, stage, expected, next))
    }
}

impl FileCatalogue for FaultyState {
    fn extract_checkpoint(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        self.faults.call("state.extract_checkpoint", || self.inner.extract_checkpoint(transfer_id))
    }

    fn commit_extract_batch(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        files: &[File],
        events: &[PremisEvent],
        next_entry: u64,
    ) -> PortResult<ExtractCheckpoint> {
        self.faults.call("state.commit_extract_batch", || {
            self.inner.commit_extract_batch(transfer_id, from, files, events, next_entry)
        })
    }

    fn finish_extract(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        self.faults.call("state.finish_extract", || self.inner.finish_extract(transfer_id))
    }

    fn write_batch_items(
        &self,
        transfer_id: Uuid,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<()> {
        self.faults
            .call("state.write_batch_items", || self.inner.write_batch_items(transfer_id, tasks, events, patches))
    }

    fn mark_batch_done(&self, transfer_id: Uuid, stage: &str, batch: u32) -> PortResult<BatchRecorded> {
        self.faults.call("state.mark_batch_done", || self.inner.mark_batch_done(transfer_id, stage, batch))
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
        self.faults
            .call("state.record_batch", || self.inner.record_batch(transfer_id, stage, batch, tasks, events, patches))
    }

    fn files(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        self.faults.call("state.files", || self.inner.files(transfer_id, after, limit))
    }

    fn batch_files(&self, transfer_id: Uuid, batch: u32, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        self.faults.call("state.batch_files", || self.inner.batch_files(transfer_id, batch, after, limit))
    }
}

impl EventLog for FaultyState {
    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()> {
        self.faults.call("state.record_events", || self.inner.record_events(events))
    }

    fn events(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<PremisEvent>> {
        self.faults.call("state.events", || self.inner.events(transfer_id, after, limit))
    }

    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.faults.call("state.file_events", || self.inner.file_events(transfer_id, file_uuid))
    }

    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.faults.call("state.transfer_events", || self.inner.transfer_events(transfer_id))
    }
}

/// The queue as the pipeline sends to it, under faults (a send may be lost after it went).
pub struct FaultyQueue {
    pub inner: Arc<dyn Queue>,
    pub faults: Arc<Faults>,
}

impl Queue for FaultyQueue {
    fn send_batch(&self, queue: &str, bodies: &[String]) -> PortResult<()> {
        self.faults.call("queue.send_batch", || self.inner.send_batch(queue, bodies))
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
        self.faults.call("queue.extend", || self.inner.extend(queue, receipt, visibility))
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
pub struct FaultyScanner {
    pub inner: Arc<dyn VirusScanner>,
    pub faults: Arc<Faults>,
}

impl VirusScanner for FaultyScanner {
    fn version(&self) -> PortResult<String> {
        self.faults.call("scanner.version", || self.inner.version())
    }
    fn scan(&self, data: &mut dyn Read) -> PortResult<ScanVerdict> {
        self.faults.call("scanner.scan", || self.inner.scan(data))
    }
}

/// The notifier under faults (a notice may be sent and its answer lost: sent twice).
pub struct FaultyNotifier {
    pub inner: Arc<dyn Notifier>,
    pub faults: Arc<Faults>,
}

impl Notifier for FaultyNotifier {
    fn publish(&self, notice: &vellum_core::model::messages::AipStored) -> PortResult<()> {
        self.faults.call("notifier.publish", || self.inner.publish(notice))
    }
}

/// The pipeline with every port wrapped.
pub fn faulty_pipeline(p: &Pipeline, faults: &Arc<Faults>) -> Pipeline {
    let store = |s: &Arc<dyn ObjectStore>| -> Arc<dyn ObjectStore> {
        Arc::new(FaultyStore { inner: s.clone(), faults: faults.clone() })
    };
    let mut faulty = p.clone();
    faulty.uploads = store(&p.uploads);
    faulty.working = store(&p.working);
    faulty.aips = store(&p.aips);
    faulty.state = Arc::new(FaultyState { inner: p.state.clone(), faults: faults.clone() });
    faulty.queue = Arc::new(FaultyQueue { inner: p.queue.clone(), faults: faults.clone() });
    faulty.scanner =
        p.scanner.as_ref().map(|s| Arc::new(FaultyScanner { inner: s.clone(), faults: faults.clone() }) as _);
    faulty.notifier = Arc::new(FaultyNotifier { inner: p.notifier.clone(), faults: faults.clone() });
    faulty
}

/// Delivers every message until all queues are empty, as a queue at its worst: in shuffled
/// order, some held back a round (late), some handled twice; each invocation armed with the
/// seed's faults. Dead letters fail their transfers, as the runner does. Gives how many
/// invocations there were.
pub fn drive_with_faults(queue: &dyn Queue, pipeline: &Pipeline, faults: &Faults, state: &dyn StateStore) -> usize {
    let ctx = StageContext::with_budget(Duration::from_secs(600));
    let mut held: Vec<(&str, Delivery)> = Vec::new();
    let mut held_once: HashSet<String> = HashSet::new();
    let mut invocations = 0;
    let handle = |q: &str, body: &str| {
        faults.arm();
        let outcome = pipeline.handle_queue(q, body, &ctx);
        faults.disarm();
        outcome
    };
    for _round in 0..100_000 {
        let mut pool: Vec<(&str, Delivery)> = std::mem::take(&mut held);
        for q in Stage::ALL.map(Stage::name) {
            pool.extend(queue.receive(q, 10, Duration::from_secs(600)).unwrap().into_iter().map(|d| (q, d)));
        }
        if pool.is_empty() {
            break;
        }
        // Out of order: a shuffle by the seed.
        for i in (1..pool.len()).rev() {
            pool.swap(i, faults.below(i as u64 + 1) as usize);
        }
        for (q, d) in pool {
            if faults.chance(faults.rate) && held_once.insert(d.receipt.clone()) {
                faults.note(format!("late: a {q} message"));
                held.push((q, d));
                continue;
            }
            invocations += 1;
            let outcome = handle(q, &d.body);
            match &outcome {
                Outcome::Retry(why) => queue.nack(q, &d.receipt, Duration::ZERO, why).unwrap(),
                _ => queue.ack(q, &d.receipt).unwrap(),
            }
            if faults.chance(faults.rate) {
                faults.note(format!("twice: a {q} message"));
                invocations += 1;
                if let Outcome::Retry(_) = handle(q, &d.body) {
                    // As SQS would: the copy comes back too.
                    queue.send(q, &d.body).unwrap();
                }
            }
        }
    }
    for q in Stage::ALL.map(Stage::name) {
        for dl in queue.dead_letters(q).unwrap() {
            let _ = vellum_core::operations::monitor::fail_dead_lettered(state, pipeline.uploads.as_ref(), &dl);
        }
    }
    invocations
}
